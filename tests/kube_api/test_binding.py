"""The pods/binding subresource answers as a real kube-apiserver v1.36 did.

Each test replays a captured request (``tests/fixtures/kube-apiserver-v1.36``) over a real
socket and compares the answer with the captured one. The captured pods had their own UIDs;
where a request carries one, the seeded pod's UID takes its place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kube_api import FakeKubeAPI

FIXTURES = Path(__file__).parent.parent / "fixtures" / "kube-apiserver-v1.36"
PODS = "/api/v1/namespaces/team-a/pods"


def captured(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def replay(api: FakeKubeAPI, exchange: dict[str, Any], **metadata: str) -> httpx.Response:
    """Send the captured request, with ``metadata`` replacing fields of its body's metadata."""
    request = exchange["request"]
    body = json.loads(json.dumps(request["body"]))
    body["metadata"].update(metadata)
    return httpx.request(
        request["method"],
        api.url + request["path"],
        json=body,
        headers={"Content-Type": request["contentType"]},
        timeout=5,
    )


def seed_pod(api: FakeKubeAPI, name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": name, "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return api.seed(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"run": name}}, "spec": spec})


def seed_node(api: FakeKubeAPI, name: str, zone: str) -> None:
    labels = {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name}
    api.seed("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})


def test_a_binding_merges_its_annotations_with_the_node_in_one_write(kube_api: FakeKubeAPI) -> None:
    exchange, after = captured("binding-with-annotations.json"), captured("pod-after-binding.json")
    seed_node(kube_api, "node-a", "zone-a")
    pod = seed_pod(kube_api, "p1")
    revision = kube_api.revision
    answer = replay(kube_api, exchange, uid=pod["metadata"]["uid"])
    assert (answer.status_code, answer.json()) == (exchange["status"], exchange["response"])

    stored = kube_api.get(f"{PODS}/p1")
    expected = after["response"]
    assert stored["spec"]["nodeName"] == expected["spec"]["nodeName"]
    assert stored["metadata"]["annotations"] == expected["metadata"]["annotations"]
    assert stored["metadata"]["labels"] == expected["metadata"]["labels"]
    assert [c["type"] for c in stored["status"]["conditions"]] == ["PodScheduled"]
    # one write: one new revision, one MODIFIED event carrying both changes
    assert kube_api.revision == revision + 1
    assert stored["metadata"]["resourceVersion"] == str(revision + 1)


def test_binding_an_already_bound_pod_is_a_conflict(kube_api: FakeKubeAPI) -> None:
    exchange = captured("binding-already-bound.json")
    seed_pod(kube_api, "p1", node="node-a")
    answer = replay(kube_api, exchange)
    assert (answer.status_code, answer.json()) == (exchange["status"], exchange["response"])
    assert kube_api.get(f"{PODS}/p1")["spec"]["nodeName"] == "node-a"


def test_a_wrong_uid_is_a_failed_precondition_naming_both(kube_api: FakeKubeAPI) -> None:
    exchange = captured("binding-wrong-uid.json")
    pod = seed_pod(kube_api, "p2")
    answer = replay(kube_api, exchange)
    expected = json.loads(
        json.dumps(exchange["response"]).replace("3eb2d76d-4ee9-4d04-a071-afc347d44d5d", pod["metadata"]["uid"])
    )
    assert (answer.status_code, answer.json()) == (exchange["status"], expected)
    assert "nodeName" not in kube_api.get(f"{PODS}/p2")["spec"]


def test_a_stale_resource_version_is_a_failed_precondition(kube_api: FakeKubeAPI) -> None:
    """The same storage precondition as the UID (``BindingREST`` passes both to etcd)."""
    exchange = captured("binding-with-annotations.json")
    pod = seed_pod(kube_api, "p1")
    kube_api.handle("PATCH", f"{PODS}/p1", "application/merge-patch+json", {"metadata": {"labels": {"x": "y"}}})
    answer = replay(kube_api, exchange, uid=pod["metadata"]["uid"], resourceVersion=pod["metadata"]["resourceVersion"])
    assert answer.status_code == 409
    assert answer.json()["message"].endswith(
        f"Precondition failed: ResourceVersion in precondition: {pod['metadata']['resourceVersion']}, "
        f"ResourceVersion in object meta: {kube_api.revision}"
    )
    stored = kube_api.get(f"{PODS}/p1")
    assert "nodeName" not in stored["spec"] and not stored["metadata"].get("annotations")


@pytest.mark.parametrize("fixture", ["binding-unknown-pod.json", "binding-unknown-node.json"])
def test_unknown_pod_is_not_found_and_unknown_node_is_accepted(kube_api: FakeKubeAPI, fixture: str) -> None:
    exchange = captured(fixture)
    seed_pod(kube_api, "p3")
    answer = replay(kube_api, exchange)
    assert (answer.status_code, answer.json()) == (exchange["status"], exchange["response"])
    if exchange["status"] == 201:
        assert kube_api.get(f"{PODS}/p3")["spec"]["nodeName"] == "no-such-node"
