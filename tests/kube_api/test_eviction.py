"""The in-test API server's Eviction answers what a real kube-apiserver v1.36 answered.

The captured request/response pairs (tests/fixtures/kube-apiserver-v1.36/eviction-*.json,
pod-after-eviction.json) are replayed over a real socket: a PodDisruptionBudget that allows no
disruption answers 429 with a ``DisruptionBudget`` cause, an allowed eviction 201 with a
graceful deletion and a ``DisruptionTarget`` condition, an unknown pod 404.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kube_api import FakeKubeAPI

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kube-apiserver-v1.36"
PODS = "/api/v1/namespaces/team-a/pods"
PDBS = "/apis/policy/v1/namespaces/team-a/poddisruptionbudgets"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def replay(api: FakeKubeAPI, name: str) -> tuple[httpx.Response, dict[str, Any]]:
    captured = fixture(name)
    request = captured["request"]
    answer = httpx.request(
        request["method"], api.url + request["path"], json=request["body"],
        headers={"Content-Type": request["contentType"]},
    )
    return answer, captured


def running_pod(name: str = "e3", ready: bool = True, **spec: Any) -> dict[str, Any]:
    """The captured pod as it was before the eviction (bound, Running, Ready)."""
    pod = fixture("pod-after-eviction.json")["response"]
    metadata = {k: pod["metadata"][k] for k in ("namespace", "labels")}
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {**metadata, "name": name},
        "spec": {**pod["spec"], **spec},
        "status": {"phase": "Running", "conditions": conditions},
    }


def budget(allowed: int) -> dict[str, Any]:
    """A budget as the disruption controller left it (its status observed generation 1)."""
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {
            "observedGeneration": 1, "disruptionsAllowed": allowed,
            "desiredHealthy": 2, "currentHealthy": 2 + allowed, "expectedPods": 2 + allowed,
        },
    }


def test_a_budget_that_allows_no_disruption_answers_429_as_captured(kube_api: FakeKubeAPI):
    kube_api.seed(PODS, running_pod())
    kube_api.seed(PDBS, budget(allowed=0))
    answer, captured = replay(kube_api, "eviction-blocked-by-pdb.json")
    assert answer.status_code == captured["status"] == 429
    assert answer.json() == captured["response"]
    pod = kube_api.get(f"{PODS}/e3")
    assert pod is not None and "deletionTimestamp" not in pod["metadata"]


def test_an_allowed_eviction_deletes_gracefully_as_captured(kube_api: FakeKubeAPI):
    kube_api.seed(PODS, running_pod())
    kube_api.seed(PDBS, budget(allowed=1))
    answer, captured = replay(kube_api, "eviction-allowed.json")
    assert answer.status_code == captured["status"] == 201
    assert answer.json() == captured["response"]

    after = fixture("pod-after-eviction.json")["response"]
    pod = httpx.get(f"{kube_api.url}{PODS}/e3").json()
    for key in ("deletionGracePeriodSeconds", "generation"):
        assert pod["metadata"][key] == after["metadata"][key], key
    assert pod["metadata"]["deletionTimestamp"] > pod["metadata"]["creationTimestamp"]
    by_type = lambda p: {c["type"]: c for c in p["status"]["conditions"]}
    strip = lambda c: {k: v for k, v in c.items() if k != "lastTransitionTime"}
    assert strip(by_type(pod)["DisruptionTarget"]) == strip(by_type(after)["DisruptionTarget"])
    assert pod["spec"]["nodeName"] == "node-a"  # the kubelet finishes the deletion

    pdb = kube_api.get(f"{PDBS}/web")
    assert pdb is not None
    assert pdb["status"]["disruptionsAllowed"] == 0 and "e3" in pdb["status"]["disruptedPods"]
    # the budget is now used up: the next pod it covers is refused
    kube_api.seed(PODS, running_pod("e4"))
    refused = httpx.post(
        f"{kube_api.url}{PODS}/e4/eviction",
        json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "e4"}},
    )
    assert refused.status_code == 429


def test_an_unknown_pod_answers_404_as_captured(kube_api: FakeKubeAPI):
    answer, captured = replay(kube_api, "eviction-unknown-pod.json")
    assert answer.status_code == captured["status"] == 404
    assert answer.json() == captured["response"]


def test_a_budget_not_yet_observed_answers_429(kube_api: FakeKubeAPI):
    kube_api.seed(PODS, running_pod())
    kube_api.seed(PDBS, budget(allowed=5))
    changed = httpx.patch(  # a new spec: generation 2, which the controller has not seen yet
        f"{kube_api.url}{PDBS}/web", json={"spec": {"minAvailable": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert changed.json()["metadata"]["generation"] == 2
    answer, _ = replay(kube_api, "eviction-allowed.json")
    assert answer.status_code == 429
    (cause,) = answer.json()["details"]["causes"]
    assert cause == {
        "reason": "DisruptionBudget",
        "message": "The disruption budget web is still being processed by the server.",
    }


@pytest.mark.parametrize(
    ("phase", "node", "deleting", "stays"),
    [
        ("Pending", None, False, False),       # not on a node: deleted at once
        ("Succeeded", "node-a", False, False),  # finished: deleted at once
        ("Failed", "node-a", False, False),
        ("Running", "node-a", True, True),     # already going: left going
    ],
)
def test_pods_not_running_or_already_going_skip_the_budget(
    kube_api: FakeKubeAPI, phase, node, deleting, stays
):
    pod = running_pod()
    pod["status"]["phase"] = phase
    pod["spec"]["nodeName"] = node
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2026-12-01T15:00:00Z"
    kube_api.seed(PODS, pod)
    kube_api.seed(PDBS, budget(allowed=0))
    answer, _ = replay(kube_api, "eviction-allowed.json")
    assert answer.status_code == 201
    assert (kube_api.get(f"{PODS}/e3") is not None) is stays
    pdb = kube_api.get(f"{PDBS}/web")
    assert pdb is not None and pdb["status"]["disruptionsAllowed"] == 0


def test_an_unready_pod_passes_a_healthy_budget_without_using_it(kube_api: FakeKubeAPI):
    kube_api.seed(PODS, running_pod(ready=False))
    kube_api.seed(PDBS, budget(allowed=0))
    answer, _ = replay(kube_api, "eviction-allowed.json")
    assert answer.status_code == 201
    pdb = kube_api.get(f"{PDBS}/web")
    assert pdb is not None and "disruptedPods" not in pdb["status"]


def test_an_eviction_naming_another_pod_is_a_bad_request(kube_api: FakeKubeAPI):
    kube_api.seed(PODS, running_pod())
    answer = httpx.post(
        f"{kube_api.url}{PODS}/e3/eviction",
        json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}},
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == "name in URL does not match name in Eviction object"
