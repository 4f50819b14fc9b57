import bisect
import ipaddress
import random
import re

import pytest

from bandwidth_accounting.ipam import AddressPoolExhausted, allocate_address, derived_mac, first_free, pool
from contract.objects import NetworkSpec


def spec(**fields) -> NetworkSpec:
    return NetworkSpec.model_validate({"mode": "macvlan", **fields})


def used(*addresses: str) -> list[int]:
    """Addresses in use as the ledger hands them over: integers, ascending."""
    return sorted(int(ipaddress.ip_address(a)) for a in addresses)


def test_allocates_from_the_range_skipping_used_and_gateway():
    network = spec(subnet="10.0.0.0/24", rangeStart="10.0.0.1", rangeEnd="10.0.0.4", gateway="10.0.0.1")
    assert allocate_address(network, []) == "10.0.0.2/24"
    assert allocate_address(network, used("10.0.0.2")) == "10.0.0.3/24"


def test_subnet_pool_excludes_network_and_broadcast():
    assert [str(ipaddress.ip_address(a)) for a in pool(spec(subnet="10.0.0.0/30"))] == ["10.0.0.1", "10.0.0.2"]


def test_never_hands_out_an_address_twice_until_the_pool_is_empty():
    network = spec(subnet="10.0.0.0/29")
    taken: list[int] = []
    for _ in range(6):
        address = int(ipaddress.ip_interface(allocate_address(network, taken)).ip)
        assert address not in taken
        bisect.insort(taken, address)
    assert taken == list(pool(network))
    with pytest.raises(AddressPoolExhausted, match="no free address left in 10.0.0.0/29"):
        allocate_address(network, taken)


def test_ipv6_ranges_stay_ipv6():
    network = spec(subnet="fd00::/64", rangeStart="fd00::10", rangeEnd="fd00::11")
    assert allocate_address(network, used("fd00::10")) == "fd00::11/64"
    assert allocate_address(spec(subnet="fd00::/126"), []) == "fd00::1/126"


def test_derived_macs_are_stable_unicast_and_local():
    mac = derived_mac("uid-1", "storage")
    assert mac == derived_mac("uid-1", "storage") != derived_mac("uid-2", "storage")
    first = int(mac[:2], 16)
    assert first & 0b10 and not first & 0b1


def addresses(network: NetworkSpec) -> list[str]:
    return [str(ipaddress.ip_address(a)) for a in pool(network)]


def test_point_to_point_and_single_address_subnets_hand_out_every_address():
    """RFC 3021: a /31 has no network or broadcast address; a /32 and a /128 are one host."""
    assert addresses(spec(subnet="10.0.0.0/31")) == ["10.0.0.0", "10.0.0.1"]
    assert addresses(spec(subnet="10.0.0.7/32")) == ["10.0.0.7"]
    assert addresses(spec(subnet="fd00::7/128")) == ["fd00::7"]
    assert addresses(spec(subnet="fd00::/127")) == ["fd00::1"]  # ::0 is the subnet-router anycast
    assert addresses(spec(subnet="fd00::/126")) == ["fd00::1", "fd00::2", "fd00::3"]  # no broadcast


def test_the_range_end_is_the_last_address_handed_out():
    network = spec(subnet="10.0.0.0/24", rangeStart="10.0.0.10", rangeEnd="10.0.0.11")
    assert addresses(network) == ["10.0.0.10", "10.0.0.11"]
    with pytest.raises(AddressPoolExhausted):
        allocate_address(network, used("10.0.0.10", "10.0.0.11"))


def test_a_network_without_a_subnet_has_no_pool():
    assert addresses(spec()) == []


def test_derived_macs_are_six_octets():
    assert re.fullmatch(r"02(:[0-9a-f]{2}){5}", derived_mac("uid-1", "storage"))


def test_the_first_free_address_is_the_lowest_one_not_taken():
    """Bisection gives what walking the addresses one by one gives, wherever the gaps are."""
    generator = random.Random(7)
    for _ in range(300):
        taken = sorted(generator.sample(range(100, 160), generator.randint(0, 60)))
        start = generator.randint(95, 165)
        walked = next(address for address in range(start, 1000) if address not in taken)
        assert first_free(taken, start) == walked, (taken, start)


def test_the_gateway_is_skipped_where_the_free_addresses_begin():
    network = spec(subnet="10.0.0.0/24", gateway="10.0.0.3")
    assert allocate_address(network, used("10.0.0.1", "10.0.0.2")) == "10.0.0.4/24"
    assert allocate_address(network, used("10.0.0.1", "10.0.0.2", "10.0.0.4")) == "10.0.0.5/24"
    assert allocate_address(network, used("10.0.0.2")) == "10.0.0.1/24"
    full = spec(subnet="10.0.0.0/30", gateway="10.0.0.2")
    with pytest.raises(AddressPoolExhausted):
        allocate_address(full, used("10.0.0.1"))


def test_addresses_taken_outside_the_range_do_not_count():
    network = spec(subnet="10.0.0.0/24", rangeStart="10.0.0.10", rangeEnd="10.0.0.12")
    assert allocate_address(network, used("10.0.0.5", "10.0.0.10", "10.0.0.200")) == "10.0.0.11/24"
