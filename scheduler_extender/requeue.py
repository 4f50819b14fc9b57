"""Moving pods netsched refused back into kube-scheduler's active queue when the reason goes away.

What kube-scheduler v1.36 does with a pod an extender refused (pkg/scheduler, read for this):

- When an extender filters nodes out and the pod ends up unschedulable, kube-scheduler records
  the pseudo-plugin ``Extender`` as what rejected it (``findNodesThatPassExtenders``' caller),
  and registers for ``Extender`` the wildcard event with a hint that always says Queue. The pod
  waits in the unschedulable pool.
- It leaves that pool only on an event kube-scheduler's informers deliver: a Node added,
  deleted or updated in a field it compares (labels, taints, allocatable, conditions,
  annotations, unschedulable), a bound pod deleted, a bound pod updated in a way that frees
  resources, an update of the pending pod itself, or the flush of pods unschedulable for more
  than 5 minutes. A bound pod that finishes (Succeeded, Failed) or is added moves only pods with
  affinity or spread terms; a NodeNetwork, a Network or a reservation annotation is not watched.
- An update of the pending pod (``PriorityQueue.Update``): with queueing hints (on by default)
  every change is at least an ``UpdatePodOther`` event, which matches the wildcard, so the pod
  goes to the backoff or active queue at once; without hints, any change outside
  ``resourceVersion``, ``generation``, ``status``, ``managedFields`` and ``finalizers`` does
  (``isPodUpdated``).

So netsched records why it refused each pending pod (per node and cause) and, when something it
sees changes in a way that could help — a node's report turning fresh or changing shape, its
headroom, its observed traffic falling, a Network or NetworkAttachmentDefinition changing, bandwidth or an address freed —
patches the annotation ``netsched.io/retry`` of exactly the pods that change could help. That
update is the pod event kube-scheduler requeues on. Writes are gathered for ``settle`` seconds,
so a burst of changes costs one patch per pod.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kubernetes import client

from bandwidth_accounting.fit import Cause
from contract import annotations
from contract.attachment_definitions import NetworkAttachmentDefinition
from contract.dra import ResourceClaim
from contract.objects import BandwidthPolicy, Network, Node, NodeNetwork, Pod
from kubernetes_access import ApiFailure, Unavailable, api_errors
from scheduler_extender.cluster import ClusterObject, ClusterSnapshot
from scheduler_extender.kubernetes_source import MERGE_PATCH
from scheduler_extender.state import ClusterState
from topology.graph import report_structure

if TYPE_CHECKING:
    from scheduler_extender.scheduler import FilterResult

log = logging.getLogger(__name__)

RECENT = 200
"""Wakes kept for people and tests."""

RETRY_ANNOTATION = "netsched.io/retry"
"""Set on a pending pod to make kube-scheduler try it again; the value says when and why."""

REPORT_CAUSES = frozenset({Cause.NO_REPORT, Cause.STALE_REPORT})
SHAPE_CAUSES = frozenset(
    {Cause.NO_REPORT, Cause.STALE_REPORT, Cause.NO_POD_INTERFACE, Cause.NETWORK_UNREACHABLE,
     Cause.BANDWIDTH}
)
ROOM_CAUSES = frozenset({Cause.BANDWIDTH, Cause.ADDRESS})
POLICY_CAUSES = frozenset({Cause.POLICY})
"""A namespace's BandwidthPolicy: changed, or its pods freed some of its total."""
NETWORK_CAUSES = frozenset({Cause.NETWORK_UNREACHABLE, Cause.UNKNOWN_NETWORK, Cause.ADDRESS})


@dataclass(frozen=True, slots=True)
class Waiting:
    """A pending pod netsched refused: where, and for which causes."""

    namespace: str
    name: str
    causes: dict[str, frozenset[Cause]]


class Requeuer:
    """Remembers refusals (``refused``), hears changes (``changed``), wakes pods (a patch)."""

    def __init__(
        self,
        api: client.ApiClient,
        may_write: Callable[[], bool] | None = None,
        settle: float = 0.3,
        request_timeout: float = 10.0,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._may_write = may_write
        self._settle = settle
        self._timeout = request_timeout
        self._lock = threading.Lock()
        self._waiting: dict[str, Waiting] = {}
        self._on_node: dict[str, set[str]] = {}  # node → uids refused there
        self._due: dict[str, str] = {}  # uid → why, gathered for the next batch
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.woken: deque[tuple[str, str]] = deque(maxlen=RECENT)
        """(pod, why) of the latest patches, for logs and tests."""

    # -- what filter refused -------------------------------------------------------------

    def refused(self, pod: Pod, result: FilterResult) -> None:
        uid = pod.metadata.uid or pod.key
        with self._lock:
            self._drop(uid)
            if result.passed or pod.spec.node_name:
                return
            waiting = Waiting(
                pod.metadata.effective_namespace,
                pod.metadata.name,
                {node: frozenset(r.cause for r in reasons) for node, reasons in result.refusals.items()},
            )
            self._waiting[uid] = waiting
            for node in waiting.causes:
                self._on_node.setdefault(node, set()).add(uid)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._drop(uid)
            self._due.pop(uid, None)

    def _drop(self, uid: str) -> Waiting | None:
        waiting = self._waiting.pop(uid, None)
        for node in waiting.causes if waiting is not None else ():
            uids = self._on_node.get(node)
            if uids is not None:
                uids.discard(uid)
                if not uids:
                    del self._on_node[node]
        return waiting

    # -- what changed ------------------------------------------------------------------

    def changed(self, why: str, causes: frozenset[Cause], node: str | None = None) -> None:
        """Something that could cure ``causes`` on ``node`` (None: on every node) changed.

        Called under the source's lock for every event, heartbeats included: a node's change
        looks only at the pods refused on that node."""
        with self._lock:
            if node is None:
                for uid, waiting in self._waiting.items():
                    if any(found & causes for found in waiting.causes.values()):
                        self._due.setdefault(uid, why)
            else:
                for uid in self._on_node.get(node, ()):
                    if self._waiting[uid].causes[node] & causes:
                        self._due.setdefault(uid, why)
            if self._due:
                self._wake.set()

    # -- waking ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="requeuer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            if self._stopping.wait(self._settle):
                return
            with self._lock:
                self._wake.clear()
                due, self._due = self._due, {}
                batch = [(uid, waiting, why) for uid, why in due.items()
                         if (waiting := self._drop(uid)) is not None]
            if self._may_write is not None and not self._may_write():
                continue
            for uid, waiting, why in batch:
                self._patch(uid, waiting, why)

    def _patch(self, uid: str, waiting: Waiting, why: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"metadata": {"uid": uid, "annotations": {RETRY_ANNOTATION: f"{stamp} {why}"}}}
        try:
            with api_errors():
                self._core.patch_namespaced_pod(
                    waiting.name, waiting.namespace, body, _content_type=MERGE_PATCH,
                    _preload_content=False, _request_timeout=self._timeout,
                ).release_conn()
        except Unavailable as error:
            log.warning("retrying %s/%s failed: %s", waiting.namespace, waiting.name, error)
            return
        except ApiFailure as error:  # gone, replaced (uid precondition) or refused
            log.info("not retrying %s/%s: %s", waiting.namespace, waiting.name, error.message)
            return
        self.woken.append((f"{waiting.namespace}/{waiting.name}", why))
        log.info("%s/%s back to kube-scheduler's queue: %s", waiting.namespace, waiting.name, why)


class RequeueingSink:
    """The cluster state's sink, telling a ``Requeuer`` which changes could help whom.

    Sources feed it instead of the ``ClusterState`` itself; everything is passed on."""

    def __init__(self, state: ClusterState, requeuer: Requeuer) -> None:
        self.state, self.requeuer = state, requeuer
        self._reports: dict[str, NodeNetwork] = {}
        self._headroom: dict[str, str | None] = {}

    def reset(self, snapshot: ClusterSnapshot) -> None:
        self._reports = {r.metadata.name: r for r in snapshot.node_networks}
        self._headroom = {
            n.name: n.metadata.annotations.get(annotations.HEADROOM) for n in snapshot.nodes
        }
        self.state.reset(snapshot)
        self.requeuer.changed("the cluster was listed again", frozenset(Cause))

    def upsert(self, obj: ClusterObject) -> None:
        if isinstance(obj, Pod):
            self._pod_changed(obj, lambda: self.state.upsert(obj))
            return
        if isinstance(obj, ResourceClaim):
            self._claim_changed(obj, lambda: self.state.upsert(obj))
            return
        self.state.upsert(obj)
        if isinstance(obj, NodeNetwork):
            self._report(obj)
        elif isinstance(obj, Node):
            headroom = obj.metadata.annotations.get(annotations.HEADROOM)
            if self._headroom.get(obj.name, headroom) != headroom:
                self.requeuer.changed(f"headroom of {obj.name} changed", ROOM_CAUSES, obj.name)
            self._headroom[obj.name] = headroom
        elif isinstance(obj, Network):
            self.requeuer.changed(f"network {obj.name} changed", NETWORK_CAUSES)
        elif isinstance(obj, NetworkAttachmentDefinition):
            self.requeuer.changed(f"NetworkAttachmentDefinition {obj.key} changed", NETWORK_CAUSES)
        elif isinstance(obj, BandwidthPolicy):
            self.requeuer.changed(f"BandwidthPolicy {obj.key} changed", POLICY_CAUSES)

    def delete(self, obj: ClusterObject) -> None:
        if isinstance(obj, Pod):
            self._pod_changed(obj, lambda: self.state.delete(obj))
            self.requeuer.forget(obj.metadata.uid or obj.key)
            return
        if isinstance(obj, ResourceClaim):
            self._claim_changed(obj, lambda: self.state.delete(obj))
            return
        self.state.delete(obj)
        if isinstance(obj, NodeNetwork):
            self._reports.pop(obj.metadata.name, None)
        elif isinstance(obj, Network):
            self.requeuer.changed(f"network {obj.name} was deleted", NETWORK_CAUSES)
        elif isinstance(obj, NetworkAttachmentDefinition):
            self.requeuer.changed(f"NetworkAttachmentDefinition {obj.key} was deleted", NETWORK_CAUSES)
        elif isinstance(obj, BandwidthPolicy):
            self.requeuer.changed(f"BandwidthPolicy {obj.key} was deleted", POLICY_CAUSES)

    def _pod_changed(self, pod: Pod, apply: Callable[[], None]) -> None:
        uid = pod.metadata.uid or pod.key
        before = self.state.ledger.holding(uid)
        apply()
        if pod.spec.node_name:
            self.requeuer.forget(uid)
        if before is not None and self.state.ledger.holding(uid) != before:
            self.requeuer.changed(f"{before.pod} freed room on {before.node}", ROOM_CAUSES, before.node)
            self.requeuer.changed(f"{before.pod} freed part of its namespace's total", POLICY_CAUSES)

    def _claim_changed(self, claim: ResourceClaim, apply: Callable[[], None]) -> None:
        """A claim deallocated, moved or deleted frees room where it held some."""
        before = self.state.claim_charges(claim.key)
        apply()
        after = self.state.claim_charges(claim.key)
        for node, (ingress, egress) in before.items():
            now = after.get(node, (0, 0))
            if now[0] < ingress or now[1] < egress:
                self.requeuer.changed(f"ResourceClaim {claim.key} freed room on {node}", ROOM_CAUSES, node)

    def _report(self, report: NodeNetwork) -> None:
        node = report.metadata.name
        old = self._reports.get(node)
        self._reports[node] = report
        if old is None or report_structure(old) != report_structure(report):
            self.requeuer.changed(f"NodeNetwork of {node} changed", SHAPE_CAUSES, node)
        elif old.status.heartbeat_time != report.status.heartbeat_time:
            self.requeuer.changed(f"NodeNetwork of {node} reported", REPORT_CAUSES, node)
            if _observed(report) < _observed(old):
                self.requeuer.changed(f"observed traffic on {node} fell", ROOM_CAUSES, node)


def _observed(report: NodeNetwork) -> int:
    return sum(i.rx_bps + i.tx_bps for i in report.status.interfaces)


def follow_with_retries(
    state: ClusterState, api: client.ApiClient, may_write: Callable[[], bool] | None = None
) -> tuple[Requeuer, RequeueingSink]:
    """A started ``Requeuer`` and the sink a source should feed."""
    requeuer = Requeuer(api, may_write)
    requeuer.start()
    return requeuer, RequeueingSink(state, requeuer)


__all__ = [
    "RETRY_ANNOTATION",
    "RequeueingSink",
    "Requeuer",
    "Waiting",
    "follow_with_retries",
]

