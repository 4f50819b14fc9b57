"""What a failed call means: each answer a real kube-apiserver gives, mapped to one kind.

The refusals are replayed from what a real kube-apiserver v1.36 answered
(``tests/fixtures/kube-apiserver-v1.36``): the in-test API server answers the captured
request with the captured ``Status`` body, byte for byte the same JSON, and the official
client's exception goes through :func:`kubernetes_access.failure`. The rest is the
in-test server's own reproduction of real behaviour (a watch or a list continuation
older than the compacted history, a strategic merge patch on a custom resource), or no
server at all (refused connection, an answer that never comes, a proxy's HTML page).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from socketserver import BaseRequestHandler, ThreadingTCPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from contract.group import API_VERSION, GROUP, NETWORK, VERSION
from kubernetes_access import (
    ApiFailure,
    Conflict,
    Gone,
    NotFound,
    Refused,
    Unavailable,
    api_errors,
    describe,
)
from tests.kube_api import ApiError, FakeKubeAPI

FIXTURES = Path(__file__).parent.parent / "fixtures" / "kube-apiserver-v1.36"
PODS = "/api/v1/namespaces/team-a/pods"
NETWORKS = f"/apis/{GROUP}/{VERSION}/{NETWORK.plural}"
NETWORKS_ARGS = (GROUP, VERSION, NETWORK.plural)
"""The group, version and plural the custom objects client takes for a Network."""


def captured(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def network(name: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": NETWORK.kind, "metadata": {"name": name}}


def answer_as_captured(api: FakeKubeAPI, exchange: dict[str, Any]) -> None:
    """Make ``api`` answer the captured request's path with the captured Status."""
    status = exchange["response"]
    refusal = ApiError(status["code"], status["reason"], status["message"], status["details"])
    path = exchange["request"]["path"]
    api.fault = lambda method, requested: refusal if requested.split("?")[0] == path else None


def send(api: client.ApiClient, request: dict[str, Any]) -> None:
    """The captured request, through the official client's own call for it."""
    core = client.CoreV1Api(api)
    namespace, _, rest = request["path"].removeprefix("/api/v1/namespaces/").partition("/pods")
    name, _, subresource = rest.strip("/").partition("/")
    body, options = request["body"], {"_preload_content": False, "_request_timeout": 5}
    if subresource == "binding":
        core.create_namespaced_pod_binding(name, namespace, body, **options)
    elif subresource == "eviction":
        core.create_namespaced_pod_eviction(name, namespace, body, **options)
    elif request["method"] == "PATCH":
        core.patch_namespaced_pod(name, namespace, body, _content_type=request["contentType"],
                                  **options)
    else:
        core.create_namespaced_pod(namespace, body, **options)
    raise AssertionError(f"{request['method']} {request['path']} was not refused")


@pytest.mark.parametrize(("fixture", "kind", "reason"), [
    # BindingREST: a pod that already has spec.nodeName (another scheduler bound it first).
    ("binding-already-bound.json", Conflict, "Conflict"),
    # BindingREST: the Binding's metadata.uid precondition names another pod of that name.
    ("binding-wrong-uid.json", Conflict, "Conflict"),
    # A merge patch carrying a resourceVersion older than the stored one (optimistic locking).
    ("patch-stale-resourceversion.json", Conflict, "Conflict"),
    # A Binding of a pod that does not exist (deleted since it was scheduled).
    ("binding-unknown-pod.json", NotFound, "Not Found"),
    # An Eviction of a pod that does not exist.
    ("eviction-unknown-pod.json", NotFound, "Not Found"),
    # An Eviction a PodDisruptionBudget blocks: 429 TooManyRequests, "try again later".
    ("eviction-blocked-by-pdb.json", Unavailable, "Too Many Requests"),
    # A create a ValidatingAdmissionPolicy denies: 422 Invalid; the same request never passes.
    ("admission-policy-denied.json", Refused, "Unprocessable Entity"),
])
def test_captured_refusals_map_to_their_kind_and_name_the_servers_words(
    kube_api: FakeKubeAPI, kube_client: client.ApiClient, fixture: str, kind: type[ApiFailure],
    reason: str,
) -> None:
    exchange = captured(fixture)
    answer_as_captured(kube_api, exchange)
    with pytest.raises(ApiFailure) as raised:
        with api_errors():
            send(kube_client, exchange["request"])
    failure, status = raised.value, exchange["response"]
    assert json.loads(failure.__cause__.body) == status, "the server sent the captured body"
    assert type(failure) is kind
    assert (failure.status, failure.reason) == (exchange["status"], reason)
    assert (failure.status_reason, failure.message) == (status["reason"], status["message"])
    assert str(failure) == f"API server answered {exchange['status']} {reason}: {status['message']}"
    assert describe(failure.__cause__) == str(failure)


def test_an_existing_object_is_a_conflict_too(kube_api: FakeKubeAPI,
                                              kube_client: client.ApiClient) -> None:
    """A create of a name that exists: 409 with reason AlreadyExists, not Conflict (the
    registry's ``NewAlreadyExists``); both mean "someone else wrote first"."""
    custom = client.CustomObjectsApi(kube_client)
    custom.create_cluster_custom_object(*NETWORKS_ARGS, network("n"))
    with pytest.raises(Conflict) as raised:
        with api_errors():
            custom.create_cluster_custom_object(*NETWORKS_ARGS, network("n"))
    assert raised.value.status_reason == "AlreadyExists"
    assert str(raised.value).startswith("API server answered 409 Conflict: ")
    assert '"n" already exists' in raised.value.message


def test_a_watch_older_than_the_history_is_gone(kube_api: FakeKubeAPI,
                                                kube_client: client.ApiClient) -> None:
    """A watch from a resourceVersion etcd has compacted away: the server accepts the
    watch (200) and sends one ERROR event carrying a 410 ``Expired`` Status; the client
    raises it with no body, its reason made of the Status' reason and message."""
    kube_api.seed(NETWORKS, network("old"))
    since = str(kube_api.revision)
    kube_api.seed(NETWORKS, network("new"))
    kube_api.compact()
    custom = client.CustomObjectsApi(kube_client)
    stream = watch.Watch().stream(
        custom.list_cluster_custom_object, *NETWORKS_ARGS, resource_version=since, timeout_seconds=2,
    )
    with pytest.raises(Gone) as raised:
        with api_errors():
            list(stream)
    failure = raised.value
    assert failure.status == 410 and failure.reason.startswith("Expired: too old resource version")
    assert failure.message == failure.reason, "no body: the reason is all the server said"
    assert str(failure) == f"API server answered 410 {failure.reason}"


def test_a_list_continuation_older_than_the_history_is_gone(kube_api: FakeKubeAPI,
                                                            kube_client: client.ApiClient) -> None:
    """A ``continue`` token from before a compaction: a plain 410 Gone answer with an
    ``Expired`` Status body (the list must start again)."""
    for name in ("a", "b", "c"):
        kube_api.seed(NETWORKS, network(name))
    custom = client.CustomObjectsApi(kube_client)
    page = custom.list_cluster_custom_object(*NETWORKS_ARGS, limit=1)
    kube_api.seed(NETWORKS, network("d"))
    kube_api.compact()
    with pytest.raises(Gone) as raised:
        with api_errors():
            custom.list_cluster_custom_object(*NETWORKS_ARGS, limit=1,
                                              _continue=page["metadata"]["continue"])
    assert raised.value.status == 410 and raised.value.status_reason == "Expired"
    assert str(raised.value).startswith("API server answered 410 Gone: ")


def test_a_strategic_merge_patch_of_a_custom_resource_is_refused(
    kube_api: FakeKubeAPI, kube_client: client.ApiClient
) -> None:
    """Custom resources do not take strategic merge patch: 415 UnsupportedMediaType, which
    no retry changes."""
    kube_api.seed(NETWORKS, network("n"))
    custom = client.CustomObjectsApi(kube_client)
    with pytest.raises(Refused) as raised:
        with api_errors():
            custom.patch_cluster_custom_object(
                *NETWORKS_ARGS, "n", {"spec": {}},
                _content_type="application/strategic-merge-patch+json",
            )
    assert (raised.value.status, raised.value.status_reason) == (415, "UnsupportedMediaType")
    assert "unknown format" in str(raised.value)


def test_a_failing_server_is_unavailable(kube_api: FakeKubeAPI,
                                         kube_client: client.ApiClient) -> None:
    """A 500 as kube-apiserver answers when etcd loses its leader mid-request
    (``InternalError``): the same request may work a moment later."""
    kube_api.fault = lambda method, path: ApiError(500, "InternalError", "etcdserver: leader changed")
    with pytest.raises(Unavailable) as raised:
        with api_errors():
            client.CoreV1Api(kube_client).read_node("n")
    assert str(raised.value) == (
        "API server answered 500 Internal Server Error: etcdserver: leader changed"
    )


def test_a_server_that_is_away_is_unavailable(kube_api: FakeKubeAPI,
                                              kube_client: client.ApiClient) -> None:
    """Nothing listens (the API server restarting): urllib3 gives up, no HTTP status."""
    kube_api.pause()
    with pytest.raises(Unavailable) as raised:
        with api_errors():
            client.CoreV1Api(kube_client).read_node("n", _request_timeout=2)
    assert raised.value.status is None
    assert str(raised.value).startswith("API server unreachable: ")
    assert "Connection refused" in str(raised.value)


@contextmanager
def serving(handler: type[BaseRequestHandler]) -> Iterator[str]:
    """A loopback server for one test; its URL."""
    server = ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def client_for(url: str) -> client.ApiClient:
    """The official client on ``url`` without urllib3's retries, as the parts build theirs."""
    configuration = client.Configuration(host=url)
    configuration.retries = 0
    return client.ApiClient(configuration)


class _Silent(BaseRequestHandler):
    """Accepts the connection and never answers (a server stuck behind a full queue)."""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.settimeout(5)
        try:
            self.request.recv(1)  # until the client gives up and closes
        except OSError:
            pass


def unavailable_reading_through(handler: type[BaseRequestHandler], timeout: float) -> Unavailable:
    """What reading a Node from a server ``handler`` plays raises, mapped."""
    with serving(handler) as url, client_for(url) as api, pytest.raises(Unavailable) as raised:
        with api_errors():
            client.CoreV1Api(api).read_node("n", _request_timeout=timeout)
    return raised.value


def test_an_answer_that_never_comes_is_unavailable() -> None:
    failure = unavailable_reading_through(_Silent, timeout=0.3)
    assert failure.status is None and "timed out" in str(failure)


class _HtmlProxy(BaseHTTPRequestHandler):
    """A load balancer in front of the API server answering 502 with its own HTML page."""

    page = ("<html><body><h1>502 Bad Gateway</h1>" + "x" * 500 + "</body></html>").encode()

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


def test_a_body_that_is_not_a_status_is_quoted_not_parsed() -> None:
    failure = unavailable_reading_through(_HtmlProxy, timeout=5)
    assert (failure.status, failure.reason, failure.status_reason) == (502, "Bad Gateway", "")
    assert failure.message.startswith("<html><body><h1>502 Bad Gateway</h1>xxx")
    assert len(failure.message) == 200, "a page is quoted, not pasted whole into a log line"


def test_only_client_errors_are_mapped() -> None:
    """Anything else raised inside the block is the caller's own bug: left as it is."""
    with pytest.raises(KeyError):
        with api_errors():
            raise KeyError("not an API error")
