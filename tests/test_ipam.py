from bandwidth_accounting.ipam import allocate_address, derived_mac, pool
from topology.models import NetworkSpec


def spec(**fields) -> NetworkSpec:
    return NetworkSpec.model_validate({"mode": "macvlan", **fields})


def test_allocates_from_the_range_skipping_used_and_gateway():
    network = spec(subnet="10.0.0.0/24", rangeStart="10.0.0.1", rangeEnd="10.0.0.4", gateway="10.0.0.1")
    assert allocate_address(network, set()) == "10.0.0.2/24"
    assert allocate_address(network, {"10.0.0.2"}) == "10.0.0.3/24"


def test_never_hands_out_an_address_twice_until_the_pool_is_empty():
    network = spec(subnet="10.0.0.0/29")
    used: set[str] = set()
    for _ in range(6):
        address = allocate_address(network, used).split("/")[0]
        assert address not in used
        used.add(address)
    assert used == {str(a) for a in pool(network)}
    try:
        allocate_address(network, used)
    except Exception as error:  # noqa: BLE001
        assert "no free address left in 10.0.0.0/29" in str(error)
    else:
        raise AssertionError("an exhausted pool must refuse")


def test_ipv6_ranges_stay_ipv6():
    network = spec(subnet="fd00::/64", rangeStart="fd00::10", rangeEnd="fd00::11")
    assert allocate_address(network, {"fd00::10"}) == "fd00::11/64"


def test_derived_macs_are_stable_unicast_and_local():
    mac = derived_mac("uid-1", "storage")
    assert mac == derived_mac("uid-1", "storage") != derived_mac("uid-2", "storage")
    first = int(mac[:2], 16)
    assert first & 0b10 and not first & 0b1
