"""Random clusters for the fit checks' property tests: nodes with up to four interfaces in
two zones, reports of any age or none, reservations and observed load on any interface."""

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from bandwidth_accounting.ledger import Holding, Ledger, usable_bps
from bandwidth_accounting.requirements import AttachmentRequirement, PodRequirements
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
from contract.wire import NetworkMode
from topology.graph import Topology

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NETWORKS = [
    Network(metadata=ObjectMeta(name="blue"), spec=NetworkSpec(mode=NetworkMode.VLAN, vlan=10)),
    Network(metadata=ObjectMeta(name="green"), spec=NetworkSpec(mode=NetworkMode.MACVLAN, role=InterfaceRole.STORAGE)),
    Network(metadata=ObjectMeta(name="red"), spec=NetworkSpec(mode=NetworkMode.VXLAN, vni=7, zones=["z1"])),
]

interfaces = st.lists(
    st.builds(
        lambda index, role, speed, vlans, down: NetworkInterface(
            name=f"eth{index}", role=role, speed_mbps=speed, vlans=vlans, oper_state="down" if down else "up"),
        st.integers(0, 3), st.sampled_from(list(InterfaceRole)), st.sampled_from([0, 10, 100, 1000, 1000]),
        st.lists(st.sampled_from([10, 20]), max_size=2, unique=True), st.booleans(),
    ),
    min_size=1, max_size=3, unique_by=lambda i: i.name,
)
nodes = st.lists(
    st.tuples(interfaces, st.sampled_from(["z1", "z2"]), st.sampled_from([None, 5, 5, 30, 120]),
              st.sampled_from([True, True, True, False])),
    min_size=1, max_size=8,
)
rates = st.sampled_from([0, 1_000_000, 5_000_000, 50_000_000])
requirements = st.builds(
    lambda ingress, egress, attachments: PodRequirements(ingress_bps=ingress, egress_bps=egress, attachments=tuple(
        AttachmentRequirement(network=net, interface=f"net{i + 1}", ingress_bps=a, egress_bps=b)
        for i, (net, a, b) in enumerate(attachments))),
    rates, rates, st.lists(st.tuples(st.sampled_from(["blue", "green", "red"]), rates, rates), max_size=2),
)


observations = st.dictionaries(
    st.integers(0, 7),
    st.tuples(st.sampled_from([0, 10, 29, 31, 300]),
              st.dictionaries(st.sampled_from(["eth0", "eth1", "eth2", "eth3"]), st.tuples(rates, rates), max_size=3)),
    max_size=8,
)


def build(nodes, held, observed) -> tuple[Topology, Ledger]:
    """The cluster of ``nodes`` (names n0, n1, …) at ``NOW``: ``held`` reservations as
    (node, interface, ingress, egress), ``observed`` load as node → (age, rates)."""
    reports, node_objects = [], []
    for index, (ifaces, zone, age, reported) in enumerate(nodes):
        name = f"n{index}"
        node_objects.append(Node(metadata=ObjectMeta(name=name, labels={"topology.kubernetes.io/zone": zone})))
        if reported:
            beat = None if age is None else NOW - timedelta(seconds=age)
            reports.append(NodeNetwork(metadata=ObjectMeta(name=name), status=NodeNetworkStatus(
                interfaces=ifaces, zone=zone, heartbeat_time=beat)))
    topology = Topology(node_objects, reports, NETWORKS)
    ledger = Ledger()
    ledger.set_usable({(r.metadata.name, i.name): (usable_bps(i.speed_mbps, 0.1),) * 2
                       for r in reports for i in r.status.interfaces})
    ledger.rebuild(Holding(f"h{k}", f"h{k}", 0, Reservation(node=f"n{n}", interfaces={f"eth{i}": Rates(ingress=a, egress=b)}))
                   for k, (n, i, a, b) in enumerate(held))
    for node, (age, seen) in observed.items():
        ledger.set_observed(f"n{node}", (NOW - timedelta(seconds=age)).timestamp(), seen)
    return topology, ledger
