"""A watch event changes only what it touches: a kubelet's Node status write, arriving through
the real client's watch from the in-test API server, rebuilds nothing; a headroom change
re-rates only its node; a node that moves zone rebuilds the topology."""

from __future__ import annotations

from contract.objects import ZONE_LABEL
from tests.kubernetes.conftest import NODES, seed_nodes, wait_until

MERGE = "application/merge-patch+json"


def node_status_write(kube_api, node: str, beat: int) -> None:
    """What a kubelet sends every nodeStatusReportFrequency: conditions and heartbeat times."""
    status = {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": f"2026-12-01T16:{beat:02d}:00Z"}]}
    kube_api.handle("PATCH", f"{NODES}/{node}/status", MERGE, {"status": status})


def test_node_status_writes_rebuild_nothing(kube_api, serve):
    seed_nodes(kube_api, 3)
    served = serve()
    state = served.extender.state
    topology, generation, version = state.topology, state.generation, state.ledger.version
    for beat in range(5):
        node_status_write(kube_api, "node-01", beat)
    latest = kube_api.get(f"{NODES}/node-01")["metadata"]["resourceVersion"]
    wait_until(
        lambda: state.topology.nodes["node-01"].metadata.resource_version == latest, what="the last write"
    )
    assert state.topology is topology
    assert (state.generation, state.ledger.version) == (generation, version)


def test_a_headroom_change_re_rates_only_its_node(kube_api, serve):
    seed_nodes(kube_api, 3)
    served = serve()
    state = served.extender.state
    topology, generation = state.topology, state.generation
    assert state.ledger.usable("node-01", "eth0") == (9_000_000_000, 9_000_000_000)
    kube_api.handle("PATCH", f"{NODES}/node-01", MERGE, {"metadata": {"annotations": {"netsched.io/headroom": "25%"}}})
    wait_until(lambda: state.ledger.usable("node-01", "eth0")[0] == 7_500_000_000, what="the new headroom")
    assert state.ledger.usable("node-00", "eth0") == (9_000_000_000, 9_000_000_000)
    assert state.topology is topology and state.generation == generation + 1


def test_a_node_that_moves_zone_rebuilds_the_topology(kube_api, serve):
    seed_nodes(kube_api, 2)
    served = serve()
    state = served.extender.state
    topology = state.topology
    kube_api.handle("PATCH", f"{NODES}/node-01", MERGE, {"metadata": {"labels": {ZONE_LABEL: "z9"}}})
    wait_until(lambda: state.topology is not topology, what="a rebuilt topology")
    assert state.topology.nodes["node-01"].zone == "z9"
    assert state.topology.zone_of("node-01") == "z1"  # the reporter's own zone still wins over the label
