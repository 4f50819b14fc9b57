"""HTTPS as kube-scheduler uses it (``enableHTTPS`` + ``tlsConfig.caFile``), with a pair made here."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scheduler_extender.certificates import issue, new_ca
from scheduler_extender.server import ServeOptions
from tests.conftest import load_fixture
from tests.kubernetes.conftest import (
    PODS,
    PROCESS_START_TIMEOUT,
    bind_body,
    pod_object,
    seed_nodes,
    wait_until,
)
from tests.kubernetes.test_leader import ROOT, free_port


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(ca.crt, tls.crt, tls.key): a CA and a server certificate for 127.0.0.1 and the Service,
    made as ``netsched certificates`` makes them."""
    folder = tmp_path_factory.mktemp("tls")
    ca = new_ca("netsched test CA", days=1)
    server = issue(
        ca, "netsched-extender", days=1,
        dns_names=("localhost", "netsched-extender.kube-system.svc"), ip_addresses=("127.0.0.1",),
    )
    paths = folder / "ca.crt", folder / "tls.crt", folder / "tls.key"
    for path, pem in zip(paths, (ca.cert, server.cert, server.key), strict=True):
        path.write_bytes(pem)
    return paths


def trusting(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def test_the_webhook_over_https_with_the_ca_kube_scheduler_is_given(kube_api, serve, pair):
    ca, cert, key = pair
    seed_nodes(kube_api, 2)
    pod = kube_api.seed(PODS, pod_object("secure", egress="1G"))
    served = serve(ServeOptions(port=0, tls_cert=str(cert), tls_key=str(key)))
    assert served.url.startswith("https://127.0.0.1:")
    with httpx.Client(base_url=served.url, verify=trusting(ca), timeout=10) as client:
        assert client.get("/readyz").text == "ok"
        # a body kube-scheduler v1.36 sent, for a pod netsched does not know
        answer = client.post(
            "/filter", json=load_fixture("kube-scheduler-v1.36/nodecache-filter.json")
        )
        assert answer.status_code == 200 and "NodeNames" in answer.json()
        wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
        assert client.post("/bind", json=bind_body(pod, "node-00")).json() == {"Error": ""}
    assert kube_api.get(f"{PODS}/secure")["spec"]["nodeName"] == "node-00"


def test_https_refuses_clients_that_do_not_trust_it_and_plain_http(kube_api, serve, pair):
    _, cert, key = pair
    seed_nodes(kube_api, 1)
    served = serve(ServeOptions(port=0, tls_cert=str(cert), tls_key=str(key)))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{served.url}/healthz", timeout=5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(served.url.replace("https://", "http://") + "/healthz", timeout=5)


def test_netsched_serve_takes_the_pair_on_the_command_line(kube_api, kubeconfig, pair, tmp_path):
    ca, cert, key = pair
    seed_nodes(kube_api, 1)
    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netsched.cli",
            "serve",
            "--kubernetes",
            "--kubeconfig",
            str(kubeconfig),
            "--port",
            str(port),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:

        def ready() -> bool:
            try:
                return (
                    httpx.get(
                        f"https://127.0.0.1:{port}/readyz", verify=trusting(ca), timeout=2
                    ).text
                    == "ok"
                )
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=PROCESS_START_TIMEOUT, what="netsched serve over HTTPS")
        assert f"netsched extender on https://127.0.0.1:{port}" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--leader-elect"], "--kubeconfig, --leader-elect and --publish-resource-slices need --kubernetes"),
        (["--publish-resource-slices"], "--kubeconfig, --leader-elect and --publish-resource-slices need --kubernetes"),
    ],
)
def test_serve_refuses_half_configurations(extra, message, tmp_path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netsched.cli",
            "serve",
            "--cluster",
            str(cluster),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and message in result.stderr


def test_serve_wants_exactly_one_of_cluster_and_kubernetes(tmp_path):
    for extra, message in (
        ([], "one of the arguments --cluster --kubernetes is required"),
        (["--cluster", "x.yaml", "--kubernetes"], "not allowed with argument"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "netsched.cli", "serve", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2 and message in result.stderr
