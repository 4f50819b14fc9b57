"""The running reporter: publishing through the Kubernetes client to an API server
speaking the real REST paths, surviving the API going away and links being renamed
or deleted under it, and serving /metrics and /healthz."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from contract.objects import NodeNetwork
from kubernetes_access import api_client
from node_reporter.config import ReporterConfig
from node_reporter.main import run_daemon
from node_reporter.publish import KubePublisher
from tests.kube_api import FakeKubeAPI
from tests.node_reporter.conftest import Namespaces, ip
from tests.node_reporter.test_discovery import BuiltNode, build_node

pytestmark = pytest.mark.kernel

NODE = "node-a-1"
OBJECT = f"/apis/netsched.io/v1alpha1/nodenetworks/{NODE}"


@dataclass
class Running:
    built: BuiltNode
    reports: queue.Queue[NodeNetwork]
    metrics_port: int
    thread: threading.Thread

    def next_report(
        self, where: Callable[[NodeNetwork], bool] = lambda r: True, timeout: float = 10
    ) -> NodeNetwork:
        deadline = time.monotonic() + timeout
        while True:
            report = self.reports.get(timeout=max(0.01, deadline - time.monotonic()))
            if where(report):
                return report

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5
            ) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def seed_node(api: FakeKubeAPI) -> dict:
    return api.seed(
        "/api/v1/nodes",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE,
                "labels": {"topology.kubernetes.io/zone": "eu-1a", "netsched.io/switch": "sw-7"},
            },
        },
    )


@pytest.fixture
def running(namespaces: Namespaces, kube_api: FakeKubeAPI, tmp_path: Path) -> Iterator[Running]:
    built = build_node(namespaces)
    seed_node(kube_api)
    config = ReporterConfig(
        node_name=NODE,
        netns=built.netns,
        interval=0.2,
        sample_seconds=0.1,
        max_backoff=1.0,
        request_timeout=2.0,
        metrics={"address": "127.0.0.1", "port": 0},
    )
    publisher = KubePublisher(
        api_client(kube_api.write_kubeconfig(tmp_path / "kubeconfig")), NODE, 2.0
    )
    reports: queue.Queue[NodeNetwork] = queue.Queue()
    ports: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            run_daemon(config, stop, publisher, on_report=reports.put, on_serving=ports.put)
        except BaseException as error:  # noqa: BLE001 - surfaced by the assertion below
            failures.append(error)

    thread = threading.Thread(target=target, name="reporter-under-test")
    thread.start()
    try:
        yield Running(built, reports, ports.get(timeout=10), thread)
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive(), "the reporter did not stop"
    assert not failures, failures


def published(api: FakeKubeAPI) -> dict:
    obj = api.get(OBJECT)
    assert obj is not None, "no NodeNetwork was created"
    return obj


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_publishes_the_node_network_with_labels_owner_and_heartbeat(
    running: Running, kube_api: FakeKubeAPI
) -> None:
    report = running.next_report()
    wait_for(lambda: kube_api.get(OBJECT) is not None and "status" in published(kube_api))
    obj = published(kube_api)
    node_uid = kube_api.get(f"/api/v1/nodes/{NODE}")["metadata"]["uid"]
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": node_uid}
    ]
    status = NodeNetwork.model_validate(obj).status
    assert (status.zone, status.switch) == ("eu-1a", "sw-7")
    assert [i.name for i in status.interfaces] == [i.name for i in report.status.interfaces]
    first_heartbeat, first_version = status.heartbeat_time, int(obj["metadata"]["resourceVersion"])
    wait_for(
        lambda: (
            NodeNetwork.model_validate(published(kube_api)).status.heartbeat_time > first_heartbeat
        ),
        5,
    )
    assert int(published(kube_api)["metadata"]["resourceVersion"]) > first_version
    methods = [(r.method, r.path.split("?")[0]) for r in kube_api.requests]
    assert ("POST", "/apis/netsched.io/v1alpha1/nodenetworks") in methods
    assert ("PATCH", OBJECT + "/status") in methods
    assert ("GET", f"/api/v1/nodes/{NODE}") in methods


def test_keeps_reporting_while_the_api_is_away_and_catches_up(
    running: Running, kube_api: FakeKubeAPI
) -> None:
    wait_for(lambda: kube_api.get(OBJECT) is not None and "status" in published(kube_api))
    kube_api.pause()
    paused_at = time.monotonic()
    reports_while_away = 0
    while time.monotonic() - paused_at < 3.0:
        running.next_report()
        reports_while_away += 1
    _, metrics = running.get("/metrics")
    errors = metric(metrics, 'netsched_reporter_publishes_total{result="error"}')
    assert reports_while_away >= 10, "discovery must go on while the API is away"
    # Backoff 0.5 s doubling up to 1 s (with jitter) allows at most ~6 attempts in 3 s,
    # where retrying on every 0.2 s cycle would make 15.
    assert 1 <= errors <= 7, errors
    status, body = running.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    before = NodeNetwork.model_validate(published(kube_api)).status.heartbeat_time
    kube_api.pause()  # idempotent: still away
    kube_api.resume()
    wait_for(
        lambda: NodeNetwork.model_validate(published(kube_api)).status.heartbeat_time > before, 5
    )


def test_recreates_the_object_when_it_is_deleted(running: Running, kube_api: FakeKubeAPI) -> None:
    wait_for(lambda: kube_api.get(OBJECT) is not None and "status" in published(kube_api))
    old_uid = published(kube_api)["metadata"]["uid"]
    kube_api.delete(OBJECT)
    wait_for(
        lambda: (
            kube_api.get(OBJECT) is not None
            and published(kube_api)["metadata"]["uid"] != old_uid
            and "status" in published(kube_api)
        )
    )


def test_renamed_and_deleted_links_while_running(running: Running, kube_api: FakeKubeAPI) -> None:
    built = running.built
    running.next_report()
    renamed = "ren" + built.up2[3:]
    ip("-n", built.netns, "link", "set", built.up2, "down")
    ip("-n", built.netns, "link", "set", built.up2, "name", renamed)
    ip("-n", built.netns, "link", "del", built.up3)
    ip("-n", built.netns, "link", "del", built.vx100)
    report = _first_report_after_now(running)
    interfaces = {i.name: i for i in report.status.interfaces}
    assert set(interfaces) == {built.up1, renamed, built.vx200, built.macvlan}
    assert interfaces[built.up1].vnis == []  # its VXLAN is gone
    assert interfaces[renamed].vnis == [200, 300] and interfaces[renamed].oper_state == "down"
    assert interfaces[renamed].mac == "02:00:00:00:00:02"
    wait_for(
        lambda: {i["name"] for i in published(kube_api)["status"]["interfaces"]} == set(interfaces)
    )
    _, metrics = running.get("/metrics")
    assert f'interface="{renamed}"' in metrics
    assert f'interface="{built.up3}"' not in metrics and f'interface="{built.up2}"' not in metrics


def test_survives_links_churning_during_cycles(running: Running) -> None:
    built = running.built
    stop = threading.Event()
    churned = []

    def churn() -> None:
        n = 0
        while not stop.is_set():
            a, b = f"ch{n}{built.up1[3:]}"[:15], f"cx{n}{built.up1[3:]}"[:15]
            ip("-n", built.netns, "link", "add", a, "type", "veth", "peer", "name", b)
            ip("-n", built.netns, "link", "set", a, "name", a.replace("ch", "cr", 1))
            ip("-n", built.netns, "link", "del", a.replace("ch", "cr", 1))
            churned.append(n)
            n += 1

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for _ in range(15):
            running.next_report()
    finally:
        stop.set()
        churner.join(timeout=10)
    assert len(churned) > 10
    assert running.thread.is_alive()
    names = {i.name for i in _first_report_after_now(running).status.interfaces}
    assert names == {built.up1, built.up2, built.up3, built.vx100, built.vx200, built.macvlan}


def test_metrics_and_healthz(running: Running) -> None:
    report = running.next_report()
    status, body = running.get("/metrics")
    assert status == 200
    for interface in report.status.interfaces:
        assert f'netsched_reporter_interface_speed_bps{{interface="{interface.name}"}} ' in body
        for direction in ("rx", "tx"):
            assert (
                f'netsched_reporter_interface_observed_bps{{direction="{direction}",interface="{interface.name}"}}'
                in body
            )
    assert (
        metric(body, f'netsched_reporter_interface_speed_bps{{interface="{running.built.up1}"}}')
        == 10e9
    )
    assert metric(body, "netsched_reporter_interfaces") == 6
    assert metric(body, 'netsched_reporter_cycles_total{result="ok"}') >= 1
    status, body = running.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["lastCycleSecondsAgo"] < 5
    assert running.get("/nope")[0] == 404


def test_cli_daemon_publishes_and_stops_on_sigterm(
    namespaces: Namespaces,
    kube_api: FakeKubeAPI,
    tmp_path: Path,
) -> None:
    built = build_node(namespaces)
    seed_node(kube_api)
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node_reporter",
            "--netns",
            built.netns,
            "--node-name",
            NODE,
            "--kubeconfig",
            str(kubeconfig),
            "--interval",
            "0.5",
            "--metrics-address",
            "127.0.0.1",
            "--metrics-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: kube_api.get(OBJECT) is not None and "status" in published(kube_api), 20)
        status = NodeNetwork.model_validate(published(kube_api)).status
        assert isinstance(status.heartbeat_time, datetime) and status.zone == "eu-1a"
        assert {i.name for i in status.interfaces} == {
            built.up1,
            built.up2,
            built.up3,
            built.vx100,
            built.vx200,
            built.macvlan,
        }
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_cli_once_prints_the_report(namespaces: Namespaces) -> None:
    built = build_node(namespaces)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "node_reporter",
            "--once",
            "--netns",
            built.netns,
            "--node-name",
            NODE,
            "--sample-seconds",
            "0.2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    report = NodeNetwork.model_validate_json(done.stdout)
    assert report.metadata.name == NODE
    assert [i.name for i in report.status.interfaces] == [
        built.up1,
        built.up2,
        built.up3,
        built.vx100,
        built.vx200,
        built.macvlan,
    ]


def metric(exposition: str, series: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in /metrics")


def _first_report_after_now(running: Running) -> NodeNetwork:
    """The first report of a cycle that started after this call (one may be in flight)."""
    while True:
        try:
            running.reports.get_nowait()
        except queue.Empty:
            break
    running.next_report()
    return running.next_report()


def test_cli_once_takes_zone_and_switch_from_the_node_labels(
    namespaces: Namespaces,
    kube_api: FakeKubeAPI,
    tmp_path: Path,
) -> None:
    built = build_node(namespaces)
    seed_node(kube_api)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "node_reporter",
            "--once",
            "--netns",
            built.netns,
            "--node-name",
            NODE,
            "--sample-seconds",
            "0.1",
            "--kubeconfig",
            str(kube_api.write_kubeconfig(tmp_path / "kubeconfig")),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NETSCHED_REPORTER_ZONE": "z-env"},
    )
    assert done.returncode == 0, done.stderr
    status = NodeNetwork.model_validate_json(done.stdout).status
    assert (status.zone, status.switch) == ("eu-1a", "sw-7"), "labels win over the configured zone"
    assert kube_api.get(OBJECT) is None, "--once only prints"
