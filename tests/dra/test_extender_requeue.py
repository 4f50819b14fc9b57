"""A deallocated or deleted netsched claim wakes the pods refused for the room it held.

kube-scheduler does not requeue an extender-refused pod when a ResourceClaim is
deallocated (only its own DRA plugin's rejections listen to claims), so netsched does,
as it does for a pod's freed reservation (docs/scheduling.md, Retrying).
"""

from __future__ import annotations

from scheduler_extender.requeue import RETRY_ANNOTATION
from tests.dra.ledger_objects import CLAIMS, allocated_claim
from tests.kubernetes.conftest import PODS, pod_object, seed_nodes, wait_until
from tests.kubernetes.conftest import client_for, kube_api, kubeconfig, sources  # noqa: F401 - fixtures
from tests.kubernetes.test_requeue import scene  # noqa: F401 - fixture


def test_a_deallocated_claim_wakes_the_pod_refused_for_its_room(kube_api, scene):
    seed_nodes(kube_api, 1)  # 9G usable
    kube_api.seed(CLAIMS, allocated_claim("held", "node-00", egress="8G", ingress="0"))
    waiting = kube_api.seed(PODS, pod_object("waiting", egress="2G"))
    s = scene()
    wait_until(lambda: s.extender.state.ledger.reserved("node-00", "eth0")[1] == 8_000_000_000, what="the claim")
    refused = s.filter(waiting, ["node-00"])["FailedAndUnresolvableNodes"]["node-00"]
    assert refused == "eth0 egress: 8G reserved (8G of it by DRA claims) of 9G usable, asks 2G"
    current = kube_api.get(f"{CLAIMS}/held")
    code, _ = kube_api.handle("PUT", f"{CLAIMS}/held/status", "application/json", {**current, "status": {}})
    assert code == 200
    woken = wait_until(
        lambda: kube_api.get(f"{PODS}/waiting")["metadata"].get("annotations", {}).get(RETRY_ANNOTATION),
        what="the retry annotation",
    )
    assert "ResourceClaim default/held freed room on node-00" in woken
    # the pod now fits where it was refused
    assert s.filter(kube_api.get(f"{PODS}/waiting"), ["node-00"])["NodeNames"] == ["node-00"]
