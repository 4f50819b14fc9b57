"""``plan_on_node`` case by case: the refusal it gives for each reason a node cannot take the
pod (cause and whole message, since that is what kube-scheduler shows the user), and which
carrier an attachment goes to when several interfaces carry its network. The property test
in ``test_batch_fit.py`` only checks that the batch check agrees with it; these pin what it
says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bandwidth_accounting.fit import Cause, Plan, Refusal, plan_on_node
from bandwidth_accounting.ledger import Holding, Ledger
from bandwidth_accounting.requirements import AttachmentRequirement, PodRequirements
from bandwidth_accounting.settings import FitSettings
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
from contract.reservation import Rates, Reservation
from contract.wire import DefinitionMode, NetworkMode
from topology.attachment_definitions import DefinitionNetwork
from topology.graph import Topology

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
M = 1_000_000
NETWORKS = [
    Network(metadata=ObjectMeta(name="blue"), spec=NetworkSpec(mode=NetworkMode.VLAN, vlan=10)),
    Network(metadata=ObjectMeta(name="green"), spec=NetworkSpec(mode=NetworkMode.MACVLAN, role=InterfaceRole.STORAGE)),
    Network(metadata=ObjectMeta(name="plain"), spec=NetworkSpec(mode=NetworkMode.MACVLAN)),
    Network(metadata=ObjectMeta(name="red"), spec=NetworkSpec(mode=NetworkMode.VXLAN, vni=7, zones=["z1", "z3"])),
]
DEFINITIONS = [
    DefinitionNetwork(key="team/nas", mode=DefinitionMode.MACVLAN, master="bond0"),
    DefinitionNetwork(key="team/guess", mode=DefinitionMode.MACVLAN, master="bond0", problem="no CNI config"),
    DefinitionNetwork(key="team/dhcp", mode=DefinitionMode.MACVLAN),
]
POD_ETH0 = NetworkInterface(name="eth0", role=InterfaceRole.POD, speed_mbps=1000)
TTL = FitSettings(report_ttl=timedelta(seconds=60))


def node(name: str, *interfaces: NetworkInterface, zone: str = "z1", age: float | None = 5,
         reported: bool = True) -> tuple[Node, NodeNetwork | None]:
    beat = None if age is None else NOW - timedelta(seconds=age)
    report = NodeNetwork(metadata=ObjectMeta(name=name), status=NodeNetworkStatus(
        interfaces=list(interfaces), zone=zone, heartbeat_time=beat)) if reported else None
    return Node(metadata=ObjectMeta(name=name, labels={"topology.kubernetes.io/zone": zone})), report


def cluster(*nodes: tuple[Node, NodeNetwork | None], usable: dict[tuple[str, str], tuple[int, int]] | None = None
            ) -> tuple[Topology, Ledger]:
    reports = [report for _, report in nodes if report is not None]
    topology = Topology([n for n, _ in nodes], reports, NETWORKS, DEFINITIONS)
    ledger = Ledger()
    ledger.set_usable(usable or {(r.metadata.name, i.name): (1000 * M, 1000 * M)
                                 for r in reports for i in r.status.interfaces})
    return topology, ledger


def attach(network: str, ingress: int = 0, egress: int = 0, interface: str = "net1") -> AttachmentRequirement:
    return AttachmentRequirement(network=network, interface=interface, ingress_bps=ingress, egress_bps=egress)


def plan(requirements: PodRequirements, name: str, topology: Topology, ledger: Ledger,
         settings: FitSettings = TTL, **kwargs) -> Plan | list[Refusal]:
    return plan_on_node(requirements, name, topology, ledger, NOW, settings, **kwargs)


EGRESS = PodRequirements(egress_bps=10 * M)


# -- the node's report ------------------------------------------------------------------


def test_a_node_without_a_report_is_refused_naming_it():
    topology, ledger = cluster(node("n1", reported=False))
    assert plan(EGRESS, "n1", topology, ledger) == [Refusal(Cause.NO_REPORT, "no NodeNetwork report for node n1")]
    assert plan(EGRESS, "ghost", topology, ledger) == [
        Refusal(Cause.NO_REPORT, "no NodeNetwork report for node ghost")]


def test_a_report_without_a_heartbeat_is_a_report_and_never_beat():
    topology, ledger = cluster(node("n1", POD_ETH0, age=None))
    assert isinstance(plan(EGRESS, "n1", topology, ledger, FitSettings(report_ttl=None)), Plan)
    assert plan(EGRESS, "n1", topology, ledger) == [Refusal(
        Cause.STALE_REPORT, "NodeNetwork report is stale (last heartbeat never, TTL 60s)")]


def test_a_report_older_than_the_ttl_is_stale_with_its_age():
    topology, ledger = cluster(node("n1", POD_ETH0, age=90))
    assert plan(EGRESS, "n1", topology, ledger) == [Refusal(
        Cause.STALE_REPORT, "NodeNetwork report is stale (last heartbeat 90s ago, TTL 60s)")]
    assert isinstance(plan(EGRESS, "n1", topology, ledger, FitSettings(report_ttl=None)), Plan)


# -- the pod's own interface -------------------------------------------------------------


def test_the_primary_rates_go_on_the_pod_interface():
    storage = NetworkInterface(name="eth1", role=InterfaceRole.STORAGE, speed_mbps=1000)
    topology, ledger = cluster(node("n1", storage, POD_ETH0))
    placed = plan(PodRequirements(ingress_bps=3 * M, egress_bps=10 * M), "n1", topology, ledger)
    assert isinstance(placed, Plan)
    assert (placed.primary_parent, placed.charges) == ("eth0", {"eth0": (3 * M, 10 * M)})


def test_a_node_without_a_pod_interface_is_refused_for_primary_rates():
    storage = NetworkInterface(name="eth1", role=InterfaceRole.STORAGE, speed_mbps=1000)
    topology, ledger = cluster(node("n1", storage))
    assert plan(EGRESS, "n1", topology, ledger) == [
        Refusal(Cause.NO_POD_INTERFACE, "no interface with role pod or any")]


# -- networks that do not reach the node -------------------------------------------------


def unreachable(network: str, *interfaces: NetworkInterface, zone: str = "z1") -> list[Refusal] | Plan:
    topology, ledger = cluster(node("n1", *interfaces, zone=zone))
    return plan(PodRequirements(attachments=(attach(network, egress=M),)), "n1", topology, ledger)


def test_an_unreachable_network_says_what_is_missing():
    down_storage = NetworkInterface(name="eth1", role=InterfaceRole.STORAGE, speed_mbps=1000, oper_state="down")
    assert unreachable("red", POD_ETH0, zone="z2") == [Refusal(
        Cause.NETWORK_UNREACHABLE, "network 'red' is not in zone z2 (zones: z1, z3)")]
    assert unreachable("blue", POD_ETH0) == [Refusal(
        Cause.NETWORK_UNREACHABLE, "network 'blue': no interface carries VLAN 10")]
    assert unreachable("green", POD_ETH0, down_storage) == [Refusal(
        Cause.NETWORK_UNREACHABLE, "network 'green': no interface of role storage is up")]
    assert unreachable("plain", down_storage) == [Refusal(
        Cause.NETWORK_UNREACHABLE, "network 'plain': no interface of role any is up")]


def test_an_unreachable_definition_names_its_master_when_its_reach_is_known():
    storage = NetworkInterface(name="eth1", role=InterfaceRole.STORAGE, speed_mbps=1000)
    assert unreachable("team/nas", POD_ETH0) == [Refusal(
        Cause.NETWORK_UNREACHABLE, "NetworkAttachmentDefinition team/nas: no up interface bond0")]
    assert unreachable("team/guess", storage) == [Refusal(
        Cause.NETWORK_UNREACHABLE, "NetworkAttachmentDefinition team/guess: no interface with role pod or any")]
    assert unreachable("team/dhcp", storage) == [Refusal(
        Cause.NETWORK_UNREACHABLE, "NetworkAttachmentDefinition team/dhcp: no interface with role pod or any")]


def test_every_attachment_is_checked_after_an_unreachable_one():
    small = NetworkInterface(name="eth1", role=InterfaceRole.STORAGE, speed_mbps=1000)
    topology, ledger = cluster(node("n1", POD_ETH0, small), usable={("n1", "eth0"): (1000 * M,) * 2,
                                                                    ("n1", "eth1"): (100 * M,) * 2})
    refused = plan(PodRequirements(attachments=(attach("blue", egress=M), attach("green", egress=200 * M, interface="net2"))),
                   "n1", topology, ledger)
    assert isinstance(refused, list)
    assert [r.cause for r in refused] == [Cause.NETWORK_UNREACHABLE, Cause.BANDWIDTH]
    assert "eth1" in refused[1].message


# -- the carrier of an attachment --------------------------------------------------------


def storage_pair(usable_1: tuple[int, int], usable_2: tuple[int, int]) -> tuple[Topology, Ledger]:
    eth1 = NetworkInterface(name="eth1", role=InterfaceRole.STORAGE, speed_mbps=1000)
    eth2 = NetworkInterface(name="eth2", role=InterfaceRole.STORAGE, speed_mbps=1000)
    return cluster(node("n1", POD_ETH0, eth1, eth2), node("n2", POD_ETH0, eth1, eth2), usable={
        ("n1", "eth0"): (1000 * M,) * 2, ("n1", "eth1"): usable_1, ("n1", "eth2"): usable_2,
        ("n2", "eth0"): (1000 * M,) * 2, ("n2", "eth1"): usable_2, ("n2", "eth2"): usable_1})


def carriers(placed: Plan | list[Refusal]) -> list[str]:
    assert isinstance(placed, Plan), placed
    return [interface.name for _, interface in placed.attachments]


def test_an_attachment_goes_where_the_least_room_of_its_two_directions_is_most():
    # eth1: much ingress room, little egress; eth2: some of both. The pod sends 50M.
    topology, ledger = storage_pair((900 * M, 100 * M), (200 * M, 200 * M))
    ask = PodRequirements(attachments=(attach("green", egress=50 * M),))
    assert carriers(plan(ask, "n1", topology, ledger)) == ["eth2"]
    assert carriers(plan(ask, "n2", topology, ledger)) == ["eth1"]  # the same interfaces the other way round


def test_a_second_attachment_counts_what_the_first_was_given():
    topology, ledger = storage_pair((1000 * M,) * 2, (600 * M,) * 2)
    two = PodRequirements(attachments=(attach("green", egress=500 * M), attach("green", egress=500 * M, interface="net2")))
    placed = plan(two, "n1", topology, ledger)
    assert carriers(placed) == ["eth1", "eth2"]
    assert placed.charges == {"eth1": (0, 500 * M), "eth2": (0, 500 * M)}


def test_the_carrier_s_room_counts_reservations_and_fresh_observed_traffic():
    topology, ledger = storage_pair((1000 * M,) * 2, (600 * M,) * 2)
    ask = PodRequirements(attachments=(attach("green", egress=100 * M),))
    ledger.rebuild([Holding("other", "default/other", 0, Reservation(
        node="n1", interfaces={"eth1": Rates(ingress=0, egress=700 * M)}))])
    assert carriers(plan(ask, "n1", topology, ledger)) == ["eth2"]
    ledger.rebuild([])
    recent = FitSettings(report_ttl=timedelta(seconds=60), observed_max_age=timedelta(seconds=30))
    ledger.set_observed("n1", (NOW - timedelta(seconds=10)).timestamp(), {"eth1": (0, 700 * M)})
    assert carriers(plan(ask, "n1", topology, ledger, recent)) == ["eth2"]
    old = FitSettings(report_ttl=timedelta(seconds=60), observed_max_age=timedelta(seconds=5))
    assert carriers(plan(ask, "n1", topology, ledger, old)) == ["eth1"]  # that traffic is too old to count


# -- whether eviction could cure a shortfall -----------------------------------------------


def test_a_shortfall_is_curable_only_by_pods_of_lower_priority_than_the_pod_s():
    topology, ledger = cluster(node("n1", POD_ETH0), usable={("n1", "eth0"): (100 * M,) * 2})
    ledger.rebuild([Holding("low", "default/low", 0, Reservation(node="n1", interfaces={"eth0": Rates(ingress=0, egress=80 * M)}))])
    ask = PodRequirements(egress_bps=50 * M)
    [default] = plan(ask, "n1", topology, ledger)
    assert (default.cause, default.resolvable) == (Cause.BANDWIDTH, False)  # priority 0 evicts no priority-0 pod
    [higher] = plan(ask, "n1", topology, ledger, priority=1)
    assert (higher.cause, higher.resolvable) == (Cause.BANDWIDTH, True)
    [exactly] = plan(PodRequirements(egress_bps=100 * M), "n1", topology, ledger, priority=1)
    assert exactly.resolvable  # evicting the lower pod frees exactly the whole link
    [beyond] = plan(PodRequirements(egress_bps=100 * M + 1), "n1", topology, ledger, priority=1)
    assert not beyond.resolvable
