"""A node's interfaces as the DRA devices netsched publishes (``bandwidth_accounting.devices``).

The capacity of each device is checked against the extender's own ledger for the same
objects, so a second rule for usable capacity would show here; the limits are the
``resource.k8s.io/v1`` validation limits of kube-apiserver (``pkg/apis/resource/validation``).
"""

from __future__ import annotations

import re

import pytest

from bandwidth_accounting.devices import (
    ATTRIBUTE_NAME_MAX,
    ATTRIBUTE_NAMES,
    ATTRIBUTE_VALUE_MAX,
    ATTRIBUTES_AND_CAPACITIES_MAX,
    DEVICES_MAX,
    listed,
    node_devices,
    quantity,
    slice_name,
)
from bandwidth_accounting.settings import CapacitySettings
from contract import annotations, dra
from contract.objects import Network, Node, NodeNetwork
from contract.quantity import parse_bandwidth
from scheduler_extender.cluster import ClusterSnapshot
from scheduler_extender.state import ClusterState
from topology.graph import Topology

C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def node(name: str = "node-a", headroom: str | None = None, uid: str | None = "uid-a") -> Node:
    meta = {"name": name, "uid": uid, "labels": {"topology.kubernetes.io/zone": "z1", "netsched.io/switch": "tor-1"}}
    if headroom is not None:
        meta["annotations"] = {annotations.HEADROOM: headroom}
    return Node.model_validate({"metadata": meta})


def report(name: str = "node-a", interfaces: list[dict] | None = None) -> NodeNetwork:
    return NodeNetwork.model_validate({"metadata": {"name": name}, "status": {"interfaces": interfaces or [
        {"name": "eth0", "role": "pod", "speedMbps": 10_000},
        {"name": "eth1", "role": "storage", "speedMbps": 25_000, "vlans": [100, 200], "mtu": 9000},
        {"name": "eth2", "role": "control", "speedMbps": 1_000},
        {"name": "eth3", "role": "storage", "speedMbps": 25_000, "vlans": [100], "operState": "down"},
        {"name": "eth1.100", "kind": "vlan", "role": "storage", "speedMbps": 25_000},
    ]}})


STORAGE = Network.model_validate(
    {"metadata": {"name": "storage"}, "spec": {"mode": "vlan", "vlan": 100, "role": "storage"}}
)
BACKUP = Network.model_validate(
    {"metadata": {"name": "backup"}, "spec": {"mode": "vlan", "vlan": 200, "role": "storage"}}
)


def build(nodes=None, reports=None, networks=(STORAGE, BACKUP), capacity=CapacitySettings(), name="node-a"):
    topology = Topology(nodes or [node()], reports or [report()], list(networks))
    return node_devices(topology, name, capacity)


def attribute(device: dra.Device, name: str) -> object:
    value = device.attributes[name]
    return value.string if value.string is not None else value.integer


def test_one_device_per_up_interface_that_carries_pod_traffic():
    built = build()
    assert built is not None and built.left_out == ()
    spec = built.slice.spec
    # eth0: the pod interface; eth1: carries the storage VLAN. Not eth2 (control, no network),
    # eth3 (down) nor eth1.100 (a VLAN device: its traffic is charged to eth1).
    assert [d.name for d in spec.devices] == ["eth0", "eth1"]
    assert spec.driver == dra.DRIVER and spec.node_name == "node-a"
    assert (spec.pool.name, spec.pool.generation, spec.pool.resource_slice_count) == ("node-a", 1, 1)
    assert all(d.allow_multiple_allocations for d in spec.devices)
    assert built.slice.metadata.name == "node-a-netsched.io"
    assert built.slice.metadata.owner_references == [
        {"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "uid-a", "controller": True}
    ]


@pytest.mark.parametrize("headroom", [None, "25%", "0.4", "bogus"])
def test_capacity_is_the_ledgers_usable_capacity_for_the_same_node(headroom):
    nodes, reports = [node(headroom=headroom)], [report()]
    capacity = CapacitySettings(headroom=0.1)
    state = ClusterState(capacity)
    state.reset(ClusterSnapshot(nodes=nodes, node_networks=reports, networks=[STORAGE, BACKUP]))
    built = build(nodes, reports, capacity=capacity)
    for device in built.slice.spec.devices:
        ingress, egress = state.ledger.usable("node-a", attribute(device, "interface"))
        assert parse_bandwidth(device.capacity[dra.INGRESS].value) == ingress
        assert parse_bandwidth(device.capacity[dra.EGRESS].value) == egress
    eth0 = built.slice.spec.devices[0]
    expected = {None: "9G", "25%": "7500M", "0.4": "6G", "bogus": "9G"}[headroom]
    assert eth0.capacity[dra.EGRESS].value == expected


def test_the_request_policy_takes_1k_steps_from_nothing_to_the_capacity():
    eth0 = build().slice.spec.devices[0]
    policy = eth0.capacity[dra.EGRESS].request_policy
    assert policy.default == "0"  # a claim naming no egress is not shaped in that direction
    assert (policy.valid_range.min, policy.valid_range.step, policy.valid_range.max) == ("0", "1k", "9G")
    odd = build(nodes=[node(headroom="0.1234567891")]).slice.spec.devices[0]
    value = parse_bandwidth(odd.capacity[dra.EGRESS].value)
    top = parse_bandwidth(odd.capacity[dra.EGRESS].request_policy.valid_range.max)
    assert value % 1000 and top == value // 1000 * 1000  # max is a multiple of step, <= value


def test_attributes_say_where_the_interface_is_and_what_it_reaches():
    eth0, eth1 = build().slice.spec.devices
    assert {name: attribute(eth1, name) for name in eth1.attributes} == {
        "interface": "eth1", "kind": "physical", "role": "storage", "speed": 25_000_000_000, "mtu": 9000,
        "region": "unknown", "zone": "z1", "switch": "tor-1",
        "networks": ",backup,storage,", "vlans": ",100,200,", "vnis": ",",
    }
    assert attribute(eth0, "networks") == ","


def test_attribute_names_and_counts_are_within_the_api_limits():
    for name in ATTRIBUTE_NAMES:
        assert C_IDENTIFIER.fullmatch(name) and len(name) <= ATTRIBUTE_NAME_MAX
    for device in build().slice.spec.devices:
        assert set(device.attributes) <= set(ATTRIBUTE_NAMES)
        assert len(device.attributes) + len(device.capacity) <= ATTRIBUTES_AND_CAPACITIES_MAX


def test_a_list_too_long_keeps_the_values_that_fit_and_says_which_did_not():
    networks = [
        Network.model_validate({"metadata": {"name": f"tenant-network-{i:02d}"},
                                "spec": {"mode": "vlan", "vlan": 100 + i, "role": "storage"}})
        for i in range(6)
    ]
    trunk = {"name": "eth1", "role": "storage", "speedMbps": 25_000, "vlans": [100 + i for i in range(6)]}
    built = build(reports=[report(interfaces=[{"name": "eth0", "role": "pod", "speedMbps": 10_000}, trunk])],
                  networks=networks)
    eth1 = built.slice.spec.devices[1]
    published = attribute(eth1, "networks")
    assert len(published) <= ATTRIBUTE_VALUE_MAX
    assert published == ",tenant-network-00,tenant-network-01,tenant-network-02,"
    assert built.left_out == (
        "eth1: networks tenant-network-03, tenant-network-04, tenant-network-05 (over 64 characters)",
    )
    # and a selector for one that fit still matches exactly, one for a prefix does not
    assert ",tenant-network-01," in published and ",tenant-network-0," not in published


def test_a_string_over_the_limit_is_left_out_not_sent():
    long_zone = "z" * 70
    nodes = [Node.model_validate({"metadata": {"name": "node-a", "uid": "u",
                                               "labels": {"topology.kubernetes.io/zone": long_zone}}})]
    built = build(nodes=nodes)
    for device in built.slice.spec.devices:
        assert "zone" not in device.attributes
        assert all(len(v.string) <= ATTRIBUTE_VALUE_MAX for v in device.attributes.values() if v.string)
    assert "eth0: zone (over 64 characters)" in built.left_out


def test_no_slice_without_node_or_report_and_no_device_without_capacity():
    assert build(nodes=[node(name="other")]) is None
    assert build(reports=[report(name="other")]) is None
    built = build(reports=[report(interfaces=[{"name": "eth0", "role": "pod", "speedMbps": 0}])])
    assert built.slice.spec.devices == []
    assert built.left_out == ("eth0: no capacity to promise (speed 0 Mbit/s)",)


def test_device_names_follow_the_contract_and_the_count_is_capped():
    names = [f"p{i}" for i in range(DEVICES_MAX + 2)] + ["br_data"]
    interfaces = [{"name": n, "role": "pod" if n == "p0" else "storage", "speedMbps": 1000, "vlans": [100]}
                  for n in names]
    built = build(reports=[report(interfaces=interfaces)])
    devices = built.slice.spec.devices
    assert len(devices) == DEVICES_MAX
    assert devices[0].name == dra.device_name("br_data") != "br_data"
    assert dra.interface_of_device(devices[0].name, names) == "br_data"
    assert len(built.left_out) == 3 and all("over 128 devices" in line for line in built.left_out)


def test_quantities_are_written_as_the_api_server_writes_them_back():
    assert [quantity(v) for v in (0, 999, 1000, 9_000_000_000, 22_500_000_000, 1_500)] == [
        "0", "999", "1k", "9G", "22500M", "1500"
    ]


def test_listed_form_and_slice_names():
    assert listed([]) == (",", [])
    assert listed(["a", "b"]) == (",a,b,", [])
    assert slice_name("n1") == "n1-netsched.io"
    long = "n" * 250
    assert len(slice_name(long)) <= 253 and slice_name(long) != slice_name(long[:-1])


def test_inputs_change_with_what_shapes_the_slice_and_not_with_heartbeats():
    from bandwidth_accounting.devices import node_inputs

    def inputs(nodes=None, reports=None, networks=(STORAGE, BACKUP)):
        return node_inputs(Topology(nodes or [node()], reports or [report()], list(networks)), "node-a",
                           CapacitySettings())

    base = inputs()
    busy = report()
    busy.status.interfaces[0].rx_bps = 5_000_000
    assert inputs(reports=[busy]) == base  # observed rates: every few seconds, no slice change
    faster = report()
    faster.status.interfaces[0].speed_mbps = 25_000
    changes = [inputs(nodes=[node(headroom="30%")]), inputs(reports=[faster]), inputs(networks=(STORAGE,))]
    assert all(changed != base for changed in changes)


def test_a_listed_value_fits_up_to_exactly_the_attribute_limit():
    fits = "v" * (ATTRIBUTE_VALUE_MAX - 2)  # ",v…v," is 64 characters
    assert listed([fits]) == (f",{fits},", [])
    assert listed([fits + "w"]) == (",", [fits + "w"])
    assert listed(["a", "b" * (ATTRIBUTE_VALUE_MAX - 4), "c"]) == (f",a,{'b' * (ATTRIBUTE_VALUE_MAX - 4)},", ["c"])


def test_quantities_up_to_exa_and_beyond_keep_the_largest_suffix():
    assert [quantity(10**e) for e in (12, 15, 18, 21)] == ["1T", "1P", "1E", "1000E"]
    assert quantity(2_500 * 10**12) == "2500T"


def test_a_long_node_name_is_cut_where_the_slice_name_fits_and_never_ends_in_a_dot_or_dash():
    keep = 253 - len(dra.DRIVER) - 10  # name, "-", 8 hex digits, "-", the driver
    assert slice_name("n" * (253 - len(dra.DRIVER) - 1)) == "n" * (253 - len(dra.DRIVER) - 1) + f"-{dra.DRIVER}"
    import hashlib

    for node_name in ("a" * (keep - 2) + "-." + "b" * 40, "a" * keep + "b" * 40):
        digest = hashlib.sha256(node_name.encode()).hexdigest()[:8]
        assert slice_name(node_name) == f"{'a' * (keep - 2) if '-' in node_name else 'a' * keep}-{digest}-{dra.DRIVER}"
        assert len(slice_name(node_name)) <= 253


def test_an_interface_without_capacity_is_left_out_and_the_ones_after_it_are_not():
    built = build(reports=[report(interfaces=[
        {"name": "eth0", "role": "storage", "speedMbps": 0, "vlans": [100]},
        {"name": "eth1", "role": "pod", "speedMbps": 1_000},
    ])])
    assert [d.name for d in built.slice.spec.devices] == ["eth1"]
    assert built.left_out == ("eth0: no capacity to promise (speed 0 Mbit/s)",)


def test_a_node_without_a_uid_owns_nothing_and_a_string_of_exactly_the_limit_is_sent():
    zone = "z" * ATTRIBUTE_VALUE_MAX
    labels = {"topology.kubernetes.io/zone": zone, "netsched.io/switch": "tor-1"}
    nodes = [Node.model_validate({"metadata": {"name": "node-a", "labels": labels}})]
    built = build(nodes=nodes)
    assert built.slice.metadata.owner_references is None
    assert all(attribute(device, "zone") == zone for device in built.slice.spec.devices)
    assert built.left_out == ()


def test_exactly_the_device_limit_is_sent_whole_and_past_it_every_reason_is_kept():
    def interfaces(count: int) -> list[dict]:
        return [{"name": "p000", "role": "pod", "speedMbps": 1000}] + [
            {"name": f"s{i:03d}", "role": "storage", "speedMbps": 1000, "vlans": [100]} for i in range(count - 1)]

    full = build(reports=[report(interfaces=interfaces(DEVICES_MAX))])
    assert len(full.slice.spec.devices) == DEVICES_MAX and full.left_out == ()
    idle = {"name": "a-idle", "role": "storage", "speedMbps": 0, "vlans": [100]}
    over = build(reports=[report(interfaces=[idle, *interfaces(DEVICES_MAX + 1)])])
    assert over.left_out == ("a-idle: no capacity to promise (speed 0 Mbit/s)", "s127: over 128 devices")


def test_inputs_change_with_the_node_s_identity_place_and_headroom_and_a_node_gone_has_some():
    from bandwidth_accounting.devices import node_inputs

    def inputs(nodes=None, capacity=CapacitySettings()):
        return node_inputs(Topology(nodes if nodes is not None else [node()], [report()], [STORAGE, BACKUP]),
                           "node-a", capacity)

    base = inputs()
    moved = node()
    moved.metadata.labels["topology.kubernetes.io/zone"] = "z2"
    assert inputs(nodes=[node(uid="uid-b")]) != base  # recreated: the slice's owner changes
    assert inputs(nodes=[moved]) != base
    assert inputs(capacity=CapacitySettings(headroom=0.2)) != base
    assert inputs(nodes=[]) != base and inputs(nodes=[]) == inputs(nodes=[])
