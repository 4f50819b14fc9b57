import ipaddress

import pytest

from bandwidth_accounting.ipam import AddressPoolExhausted, allocate_address, derived_mac, pool
from topology.models import NetworkSpec


def spec(**fields) -> NetworkSpec:
    return NetworkSpec.model_validate({"mode": "macvlan", **fields})


def used(*addresses: str) -> set[int]:
    return {int(ipaddress.ip_address(a)) for a in addresses}


def test_allocates_from_the_range_skipping_used_and_gateway():
    network = spec(subnet="10.0.0.0/24", rangeStart="10.0.0.1", rangeEnd="10.0.0.4", gateway="10.0.0.1")
    assert allocate_address(network, set()) == "10.0.0.2/24"
    assert allocate_address(network, used("10.0.0.2")) == "10.0.0.3/24"


def test_subnet_pool_excludes_network_and_broadcast():
    assert [str(ipaddress.ip_address(a)) for a in pool(spec(subnet="10.0.0.0/30"))] == ["10.0.0.1", "10.0.0.2"]


def test_never_hands_out_an_address_twice_until_the_pool_is_empty():
    network = spec(subnet="10.0.0.0/29")
    taken: set[int] = set()
    for _ in range(6):
        address = int(ipaddress.ip_interface(allocate_address(network, taken)).ip)
        assert address not in taken
        taken.add(address)
    assert taken == set(pool(network))
    with pytest.raises(AddressPoolExhausted, match="no free address left in 10.0.0.0/29"):
        allocate_address(network, taken)


def test_ipv6_ranges_stay_ipv6():
    network = spec(subnet="fd00::/64", rangeStart="fd00::10", rangeEnd="fd00::11")
    assert allocate_address(network, used("fd00::10")) == "fd00::11/64"
    assert allocate_address(spec(subnet="fd00::/126"), set()) == "fd00::1/126"


def test_derived_macs_are_stable_unicast_and_local():
    mac = derived_mac("uid-1", "storage")
    assert mac == derived_mac("uid-1", "storage") != derived_mac("uid-2", "storage")
    first = int(mac[:2], 16)
    assert first & 0b10 and not first & 0b1
