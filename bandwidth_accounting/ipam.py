"""Addresses and MACs for network attachments.

The ledger knows every address in use (it reads them from the reservations), so
allocation is a pure function of the network's range and that set: no IPAM store to
keep in sync, and a restart cannot hand out an address twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from topology.models import IPAddress, NetworkSpec


class AddressPoolExhausted(Exception):
    pass


def pool(spec: NetworkSpec) -> Iterator[IPAddress]:
    """Addresses the network hands out, in order: its range, else its subnet's hosts."""
    if spec.subnet is None:
        return iter(())
    if spec.range_start is None and spec.range_end is None:
        return iter(spec.subnet.hosts())
    start = int(spec.range_start or spec.subnet.network_address + 1)
    end = int(spec.range_end or spec.subnet.broadcast_address - 1)
    address_type = type(spec.subnet.network_address)
    return (address_type(n) for n in range(start, end + 1))


def allocate_address(spec: NetworkSpec, in_use: set[str]) -> str:
    """The first free address of the pool, as ``ip/prefix``; raise when none is left."""
    assert spec.subnet is not None
    for address in pool(spec):
        if address != spec.gateway and str(address) not in in_use:
            return f"{address}/{spec.subnet.prefixlen}"
    raise AddressPoolExhausted(f"no free address left in {spec.subnet}")


def derived_mac(pod_uid: str, network: str) -> str:
    """A stable, locally administered unicast MAC for a pod's attachment."""
    digest = hashlib.sha256(f"{pod_uid}/{network}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))
