"""Making room for a pod by evicting lower-priority bandwidth holders, as kube-scheduler would.

Stock kube-scheduler never preempts for a shortage only an extender sees: its preemption
removes lower-priority pods in a dry run of *its own* filters, finds that they pass with every
pod in place, reprieves them all, and drops the node ("expected at least one victim pod") before
it would call the extender's ``/preempt``. So netsched makes the room itself:

1. ``select_victims`` picks, on one node, the pods to evict the way kube-scheduler's default
   preemption does: remove every pod of lower priority; if the pod still does not fit, the node
   is no candidate (nothing is evicted for a pod that would not fit); else add them back most
   important first (higher priority first; those a PodDisruptionBudget protects before the
   others), keeping out only those without which the pod does not fit. Pods of equal or higher
   priority are never victims. A victim set that would break a budget is refused (the Eviction
   API would refuse it too); pods already being deleted count as gone.
2. ``pick_node`` prefers the node whose most important victim is least important, then the
   smallest sum of victim priorities, then the fewest victims (kube-scheduler's order, less its
   start-time tie-break).
3. ``Preemptor`` does it for pods that filter refused only because lower-priority pods hold the
   bandwidth (kube-scheduler's ``FailedNodes``) and that may preempt (``preemptionPolicy`` not
   ``Never``): it evicts the victims through the Eviction API (``policy/v1``), which checks the
   budgets again, then sets the pod's ``status.nominatedNodeName``. The pod binds once the
   victims are gone and kube-scheduler retries it (a deleted bound pod requeues every pod an
   extender refused; see docs/scheduling.md).

The same victim choice answers the ``/preempt`` verb, for when kube-scheduler does call it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
from kubernetes import client
from pydantic import Field, ValidationError

from bandwidth_accounting.fit import Plan, plan_on_node
from bandwidth_accounting.ledger import Holding, Ledger
from bandwidth_accounting.policy import InvalidPolicy
from bandwidth_accounting.requirements import InvalidAnnotation, PodRequirements
from bandwidth_accounting.settings import FitSettings
from contract.objects import ObjectMeta, Pod
from contract.wire import WireModel
from kubernetes_access import ApiFailure, api_errors
from topology.graph import Topology

if TYPE_CHECKING:
    from scheduler_extender.scheduler import FilterResult, Scheduler

log = logging.getLogger(__name__)

RECENT = 200
"""Preemption attempts kept for people and tests."""

NEVER = "Never"
"""``spec.preemptionPolicy`` of a pod that must not preempt others."""


# -- PodDisruptionBudgets ------------------------------------------------------------------


class LabelSelectorRequirement(WireModel):
    key: str
    operator: str
    values: list[str] = Field(default_factory=list)


class LabelSelector(WireModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """metav1.LabelSelector semantics (an empty selector matches every pod)."""
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        for term in self.match_expressions:
            present = term.key in labels
            if term.operator == "In" and not (present and labels[term.key] in term.values):
                return False
            if term.operator == "NotIn" and present and labels[term.key] in term.values:
                return False
            if term.operator == "Exists" and not present:
                return False
            if term.operator == "DoesNotExist" and present:
                return False
        return True


class BudgetMeta(ObjectMeta):
    generation: int = 0


class BudgetSpec(WireModel):
    selector: LabelSelector | None = None


class BudgetStatus(WireModel):
    disruptions_allowed: int = 0
    observed_generation: int = 0


class DisruptionBudget(WireModel):
    """The parts of a ``policy/v1`` PodDisruptionBudget that eviction looks at."""

    metadata: BudgetMeta
    spec: BudgetSpec = Field(default_factory=BudgetSpec)
    status: BudgetStatus = Field(default_factory=BudgetStatus)

    def covers(self, pod: Pod) -> bool:
        selector = self.spec.selector
        return (
            selector is not None
            and pod.metadata.namespace == self.metadata.namespace
            and selector.matches(pod.metadata.labels)
        )

    @property
    def allowed(self) -> int:
        """Disruptions the API server allows now: none while its status is not yet computed."""
        if self.status.observed_generation < self.metadata.generation:
            return 0
        return max(self.status.disruptions_allowed, 0)


def budget_violations(victims: Iterable[Pod], budgets: Iterable[DisruptionBudget]) -> list[Pod]:
    """Victims whose eviction a budget would refuse, taking them in order (each uses up one
    disruption of the budget covering it), as kube-scheduler's ``filterPodsWithPDBViolation``."""
    left = {id(b): b.allowed for b in budgets}
    covering = list(budgets)
    refused = []
    for pod in victims:
        mine = [b for b in covering if b.covers(pod)]
        if any(left[id(b)] <= 0 for b in mine):
            refused.append(pod)
            continue
        for budget in mine:
            left[id(budget)] -= 1
    return refused


# -- choosing victims ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Room:
    """What placing a pod on one node needs: its requirements against that node's budgets."""

    requirements: PodRequirements
    node: str
    topology: Topology
    ledger: Ledger
    now: datetime
    fit: FitSettings

    def fits_without(self, gone: Collection[str]) -> bool:
        view = self.ledger.node_view(self.node, excluding=gone)
        outcome = plan_on_node(self.requirements, self.node, self.topology, view, self.now, self.fit)
        return isinstance(outcome, Plan)


def select_victims(
    room: Room,
    priority: int,
    pods: Mapping[str, Pod],
    budgets: Iterable[DisruptionBudget] = (),
    gone: Collection[str] = (),
) -> list[Holding] | None:
    """The lower-priority holders on ``room.node`` to evict so that the pod fits, in eviction
    order; ``[]`` when it fits once the ``gone`` pods have left (and pods already being deleted,
    which count as gone), ``None`` when no eviction allowed makes it fit."""
    budgets = list(budgets)
    holdings = room.ledger.holdings_on(room.node)
    leaving = set(gone) | {h.uid for h in holdings if _deleting(pods.get(h.uid))}
    if room.fits_without(leaving):
        return []
    # A DRA allocation is no pod: evicting is kube-scheduler's business there.
    lower = [h for h in holdings if h.priority < priority and h.uid not in leaving and h.claim is None]
    if not room.fits_without(leaving | {h.uid for h in lower}):
        return None
    # most important first: they are the first to be reprieved
    lower.sort(key=lambda h: (-h.priority, h.pod))
    protected = {_uid(p) for p in budget_violations(_pods_of(lower, pods), budgets)}
    order = [h for h in lower if h.uid in protected] + [h for h in lower if h.uid not in protected]
    victims = {h.uid for h in lower}
    for holding in order:
        victims.discard(holding.uid)
        if not room.fits_without(leaving | victims):
            victims.add(holding.uid)
    chosen = [h for h in reversed(lower) if h.uid in victims]  # least important first
    if budget_violations(_pods_of(chosen, pods), budgets):
        return None
    return chosen


def pick_node(candidates: Mapping[str, list[Holding]]) -> str | None:
    """The node whose victims matter least (kube-scheduler's ``pickOneNodeForPreemption``)."""
    if not candidates:
        return None

    def cost(node: str) -> tuple[int, int, int, str]:
        victims = candidates[node]
        top = max((h.priority for h in victims), default=-(2**31))
        return top, sum(h.priority for h in victims), len(victims), node

    return min(candidates, key=cost)


def may_preempt(pod: Pod) -> bool:
    return pod.spec.preemption_policy != NEVER


def _uid(pod: Pod) -> str:
    return pod.metadata.uid or pod.key


def _deleting(pod: Pod | None) -> bool:
    return pod is not None and pod.metadata.deletion_timestamp is not None


def _pods_of(holdings: Iterable[Holding], pods: Mapping[str, Pod]) -> list[Pod]:
    return [pods[h.uid] for h in holdings if h.uid in pods]


# -- acting on it --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shortage:
    """A pod filter refused only for bandwidth that lower-priority pods hold, and where."""

    uid: str
    nodes: tuple[str, ...]


@dataclass(slots=True)
class PreemptionRecord:
    """What one attempt did, for logs, tests and people."""

    pod: str
    node: str | None
    evicted: list[str] = field(default_factory=list)
    error: str = ""


class Preemptor:
    """Evicts victims and nominates nodes for pods kube-scheduler will not preempt for.

    Filter hands it the pods it refused (``refused``); a worker thread re-plans each against the
    ledger as it is then, lists the budgets of the victims' namespaces, evicts, and nominates.
    Only a replica that may write (the leader) acts.
    """

    def __init__(
        self,
        api: client.ApiClient,
        scheduler: Scheduler,
        may_write: Callable[[], bool] | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._policy = client.PolicyV1Api(api)
        self._scheduler = scheduler
        self._may_write = may_write
        self._timeout = request_timeout
        self._queue: queue.Queue[Shortage | None] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.records: deque[PreemptionRecord] = deque(maxlen=RECENT)
        """The latest attempts, for logs and tests."""

    def refused(self, pod: Pod, result: FilterResult) -> None:
        """After filter: queue the pod when no node passed and some were refused only for
        bandwidth lower-priority pods hold (kube-scheduler's ``FailedNodes``)."""
        nodes = tuple(result.failed)
        if result.passed or not nodes or not may_preempt(pod) or pod.spec.node_name:
            return
        uid = _uid(pod)
        with self._lock:
            if uid in self._queued:
                return
            self._queued.add(uid)
        self._queue.put(Shortage(uid, nodes))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="preemptor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while (shortage := self._queue.get()) is not None:
            with self._lock:
                self._queued.discard(shortage.uid)
            try:
                record = self.preempt(shortage)
            except Exception:  # one pod's failure must not stop the worker
                log.exception("preemption for %s failed", shortage.uid)
                continue
            if record is not None:
                self.records.append(record)

    def preempt(self, shortage: Shortage) -> PreemptionRecord | None:
        """Plan against the ledger as it is now, then evict and nominate."""
        if self._may_write is not None and not self._may_write():
            return None
        pods = {_uid(p): p for p in self._scheduler.state.pods()}
        pod = pods.get(shortage.uid)
        if pod is None or pod.spec.node_name or not may_preempt(pod):
            return None
        try:
            requirements, _ = self._scheduler.requirements_of(pod)  # with its namespace's defaults
        except (InvalidAnnotation, InvalidPolicy):
            return None
        budgets = self._budgets(pods, shortage.nodes)
        plans = {}
        for node in shortage.nodes:
            victims = select_victims(
                self._scheduler.room(requirements, node), pod.spec.priority, pods, budgets
            )
            if victims is not None:
                plans[node] = victims
        node = pick_node(plans)
        record = PreemptionRecord(pod.key, node)
        if node is None:
            record.error = "no node where evicting lower-priority pods makes room"
            log.info("%s: %s", pod.key, record.error)
            return record
        for victim in plans[node]:
            target = pods[victim.uid]
            try:
                self._evict(target)
            except PreemptionError as error:
                record.error = f"evicting {target.key}: {error}"
                log.warning("preemption for %s on %s stopped: %s", pod.key, node, record.error)
                return record
            record.evicted.append(target.key)
        try:
            self._nominate(pod, node)
        except PreemptionError as error:
            record.error = f"nominating {node}: {error}"
        log.info("preempted for %s on %s: evicted %s", pod.key, node, record.evicted or "nothing")
        return record

    def _budgets(self, pods: Mapping[str, Pod], nodes: Iterable[str]) -> list[DisruptionBudget]:
        """The budgets of every namespace with a pod on the candidate nodes."""
        wanted = set(nodes)
        namespaces = {
            p.metadata.effective_namespace for p in pods.values() if p.spec.node_name in wanted
        }
        budgets = []
        for namespace in sorted(namespaces):
            raw = self._call(
                self._policy.list_namespaced_pod_disruption_budget, namespace,
            )
            for item in raw.get("items") or []:
                try:
                    budgets.append(DisruptionBudget.model_validate(item))
                except ValidationError as error:
                    log.warning("ignoring PodDisruptionBudget in %s: %s", namespace, error)
        return budgets

    def _evict(self, pod: Pod) -> None:
        namespace = pod.metadata.effective_namespace
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": namespace},
            "deleteOptions": {"preconditions": {"uid": pod.metadata.uid}},
        }
        self._call(self._core.create_namespaced_pod_eviction, pod.metadata.name, namespace, body)

    def _nominate(self, pod: Pod, node: str) -> None:
        self._call(
            self._core.patch_namespaced_pod_status,
            pod.metadata.name,
            pod.metadata.effective_namespace,
            {"status": {"nominatedNodeName": node}},
            _content_type="application/merge-patch+json",
        )

    def _call(self, call: Callable[..., object], *args: object, **kwargs: object) -> dict:
        try:
            with api_errors():
                response = call(
                    *args, _preload_content=False, _request_timeout=self._timeout, **kwargs
                )
        except ApiFailure as error:
            raise PreemptionError(str(error)) from None
        try:
            return orjson.loads(response.data)  # type: ignore[attr-defined]
        finally:
            response.release_conn()  # type: ignore[attr-defined]


class PreemptionError(RuntimeError):
    """The API refused an eviction or a nomination (the message says what it answered)."""


__all__ = [
    "DisruptionBudget",
    "PreemptionError",
    "PreemptionRecord",
    "Preemptor",
    "Room",
    "Shortage",
    "budget_violations",
    "may_preempt",
    "pick_node",
    "select_victims",
]
