"""Bind of a pod with a netsched claim, over HTTP, against the in-test API server.

kube-scheduler's DRA plugin writes the claim's allocation (PreBind) and then calls the
extender's bind at once, so the watch may not have brought the allocation yet: bind reads
the claim from the API (GET .../resourceclaims/<name>) and checks it against the ledger.
"""

from __future__ import annotations

import httpx

from contract import annotations as ann
from tests.dra.ledger_objects import CLAIMS, allocation, claim_object
from tests.kubernetes.conftest import (  # noqa: F401 - fixtures
    PODS,
    bind_body,
    client_for,
    kube_api,
    kubeconfig,
    pod_object,
    seed_nodes,
    serve,
    sources,
    wait_until,
)

G = 1_000_000_000


def claim_pod(name: str, claim: str) -> dict:
    pod = pod_object(name, egress=None)
    pod["spec"]["resourceClaims"] = [{"name": "bandwidth", "resourceClaimName": claim}]
    return pod


def allocate(kube_api, claim: str, pod: dict, node: str, egress: str) -> None:
    """kube-scheduler's PreBind: allocation and reservedFor in one /status update."""
    current = kube_api.get(f"{CLAIMS}/{claim}")
    status = allocation(node, egress=egress, ingress="0", consumers=[
        {"resource": "pods", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
    ])
    code, body = kube_api.handle("PUT", f"{CLAIMS}/{claim}/status", "application/json", {**current, "status": status})
    assert code == 200, body


def bind(url: str, pod: dict, node: str) -> str:
    return httpx.post(f"{url}/bind", json=bind_body(pod, node), timeout=20).json()["Error"]


def test_bind_reads_the_allocation_from_the_api_and_refuses_or_admits_it(kube_api, serve):
    seed_nodes(kube_api, 2)  # 9G usable each
    annotated = kube_api.seed(PODS, pod_object("annotated", egress="6G"))
    kube_api.seed(CLAIMS, claim_object("big", egress="4G"))
    kube_api.seed(CLAIMS, claim_object("small", egress="3G"))
    big = kube_api.seed(PODS, claim_pod("big", "big"))
    small = kube_api.seed(PODS, claim_pod("small", "small"))
    served = serve()
    state = served.extender.state
    wait_until(lambda: len(state.pods()) == 3 and state.claim("default/small"), what="pods and claims")
    assert bind(served.url, annotated, "node-00") == ""

    served.source.stop()  # the watch brings nothing more: bind alone must read the allocation
    allocate(kube_api, "big", big, "node-00", "4G")
    error = bind(served.url, big, "node-00")
    assert error == (
        "default/big: ResourceClaim default/big would over-commit node-00 beside its reservations: "
        "eth0 egress: 6G reserved of 9G usable, asks 4G"
    )
    assert kube_api.get(f"{PODS}/big")["spec"].get("nodeName") is None

    allocate(kube_api, "small", small, "node-00", "3G")
    assert bind(served.url, small, "node-00") == ""
    stored = kube_api.get(f"{PODS}/small")
    assert stored["spec"]["nodeName"] == "node-00"
    assert ann.RESERVATION not in stored["metadata"].get("annotations", {})
    assert state.ledger.reserved("node-00", "eth0") == (0, 9 * G)
    assert state.ledger.claimed("node-00", "eth0") == (0, 3 * G)
    reads = [r.path for r in kube_api.requests if r.method == "GET" and r.path.startswith(f"{CLAIMS}/")]
    assert reads == [f"{CLAIMS}/big", f"{CLAIMS}/small"]
