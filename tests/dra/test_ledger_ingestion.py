"""The Kubernetes source follows ResourceClaims into the ledger beside annotation reservations.

Against the in-test API server (tests/kube_api), which serves ``resource.k8s.io/v1`` like any
group and, like kube-apiserver, writes a claim's status only through ``/status``: the claims
go through the writes kube-scheduler v1.36 makes (tests/dra/ledger_objects.py).
"""

from __future__ import annotations

import logging

import pytest

from scheduler_extender.kubernetes_source import WATCHED_RESOURCES
from scheduler_extender.state import ClusterState
from tests.dra.ledger_objects import CLAIMS, FINALIZER, allocated_claim, allocation, claim_object
from tests.kube_api import ApiError
from tests.kubernetes.conftest import (  # noqa: F401 - fixtures
    client_for,
    kube_api,
    kubeconfig,
    seed_nodes,
    sources,
    wait_until,
)
from tests.kubernetes.conftest import NODE_NETWORKS, PODS, node_network_object
from tests.kubernetes.test_source import bound_pod

G = 1_000_000_000


def write_status(kube_api, name: str, status: dict) -> None:
    """kube-scheduler's PreBind: the claim's allocation and reservedFor in one /status update."""
    current = kube_api.get(f"{CLAIMS}/{name}")
    code, body = kube_api.handle(
        "PUT", f"{CLAIMS}/{name}/status", "application/json", {**current, "status": status}
    )
    assert code == 200, body


def test_start_counts_allocated_claims_beside_annotation_reservations(kube_api, sources):
    seed_nodes(kube_api, 2)
    kube_api.seed(PODS, bound_pod("holder", "node-00"))  # 300M egress on eth0
    kube_api.seed(CLAIMS, allocated_claim("fast", "node-00", egress="4G", ingress="1G"))
    kube_api.seed(CLAIMS, claim_object("pending"))  # never allocated: holds nothing
    state = ClusterState()
    sources().start(state)
    assert state.ledger.reserved("node-00", "eth0") == (1 * G, 4 * G + 300_000_000)
    assert state.ledger.claimed("node-00", "eth0") == (1 * G, 4 * G)
    [claimed] = [h for h in state.ledger.holdings() if h.claim is not None]
    assert claimed.claim.key == "default/fast"
    lists = [r.path for r in kube_api.requests if "limit=" in r.path]
    assert len(lists) == WATCHED_RESOURCES
    assert any(path.startswith("/apis/resource.k8s.io/v1/resourceclaims?") for path in lists)


def test_allocation_added_changed_removed_and_claim_deleted(kube_api, sources):
    seed_nodes(kube_api, 2)
    state = ClusterState()
    sources().start(state)
    wait_until(lambda: kube_api.open_watches == WATCHED_RESOURCES, what="a watch per kind")
    kube_api.seed(CLAIMS, claim_object("fast"))
    wait_until(lambda: state.claim("default/fast") is not None, what="the claim")
    assert state.ledger.holdings() == []
    # kube-scheduler's PreBind: finalizer in an update, then the allocation through /status
    current = kube_api.get(f"{CLAIMS}/fast")
    current["metadata"]["finalizers"] = [FINALIZER]
    assert kube_api.handle("PUT", f"{CLAIMS}/fast", "application/json", current)[0] == 200
    write_status(kube_api, "fast", allocation("node-00", egress="4G", ingress="1G", share_id="s-1"))
    wait_until(lambda: state.ledger.reserved("node-00", "eth0") == (1 * G, 4 * G), what="the allocation")
    # the same allocation written again (a resync, a replayed event) is not added twice
    write_status(kube_api, "fast", allocation("node-00", egress="4G", ingress="1G", share_id="s-1"))
    current = kube_api.get(f"{CLAIMS}/fast")
    wait_until(lambda: state.claim("default/fast").metadata.resource_version == current["metadata"]["resourceVersion"])
    assert state.ledger.reserved("node-00", "eth0") == (1 * G, 4 * G)
    # moved to another node with another share: the old one is freed, the new one held
    write_status(kube_api, "fast", allocation("node-01", egress="2G", ingress="1G", share_id="s-2"))
    wait_until(lambda: state.ledger.reserved("node-01", "eth0") == (1 * G, 2 * G), what="the new share")
    assert state.ledger.reserved("node-00", "eth0") == (0, 0)
    assert len(state.ledger.holdings()) == 1
    # deallocated: freed
    write_status(kube_api, "fast", {})
    wait_until(lambda: state.ledger.holdings() == [], what="the deallocation")
    # allocated again, then the claim deleted: freed
    write_status(kube_api, "fast", allocation("node-00", share_id="s-3"))
    wait_until(lambda: len(state.ledger.holdings()) == 1, what="the allocation")
    kube_api.delete(f"{CLAIMS}/fast")
    wait_until(lambda: state.ledger.holdings() == [], what="the deleted claim's release")
    assert state.claim("default/fast") is None


def test_a_claim_on_a_node_without_report_counts_once_the_report_arrives(kube_api, sources, caplog):
    seed_nodes(kube_api, 1)
    kube_api.seed(CLAIMS, allocated_claim("early", "node-new", egress="3G"))
    state = ClusterState()
    with caplog.at_level(logging.WARNING):
        sources().start(state)
    assert state.ledger.holdings() == []
    [problem] = state.claim_problems()
    assert problem.field == "status.allocation.devices.results[0].pool" and problem.value == "node-new"
    assert "ResourceClaim default/early: status.allocation.devices.results[0].pool='node-new'" in caplog.text
    kube_api.seed(NODE_NETWORKS, node_network_object("node-new"))
    wait_until(lambda: state.ledger.reserved("node-new", "eth0")[1] == 3 * G, what="the recount")
    assert state.claim_problems() == []


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (ApiError(404, "NotFound", "the server could not find the requested resource"), "not served (404)"),
        # an install whose ClusterRole predates the claims: RBAC refuses, everything else works
        (ApiError(403, "Forbidden", 'resourceclaims.resource.k8s.io is forbidden'), "forbidden to us (403)"),
    ],
)
def test_a_cluster_without_the_dra_api_works_as_before_and_says_so_once(kube_api, sources, caplog, answer, said):
    seed_nodes(kube_api, 1)
    kube_api.seed(PODS, bound_pod("holder", "node-00"))

    def no_dra(method: str, path: str) -> ApiError | None:
        return answer if path.startswith("/apis/resource.k8s.io/") else None

    kube_api.fault = no_dra
    state = ClusterState()
    with caplog.at_level(logging.INFO, logger="scheduler_extender.kubernetes_source"):
        source = sources()
        source.start(state)
        source.resync()
    assert state.ledger.reserved("node-00", "eth0") == (0, 300_000_000)
    logged = [r.getMessage() for r in caplog.records if "resourceclaims are" in r.getMessage()]
    assert logged == [
        f"resourceclaims are {said}: DRA allocations are not counted; annotation reservations work as before"
    ]
