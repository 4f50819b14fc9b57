"""The demo's cluster served for real, and kube-scheduler played over HTTP, for admin tests.

``served_cluster`` runs what ``netsched demo`` runs (the sample cluster in a file
source, the extender app under uvicorn on a real socket) without the random
traffic, so a test decides exactly which pods arrive. ``KubeScheduler`` makes the
calls kube-scheduler's extender client makes: ``/filter``, ``/prioritize``, ``/bind``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

import httpx

from contract.group import SCHEDULER_NAME
from contract.objects import ObjectMeta, Pod, PodSpec
from dashboard import dashboard_router
from demo.sample_cluster import sample_cluster
from scheduler_extender.app import create_app
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.server import BackgroundServer, ServeOptions


@dataclass
class ServedCluster:
    source: FileClusterSource
    extender: Extender
    url: str


@contextmanager
def served_cluster(
    zones: int = 3, switches_per_zone: int = 2, nodes_per_switch: int = 2
) -> Iterator[ServedCluster]:
    source = FileClusterSource(sample_cluster(zones, switches_per_zone, nodes_per_switch))
    extender = Extender.build(source)
    app = create_app(extender, read_only_routers=[dashboard_router(extender)])
    with BackgroundServer(app, ServeOptions("127.0.0.1", 0)) as server:
        yield ServedCluster(source, extender, server.url)


def refresh_heartbeats(source: FileClusterSource) -> None:
    """Re-publish every NodeNetwork with a fresh heartbeat, as each node's reporter does."""
    for report in source.snapshot().node_networks:
        updated = report.model_copy(deep=True)
        updated.status.heartbeat_time = datetime.now(UTC)
        source.apply(updated)


@dataclass
class Outcome:
    pod: Pod
    filtered: dict
    node: str | None = None
    bind_error: str = ""

    @property
    def refused(self) -> dict[str, str]:
        return {
            **(self.filtered.get("FailedNodes") or {}),
            **(self.filtered.get("FailedAndUnresolvableNodes") or {}),
        }


class KubeScheduler:
    """Creates pods in the file source and schedules them through the extender's webhook."""

    def __init__(self, cluster: ServedCluster) -> None:
        self.cluster = cluster
        self.client = httpx.Client(base_url=cluster.url, timeout=10.0)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def create(
        self, name: str, annotations: dict[str, str], namespace: str = "admin", priority: int = 0
    ) -> Pod:
        pod = Pod(
            metadata=ObjectMeta(
                name=name, namespace=namespace, uid=str(uuid.uuid4()), annotations=annotations
            ),
            spec=PodSpec(priority=priority, scheduler_name=SCHEDULER_NAME),
        )
        return self.cluster.source.apply(pod)

    def filter(self, pod: Pod) -> dict:
        body = {
            "Pod": pod.model_dump(mode="json"),
            "Nodes": None,
            "NodeNames": self.cluster.extender.state.node_names(),
        }
        response = self.client.post("/filter", json=body)
        response.raise_for_status()
        return response.json()

    def bind(self, pod: Pod, node: str) -> str:
        response = self.client.post(
            "/bind",
            json={
                "PodName": pod.metadata.name,
                "PodNamespace": pod.metadata.namespace,
                "PodUID": pod.metadata.uid,
                "Node": node,
            },
        )
        response.raise_for_status()
        return response.json()["Error"]

    def schedule(
        self, name: str, annotations: dict[str, str], prefer: str | None = None
    ) -> Outcome:
        """Filter, prioritize, bind to ``prefer`` if it passed, else to the best score."""
        pod = self.create(name, annotations)
        filtered = self.filter(pod)
        outcome = Outcome(pod, filtered)
        passed = filtered["NodeNames"] or []
        if not passed:
            return outcome
        body = {"Pod": pod.model_dump(mode="json"), "Nodes": None, "NodeNames": passed}
        scores = self.client.post("/prioritize", json=body).json() if len(passed) > 1 else []
        node = (
            prefer
            if prefer in passed
            else (max(scores, key=lambda s: s["Score"])["Host"] if scores else passed[0])
        )
        outcome.node = node
        outcome.bind_error = self.bind(pod, node)
        return outcome
