"""Addresses and MACs for network attachments.

The ledger knows every address in use (it reads them from the reservations), so
allocation is a pure function of the network's range and that set: no IPAM store to
keep in sync, and a restart cannot hand out an address twice.
"""

from __future__ import annotations

import hashlib

from contract.objects import NetworkSpec


class AddressPoolExhausted(Exception):
    pass


def pool(spec: NetworkSpec) -> range:
    """Addresses the network hands out, as integers in order: its range, else its subnet's hosts."""
    subnet = spec.subnet
    if subnet is None:
        return range(0)
    first, last = int(subnet.network_address), int(subnet.broadcast_address)
    if subnet.num_addresses > 2 and subnet.version == 4:
        first, last = first + 1, last - 1  # IPv4 network and broadcast addresses
    elif subnet.num_addresses > 1 and subnet.version == 6:
        first += 1  # the subnet-router anycast address
    start = int(spec.range_start) if spec.range_start is not None else first
    end = int(spec.range_end) if spec.range_end is not None else last
    return range(start, end + 1)


def allocate_address(spec: NetworkSpec, in_use: set[int]) -> str:
    """The first free address of the pool, as ``ip/prefix``; raise when none is left.

    Integers, not address objects: a busy network has thousands in use, and this runs
    on every bind.
    """
    assert spec.subnet is not None
    taken = in_use if spec.gateway is None else in_use | {int(spec.gateway)}
    address_type = type(spec.subnet.network_address)
    for candidate in pool(spec):
        if candidate not in taken:
            return f"{address_type(candidate)}/{spec.subnet.prefixlen}"
    raise AddressPoolExhausted(f"no free address left in {spec.subnet}")


def derived_mac(pod_uid: str, network: str) -> str:
    """A stable, locally administered unicast MAC for a pod's attachment."""
    digest = hashlib.sha256(f"{pod_uid}/{network}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))
