"""A Multus network where netsched shows and simulates networks: the demo cluster's
NetworkAttachmentDefinitions in the dashboard document and the topology API, and
``netsched simulate`` templates whose network is a definition."""

from __future__ import annotations

import json

import pytest

from bandwidth_accounting.requirements import parse_requirements
from contract import annotations
from dashboard.data import dashboard_view
from demo.sample_cluster import sample_cluster
from scheduler_extender.metrics import NodeCollector
from scheduler_extender.state import ClusterState
from scheduler_extender.views import topology_view
from simulator import ClusterShape, PolicyName
from simulator.arrivals import draw_arrivals
from simulator.policies import WithNetsched
from simulator.run import PolicyRun, SimulationConfig
from simulator.workload import Workload

WORKLOAD = Workload.model_validate({
    "name": "multus", "pods_per_node": 4, "node": {"cpu": 16, "memory": "64Gi"},
    "templates": [
        {"name": "analytics", "cpu": 1, "lifetime": {"exponential": 600},
         "networks": [{"network": "demo/fast-storage", "ingress": "3G", "egress": {"uniform": ["1G", "2G"]}}]},
        {"name": "writer", "cpu": 1, "lifetime": {"exponential": 600},
         "networks": [{"network": "storage", "egress": "1G"}]},
    ],
})


def demo_state() -> ClusterState:
    state = ClusterState()
    state.reset(sample_cluster())
    return state


def test_the_demo_clusters_definitions_are_in_the_dashboard_and_the_topology_api():
    state = demo_state()
    networks = {n.name: n for n in dashboard_view(state, [], 60).networks}
    fast, sriov = networks["demo/fast-storage"], networks["demo/sriov-fabric"]
    assert (fast.mode, fast.nodes, fast.segment) == ("macvlan", 12, "untagged")
    assert fast.note == "NetworkAttachmentDefinition demo/fast-storage: macvlan on eth1 subnet 10.50.0.0/16"
    assert (sriov.mode, sriov.segment) == ("sriov", "VLAN 300") and "reach unknown: SR-IOV" in sriov.note
    assert networks["storage"].note is None
    (view,) = [d for d in topology_view(state).definitions if d.name == "demo/fast-storage"]
    assert (view.master, view.plugins, view.shaped, view.problem) == ("eth1", ["macvlan", "netsched-cni"], True, None)


def test_the_reach_metric_counts_definitions_like_networks():
    (family,) = [f for f in NodeCollector(demo_state()).collect() if f.name == "netsched_network_nodes"]
    nodes = {(s.labels["network"], s.labels["mode"]): s.value for s in family.samples}
    assert nodes[("demo/fast-storage", "macvlan")] == 12 and nodes[("storage", "vlan")] == 12
    assert nodes[("demo/sriov-fabric", "sriov")] == 12


def test_simulated_multus_pods_ask_with_multus_elements_and_are_booked_on_the_nads_link():
    config = SimulationConfig(WORKLOAD, nodes=12, pods=120, seed=3, shape=ClusterShape(zones=3, nodes_per_switch=2))
    arrivals = draw_arrivals(WORKLOAD, config.nodes, config.pods, config.seed)
    analytics = next(a for a in arrivals if a.template == "analytics")
    (element,) = json.loads(analytics.annotations[annotations.MULTUS_NETWORKS])
    assert element["namespace"] == "demo" and element["bandwidth"]["ingressRate"] == 3_000_000_000
    assert annotations.NETWORKS not in analytics.annotations
    (attachment,) = parse_requirements(analytics.annotations).attachments
    assert attachment.network == "demo/fast-storage" and 1e9 <= attachment.egress_bps <= 2e9

    run = PolicyRun(config, PolicyName.SPREAD, arrivals)
    run.run()
    assert isinstance(run.policy, WithNetsched)
    ledger = run.policy.extender.state.ledger
    held = [a for h in ledger.holdings() for a in h.reservation.attachments if a.definition]
    assert held and {(a.network, a.parent, a.mode) for a in held} == {("demo/fast-storage", "eth1", "macvlan")}
    for (node, interface), link in run.links.index.items():
        assert tuple(run.links.traffic[link]) == pytest.approx(ledger.reserved(node, interface))


def test_netsched_explain_prints_each_definition_the_pod_names():
    from netsched.commands.explain import render
    from scheduler_extender.views import ExplainView

    line = "NetworkAttachmentDefinition team/fabric: sriov (reach unknown: SR-IOV virtual functions …)"
    view = ExplainView(pod="team/db", bound_to=None, annotations={annotations.MULTUS_NETWORKS: "fabric"},
                       fits=0, nodes=[], definitions=[line])
    text = render(view).splitlines()
    assert text[1] == f"  {annotations.MULTUS_NETWORKS}: fabric" and text[2] == line
