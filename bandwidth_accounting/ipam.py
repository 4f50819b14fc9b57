"""Addresses and MACs for network attachments.

The ledger knows every address in use (it reads them from the reservations), so
allocation is a pure function of the network's range and those addresses: no IPAM store
to keep in sync, and a restart cannot hand out an address twice.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

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


def allocate_address(spec: NetworkSpec, in_use: Sequence[int]) -> str:
    """The first free address of the pool, as ``ip/prefix``; raise when none is left.

    ``in_use`` is ascending, without repeats (the ledger keeps it so). Integers, not
    address objects, and no walk past each address taken: a busy network has thousands
    in use, and this runs on every bind, under the ledger's lock.
    """
    assert spec.subnet is not None
    candidates = pool(spec)
    address = first_free(in_use, candidates.start)
    if spec.gateway is not None and address == int(spec.gateway):
        address = first_free(in_use, address + 1)
    if address not in candidates:
        raise AddressPoolExhausted(f"no free address left in {spec.subnet}")
    return f"{type(spec.subnet.network_address)(address)}/{spec.subnet.prefixlen}"


def first_free(taken: Sequence[int], start: int) -> int:
    """The lowest address from ``start`` on that is not in ``taken`` (ascending, no repeats).

    While every address from ``start`` on is taken, ``taken[low + k] == start + k``, so
    ``taken[j] - j`` stays ``start - low``; at the first gap it grows, and along an
    ascending list without repeats it never shrinks: the gap is found by bisection.
    """
    low = bisect_left(taken, start)
    offset = start - low
    gap = bisect_right(range(len(taken)), offset, lo=low, key=lambda j: taken[j] - j)
    return gap + offset


def derived_mac(pod_uid: str, network: str) -> str:
    """A stable, locally administered unicast MAC for a pod's attachment."""
    digest = hashlib.sha256(f"{pod_uid}/{network}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))
