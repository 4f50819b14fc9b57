import itertools

import networkx as nx
import numpy as np
import pytest

from contract.objects import (
    InterfaceRole,
    Network,
    NetworkInterface,
    NetworkSpec,
    Node,
    NodeNetwork,
    NodeNetworkStatus,
    ObjectMeta,
)
from contract.wire import NetworkMode
from demo.sample_cluster import sample_cluster
from topology.graph import Topology


@pytest.fixture
def topology() -> Topology:
    snapshot = sample_cluster()
    return Topology(snapshot.nodes, snapshot.node_networks, snapshot.networks)


def test_vlan_network_is_carried_by_the_trunk_with_its_tag(topology):
    assert [i.name for i in topology.interfaces_carrying("node-a-1", "storage")] == ["eth1"]
    assert topology.nodes_reaching("storage") == set(topology.nodes)


def test_network_limited_to_zones_is_unreachable_elsewhere(topology):
    reaching = topology.nodes_reaching("replication")
    assert reaching == {n for n in topology.nodes if n.startswith(("node-a-", "node-b-"))}
    assert topology.interfaces_carrying("node-c-1", "replication") == []


def test_vxlan_network_rides_an_underlay_of_its_role(topology):
    assert [i.name for i in topology.interfaces_carrying("node-b-2", "tenant")] == ["eth0"]


def test_hops_follow_the_tree_and_match_the_graph(topology):
    assert topology.hops("node-a-1", "node-a-1") == 0
    assert topology.hops("node-a-1", "node-a-2") == 2  # same switch
    assert topology.hops("node-a-1", "node-a-3") == 4  # same zone, other switch
    assert topology.hops("node-a-1", "node-c-4") == 6  # other zone
    assert topology.hops("node-a-1", "nowhere") is None
    infrastructure = topology.graph.subgraph(
        vertex for vertex, kind in topology.graph.nodes(data="kind") if kind not in ("interface", "network"))
    for a, b in itertools.combinations(sorted(topology.nodes), 2):
        assert topology.hops(a, b) == nx.shortest_path_length(infrastructure, ("node", a), ("node", b))


def test_graph_holds_zones_switches_nodes_interfaces_and_networks(topology):
    kinds = nx.get_node_attributes(topology.graph, "kind")
    counts = {kind: list(kinds.values()).count(kind) for kind in set(kinds.values())}
    assert counts == {"cluster": 1, "region": 1, "zone": 3, "switch": 6, "node": 12, "interface": 36, "network": 3}
    assert topology.graph.has_edge(("interface", "node-a-1", "eth1"), ("network", "storage"))


def test_other_region_is_eight_hops_away():
    def node(name, region, zone):
        return Node(metadata=ObjectMeta(name=name, labels={
            "topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone}))
    topology = Topology([node("a", "r1", "z1"), node("b", "r2", "z2")], [], [])
    assert topology.hops("a", "b") == 8 == nx.shortest_path_length(topology.graph, ("node", "a"), ("node", "b"))


def test_down_interface_does_not_carry_untagged_networks():
    report = NodeNetwork(metadata=ObjectMeta(name="n"), status=NodeNetworkStatus(interfaces=[
        NetworkInterface(name="eth0", role=InterfaceRole.STORAGE, speed_mbps=1000, oper_state="down"),
        NetworkInterface(name="eth1", role=InterfaceRole.STORAGE, speed_mbps=1000),
    ]))
    network = Network(metadata=ObjectMeta(name="flat"),
                      spec=NetworkSpec(mode=NetworkMode.MACVLAN, role=InterfaceRole.STORAGE))
    topology = Topology([], [report], [network])
    assert [i.name for i in topology.interfaces_carrying("n", "flat")] == ["eth1"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"mode": "vlan"}, "spec.vlan is required"),
        ({"mode": "vlan", "vlan": 5000}, "less than or equal to 4094"),
        ({"mode": "vxlan", "vni": 0}, "greater than or equal to 1"),
        ({"mode": "vxlan"}, "spec.vni is required"),
        ({"mode": "macvlan", "subnet": "10.0.0.0/33"}, "subnet"),
        ({"mode": "macvlan", "subnet": "10.0.0.0/24", "gateway": "10.0.1.1"}, "outside spec.subnet"),
        ({"mode": "macvlan", "rangeStart": "10.0.0.5"}, "needs spec.subnet"),
        ({"mode": "macvlan", "subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.5"},
         "is after spec.rangeEnd"),
        ({"mode": "token-ring"}, "mode"),
    ],
)
def test_bad_network_specs_are_refused_with_the_field(spec, says):
    with pytest.raises(ValueError) as error:
        NetworkSpec.model_validate(spec)
    assert says in str(error.value)


def test_segment_devices_and_links_that_are_not_up_carry_nothing_untagged():
    report = NodeNetwork(metadata=ObjectMeta(name="n"), status=NodeNetworkStatus(interfaces=[
        NetworkInterface(name="vx100", kind="vxlan", role=InterfaceRole.ANY, speed_mbps=0),
        NetworkInterface(name="mv0", kind="macvlan", role=InterfaceRole.ANY, speed_mbps=1000),
        NetworkInterface(name="eth0", kind="physical", role=InterfaceRole.ANY, speed_mbps=1000,
                         oper_state="lowerlayerdown"),
        NetworkInterface(name="eth1", kind="veth", role=InterfaceRole.ANY, speed_mbps=1000, oper_state="unknown",
                         vnis=[7]),
    ]))
    networks = [
        Network(metadata=ObjectMeta(name="flat"), spec=NetworkSpec(mode=NetworkMode.MACVLAN)),
        Network(metadata=ObjectMeta(name="overlay"), spec=NetworkSpec(mode=NetworkMode.VXLAN, vni=9)),
        Network(metadata=ObjectMeta(name="seven"), spec=NetworkSpec(mode=NetworkMode.VXLAN, vni=7)),
    ]
    topology = Topology([], [report], networks)
    assert [i.name for i in topology.interfaces_carrying("n", "flat")] == ["eth1"]
    assert [i.name for i in topology.interfaces_carrying("n", "overlay")] == ["eth1"]
    assert [i.name for i in topology.interfaces_carrying("n", "seven")] == ["eth1"]


def test_row_hops_equal_the_tree_hops(topology):
    rows = topology.rows
    everyone = np.arange(len(rows.names))
    for row, name in enumerate(rows.names):
        assert rows.hops_between(everyone, row).tolist() == [topology.hops(other, name) for other in rows.names]


def repeated_names_topology() -> Topology:
    """Two regions whose zones and switches have the same names: a level is only shared
    with the levels above it (switch "s1" of zone "z1" in r1 is not that of r2)."""
    nodes = [
        Node(metadata=ObjectMeta(name=f"{region}-{zone}-{switch}-{index}", labels={
            "topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": zone,
            "netsched.io/switch": switch}))
        for region, zone, switch, index in itertools.product(("r1", "r2"), ("z1", "z2"), ("s1", "s2"), (1, 2))
    ]
    return Topology(nodes, [], [])


def test_total_hops_are_the_hops_to_each_peer_added_up(topology):
    """Every candidate against peer pods spread over nodes, several on some, on the sample
    cluster and where zone and switch names repeat across regions."""
    generator = np.random.default_rng(3)
    for rows in (topology.rows, repeated_names_topology().rows):
        everyone = np.arange(len(rows.names))
        for _ in range(50):
            pods = generator.integers(0, len(rows.names), size=generator.integers(1, 40))
            peers, counts = np.unique(pods, return_counts=True)
            summed = sum(rows.hops_between(everyone, int(pod)) for pod in pods)
            assert rows.total_hops(everyone, peers, counts).tolist() == summed.tolist()


def test_a_report_without_a_heartbeat_keeps_the_last_one_in_the_rows_too():
    """The batch check reads heartbeats from the rows, the per-node check from the graph:
    a refreshed report must leave both saying the same (a report without one says nothing)."""
    snapshot = sample_cluster()
    topology = Topology(snapshot.nodes, snapshot.node_networks, snapshot.networks)
    report = snapshot.node_networks[0]
    name = report.metadata.name
    row = topology.rows.position[name]
    silent = report.model_copy(update={"status": report.status.model_copy(update={"heartbeat_time": None})})
    assert topology.refresh_report(silent)
    assert topology.rows.heartbeat[row] == topology.heartbeat(name).timestamp() == report.status.heartbeat_time.timestamp()
