"""The credential rule: a given kubeconfig, else the pod's service account, else the
user's kubeconfig (``$KUBECONFIG``, else ``~/.kube/config``).

Every branch runs on temporary paths: the environment, the service account's files and
the home folder are passed in, nothing of the process's own is read or changed. Where a
branch yields a kubeconfig, the client it builds reads a Node from the in-test API
server, so the test shows the rule picked that file, not only that it parsed one; the
service account's branch reads one over TLS from a server its mounted CA signed, as a
pod reaches the ``kubernetes`` Service.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from kubernetes_access import (
    NoConfiguration,
    Places,
    ServiceAccount,
    Unavailable,
    api_client,
    api_errors,
    load_configuration,
)
from scheduler_extender.certificates import Pair, issue, new_ca
from tests.kube_api import FakeKubeAPI

IN_A_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
"""What kubelet sets in every container of a pod (the ``kubernetes`` Service)."""


@pytest.fixture
def served_node(kube_api: FakeKubeAPI) -> FakeKubeAPI:
    kube_api.seed("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                    "metadata": {"name": "node-a"}})
    return kube_api


@pytest.fixture
def service_account(tmp_path: Path) -> ServiceAccount:
    """The files kubelet mounts for a pod's service account, in a temporary folder."""
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").write_text("sa-token")
    (folder / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return ServiceAccount(token=folder / "token", ca=folder / "ca.crt")


def elsewhere(path: Path) -> Path:
    """A kubeconfig for a server nobody runs: a test that reaches the API did not use it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "other", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "other", "user": {"token": "other"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
    }))
    return path


def reads_the_node(api: client.ApiClient) -> bool:
    with api:
        return client.CoreV1Api(api).read_node("node-a", _request_timeout=5).metadata.name == "node-a"


def test_a_given_kubeconfig_wins_over_the_service_account_and_home(
    served_node: FakeKubeAPI, service_account: ServiceAccount, tmp_path: Path
) -> None:
    """``--kubeconfig`` inside a pod (a reporter pointed at another cluster, the CNI's own
    kubeconfig on the host): the file is used, the pod's service account is not."""
    given = served_node.write_kubeconfig(tmp_path / "given")
    elsewhere(tmp_path / "home" / ".kube" / "config")
    environ = {**IN_A_POD, "KUBECONFIG": str(elsewhere(tmp_path / "k"))}
    api = api_client(given, places=Places(environ, service_account, tmp_path / "home"))
    assert api.configuration.host == served_node.url
    assert reads_the_node(api)


def test_in_a_pod_the_service_account_is_used(service_account: ServiceAccount,
                                              tmp_path: Path) -> None:
    """``KUBERNETES_SERVICE_HOST``/``PORT`` name the API server (always https), the
    mounted token is the bearer token and the mounted CA verifies the server."""
    elsewhere(tmp_path / "home" / ".kube" / "config")
    configuration = load_configuration(None, Places(IN_A_POD, service_account, tmp_path / "home"))
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.ssl_ca_cert == str(service_account.ca)
    assert configuration.auth_settings()["BearerToken"]["value"] == "bearer sa-token"


def test_an_ipv6_service_host_is_bracketed(service_account: ServiceAccount) -> None:
    """A dual-stack or IPv6 cluster's ``kubernetes`` Service address."""
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    configuration = load_configuration(None, Places(environ, service_account))
    assert configuration.host == "https://[fd00::1]:443"


def test_outside_a_pod_the_home_kubeconfig_is_used(served_node: FakeKubeAPI,
                                                   tmp_path: Path) -> None:
    """An operator's laptop: no kubeconfig given, not in a pod: ``~/.kube/config``."""
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    served_node.write_kubeconfig(home / ".kube" / "config")
    api = api_client(None, places=Places(environ={}, home=home))
    assert reads_the_node(api)


def test_kubeconfig_in_the_environment_comes_before_the_home_one(served_node: FakeKubeAPI,
                                                                 tmp_path: Path) -> None:
    """``$KUBECONFIG``, as kubectl and the client's own default read it."""
    elsewhere(tmp_path / "home" / ".kube" / "config")
    chosen = served_node.write_kubeconfig(tmp_path / "chosen")
    api = api_client(None, places=Places({"KUBECONFIG": str(chosen)}, home=tmp_path / "home"))
    assert reads_the_node(api)


def test_an_empty_service_host_is_not_a_pod(served_node: FakeKubeAPI,
                                            service_account: ServiceAccount,
                                            tmp_path: Path) -> None:
    """A set but empty ``KUBERNETES_SERVICE_HOST`` does not count as running in a pod."""
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    served_node.write_kubeconfig(tmp_path / "home" / ".kube" / "config")
    places = Places({"KUBERNETES_SERVICE_HOST": ""}, service_account, tmp_path / "home")
    api = api_client(None, places=places)
    assert reads_the_node(api)


def test_the_rule_does_not_fall_through_a_broken_choice(service_account: ServiceAccount,
                                                        tmp_path: Path) -> None:
    """A given kubeconfig that cannot be read is an error naming it, even where the
    service account or the home kubeconfig would work: not quietly another cluster."""
    broken = tmp_path / "broken"
    broken.write_text("- a YAML list\n- is not a kubeconfig\n")
    elsewhere(tmp_path / "home" / ".kube" / "config")
    with pytest.raises(NoConfiguration) as raised:
        load_configuration(broken, Places(IN_A_POD, service_account, tmp_path / "home"))
    assert raised.value.where == f"kubeconfig {broken}"
    assert str(raised.value).startswith(f"no Kubernetes API configuration: kubeconfig {broken}: ")


@pytest.mark.parametrize(("content", "says"), [
    (None, "No configuration found"),
    ("", "is empty"),
    ("clusters: [", "while parsing"),
    (json.dumps({"current-context": "x"}), "Expected object with name x"),
])
def test_an_unusable_kubeconfig_is_said_plainly(tmp_path: Path, content: str | None,
                                                says: str) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(NoConfiguration, match=f"kubeconfig {path}: .*{says}"):
        load_configuration(path, Places(environ={}))


@pytest.mark.parametrize(("missing", "says"), [
    ("token", "Service token file does not exist"),
    ("ca", "Service certification file does not exist"),
])
def test_a_pod_without_its_service_account_files_is_said_plainly(
    service_account: ServiceAccount, missing: str, says: str
) -> None:
    """A pod with ``automountServiceAccountToken: false``, or the wrong mount path."""
    getattr(service_account, missing).unlink()
    with pytest.raises(NoConfiguration) as raised:
        load_configuration(None, Places(IN_A_POD, service_account))
    assert raised.value.where == f"service account ({service_account.token})"
    assert raised.value.detail == says + "."


def test_no_home_kubeconfig_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(NoConfiguration, match="kubeconfig .*/home/.kube/config: "):
        load_configuration(None, Places(environ={}, home=tmp_path / "home"))


def test_retries_and_pool_size_are_the_callers(served_node: FakeKubeAPI, tmp_path: Path) -> None:
    """urllib3's retries off unless asked for (the callers back off themselves); the pool
    as large as the caller's concurrent requests."""
    kubeconfig = served_node.write_kubeconfig(tmp_path / "k")
    isolated = Places(environ={})
    plain = api_client(kubeconfig, places=isolated)
    assert plain.configuration.retries == 0
    sized = api_client(kubeconfig, pool_size=21, places=isolated)
    assert sized.configuration.connection_pool_maxsize == 21
    kept = api_client(kubeconfig, retries=None, places=isolated)
    assert kept.configuration.retries is None
    for api in (plain, sized, kept):
        assert reads_the_node(api)


class _Apiserver(BaseHTTPRequestHandler):
    """Answers any GET with a Node, remembering the Authorization header it was sent."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        self.seen.append(self.headers.get("Authorization", ""))
        body = json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_apiserver(tmp_path: Path) -> Iterator[tuple[int, Pair, type[_Apiserver]]]:
    """An HTTPS server on 127.0.0.1 with a certificate from its own CA, as the cluster's
    API server is reached at the ``kubernetes`` Service address; (port, CA, handler)."""
    ca = new_ca("cluster-ca", days=1)
    leaf = issue(ca, "kube-apiserver", days=1, ip_addresses=("127.0.0.1",))
    (tmp_path / "server.crt").write_bytes(leaf.cert)
    (tmp_path / "server.key").write_bytes(leaf.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    handler = type("Handler", (_Apiserver,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], ca, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def in_a_pod_at(port: int) -> dict[str, str]:
    return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port)}


def test_the_service_account_reaches_the_api_server_over_tls(
    https_apiserver: tuple[int, Pair, type[_Apiserver]], service_account: ServiceAccount
) -> None:
    """What a pod does: https to the Service address, the mounted CA verifying the
    server, the mounted token sent as the bearer token."""
    port, ca, handler = https_apiserver
    service_account.ca.write_bytes(ca.cert)
    assert reads_the_node(api_client(None, places=Places(in_a_pod_at(port), service_account)))
    assert handler.seen == ["bearer sa-token"]


def test_a_server_the_mounted_ca_did_not_sign_is_not_trusted(
    https_apiserver: tuple[int, Pair, type[_Apiserver]], service_account: ServiceAccount
) -> None:
    """A CA that does not match the server (a stale mount after the cluster's CA
    rotated): no request is sent, the failure says why, as the server being unreachable."""
    port, _, handler = https_apiserver
    service_account.ca.write_bytes(new_ca("another-ca", days=1).cert)
    api = api_client(None, places=Places(in_a_pod_at(port), service_account))
    with api, pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
        with api_errors():
            client.CoreV1Api(api).read_node("node-a", _request_timeout=5)
    assert handler.seen == []


@pytest.fixture
def counted_proxy_lookups(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """Each call of the client's ``getproxies`` (a scan of the whole environment) as an entry."""
    from kubernetes.client import configuration as client_configuration

    calls: list[None] = []
    lookup = client_configuration.getproxies

    def counted() -> dict[str, str]:
        calls.append(None)
        return lookup()

    monkeypatch.setattr(client_configuration, "getproxies", counted)
    return calls


def test_requests_do_not_search_the_environment_for_a_proxy(
    served_node: FakeKubeAPI, service_account: ServiceAccount, tmp_path: Path, counted_proxy_lookups: list[None]
) -> None:
    """Both loaders re-apply their settings before every request (the token refresh hook);
    setting ``host`` made the client scan the environment for a proxy each time."""
    kubeconfig = served_node.write_kubeconfig(tmp_path / "k")
    for configuration in (load_configuration(kubeconfig, Places(environ={})),
                          load_configuration(None, Places(IN_A_POD, service_account))):
        assert configuration.refresh_api_key_hook is not None  # the per-request path is there
        counted_proxy_lookups.clear()
        for _ in range(3):
            assert configuration.auth_settings()["BearerToken"]["value"].lower().startswith("bearer ")
        assert counted_proxy_lookups == []
    api = api_client(kubeconfig, places=Places(environ={}))
    counted_proxy_lookups.clear()
    assert reads_the_node(api)
    assert counted_proxy_lookups == []


def test_the_environments_proxy_still_applies(service_account: ServiceAccount,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``HTTPS_PROXY`` and ``NO_PROXY`` as the process was started with them (the client
    reads ``os.environ`` for them, not the credential rule's places), before and after a
    request's refresh."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8")
    configuration = load_configuration(None, Places(IN_A_POD, service_account))
    assert (configuration.proxy, configuration.no_proxy) == ("http://proxy.example:3128", "10.0.0.0/8")
    configuration.auth_settings()
    assert configuration.proxy == "http://proxy.example:3128"
