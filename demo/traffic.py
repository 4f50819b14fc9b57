"""Pods arriving and leaving the demo cluster, scheduled through the real HTTP verbs.

The driver plays three parts: ``kubectl`` (it creates and deletes pods in the file
source), kube-scheduler (it calls ``/filter``, ``/prioritize`` and ``/bind`` over
HTTP exactly as the extender client does) and the node reporters (it refreshes
heartbeats and reports observed traffic close to what is reserved).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from contract import annotations
from contract.group import SCHEDULER_NAME
from contract.objects import ObjectMeta, Pod, PodSpec
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.state import ClusterState

REPORT_EVERY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class PodTemplate:
    app: str
    annotations: dict[str, str] = field(default_factory=dict)
    weight: int = 1


TEMPLATES = (
    PodTemplate("web", {annotations.INGRESS_BANDWIDTH: "200M", annotations.EGRESS_BANDWIDTH: "500M",
                        annotations.PEERS: "app=cache"}, weight=4),
    PodTemplate("cache", {annotations.INGRESS_BANDWIDTH: "1G", annotations.EGRESS_BANDWIDTH: "1G"}, weight=2),
    PodTemplate("db", {annotations.INGRESS_BANDWIDTH: "500M", annotations.EGRESS_BANDWIDTH: "500M",
                       annotations.NETWORKS: json.dumps([{"name": "storage", "ingress": "2G", "egress": "1G"}])},
                weight=3),
    PodTemplate("replica", {annotations.NETWORKS: json.dumps(
        [{"name": "replication", "ingress": "3G", "egress": "3G"}])}, weight=2),
    PodTemplate("tenant", {annotations.NETWORKS: "tenant", annotations.EGRESS_BANDWIDTH: "300M",
                           annotations.PLACEMENT: "pack"}, weight=2),
    PodTemplate("analytics", {annotations.MULTUS_NETWORKS: json.dumps(
        [{"name": "fast-storage", "bandwidth": {"ingressRate": 2_000_000_000, "egressRate": 500_000_000}}])},
        weight=2),
    PodTemplate("stream", {annotations.EGRESS_BANDWIDTH: "8G"}, weight=1),
    PodTemplate("batch", {}, weight=2),
    PodTemplate("typo", {annotations.INGRESS_BANDWIDTH: "fast"}, weight=1),
)


class DemoTraffic:
    def __init__(
        self,
        source: FileClusterSource,
        state: ClusterState,
        url: str,
        seed: int = 1,
        lifetime_seconds: tuple[float, float] = (30.0, 90.0),
    ) -> None:
        self.source = source
        self.state = state
        self.client = httpx.Client(base_url=url, timeout=5.0)
        self.rng = random.Random(seed)
        self.lifetime_seconds = lifetime_seconds
        self._counter = itertools.count(1)
        self._expiry: dict[str, tuple[float, Pod]] = {}
        self._last_report = 0.0

    def schedule_one(self, now: float) -> str:
        """Create one pod and schedule it like kube-scheduler would; return a log line."""
        template = self.rng.choices(TEMPLATES, weights=[t.weight for t in TEMPLATES])[0]
        pod = Pod(
            metadata=ObjectMeta(
                name=f"{template.app}-{next(self._counter)}", namespace="demo", uid=str(uuid.uuid4()),
                labels={"app": template.app}, annotations=dict(template.annotations),
            ),
            spec=PodSpec(scheduler_name=SCHEDULER_NAME),
        )
        pod = self.source.apply(pod)
        body = {"Pod": pod.model_dump(mode="json"), "Nodes": None, "NodeNames": self.state.node_names()}
        filtered = self.client.post("/filter", json=body).json()
        passed = filtered["NodeNames"] or []
        if not passed:
            self.source.remove(pod)
            reasons = {**filtered["FailedNodes"], **filtered["FailedAndUnresolvableNodes"]}
            first = next(iter(reasons.values()), filtered["Error"])
            return f"{pod.key}: fits no node ({len(reasons)} refused; e.g. {first})"
        body["NodeNames"] = passed
        scores = self.client.post("/prioritize", json=body).json() if len(passed) > 1 else []
        best = max(scores, key=lambda s: (s["Score"], self.rng.random()))["Host"] if scores else passed[0]
        bound = self.client.post("/bind", json={
            "PodName": pod.metadata.name, "PodNamespace": "demo", "PodUID": pod.metadata.uid, "Node": best,
        }).json()
        if bound["Error"]:
            self.source.remove(pod)
            return f"{pod.key}: bind refused: {bound['Error']}"
        self._expiry[pod.metadata.uid] = (now + self.rng.uniform(*self.lifetime_seconds), pod)
        return f"{pod.key} → {best} ({len(passed)} nodes fit)"

    def expire(self, now: float) -> None:
        for uid, (deadline, pod) in list(self._expiry.items()):
            if deadline <= now:
                del self._expiry[uid]
                self.source.remove(pod)

    def report(self, now: float) -> None:
        """Play the node reporters: fresh heartbeats, observed traffic near the reservations."""
        if now - self._last_report < REPORT_EVERY_SECONDS:
            return
        self._last_report = now
        ledger = self.state.ledger
        for report in self.source.snapshot().node_networks:
            updated = report.model_copy(deep=True)
            updated.status.heartbeat_time = datetime.now(UTC)
            node = report.metadata.name
            for interface in updated.status.interfaces:
                ingress, egress = ledger.reserved(node, interface.name)
                interface.rx_bps = int(ingress * self.rng.uniform(0.4, 1.0)) + self.rng.randint(0, 50_000_000)
                interface.tx_bps = int(egress * self.rng.uniform(0.4, 1.0)) + self.rng.randint(0, 50_000_000)
            self.source.apply(updated)

    def run(self, stop: threading.Event, interval: float, echo=print) -> None:
        clock = 0.0
        while not stop.is_set():
            try:
                self.report(clock)
                self.expire(clock)
                echo(self.schedule_one(clock))
            except httpx.HTTPError as error:
                echo(f"demo traffic: {error}")
            stop.wait(interval)
            clock += interval

    def close(self) -> None:
        self.client.close()


__all__ = ["DemoTraffic"]
