"""A cluster in the in-test API server, and extenders that follow it through the real client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from contract.group import API_VERSION
from contract.objects import ZONE_LABEL
from dashboard import dashboard_router
from scheduler_extender.app import create_app
from scheduler_extender.extender import Extender
from scheduler_extender.kubernetes_source import KubernetesClusterSource, SourceSettings, api_client
from scheduler_extender.server import BackgroundServer, ServeOptions
from tests.kube_api import FakeKubeAPI, kube_api  # noqa: F401 - the fake API server fixture

PODS = "/api/v1/namespaces/default/pods"
NODES = "/api/v1/nodes"
NODE_NETWORKS = "/apis/netsched.io/v1alpha1/nodenetworks"
NETWORKS = "/apis/netsched.io/v1alpha1/networks"

FAST = SourceSettings(
    watch_timeout=5, request_timeout=5, page_size=50, backoff_initial=0.05, backoff_max=0.5
)
"""Short watches and backoff, so that faults heal within a test's patience."""


def node_object(name: str, zone: str = "z1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {ZONE_LABEL: zone}},
    }


STORAGE_NETWORK = {
    "apiVersion": API_VERSION,
    "kind": "Network",
    "metadata": {"name": "storage"},
    "spec": {"mode": "vlan", "vlan": 100, "role": "storage", "subnet": "10.20.0.0/16"},
}
"""Carried by every test node's eth1 (25G trunk with VLAN 100)."""


def node_network_object(
    name: str, speed_mbps: int = 10_000, zone: str = "z1", heartbeat: datetime | None = None
) -> dict[str, Any]:
    beat = (heartbeat or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": API_VERSION,
        "kind": "NodeNetwork",
        "metadata": {"name": name},
        "status": {
            "zone": zone,
            "heartbeatTime": beat,
            "interfaces": [
                {"name": "eth0", "role": "pod", "speedMbps": speed_mbps, "operState": "up"},
                {"name": "eth1", "role": "storage", "speedMbps": 25_000, "vlans": [100]},
            ],
        },
    }


def pod_object(
    name: str, egress: str | None = "300M", namespace: str = "default"
) -> dict[str, Any]:
    annotations = {"kubernetes.io/egress-bandwidth": egress} if egress else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {
            "containers": [{"name": "app", "image": "registry.example/app:1"}],
            "schedulerName": "netsched-scheduler",
            "priority": 0,
        },
        "status": {"phase": "Pending"},
    }


def seed_nodes(api: FakeKubeAPI, count: int, speed_mbps: int = 10_000) -> list[str]:
    """``count`` nodes with one 10G pod interface each: 9 Gbit/s usable (10 % headroom)."""
    names = [f"node-{i:02d}" for i in range(count)]
    for name in names:
        api.seed(NODES, node_object(name))
        api.seed(NODE_NETWORKS, node_network_object(name, speed_mbps))
    return names


def seed_pods(
    api: FakeKubeAPI, count: int, egress: str = "300M", prefix: str = "pod"
) -> list[dict]:
    return [api.seed(PODS, pod_object(f"{prefix}-{i:03d}", egress)) for i in range(count)]


def bind_body(pod: dict[str, Any], node: str) -> dict[str, str]:
    metadata = pod["metadata"]
    return {
        "PodName": metadata["name"],
        "PodNamespace": metadata["namespace"],
        "PodUID": metadata["uid"],
        "Node": node,
    }


@dataclass
class Served:
    extender: Extender
    source: KubernetesClusterSource
    url: str
    server: BackgroundServer

    def stop(self) -> None:
        """The extender goes away: its server, then its watches."""
        self.server.__exit__(None, None, None)
        self.source.stop()


@pytest.fixture
def serve(sources) -> Iterator[Callable[..., Served]]:
    """Starts extenders over the Kubernetes source on free loopback ports (plain HTTP)."""
    started: list[Served] = []

    def start(options: ServeOptions | None = None) -> Served:
        source = sources()
        extender = Extender.build(source)
        source.start(extender.state)
        server = BackgroundServer(
            create_app(extender, start_source=False, read_only_routers=[dashboard_router(extender)]),
            options or ServeOptions(port=0),
        )
        server.__enter__()
        started.append(Served(extender, source, server.url, server))
        return started[-1]

    yield start
    for served in started:
        served.server.__exit__(None, None, None)


# How long a test waits for a netsched process it started to be up (imports, first API
# contact, leader election). Generous on purpose: it is not a speed assertion, and a
# loaded 2-core machine has taken over 30 s to start two extenders at once.
PROCESS_START_TIMEOUT = 90.0


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def ledger_of(extender: Extender) -> dict[str, tuple[str, str]]:
    """Every holding as uid → (node, reservation JSON): comparable reservation for reservation."""
    return {
        h.uid: (h.node, h.reservation.model_dump_json()) for h in extender.state.ledger.holdings()
    }


@pytest.fixture
def kubeconfig(kube_api: FakeKubeAPI, tmp_path: Path) -> Path:  # noqa: F811
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def client_for(kubeconfig: Path) -> Iterator[Callable[[], client.ApiClient]]:
    """Fresh API clients from the kubeconfig (as ``netsched serve --kubeconfig`` makes them)."""
    made: list[client.ApiClient] = []

    def make() -> client.ApiClient:
        made.append(api_client(str(kubeconfig)))
        return made[-1]

    yield make
    for api in made:
        api.close()


@pytest.fixture
def sources(client_for) -> Iterator[Callable[..., KubernetesClusterSource]]:
    """Makes Kubernetes sources; every one is stopped after the test."""
    made: list[KubernetesClusterSource] = []

    def make(settings: SourceSettings = FAST) -> KubernetesClusterSource:
        made.append(KubernetesClusterSource(client_for(), settings))
        return made[-1]

    yield make
    for source in made:
        source.stop()
