"""Lists and watches honour labelSelector and fieldSelector, or refuse them as the real server does.

Semantics of apimachinery's ``labels.Parse`` and ``fields.ParseSelector`` and the
selectable fields of ``pkg/apis/core/v1/conversion.go``; a field a resource does not
select on is 400 ``field label not supported: <field>`` (custom resources: only
``metadata.name`` and ``metadata.namespace``). Through the official client.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kube_api import FakeKubeAPI

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, labels: dict[str, str], node: str = "", phase: str = "Pending") -> dict:
    spec = {"containers": [{"name": "c", "image": "i"}], "hostNetwork": name == "net"}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": spec, "status": {"phase": phase}}


@pytest.fixture
def pods(kube_api: FakeKubeAPI) -> None:
    kube_api.seed(PODS, pod("web-1", {"app": "web", "tier": "front", "rank": "1"}, "node-a", "Running"))
    kube_api.seed(PODS, pod("web-2", {"app": "web", "tier": "back", "rank": "7"}, "node-b", "Running"))
    kube_api.seed(PODS, pod("db", {"app": "db"}))
    kube_api.seed(PODS, pod("net", {}, "node-a", "Succeeded"))


@pytest.mark.parametrize(("labels", "fields", "expected"), [
    ("app=web", "", ["web-1", "web-2"]),
    ("app==web,tier!=back", "", ["web-1"]),
    ("tier!=back", "", ["db", "net", "web-1"]),  # != matches pods without the label
    ("app in (web, db)", "", ["db", "web-1", "web-2"]),
    ("app notin (web)", "", ["db", "net"]),
    ("tier", "", ["web-1", "web-2"]),
    ("!tier", "", ["db", "net"]),
    ("rank>3", "", ["web-2"]),
    ("rank<3,app=web", "", ["web-1"]),
    ("", "spec.nodeName=node-a", ["net", "web-1"]),
    ("", "spec.nodeName=", ["db"]),  # unscheduled: what a scheduler watches
    ("", "status.phase!=Running,status.phase!=Succeeded", ["db"]),
    ("", "spec.hostNetwork=true", ["net"]),
    ("", "metadata.name==db", ["db"]),
    ("app=web", "spec.nodeName=node-b", ["web-2"]),
])
def test_lists_return_only_the_selected_objects(kube_client, pods, labels, fields, expected) -> None:
    listed = client.CoreV1Api(kube_client).list_namespaced_pod("default", label_selector=labels,
                                                        field_selector=fields)
    assert [p.metadata.name for p in listed.items] == expected


def test_paging_counts_only_the_selected_objects(kube_client, pods) -> None:
    core = client.CoreV1Api(kube_client)
    first = core.list_namespaced_pod("default", label_selector="app", limit=2)
    assert [p.metadata.name for p in first.items] == ["db", "web-1"]
    assert first.metadata.remaining_item_count == 1
    rest = core.list_namespaced_pod("default", label_selector="app", limit=2,
                                    _continue=first.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["web-2"]


@pytest.mark.parametrize(("call", "message"), [
    ({"field_selector": "spec.containers=c"}, "field label not supported: spec.containers"),
    ({"field_selector": "metadata.labels=x"}, "field label not supported: metadata.labels"),
    ({"field_selector": "spec.nodeName"}, "invalid selector: 'spec.nodeName'"),
    ({"label_selector": "app in web"}, "unable to parse requirement: 'app in web'"),
    ({"label_selector": "rank>high"}, "unable to parse requirement: 'rank>high'"),
    ({"label_selector": "bad key=1"}, "unable to parse requirement: 'bad key=1'"),
])
def test_selectors_the_real_server_refuses_are_400(kube_client, pods, call, message) -> None:
    core = client.CoreV1Api(kube_client)
    for listing in (core.list_namespaced_pod, core.list_namespaced_pod):
        with pytest.raises(ApiException) as refused:
            listing("default", **call)
        body = json.loads(refused.value.body)
        assert (refused.value.status, body["reason"]) == (400, "BadRequest")
        assert body["message"].startswith(message)
    with pytest.raises(ApiException) as refused:
        core.list_namespaced_pod("default", watch=True, _preload_content=False, **call)
    assert refused.value.status == 400


def test_custom_resources_select_only_on_name_and_namespace(kube_api, kube_client) -> None:
    custom = client.CustomObjectsApi(kube_client)
    kube_api.seed("/apis/netsched.io/v1alpha1/nodenetworks", {
        "apiVersion": "netsched.io/v1alpha1", "kind": "NodeNetwork", "metadata": {"name": "n1"}})
    found = custom.list_cluster_custom_object("netsched.io", "v1alpha1", "nodenetworks",
                                              field_selector="metadata.name=n1")
    assert [o["metadata"]["name"] for o in found["items"]] == ["n1"]
    with pytest.raises(ApiException) as refused:
        custom.list_cluster_custom_object("netsched.io", "v1alpha1", "nodenetworks",
                                          field_selector="spec.node=n1")
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["message"] == "field label not supported: spec.node"


def test_a_watch_streams_objects_entering_and_leaving_the_selection(kube_api, kube_client, pods) -> None:
    """As the watch cache does: an object that stops matching is sent as DELETED, one that
    starts matching as ADDED; changes outside the selection are not sent at all."""
    core = client.CoreV1Api(kube_client)
    since = str(kube_api.revision)
    patch = lambda name, labels: kube_api.handle(  # noqa: E731
        "PATCH", f"{PODS}/{name}", "application/merge-patch+json", {"metadata": {"labels": labels}})
    patch("web-1", {"tier": "back"})  # still app=web: MODIFIED
    patch("web-2", {"app": "kube_client"})  # leaves: DELETED
    patch("db", {"app": "web"})  # enters: ADDED
    patch("net", {"x": "1"})  # never selected: nothing
    kube_api.delete(f"{PODS}/web-2")  # already gone from the selection: nothing
    kube_api.delete(f"{PODS}/db")  # selected: DELETED
    events = list(watch.Watch().stream(core.list_namespaced_pod, "default", label_selector="app=web",
                                       resource_version=since, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("MODIFIED", "web-1"), ("DELETED", "web-2"), ("ADDED", "db"), ("DELETED", "db")]
    listed = list(watch.Watch().stream(core.list_namespaced_pod, "default", field_selector="spec.nodeName=node-a",
                                       resource_version="0", timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in listed] == [("ADDED", "net"), ("ADDED", "web-1")]


def test_resourceslices_select_on_driver_and_node_name_only(kube_api: FakeKubeAPI, kube_client) -> None:
    """kube-apiserver's field labels for ResourceSlice: ``spec.driver`` and ``spec.nodeName``
    (``spec.pool.name`` is refused: only client-side filters match on it)."""
    for name, driver, node in (("a", "netsched.io", "node-a"), ("b", "netsched.io", "node-b"), ("c", "gpu.example", "node-a")):
        kube_api.seed("/apis/resource.k8s.io/v1/resourceslices", {
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice", "metadata": {"name": name},
            "spec": {"driver": driver, "nodeName": node, "pool": {"name": node, "generation": 1, "resourceSliceCount": 1}},
        })
    slices = client.ResourceV1Api(kube_client)
    chosen = slices.list_resource_slice(field_selector="spec.driver=netsched.io,spec.nodeName=node-a")
    assert [s.metadata.name for s in chosen.items] == ["a"]
    with pytest.raises(ApiException) as refused:
        slices.list_resource_slice(field_selector="spec.pool.name=node-a")
    assert refused.value.status == 400 and "field label not supported: spec.pool.name" in refused.value.body
