"""Only kube-scheduler reaches the verbs: mutual TLS with the pairs ``netsched certificates`` makes.

The pairs come from the command writing its Secrets into the in-test API server, and
the caller dials the Service name as kube-scheduler does (``urlPrefix:
https://netsched-extender.kube-system.svc:…``, ``tlsConfig`` certFile/keyFile/caFile):
Go's TLS client checks the server name against the certificate and presents its
client certificate when the server asks for one.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import socket
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dashboard import dashboard_router
from netsched.commands.certificates import CA_SECRET, EXTENDER_SECRET, SCHEDULER_SECRET
from scheduler_extender.app import create_app
from scheduler_extender.certificates import issue, new_ca
from scheduler_extender.read_api import create_read_only_app
from scheduler_extender.server import BackgroundServer, ServeOptions
from tests.go_client import build_extender_client
from tests.kubernetes.conftest import (
    PODS,
    PROCESS_START_TIMEOUT,
    bind_body,
    pod_object,
    seed_nodes,
    wait_until,
)
from tests.kubernetes.test_leader import ROOT, free_port

SERVICE_NAME = "netsched-extender.kube-system.svc"
SECRETS = "/api/v1/namespaces/kube-system/secrets"


def netsched(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netsched.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )


def secret_files(kube_api, name: str, folder: Path) -> dict[str, Path]:
    """A Secret the command wrote, as the files its volume mount would show."""
    secret = kube_api.get(f"{SECRETS}/{name}")
    assert secret is not None, f"Secret {name} was not written"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, content in secret["data"].items():
        paths[key] = folder / key
        paths[key].write_bytes(base64.b64decode(content))
    return paths


@pytest.fixture
def secrets(kube_api, kubeconfig, tmp_path) -> dict[str, dict[str, Path]]:
    result = netsched("certificates", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 0, result.stderr
    for name in (CA_SECRET, EXTENDER_SECRET, SCHEDULER_SECRET):
        assert f"created Secret kube-system/{name}" in result.stdout
    return {name: secret_files(kube_api, name, tmp_path / name) for name in (EXTENDER_SECRET, SCHEDULER_SECRET)}


def scheduler_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """What kube-scheduler's extender client builds from its tlsConfig."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def post(context: ssl.SSLContext, port: int, path: str, body: dict) -> tuple[int, dict]:
    """POST over TLS to 127.0.0.1, naming the server by its Service DNS name."""
    connection = http.client.HTTPSConnection(SERVICE_NAME, port, context=context, timeout=10)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sock = context.wrap_socket(raw, server_hostname=SERVICE_NAME)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def mutual_tls(secrets) -> ServeOptions:
    server = secrets[EXTENDER_SECRET]
    return ServeOptions(
        port=0, tls_cert=str(server["tls.crt"]), tls_key=str(server["tls.key"]),
        tls_client_ca=str(server["ca.crt"]),
    )


def test_kube_scheduler_with_its_client_pair_filters_and_binds(kube_api, serve, secrets):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("trusted", egress="1G"))
    served = serve(mutual_tls(secrets))
    client = secrets[SCHEDULER_SECRET]
    context = scheduler_context(client["ca.crt"], client["tls.crt"], client["tls.key"])
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    port = served.server.port
    status, answer = post(context, port, "/filter",
                          {"Pod": pod, "Nodes": None, "NodeNames": ["node-00"]})
    assert (status, answer["NodeNames"]) == (200, ["node-00"])
    assert post(context, port, "/bind", bind_body(pod, "node-00")) == (200, {"Error": ""})
    assert kube_api.get(f"{PODS}/trusted")["spec"]["nodeName"] == "node-00"


@pytest.mark.parametrize("caller", ["no certificate", "another CA's client", "the server's own pair"])
def test_callers_without_a_client_certificate_from_the_ca_cannot_bind(kube_api, serve, secrets, tmp_path, caller):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("victim", egress="1G"))
    served = serve(mutual_tls(secrets))
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    trusted_ca = secrets[SCHEDULER_SECRET]["ca.crt"]
    if caller == "no certificate":
        cert = key = None
    elif caller == "another CA's client":
        # A tenant's own CA, with a certificate that claims to be the scheduler.
        forged = issue(new_ca("tenant CA", 1), "netsched-scheduler", days=1, client=True)
        cert, key = tmp_path / "forged.crt", tmp_path / "forged.key"
        cert.write_bytes(forged.cert)
        key.write_bytes(forged.key)
    else:
        # Signed by the right CA, but for serving: its extended key usage is not clientAuth.
        cert, key = secrets[EXTENDER_SECRET]["tls.crt"], secrets[EXTENDER_SECRET]["tls.key"]
    context = scheduler_context(trusted_ca, cert, key)
    # TLS 1.3 sends the server's refusal after the client's handshake has finished: it
    # surfaces on the first read as an alert (certificate required / unknown CA).
    with pytest.raises((ssl.SSLError, ConnectionError)):
        post(context, served.server.port, "/bind", bind_body(pod, "node-00"))
    assert kube_api.get(f"{PODS}/victim")["spec"].get("nodeName") is None
    assert not [r for r in kube_api.requests if r.path.endswith("/binding")], "no Binding was attempted"


def test_plain_http_to_the_verbs_listener_gets_nothing(kube_api, serve, secrets):
    seed_nodes(kube_api, 1)
    served = serve(mutual_tls(secrets))
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"http://127.0.0.1:{served.server.port}/bind", json={}, timeout=5)


def test_the_read_only_listener_serves_what_changes_nothing_and_no_verb(kube_api, serve, secrets):
    seed_nodes(kube_api, 1)
    served = serve(mutual_tls(secrets))
    read_only_app = create_read_only_app(served.extender, [dashboard_router(served.extender)])
    with BackgroundServer(read_only_app, ServeOptions(port=0)) as read_only, \
            httpx.Client(base_url=read_only.url, timeout=10) as client:
        assert client.get("/readyz").text == "ok"
        assert "netsched_" in client.get("/metrics").text
        assert [node["name"] for node in client.get("/api/v1/topology").json()["nodes"]] == ["node-00"]
        assert client.get("/dashboard").status_code == 200
        for verb in ("/filter", "/prioritize", "/bind", "/preempt"):
            assert client.post(verb, json={}).status_code in (404, 405)
        assert not {"/filter", "/prioritize", "/bind", "/preempt"} & set(client.get("/openapi.json").json()["paths"])


def test_the_verbs_listener_serves_no_read_only_endpoint(kube_api, serve, secrets):
    seed_nodes(kube_api, 1)
    extender = serve(ServeOptions(port=0)).extender
    client = secrets[SCHEDULER_SECRET]
    context = scheduler_context(client["ca.crt"], client["tls.crt"], client["tls.key"])
    verbs_only = create_app(extender, start_source=False, read_only=False)
    with BackgroundServer(verbs_only, mutual_tls(secrets)) as server:
        connection = http.client.HTTPSConnection(SERVICE_NAME, server.port, context=context, timeout=10)
        connection.sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", server.port)), server_hostname=SERVICE_NAME
        )
        for path, status in (("/healthz", 200), ("/metrics", 404), ("/api/v1/topology", 404), ("/dashboard", 404)):
            connection.request("GET", path)
            answer = connection.getresponse()
            answer.read()
            assert answer.status == status, path
        connection.close()


@pytest.mark.parametrize(("flags", "protocol"), [((), "h2"), (("--no-http2",), None)])
def test_netsched_serve_with_mutual_tls_and_a_read_only_port(kube_api, kubeconfig, secrets, tmp_path, flags, protocol):
    """``netsched serve`` as deploy/ runs it; a client offering HTTP/2 and HTTP/1.1, as
    kube-scheduler's does, gets HTTP/2, and with ``--no-http2`` no protocol chosen by ALPN,
    which a client reads as HTTP/1.1 (RFC 7301)."""
    seed_nodes(kube_api, 1)
    server, client = secrets[EXTENDER_SECRET], secrets[SCHEDULER_SECRET]
    port, read_only_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "netsched.cli", "serve", "--kubernetes",
         "--kubeconfig", str(kubeconfig), "--port", str(port), "--read-only-port", str(read_only_port),
         "--tls-cert", str(server["tls.crt"]), "--tls-key", str(server["tls.key"]),
         "--tls-client-ca", str(server["ca.crt"]), *flags],
        cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{read_only_port}/readyz", timeout=2).text == "ok"
            except httpx.HTTPError:
                return False

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return True
            except OSError:
                return False

        # The read-only listener can be up and the cluster loaded before uvicorn has bound
        # the verbs' port: a POST in between would be refused.
        wait_until(ready, timeout=PROCESS_START_TIMEOUT, what="the read-only listener")
        wait_until(listening, timeout=PROCESS_START_TIMEOUT, what="the verbs' listener")
        context = scheduler_context(client["ca.crt"], client["tls.crt"], client["tls.key"])
        status, answer = post(context, port, "/filter", {"Pod": {"metadata": {"name": "p"}}, "NodeNames": ["node-00"]})
        assert (status, answer["NodeNames"]) == (200, ["node-00"])
        with pytest.raises((ssl.SSLError, ConnectionError)):
            post(scheduler_context(client["ca.crt"], None, None), port, "/filter", {})
        offering_both = scheduler_context(client["ca.crt"], client["tls.crt"], client["tls.key"])
        offering_both.set_alpn_protocols(["h2", "http/1.1"])
        with offering_both.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                       server_hostname=SERVICE_NAME) as connection:
            assert connection.selected_alpn_protocol() == protocol
        assert httpx.post(f"http://127.0.0.1:{read_only_port}/bind", json={}, timeout=5).status_code in (404, 405)
        text = log.read_text()
        assert f"netsched extender on https://127.0.0.1:{port} (verbs: mutual TLS)" in text
        assert f"netsched read-only API on http://127.0.0.1:{read_only_port}" in text
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_rotation_issues_new_pairs_under_the_same_ca(kube_api, kubeconfig, secrets, tmp_path):
    first = {name: kube_api.get(f"{SECRETS}/{name}")["data"] for name in (CA_SECRET, EXTENDER_SECRET, SCHEDULER_SECRET)}
    result = netsched("certificates", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 0, result.stderr
    assert "replaced Secret kube-system/netsched-scheduler-tls" in result.stdout
    assert "rollout restart deployment/netsched-extender deployment/netsched-scheduler" in result.stdout
    second = {name: kube_api.get(f"{SECRETS}/{name}")["data"] for name in first}
    assert second[CA_SECRET] == first[CA_SECRET]
    for name in (EXTENDER_SECRET, SCHEDULER_SECRET):
        assert second[name]["tls.crt"] != first[name]["tls.crt"]
        assert second[name]["ca.crt"] == first[CA_SECRET]["tls.crt"]
    result = netsched("certificates", "--kubeconfig", str(kubeconfig), "--new-ca")
    assert result.returncode == 0, result.stderr
    assert kube_api.get(f"{SECRETS}/{CA_SECRET}")["data"]["tls.crt"] != first[CA_SECRET]["tls.crt"]


def test_certificates_to_a_folder(tmp_path):
    result = netsched("certificates", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in (CA_SECRET, EXTENDER_SECRET, SCHEDULER_SECRET):
        assert (tmp_path / name / "tls.crt").exists()
        assert (tmp_path / name / "tls.key").stat().st_mode & 0o077 == 0, "keys are private"


def test_kube_scheduler_asking_for_http2_sends_every_verb_on_one_connection(kube_api, serve, secrets):
    """kube-scheduler's extender client asks for HTTP/2 over TLS: ``makeTransport`` passes
    its ``http.Transport`` through ``utilnet.SetTransportDefaults``, which configures HTTP/2
    on it. Served HTTP/2, it sends filters, binds in flight together and a body of a
    megabyte (past HTTP/2's 64 KB flow-control window) on one connection. Served only
    HTTP/1.1, it would keep two idle connections and open one for every request beyond
    them, each a TLS handshake."""
    seed_nodes(kube_api, 2)
    pods = [kube_api.seed(PODS, pod_object(f"multiplexed-{index}", egress="100M")) for index in range(8)]
    served = serve(mutual_tls(secrets))
    for pod in pods:
        wait_until(lambda pod=pod: served.extender.state.pod(pod["metadata"]["uid"]), what="the pods")
    client_files = secrets[SCHEDULER_SECRET]
    context = scheduler_context(client_files["ca.crt"], client_files["tls.crt"], client_files["tls.key"])
    connections: list[str] = []

    def trace(event: str, _: dict) -> None:
        if event == "connection.connect_tcp.complete":
            connections.append(event)

    with httpx.Client(http2=True, verify=context, base_url=f"https://127.0.0.1:{served.server.port}",
                      timeout=30) as client:
        def post(path: str, body: dict) -> dict:
            reply = client.post(path, json=body, extensions={"sni_hostname": SERVICE_NAME, "trace": trace})
            assert (reply.status_code, reply.http_version) == (200, "HTTP/2")
            return reply.json()

        large = {**pods[0], "metadata": {**pods[0]["metadata"],
                                         "annotations": {"example.com/filler": "x" * 1_000_000}}}
        assert post("/filter", {"Pod": large, "Nodes": None, "NodeNames": ["node-00", "node-01"]})["NodeNames"] == [
            "node-00", "node-01"]
        with ThreadPoolExecutor(len(pods)) as binds:
            answers = list(binds.map(lambda pod: post("/bind", bind_body(pod, "node-01")), pods))
    assert answers == [{"Error": ""}] * len(pods)
    assert [kube_api.get(f"{PODS}/{pod['metadata']['name']}")["spec"]["nodeName"] for pod in pods] == [
        "node-01"] * len(pods)
    assert len(connections) == 1


@pytest.fixture(scope="module")
def go_extender_client(tmp_path_factory) -> Path:
    """kube-scheduler's extender client, from Go's own net/http (``tests/go_client.py``)."""
    return build_extender_client(tmp_path_factory.mktemp("go"))


def go_filters(go_extender_client: Path, served, secrets, requests: int = 64) -> dict:
    """``requests`` filters sent at once by Go's client with kube-scheduler's pair: the
    protocol of each answer and the connections it opened."""
    client = secrets[SCHEDULER_SECRET]
    result = subprocess.run(
        [str(go_extender_client), "-url", f"https://127.0.0.1:{served.server.port}", "-server-name", SERVICE_NAME,
         "-ca", str(client["ca.crt"]), "-cert", str(client["tls.crt"]), "-key", str(client["tls.key"]),
         "-requests", str(requests)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(result.stdout)


def test_go_net_http_configured_as_kube_scheduler_sends_64_requests_on_one_connection(
    kube_api, serve, secrets, go_extender_client
):
    """Go's HTTP client, set up as kube-scheduler's ``makeTransport`` sets it up, negotiates
    HTTP/2 with the extender and carries 64 requests sent at once on one connection. Over
    HTTP/1.1 the same client opened 34 and 7 connections for them in two tries (by hand,
    against the extender before it offered HTTP/2): Go keeps two idle connections per host."""
    seed_nodes(kube_api, 1)
    served = serve(mutual_tls(secrets))
    assert go_filters(go_extender_client, served, secrets) == {"answers": {"HTTP/2.0 200 OK": 64}, "connections": 1}


def test_go_net_http_to_an_extender_serving_http_1_1_only_opens_a_connection_per_request_in_flight(
    kube_api, serve, secrets, go_extender_client
):
    """``ServeOptions.http2`` off (``netsched serve --no-http2``): the same client falls back
    to HTTP/1.1 and, keeping two idle connections per host, dials again for requests in
    flight beyond them, each a handshake with its client certificate: the cost HTTP/2
    saves, and the way back should HTTP/2's parser misbehave."""
    seed_nodes(kube_api, 1)
    served = serve(dataclasses.replace(mutual_tls(secrets), http2=False))
    answer = go_filters(go_extender_client, served, secrets)
    assert answer["answers"] == {"HTTP/1.1 200 OK": 64}
    assert answer["connections"] > 2


@pytest.mark.parametrize(("protocol", "garbage"), [
    ("h2", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x08\x00\xff\xff\xff\xff" * 3),
    ("h2", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("http/1.1", b"\x16\x03\x01 not a request line\r\n\r\n"),
    ("http/1.1", b"POST /filter HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{"),
])
def test_bytes_that_are_not_http_over_tls_close_their_connection_and_nothing_else(
    kube_api, serve, secrets, protocol, garbage
):
    """HTTP/2's parser is zttp's (alpha); a client that got through mutual TLS and then
    sends frames or requests that are not HTTP loses its connection, and the next client
    is served as before."""
    seed_nodes(kube_api, 1)
    served = serve(mutual_tls(secrets))
    client = secrets[SCHEDULER_SECRET]
    context = scheduler_context(client["ca.crt"], client["tls.crt"], client["tls.key"])
    context.set_alpn_protocols([protocol])
    raw = socket.create_connection(("127.0.0.1", served.server.port), timeout=10)
    with context.wrap_socket(raw, server_hostname=SERVICE_NAME) as hostile:
        assert hostile.selected_alpn_protocol() == protocol
        hostile.sendall(garbage)
        answer = b""
        try:
            while chunk := hostile.recv(65536):
                answer += chunk
        except (ssl.SSLError, ConnectionResetError):
            pass
    if protocol == "http/1.1":
        assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    context = scheduler_context(client["ca.crt"], client["tls.crt"], client["tls.key"])
    status, answer = post(context, served.server.port, "/filter", {"Pod": pod_object("after"), "Nodes": None,
                                                                    "NodeNames": ["node-00"]})
    assert (status, answer["NodeNames"]) == (200, ["node-00"])
