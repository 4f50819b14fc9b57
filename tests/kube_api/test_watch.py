"""Watch streams, paged lists, compaction and the pod binding subresource of the fake API,
checked with the official client and with a raw socket (the wire format itself)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kube_api import FakeKubeAPI

PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
def core(kube_api: FakeKubeAPI):
    configuration = client.Configuration(host=kube_api.url)
    configuration.retries = 0
    with client.ApiClient(configuration) as api_client:
        yield client.CoreV1Api(api_client)


def pod(name: str, namespace: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }


def test_a_watch_is_a_chunked_stream_of_json_lines(kube_api: FakeKubeAPI):
    kube_api.seed(PODS, pod("a"))
    with socket.create_connection(("127.0.0.1", kube_api.port), timeout=5) as sock:
        sock.sendall(
            b"GET /api/v1/pods?watch=true&resourceVersion=0&timeoutSeconds=1 HTTP/1.1\r\n"
            b"Host: x\r\n\r\n"
        )
        raw = b""
        while not raw.endswith(b"0\r\n\r\n") and (chunk := sock.recv(65536)):
            raw += chunk
        # The stream's end is not the connection's: kube-apiserver keeps it for the next request.
        sock.sendall(b"GET /api/v1/namespaces/default/pods/a HTTP/1.1\r\nHost: x\r\n\r\n")
        after = sock.recv(65536)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\n\r\n"), "a clean end after timeoutSeconds"
    assert after.startswith(b"HTTP/1.1 200"), after[:100]
    size, _, rest = body.partition(b"\r\n")
    line = rest[: int(size, 16)]
    event = json.loads(line)
    assert (
        line.endswith(b"\n")
        and event["type"] == "ADDED"
        and event["object"]["metadata"]["name"] == "a"
    )


def test_watch_from_a_version_streams_later_changes_in_every_namespace(kube_api, core):
    first = kube_api.seed(PODS, pod("a"))
    since = first["metadata"]["resourceVersion"]
    kube_api.seed("/api/v1/namespaces/other/pods", pod("b", "other"))
    kube_api.seed("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "unrelated"}})
    kube_api.handle(
        "PATCH", f"{PODS}/a", "application/merge-patch+json", {"metadata": {"labels": {"x": "1"}}}
    )
    kube_api.delete(f"{PODS}/a")
    events = list(
        watch.Watch().stream(
            core.list_pod_for_all_namespaces, resource_version=since, timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions) and versions[-1] == kube_api.revision
    namespaced = list(
        watch.Watch().stream(
            core.list_namespaced_pod, "other", resource_version=since, timeout_seconds=1
        )
    )
    assert [e["object"].metadata.name for e in namespaced] == ["b"]


def test_bookmarks_carry_the_newest_revision(kube_api, core):
    kube_api.bookmark_interval = 0.1
    kube_api.seed("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "c"}})
    stream = watch.Watch()
    events = []
    for event in stream.stream(
        core.list_pod_for_all_namespaces,
        resource_version="1",
        allow_watch_bookmarks=True,
        timeout_seconds=1,
    ):
        events.append(event)
        stream.stop()
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["raw_object"]["metadata"]["resourceVersion"] == str(kube_api.revision)


def test_a_compacted_version_is_410_for_watches_and_continues(kube_api, core):
    for i in range(5):
        kube_api.seed(PODS, pod(f"p{i}"))
    page = core.list_pod_for_all_namespaces(limit=2)
    assert (
        len(page.items) == 2 and page.metadata._continue and page.metadata.remaining_item_count == 3
    )
    rest = core.list_pod_for_all_namespaces(limit=10, _continue=page.metadata._continue)
    assert [p.metadata.name for p in rest.items] == [
        "p2",
        "p3",
        "p4",
    ] and not rest.metadata._continue
    kube_api.seed(PODS, pod("later"))
    kube_api.compact()  # revisions before "later" are gone
    with pytest.raises(ApiException) as old_watch:
        list(
            watch.Watch().stream(
                core.list_pod_for_all_namespaces, resource_version="2", timeout_seconds=1
            )
        )
    assert old_watch.value.status == 410 and "too old resource version" in old_watch.value.reason
    with pytest.raises(ApiException) as old_page:
        core.list_pod_for_all_namespaces(limit=2, _continue=page.metadata._continue)
    assert old_page.value.status == 410


def test_compaction_takes_nothing_from_an_open_watch(kube_api):
    """kube-apiserver's watch cache dispatches each event into every open watcher's
    channel as it happens: an etcd compaction after that takes nothing from a watch
    already open, however far behind its reader is. (Only a watch opened or resumed from
    before the compaction is told 410.) The stream here is opened and read in this
    thread, so the compaction falls between the write and the read on every run."""
    since = kube_api.revision
    stream = kube_api.open_watch(f"{PODS}?watch=true&resourceVersion={since}&timeoutSeconds=1")
    kube_api.seed(PODS, pod("before-compaction"))
    kube_api.compact()
    kube_api.seed(PODS, pod("after-compaction"))
    events = list(stream)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "before-compaction"),
        ("ADDED", "after-compaction"),
    ]


def test_an_event_is_encoded_once_for_all_its_watchers(kube_api, monkeypatch):
    """kube-apiserver's watch cache encodes an event once and writes the same bytes to
    every watcher it goes to (``cachingObject``, KEP-1152): a second watcher of pods, as
    netsched's beside kube-scheduler's informer, costs the server a write, not an
    encoding. A watch whose selection turns the change into ADDED sends that type."""
    since = kube_api.revision
    plain = kube_api.open_watch(f"{PODS}?watch=true&resourceVersion={since}&timeoutSeconds=1")
    also_plain = kube_api.open_watch(f"/api/v1/pods?watch=true&resourceVersion={since}&timeoutSeconds=1")
    selected = kube_api.open_watch(
        f"{PODS}?watch=true&resourceVersion={since}&timeoutSeconds=1&fieldSelector=spec.nodeName%3Dnode-a"
    )
    kube_api.seed(PODS, pod("p"))
    kube_api.handle("PATCH", f"{PODS}/p", "application/merge-patch+json", {"spec": {"nodeName": "node-a"}})
    encoded = []
    dumps = json.dumps
    monkeypatch.setattr(json, "dumps", lambda obj, *a, **k: encoded.append(obj["type"]) or dumps(obj, *a, **k))
    first, second, third = list(plain), list(also_plain), list(selected)

    assert [e["type"] for e in first] == [e["type"] for e in second] == ["ADDED", "MODIFIED"]
    assert all(a is b and a.line() is b.line() for a, b in zip(first, second))
    assert [e["type"] for e in third] == ["ADDED"] and third[0] is not first[1]
    assert json.loads(third[0].line())["object"]["spec"]["nodeName"] == "node-a"
    assert sorted(encoded) == ["ADDED", "ADDED", "MODIFIED"], "one encoding per event and type sent"


def test_open_watches_can_be_dropped_or_expired(kube_api, core):
    outcomes = {}

    def follow(label: str) -> None:
        try:
            for _ in watch.Watch().stream(
                core.list_pod_for_all_namespaces,
                resource_version=str(kube_api.revision),
                timeout_seconds=10,
            ):
                pass
            outcomes[label] = "ended"
        except ApiException as error:
            outcomes[label] = error.status
        except Exception as error:  # noqa: BLE001 - the broken stream, as urllib3 reports it
            outcomes[label] = type(error).__name__

    dropped = threading.Thread(target=follow, args=("drop",))
    dropped.start()
    while kube_api.open_watches < 1:
        threading.Event().wait(0.01)
    kube_api.drop_watches()
    dropped.join(5)
    expired = threading.Thread(target=follow, args=("expire",))
    expired.start()
    while kube_api.open_watches < 1:
        threading.Event().wait(0.01)
    kube_api.expire_watches()
    expired.join(5)
    assert outcomes["expire"] == 410
    assert outcomes["drop"] not in ("ended", 410), "a cut stream is an error, not a clean end"


def test_a_dropped_watch_whose_client_reset_the_connection_ends_quietly(kube_api, capsys):
    """A client gone with a reset (a killed process) before its watch is cut: the server
    ends the stream without an error, as kube-apiserver does with a vanished watcher. The
    fake's cut (a shutdown of the socket) met the closed connection (ENOTCONN) and its
    handler thread died with a traceback."""
    sock = socket.create_connection(("127.0.0.1", kube_api.port), timeout=5)
    sock.sendall(b"GET /api/v1/pods?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # linger 0: a reset, as the kernel sends for a process killed mid-stream
    time.sleep(0.2)
    assert kube_api.open_watches == 1
    kube_api.drop_watches()
    deadline = time.monotonic() + 5
    while kube_api.open_watches and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the handler thread reports an error right after the stream ends
    assert kube_api.open_watches == 0
    assert "Traceback" not in capsys.readouterr().err


def test_binding_sets_the_node_once_with_a_uid_precondition(kube_api, core):
    created = kube_api.seed(PODS, pod("p"))
    body = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p", "uid": "wrong"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    with pytest.raises(ApiException) as wrong_uid:
        core.create_namespaced_pod_binding("p", "default", body, _preload_content=False)
    assert wrong_uid.value.status == 409 and "Precondition failed" in str(wrong_uid.value.body)
    body["metadata"]["uid"] = created["metadata"]["uid"]
    answer = core.create_namespaced_pod_binding("p", "default", body, _preload_content=False)
    assert answer.status == 201 and json.loads(answer.data)["kind"] == "Status"
    stored = kube_api.get(f"{PODS}/p")
    assert stored["spec"]["nodeName"] == "n1"
    assert int(stored["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    body["target"]["name"] = "n2"
    with pytest.raises(ApiException) as again:
        core.create_namespaced_pod_binding("p", "default", body, _preload_content=False)
    assert again.value.status == 409 and 'already assigned to node \\"n1\\"' in str(
        again.value.body
    )
    with pytest.raises(ApiException) as renamed:
        core.create_namespaced_pod_binding("ghost", "default", body, _preload_content=False)
    assert renamed.value.status == 400  # the Binding's name must be the URL's
    body["metadata"]["name"] = "ghost"
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_pod_binding("ghost", "default", body, _preload_content=False)
    assert missing.value.status == 404


def test_a_patch_with_a_foreign_uid_is_a_conflict(kube_api, core):
    kube_api.seed(PODS, pod("p"))
    with pytest.raises(ApiException) as conflict:
        core.patch_namespaced_pod(
            "p",
            "default",
            {"metadata": {"uid": "someone-else", "labels": {"a": "b"}}},
            _content_type="application/merge-patch+json",
        )
    assert conflict.value.status == 409
