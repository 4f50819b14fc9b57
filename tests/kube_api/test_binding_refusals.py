"""pods/binding refuses what kube-apiserver's BindingREST refuses, and sets PodScheduled once.

The real checks (pkg/registry/core/pod/storage, ``setPodNodeAndMetadata``), in order: a
pod being deleted, a pod already bound, a pod with scheduling gates; each a 409 Conflict
"Operation cannot be fulfilled on pods/binding ...". A successful Binding updates the
PodScheduled condition (``podutil.UpdatePodCondition``): one condition per type. Driven
through the official client, as the extender's Kubernetes source binds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_api import FakeKubeAPI

PODS = "/api/v1/namespaces/team-a/pods"


@pytest.fixture
def core(kube_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_client)


def seed_pod(api: FakeKubeAPI, name: str, **extra: Any) -> dict[str, Any]:
    metadata = {"name": name, **extra.pop("metadata", {})}
    spec = {"containers": [{"name": name, "image": "busybox"}], **extra.pop("spec", {})}
    return api.seed(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, **extra})


def bind(core: client.CoreV1Api, name: str, node: str = "node-a") -> tuple[int, dict[str, Any]]:
    body = client.V1Binding(metadata=client.V1ObjectMeta(name=name),
                            target=client.V1ObjectReference(kind="Node", name=node))
    try:
        response = core.create_namespaced_pod_binding(name, "team-a", body, _preload_content=False)
    except ApiException as error:
        return error.status, json.loads(error.body)
    return response.status, json.loads(response.data)


@pytest.mark.parametrize(("extra", "why"), [
    ({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}},
     "pod p1 is being deleted, cannot be assigned to a host"),
    ({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "node-b"}},
     "pod p1 is being deleted, cannot be assigned to a host"),  # deletion is checked first
    ({"spec": {"schedulingGates": [{"name": "example.com/quota"}]}},
     "pod p1 has non-empty .spec.schedulingGates"),
    ({"spec": {"nodeName": "node-b", "schedulingGates": [{"name": "example.com/quota"}]}},
     'pod p1 is already assigned to node "node-b"'),  # then bound, then gates
], ids=["being-deleted", "deleted-before-bound", "gated", "bound-before-gated"])
def test_a_binding_the_real_server_refuses_is_a_conflict_and_changes_nothing(
    kube_api: FakeKubeAPI, core: client.CoreV1Api, extra: dict, why: str
) -> None:
    before = seed_pod(kube_api, "p1", **extra)
    status, body = bind(core, "p1")
    assert status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == f'Operation cannot be fulfilled on pods/binding "p1": {why}'
    assert kube_api.get(f"{PODS}/p1") == before


def test_binding_updates_the_pod_scheduled_condition_instead_of_adding_one(
    kube_api: FakeKubeAPI, core: client.CoreV1Api
) -> None:
    """kube-scheduler marks an unschedulable pod PodScheduled=False; the Binding turns that
    same condition True (its reason and message go with the old status)."""
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "0/3 nodes are available", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    ready = {"type": "Initialized", "status": "True"}
    seed_pod(kube_api, "p1", status={"phase": "Pending", "conditions": [ready, unschedulable]})
    status, body = bind(core, "p1")
    assert (status, body["status"]) == (201, "Success")

    conditions = kube_api.get(f"{PODS}/p1")["status"]["conditions"]
    assert [c["type"] for c in conditions] == ["Initialized", "PodScheduled"]
    scheduled = conditions[1]
    assert scheduled["status"] == "True"
    assert "reason" not in scheduled and "message" not in scheduled
    assert scheduled["lastTransitionTime"] != unschedulable["lastTransitionTime"]
    assert core.read_namespaced_pod("p1", "team-a").spec.node_name == "node-a"
