"""The fake API server answers the official kubernetes client as the real one would."""

from __future__ import annotations

import socket

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_api import FakeKubeAPI, ResourcePath, merge_patch

GROUP, VERSION, PLURAL = "netsched.io", "v1alpha1", "nodenetworks"


@pytest.fixture
def api(kube_api: FakeKubeAPI) -> client.ApiClient:
    configuration = client.Configuration(host=kube_api.url)
    configuration.retries = 0
    with client.ApiClient(configuration) as api_client:
        yield api_client


def test_paths_split_like_the_api_server_routes_them() -> None:
    assert ResourcePath.parse("/apis/netsched.io/v1alpha1/nodenetworks/n1/status") == ResourcePath(
        "netsched.io", "v1alpha1", None, "nodenetworks", "n1", "status"
    )
    assert ResourcePath.parse("/api/v1/namespaces/kube-system/pods/p?x=1") == ResourcePath(
        "", "v1", "kube-system", "pods", "p", None
    )
    assert ResourcePath.parse("/api/v1/namespaces/default").plural == "namespaces"
    assert ResourcePath.parse("/api/v1/nodes").collection == "/api/v1/nodes"


def test_merge_patch_follows_rfc_7386() -> None:
    assert merge_patch(
        {"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None, "d": 3}, "l": [3]}
    ) == {"a": {"c": 2, "d": 3}, "l": [3]}


def test_create_get_conflict_and_not_found(kube_api: FakeKubeAPI, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "NodeNetwork",
        "metadata": {"name": "n1"},
        "status": {"zone": "ignored on create"},
    }
    created = custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    assert created["metadata"]["resourceVersion"] == "1" and created["metadata"]["uid"]
    assert "status" not in created
    with pytest.raises(ApiException) as conflict:
        custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, body)
    assert conflict.value.status == 409 and '"reason": "AlreadyExists"' in conflict.value.body
    with pytest.raises(ApiException) as missing:
        custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "nope")
    assert missing.value.status == 404
    listed = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["n1"]
    assert listed["metadata"]["resourceVersion"] == "1"


def test_status_subresource_patch_changes_only_status(
    kube_api: FakeKubeAPI, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(
        GROUP, VERSION, PLURAL, {"metadata": {"name": "n1"}, "spec": {"a": 1}}
    )
    patched = custom.patch_cluster_custom_object_status(
        GROUP,
        VERSION,
        PLURAL,
        "n1",
        {"status": {"zone": "z1", "interfaces": [{"name": "eth0"}]}, "spec": {"a": 2}},
    )
    assert patched["status"]["zone"] == "z1" and patched["spec"] == {"a": 1}
    assert patched["metadata"]["resourceVersion"] == "2"
    assert kube_api.requests[-1].content_type == "application/merge-patch+json"
    again = custom.patch_cluster_custom_object_status(
        GROUP, VERSION, PLURAL, "n1", {"status": {"zone": "z1"}}
    )
    assert again["metadata"]["resourceVersion"] == "2", (
        "a no-op patch must not bump resourceVersion"
    )
    spec_patch = custom.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, "n1", {"spec": {"a": 3}, "status": None}
    )
    assert spec_patch["spec"] == {"a": 3} and spec_patch["status"]["zone"] == "z1"
    assert spec_patch["metadata"]["generation"] == 2


def test_stale_resource_version_is_a_conflict(kube_api: FakeKubeAPI, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, {"metadata": {"name": "n1"}})
    with pytest.raises(ApiException) as stale:
        custom.replace_cluster_custom_object(
            GROUP, VERSION, PLURAL, "n1", {"metadata": {"name": "n1", "resourceVersion": "999"}}
        )
    assert stale.value.status == 409 and '"reason": "Conflict"' in stale.value.body


def test_strategic_merge_patch_only_for_built_in_resources(
    kube_api: FakeKubeAPI, api: client.ApiClient
) -> None:
    kube_api.seed(
        "/api/v1/nodes",
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"a": "1"}}},
    )
    core = client.CoreV1Api(api)
    node = core.patch_node("node-1", {"metadata": {"labels": {"b": "2"}}})
    assert node.metadata.labels == {"a": "1", "b": "2"}
    assert kube_api.requests[-1].content_type == "application/strategic-merge-patch+json"
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, {"metadata": {"name": "n1"}})
    with pytest.raises(ApiException) as unsupported:
        custom.patch_cluster_custom_object(
            GROUP,
            VERSION,
            PLURAL,
            "n1",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert unsupported.value.status == 415


def test_namespaced_objects_and_delete(kube_api: FakeKubeAPI, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("ns1", {"metadata": {"name": "cm"}, "data": {"k": "v"}})
    assert core.read_namespaced_config_map("cm", "ns1").metadata.namespace == "ns1"
    assert kube_api.get("/api/v1/namespaces/ns2/configmaps/cm") is None
    core.delete_namespaced_config_map("cm", "ns1")
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("cm", "ns1")
    assert gone.value.status == 404


def test_pause_takes_the_api_away_and_resume_brings_it_back(
    kube_api: FakeKubeAPI, api: client.ApiClient
) -> None:
    core = client.CoreV1Api(api)
    kube_api.seed("/api/v1/nodes", {"metadata": {"name": "node-1"}})
    kube_api.pause()
    with pytest.raises(Exception) as away:
        core.read_node("node-1", _request_timeout=2)
    assert "refused" in str(away.value).lower() or "max retries" in str(away.value).lower()
    kube_api.resume()
    assert core.read_node("node-1", _request_timeout=2).metadata.name == "node-1"


def test_connections_stay_open_between_requests(kube_api: FakeKubeAPI, api: client.ApiClient) -> None:
    """kube-apiserver keeps an HTTP/1.1 connection open after each answer, and the official
    client's pool sends its next request on it: five reads, one connection. Like every Go
    TCP connection it has Nagle's algorithm off, or each answer's body would wait for the
    client's delayed ACK of its header."""
    core = client.CoreV1Api(api)
    kube_api.seed("/api/v1/nodes", {"metadata": {"name": "node-1"}})
    for _ in range(5):
        assert core.read_node("node-1", _request_timeout=2).metadata.name == "node-1"
    assert kube_api.connections_accepted == 1
    (connection,) = kube_api._connections
    assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_pooled_connection_the_server_closed_is_replaced(kube_api: FakeKubeAPI, api: client.ApiClient) -> None:
    """A server that goes away closes its kept-alive connections (an API server restart): the
    client's pooled one is dead, and the next request after the restart opens a new one."""
    core = client.CoreV1Api(api)
    kube_api.seed("/api/v1/nodes", {"metadata": {"name": "node-1"}})
    core.read_node("node-1", _request_timeout=2)
    kube_api.pause()
    kube_api.resume()
    assert core.read_node("node-1", _request_timeout=2).metadata.name == "node-1"
    assert kube_api.connections_accepted == 2
