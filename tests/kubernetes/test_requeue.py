"""Pods netsched refused go back to kube-scheduler's queue when the reason goes away.

kube-scheduler v1.36 watches Pods and Nodes, not NodeNetworks, Networks or reservations, so it
would leave such a pod in its unschedulable pool for up to 5 minutes. The proof here is the
in-test API server's watch stream — what kube-scheduler's pod informer receives: after the
change, the pending pod (and only a pod the change could help) arrives as a ``MODIFIED`` event
that kube-scheduler's queue moves out of the pool (``kube_scheduler_requeues`` below states its
rule).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from urllib3.exceptions import ProtocolError

from scheduler_extender.app import create_app
from scheduler_extender.extender import Extender
from scheduler_extender.requeue import RETRY_ANNOTATION, Requeuer, follow_with_retries
from scheduler_extender.server import BackgroundServer, ServeOptions
from tests.kubernetes.conftest import (
    NETWORKS,
    NODE_NETWORKS,
    PODS,
    STORAGE_NETWORK,
    bind_body,
    node_network_object,
    pod_object,
    seed_nodes,
    wait_until,
)

MERGE = "application/merge-patch+json"


def kube_scheduler_requeues(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether kube-scheduler v1.36 moves a pending pod the ``Extender`` rejected out of its
    unschedulable pool on this pod update (``PriorityQueue.Update``). Its informer drops an
    update with an unchanged ``resourceVersion``; with queueing hints every other update is at
    least ``UpdatePodOther``, which the Extender's wildcard registration queues; without hints
    the update must change more than ``resourceVersion``, ``generation``, ``status``,
    ``managedFields`` and ``finalizers`` (``isPodUpdated``). This is the stricter of the two."""
    if old["metadata"]["resourceVersion"] == new["metadata"]["resourceVersion"]:
        return False
    if new["spec"].get("nodeName"):
        return False
    ignored = ("resourceVersion", "generation", "managedFields", "finalizers")

    def strip(pod: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in pod["metadata"].items() if k not in ignored}
        return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}

    return strip(old) != strip(new)


@dataclass
class Scene:
    extender: Extender
    requeuer: Requeuer
    url: str

    def filter(self, pod: dict[str, Any], nodes: list[str]) -> dict[str, Any]:
        body = {"Pod": pod, "Nodes": None, "NodeNames": nodes}
        return httpx.post(f"{self.url}/filter", json=body, timeout=20).json()


@pytest.fixture
def scene(sources, client_for) -> Iterator[Callable[[], Scene]]:
    """An extender whose source feeds the requeuer's sink, as ``netsched serve --kubernetes``."""
    stops: list[Callable[[], None]] = []

    def start() -> Scene:
        source = sources()
        extender = Extender.build(source)
        requeuer, sink = follow_with_retries(extender.state, client_for())
        extender.refusal_listeners.append(requeuer)
        source.start(sink)
        server = BackgroundServer(create_app(extender, start_source=False), ServeOptions(port=0))
        server.__enter__()
        stops.extend([requeuer.stop, lambda: server.__exit__(None, None, None)])
        return Scene(extender, requeuer, server.url)

    yield start
    for stop in stops:
        stop()


class PodEvents:
    """A pod watch through the official client, as kube-scheduler's informer keeps one."""

    def __init__(self, api: client.ApiClient, since: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._watch = watch.Watch()
        core = client.CoreV1Api(api)
        stream = self._watch.stream(
            core.list_namespaced_pod, "default", resource_version=since, timeout_seconds=30
        )
        self._thread = threading.Thread(target=self._collect, args=(stream,), daemon=True)
        self._thread.start()

    def _collect(self, stream: Iterator[dict[str, Any]]) -> None:
        try:
            for event in stream:
                self.events.append((event["type"], event["raw_object"]))
        except ProtocolError:
            pass  # the server went away at the end of the test

    def requeued(self, history: dict[str, dict[str, Any]]) -> list[str]:
        """Names of pods an event would send back to kube-scheduler's queue."""
        names = []
        for kind, pod in list(self.events):
            name = pod["metadata"]["name"]
            if kind == "MODIFIED" and name in history and kube_scheduler_requeues(history[name], pod):
                names.append(name)
            history[name] = pod
        return names

    def stop(self) -> None:
        self._watch.stop()


def latest(kube_api, name: str) -> dict[str, Any]:
    return kube_api.get(f"{PODS}/{name}")


def test_a_fresh_report_and_freed_bandwidth_requeue_exactly_the_pods_they_help(
    kube_api, scene, client_for
):
    seed_nodes(kube_api, 2)  # 9G usable each
    stale = datetime.now(UTC) - timedelta(minutes=5)
    kube_api.handle("PATCH", f"{NODE_NETWORKS}/node-00/status", MERGE,
                    node_network_object("node-00", heartbeat=stale))
    holder = kube_api.seed(PODS, pod_object("holder", egress="8G"))
    kube_api.seed(PODS, pod_object("for-report", egress="1G"))
    kube_api.seed(PODS, pod_object("for-room", egress="2G"))
    s = scene()
    wait_until(lambda: len(s.extender.state.pods()) == 3, what="pods")
    assert httpx.post(f"{s.url}/bind", json=bind_body(holder, "node-01")).json() == {"Error": ""}
    wait_until(lambda: s.extender.state.ledger.holding(holder["metadata"]["uid"]), what="holder")

    assert "stale" in s.filter(latest(kube_api, "for-report"), ["node-00"])["FailedAndUnresolvableNodes"]["node-00"]
    assert "reserved" in s.filter(latest(kube_api, "for-room"), ["node-01"])["FailedAndUnresolvableNodes"]["node-01"]
    history = {name: latest(kube_api, name) for name in ("for-report", "for-room")}
    events = PodEvents(client_for(), str(kube_api.revision))
    try:
        # the reporter comes back: only the pod refused for node-00's stale report is woken
        kube_api.handle("PATCH", f"{NODE_NETWORKS}/node-00/status", MERGE,
                        node_network_object("node-00"))
        wait_until(lambda: events.requeued(dict(history)), what="a requeue")
        time.sleep(1)  # whatever else would come, comes within the settle time
        assert events.requeued(history) == ["for-report"]
        woken = latest(kube_api, "for-report")
        assert "NodeNetwork of node-00 reported" in woken["metadata"]["annotations"][RETRY_ANNOTATION]

        # the holder finishes (Succeeded, not deleted: kube-scheduler itself would not requeue)
        kube_api.handle("PATCH", f"{PODS}/holder/status", MERGE, {"status": {"phase": "Succeeded"}})
        wait_until(lambda: events.requeued(dict(history)), what="a requeue")
        assert events.requeued(history) == ["for-room"]
        assert "freed room on node-01" in latest(kube_api, "for-room")["metadata"]["annotations"][RETRY_ANNOTATION]
    finally:
        events.stop()
    # and now both fit where they were refused
    assert s.filter(latest(kube_api, "for-report"), ["node-00"])["NodeNames"] == ["node-00"]
    assert s.filter(latest(kube_api, "for-room"), ["node-01"])["NodeNames"] == ["node-01"]


def test_a_network_reaching_the_node_requeues_the_pod_waiting_for_it(kube_api, scene, client_for):
    seed_nodes(kube_api, 1)  # zone z1; eth1 carries VLAN 100
    elsewhere = {**STORAGE_NETWORK, "spec": {**STORAGE_NETWORK["spec"], "zones": ["z2"]}}
    kube_api.seed(NETWORKS, elsewhere)
    pod = pod_object("needs-storage", egress=None)
    pod["metadata"]["annotations"]["netsched.io/networks"] = "storage"
    kube_api.seed(PODS, pod)
    s = scene()
    wait_until(lambda: s.extender.state.pods(), what="the pod")
    refused = s.filter(latest(kube_api, "needs-storage"), ["node-00"])
    assert "not in zone z1" in refused["FailedAndUnresolvableNodes"]["node-00"]
    history = {"needs-storage": latest(kube_api, "needs-storage")}
    events = PodEvents(client_for(), str(kube_api.revision))
    try:
        kube_api.handle("PATCH", f"{NETWORKS}/storage", MERGE, {"spec": {"zones": ["z1", "z2"]}})
        wait_until(lambda: events.requeued(dict(history)), what="a requeue")
        assert events.requeued(history) == ["needs-storage"]
    finally:
        events.stop()
    assert s.filter(latest(kube_api, "needs-storage"), ["node-00"])["NodeNames"] == ["node-00"]


def test_a_network_attachment_definition_appearing_requeues_the_multus_pod_waiting_for_it(
    kube_api, scene, client_for
):
    seed_nodes(kube_api, 1)  # eth1 is up
    pod = pod_object("multus", egress=None)
    pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = "storage-net"
    kube_api.seed(PODS, pod)
    s = scene()
    wait_until(lambda: s.extender.state.pods(), what="the pod")
    refused = s.filter(latest(kube_api, "multus"), ["node-00"])
    assert "no NetworkAttachmentDefinition 'default/storage-net'" in refused["FailedAndUnresolvableNodes"]["node-00"]
    history = {"multus": latest(kube_api, "multus")}
    events = PodEvents(client_for(), str(kube_api.revision))
    try:
        kube_api.seed("/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions", {
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "storage-net", "namespace": "default"},
            "spec": {"config": '{"cniVersion": "1.0.0", "type": "macvlan", "master": "eth1"}'}})
        wait_until(lambda: events.requeued(dict(history)), what="a requeue")
        assert events.requeued(history) == ["multus"]
        assert "NetworkAttachmentDefinition default/storage-net changed" in \
            latest(kube_api, "multus")["metadata"]["annotations"][RETRY_ANNOTATION]
    finally:
        events.stop()
    assert s.filter(latest(kube_api, "multus"), ["node-00"])["NodeNames"] == ["node-00"]


def test_a_heartbeat_wakes_no_pod_refused_for_something_else(kube_api, scene, client_for):
    seed_nodes(kube_api, 1)
    kube_api.seed(PODS, pod_object("big", egress="9500M"))  # more than the link
    s = scene()
    wait_until(lambda: s.extender.state.pods(), what="the pod")
    assert s.filter(latest(kube_api, "big"), ["node-00"])["NodeNames"] == []
    history = {"big": latest(kube_api, "big")}
    events = PodEvents(client_for(), str(kube_api.revision))
    try:
        for _ in range(3):
            kube_api.handle("PATCH", f"{NODE_NETWORKS}/node-00/status", MERGE,
                            node_network_object("node-00"))
            time.sleep(0.2)
        time.sleep(1)
        assert events.requeued(history) == [] and not s.requeuer.woken
    finally:
        events.stop()
