"""The four scheduling steps — filter, prioritize, bind, preempt — over the cluster state.

This module knows nothing of HTTP: the webhook, the CLI's ``explain`` and the
simulator all drive these same methods. Filter is optimistic; bind is authoritative
(check-and-reserve under the ledger lock, then one Binding that carries the
reservation), because kube-scheduler tells an extender its choice only through ``/bind``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import ExitStack
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress

import numpy as np

from bandwidth_accounting.claims import (
    ClaimAsk,
    InvalidClaim,
    claim_asks,
    claim_shortfalls,
    is_netsched_claim,
    overcommits,
    pod_claim_names,
)
from bandwidth_accounting.devices import pod_traffic_interfaces
from bandwidth_accounting.fit import (
    Cause,
    Plan,
    Refusal,
    plan_on_node,
    pod_refusals,
    reservation_for,
)
from bandwidth_accounting.ipam import AddressPoolExhausted
from bandwidth_accounting.ledger import ReservationRefused
from bandwidth_accounting.policy import (
    InvalidPolicy,
    NamespacePolicy,
    policy_problems,
    with_defaults,
)
from bandwidth_accounting.requirements import (
    InvalidAnnotation,
    PodRequirements,
    parse_requirements,
)
from bandwidth_accounting.settings import FitSettings
from contract import annotations
from contract.dra import DEVICE_CLASS, ResourceClaim
from contract.group import SCHEDULER_NAME
from contract.objects import Pod
from contract.reservation import Reservation
from scheduler_extender import scoring
from scheduler_extender.bounded import BoundedLog, text_bytes
from scheduler_extender.cluster import BindConflict, ClusterSource
from scheduler_extender.evaluation import Cluster, Evaluation, FitTables, Shape
from scheduler_extender.keyed_lock import KeyedLock
from scheduler_extender.preemption import Room, select_victims
from scheduler_extender.state import ClusterState
from topology.graph import Topology
from topology.rows import NodeRows

log = logging.getLogger(__name__)

RECENT_DECISIONS = 200
RECENT_DECISIONS_BYTES = 32 * 2**20
"""The decisions log is bounded in bytes too: a caller chooses how large each entry is."""
CACHED_CYCLES = 32
"""Filter evaluations kept for the prioritize call that follows in the same scheduling cycle."""
REMEMBERED_REQUIREMENTS = 1024
"""Distinct (namespace, netsched annotations) whose parsed requirements are kept; the
replicas of a workload share one entry."""

class BindError(Exception):
    """A bind that must fail so that kube-scheduler retries the pod; the message is for a person."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


@dataclass(slots=True)
class FilterResult:
    passed: list[str] = field(default_factory=list)
    refusals: dict[str, list[Refusal]] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, str]:
        """Nodes preemption could cure (kube-scheduler's FailedNodes)."""
        return {
            node: _explain(reasons)
            for node, reasons in self.refusals.items()
            if all(reason.resolvable for reason in reasons)
        }

    @property
    def unresolvable(self) -> dict[str, str]:
        """Nodes preemption cannot cure (FailedAndUnresolvableNodes)."""
        return {
            node: _explain(reasons)
            for node, reasons in self.refusals.items()
            if not all(reason.resolvable for reason in reasons)
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """One scheduling step, kept for people (dashboard, ``netsched explain``)."""

    time: datetime
    verb: str
    pod: str
    node: str | None = None
    passed: int = 0
    refused: Mapping[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True, slots=True)
class Cycle:
    """A filter's evaluation, kept for the prioritize call of the same scheduling cycle."""

    evaluation: Evaluation
    passed: list[str]
    """The candidates that passed, in order: what kube-scheduler sends to prioritize."""

    def of(self, names: list[str], rows: NodeRows) -> tuple[np.ndarray, np.ndarray] | None:
        """(fits, headroom) of ``names`` as the filter found them; None when one of them
        was not a candidate. The common case (exactly the nodes that passed) costs one
        list comparison, not a lookup per name."""
        evaluation = self.evaluation
        if names == self.passed:
            if evaluation.all_fit:
                return evaluation.fits, evaluation.headroom
            return np.ones(len(names), dtype=bool), evaluation.headroom[evaluation.fits]
        column = np.full(len(rows.position), -1, dtype=np.int64)
        known = evaluation.rows >= 0
        column[evaluation.rows[known]] = np.flatnonzero(known)
        wanted = rows.rows_of(names)
        if wanted.size and wanted.min() < 0:
            return None
        index = column[wanted]
        if index.size and index.min() < 0:
            return None
        return evaluation.fits[index], evaluation.headroom[index]


@dataclass(frozen=True, slots=True)
class PodClaims:
    """The pod's ResourceClaims of DeviceClass bandwidth.netsched.io, as the state knows them."""

    keys: tuple[str, ...] = ()
    """namespace/name of each."""
    asks: tuple[ClaimAsk, ...] = ()
    """What those not allocated yet ask; allocated ones are in the ledger already."""
    problem: str | None = None
    """Why one of them cannot be read (``InvalidClaim``)."""
    allocated: tuple[ResourceClaim, ...] = ()
    """Those allocated already (a shared claim, or an earlier attempt's allocation)."""


NO_CLAIMS = PodClaims()


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    fit: FitSettings = field(default_factory=FitSettings)
    scheduler_names: frozenset[str] = frozenset({SCHEDULER_NAME})
    """The kube-scheduler profiles that call this extender: bind refuses pods naming another."""


class Scheduler:
    def __init__(
        self,
        state: ClusterState,
        source: ClusterSource,
        settings: SchedulerSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state = state
        self.source = source
        self.settings = settings or SchedulerSettings()
        self.clock = clock
        self.decisions: BoundedLog[Decision] = BoundedLog(
            RECENT_DECISIONS, RECENT_DECISIONS_BYTES, lambda d: text_bytes(d.refused) + len(d.error)
        )
        self._cycles: OrderedDict[tuple, Cycle] = OrderedDict()
        """The last filter evaluations, by (pod uid, requirements, topology generation)."""
        self._requirements: dict[tuple, tuple[PodRequirements, list[NamespacePolicy]]] = {}
        """``requirements_of`` by (namespace, state generation, netsched annotation values)."""
        self._devices: tuple[Topology | None, dict[str, list[str]]] = (None, {})
        """The topology and its nodes' interfaces published as DRA devices, as filter read them."""
        self._fit_tables = FitTables()
        """Per pod shape seen twice, the fit check's answer for every node, kept for its replicas."""
        self._binding = KeyedLock()
        """Pod uid → its bind in flight: a retried bind waits for the first, Binding included."""

    # -- filter ------------------------------------------------------------------------

    def filter(self, pod: Pod, node_names: Iterable[str]) -> FilterResult:
        names = list(node_names)
        result = FilterResult()
        try:
            requirements, policies = self.requirements_of(pod)
        except (InvalidAnnotation, InvalidPolicy) as error:
            cause = Cause.INVALID_ANNOTATION if isinstance(error, InvalidAnnotation) else Cause.POLICY
            result.refusals = dict.fromkeys(names, [Refusal(cause, str(error))])
            return self._decided("filter", pod, result)
        claims = self.claims_of(pod)
        refusal = _claim_refusal(pod, requirements, claims)
        if refusal is not None:
            result.refusals = dict.fromkeys(names, [refusal])
            return self._decided("filter", pod, result)
        if requirements.needs_resources:
            self._fit(pod, requirements, policies, names, result)
        else:
            result.passed = names
        if claims.asks:
            self._fit_claims(claims.asks, result)
        for claim in claims.allocated:
            self._fit_allocated(claim, result)
        return self._decided("filter", pod, result)

    def _fit(
        self, pod: Pod, requirements: PodRequirements, policies: Sequence[NamespacePolicy], names: list[str],
        result: FilterResult,
    ) -> None:
        """The annotations' asks against every candidate, into ``result``."""
        state = self.state
        uid = _uid(pod)
        everywhere = pod_refusals(requirements, state.topology, state.ledger, uid)
        everywhere += self._policy_refusals(pod, requirements, policies)
        if everywhere:
            result.refusals = dict.fromkeys(names, everywhere)
            return
        topology = state.topology
        evaluation = self._evaluate(pod, requirements, names, topology, topology.rows.rows_of(names))
        if evaluation.all_fit:  # the common case: nothing to pick out name by name
            result.passed = names
        else:
            fits = evaluation.fits.tolist()
            result.passed = list(compress(names, fits))
            result.refusals = {
                name: evaluation.refusals[name] for name, fit in zip(names, fits, strict=True) if not fit
            }
        self._keep_cycle(pod, requirements, Cycle(evaluation, result.passed))

    def _fit_allocated(self, claim: ResourceClaim, result: FilterResult) -> None:
        """Refuse the node of an allocated claim that over-commits it beside the reservations.

        An allocation stays when bind refused it (kube-scheduler's Unreserve only takes the
        pod out of ``reservedFor``), and the pod's next attempt goes to the same node: say
        why it cannot go there until room is freed (which wakes it) instead of failing binds."""
        shortfalls = overcommits(self.state.claim_reading(claim).holdings, self.state.ledger)
        refused = {s.node for s in shortfalls} & set(result.passed)
        # A new list: the one filter passed may be kept for prioritize (``Cycle``).
        result.passed = [node for node in result.passed if node not in refused]
        for node in sorted(refused):
            result.refusals[node] = [
                Refusal(Cause.BANDWIDTH, f"claim {claim.key} (allocated here): {s.message}")
                for s in shortfalls if s.node == node
            ]

    def _device_interfaces(self, topology: Topology, node: str) -> list[str]:
        """The interfaces of ``node`` published as DRA devices, kept per topology."""
        if self._devices[0] is not topology:
            self._devices = (topology, {})
        known = self._devices[1].get(node)
        if known is None:
            known = self._devices[1][node] = (
                [i.name for i in pod_traffic_interfaces(topology, node)] if node in topology.node_networks else []
            )
        return known

    def _fit_claims(self, asks: Sequence[ClaimAsk], result: FilterResult) -> None:
        """Refuse the passed nodes where no interface has room for a claim's ask beside the
        annotation reservations and the other DRA allocations: kube-scheduler's allocator
        sees only the latter. Not resolvable by netsched's preemption (its victims are
        annotation pods; a claim's is kube-scheduler's business)."""
        state = self.state
        topology, ledger = state.topology, state.ledger
        since = self.settings.fit.observed_since(self.clock())
        passed = []
        for name in result.passed:
            failed = claim_shortfalls(list(asks), name, self._device_interfaces(topology, name), ledger, since)
            if not failed:
                passed.append(name)
                continue
            result.refusals[name] = [
                Refusal(Cause.BANDWIDTH, f"claim {ask.claim} request {ask.request}: {shortfall.message}")
                for ask, shortfalls in failed
                for shortfall in shortfalls
            ] or [Refusal(Cause.BANDWIDTH, f"no interface of {name} carries pod traffic (no DRA device)")]
        result.passed = passed

    # -- prioritize --------------------------------------------------------------------

    def prioritize(self, pod: Pod, node_names: Iterable[str], *, keep_cycle: bool = False) -> list[int]:
        """Scores 0..10, one per node in the order given; a pod netsched has no opinion
        about scores all nodes alike. A list, not a dict by name: kube-scheduler sends
        hundreds of candidates per call, and their answer is built in that order anyway.

        ``keep_cycle`` leaves the filter's evaluation for a later call: scores prepared
        before kube-scheduler's own call (``prepared``), which may bring fewer nodes."""
        names = list(node_names)
        neutral = [scoring.NEUTRAL_SCORE] * len(names)
        try:
            requirements, _ = self.requirements_of(pod)
        except (InvalidAnnotation, InvalidPolicy):
            return neutral
        if not requirements.needs_resources and requirements.peers is None:
            return neutral
        topology = self.state.topology
        if pod_refusals(requirements, topology, self.state.ledger, _uid(pod)):
            # Filter refuses such a pod everywhere (an unknown network, say) with the reason.
            return neutral
        rows = topology.rows
        opinions = []
        if requirements.peers is not None:
            opinions.append(scoring.peer_scores(rows.rows_of(names), self._peer_rows(pod, requirements, rows), rows))
        fits = None
        if requirements.needs_resources:
            kept = self._cycle_of(pod, requirements, names, rows, keep_cycle)
            if kept is None:
                evaluation = self._evaluate(pod, requirements, names, topology, rows.rows_of(names))
                kept = evaluation.fits, evaluation.headroom
            fits, headroom = kept
            opinions.append(scoring.bandwidth_scores(headroom, requirements.placement))
        scores = scoring.combine(opinions, len(names))
        if fits is not None:
            scores = np.where(fits, scores, 0)
        return scores.tolist()

    def _evaluate(
        self, pod: Pod, requirements: PodRequirements, names: list[str], topology: Topology, rows: np.ndarray
    ) -> Evaluation:
        """The pod against every candidate (``evaluation.FitTables``)."""
        state = self.state
        cluster = Cluster(topology, state.ledger, state.slot_map(topology), self.settings.fit)
        return self._fit_tables.evaluate(Shape(requirements, pod.spec.priority), names, rows, cluster, self.clock())

    def _keep_cycle(self, pod: Pod, requirements: PodRequirements, cycle: Cycle) -> None:
        """Keep a filter's evaluation for the prioritize call of the same scheduling cycle.

        kube-scheduler calls prioritize right after filter with the nodes that passed:
        the batch check runs once per pod and cycle. Binds in between (other pods'
        binding cycles run concurrently) only make its scores a few milliseconds old;
        bind checks again. A new topology, or the pod's next cycle, replaces it; the
        prioritize call takes it (``_cycle_of``)."""
        key = (_uid(pod), requirements, self.state.generation)
        self._cycles[key] = cycle
        self._cycles.move_to_end(key)
        while len(self._cycles) > CACHED_CYCLES:
            self._cycles.popitem(last=False)

    def _cycle_of(
        self, pod: Pod, requirements: PodRequirements, names: list[str], rows: NodeRows, keep: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The cycle's (fits, headroom) for ``names``, taken out of the cache unless ``keep``:
        kube-scheduler calls prioritize once per cycle. Its candidate list then goes while
        the comparison with ``names`` has just read it, not ``CACHED_CYCLES`` cycles later
        from cold memory."""
        key = (_uid(pod), requirements, self.state.generation)
        kept = self._cycles.get(key) if keep else self._cycles.pop(key, None)
        return kept.of(names, rows) if kept is not None else None

    # -- bind --------------------------------------------------------------------------

    def bind(self, namespace: str, name: str, uid: str, node: str) -> Reservation | None:
        """Reserve, then bind with the reservation in the Binding; on failure release the
        reservation and raise BindError. Binds of one pod run one at a time (``KeyedLock``)."""
        try:
            with self._binding.held(uid):
                reservation = self._bind(namespace, name, uid, node)
        except BindError as error:
            self.decisions.append(
                Decision(self.clock(), "bind", f"{namespace}/{name}", node, error=str(error))
            )
            raise
        self.decisions.append(Decision(self.clock(), "bind", f"{namespace}/{name}", node))
        return reservation

    def _bind(self, namespace: str, name: str, uid: str, node: str) -> Reservation | None:
        pod = self._pod_to_bind(namespace, name, uid)
        ledger = self.state.ledger
        if pod.spec.node_name:
            # kube-scheduler retries a bind whose reply it lost: answer it, never undo it.
            holding = ledger.holding(uid)
            if pod.spec.node_name == node:
                return holding.reservation if holding is not None else None
            raise BindError(f"pod {pod.key} is already bound to {pod.spec.node_name}")
        try:
            requirements, policies = self.requirements_of(pod)
        except (InvalidAnnotation, InvalidPolicy) as error:
            raise BindError(str(error)) from None
        claims = self._claims_to_bind(pod)
        held = ExitStack()
        if claims:
            # The claims are the pod's ask (the watch may not have shown them to requirements_of).
            requirements = parse_requirements(pod.metadata.annotations, pod.metadata.effective_namespace)
            refusal = _claim_refusal(pod, requirements, PodClaims(tuple(c.key for c in claims)))
            if refusal is not None:
                raise BindError(refusal.message)
            # The state before the ledger, as the sources take them: admitting a claim updates both.
            held.enter_context(self.state.locked())
            held.enter_context(ledger.locked())
        reservation, reserved_now, recorded = None, False, {}
        with held:
            if claims:
                self._admit_claims(pod, node, claims)
            if requirements.needs_resources:
                reservation, reserved_now = self._reserve(pod, requirements, node, policies)
                recorded = {annotations.RESERVATION: reservation.annotation()}
        try:
            self.source.bind(pod, node, recorded)
        except BindConflict as error:
            if reserved_now:
                ledger.release(uid)
            raise BindError(f"binding failed: {error}", conflict=True) from None
        return reservation

    def _claims_to_bind(self, pod: Pod) -> list[ResourceClaim]:
        """The pod's netsched claims as the API holds them now: kube-scheduler wrote their
        allocation (its DRA plugin's PreBind) just before calling bind, ahead of the watch."""
        claims = []
        for key in pod_claim_names(pod):
            namespace, name = key.split("/", 1)
            try:
                claim = self.source.read_claim(namespace, name)
            except BindConflict as error:
                raise BindError(str(error), conflict=True) from None
            if claim is None:
                raise BindError(f"pod {pod.key}: ResourceClaim {key} does not exist", conflict=True)
            if is_netsched_claim(claim):
                claims.append(claim)
        return claims

    def _admit_claims(self, pod: Pod, node: str, claims: list[ResourceClaim]) -> None:
        """Check the claims' allocation against the whole ledger and record it, or raise.

        kube-scheduler allocated it counting only DRA allocations; annotation reservations
        are invisible to it. Call with the state and the ledger locked: the check and the
        record are one step, as ``Ledger.reserve`` is for a reservation."""
        holdings = []
        for claim in claims:
            results = claim.netsched_results()
            if not results:
                raise BindError(f"pod {pod.key}: ResourceClaim {claim.key} is not allocated", conflict=True)
            elsewhere = sorted({r.pool for r in results} - {node})
            if elsewhere:
                raise BindError(
                    f"pod {pod.key}: ResourceClaim {claim.key} is allocated on {', '.join(elsewhere)}, not {node}",
                    conflict=True,
                )
            holdings += self.state.claim_reading(claim).holdings
        shortfalls = overcommits(holdings, self.state.ledger)
        if shortfalls:
            keys = ", ".join(c.key for c in claims)
            raise BindError(
                f"{pod.key}: ResourceClaim {keys} would over-commit {node} beside its reservations: "
                + "; ".join(s.message for s in shortfalls),
                conflict=True,
            )
        for claim in claims:
            self.state.upsert(claim)

    def _pod_to_bind(self, namespace: str, name: str, uid: str) -> Pod:
        """The pod kube-scheduler asks to bind, as the API holds it, checked to be the one
        it names (namespace, name and uid) and one a served scheduler placed.

        The watch usually knows the pod already; when it lags, the API is asked. Nothing
        from a filter body is trusted here: bind writes to the pod."""
        key = f"{namespace}/{name}"
        if not uid:
            raise BindError(f"bind of {key}: PodUID is empty")
        pod = self.state.pod(uid)
        if pod is None or (pod.metadata.effective_namespace, pod.metadata.name) != (namespace, name):
            try:
                pod = self.source.read_pod(namespace, name)
            except BindConflict as error:
                raise BindError(str(error)) from None
        if pod is None:
            raise BindError(f"pod {key} does not exist")
        if pod.metadata.uid != uid:
            raise BindError(f"pod {key} has uid {pod.metadata.uid}, not PodUID {uid}")
        if pod.spec.scheduler_name not in self.settings.scheduler_names:
            served = ", ".join(sorted(self.settings.scheduler_names))
            raise BindError(
                f"pod {key} names schedulerName {pod.spec.scheduler_name}; this extender binds "
                f"only pods of {served}"
            )
        return pod

    def _reserve(
        self, pod: Pod, requirements: PodRequirements, node: str, policies: Sequence[NamespacePolicy] = ()
    ) -> tuple[Reservation, bool]:
        """The pod's reservation on ``node`` and whether this call took it.

        A bind for the same pod and node already holding one (a concurrent retry) reuses
        it and must not release it on failure: the first bind owns it.
        """
        state = self.state
        topology, ledger, uid = state.topology, state.ledger, _uid(pod)
        with ledger.locked():
            held = ledger.holding(uid)
            if held is not None:
                if held.node != node:
                    raise BindError(f"{pod.key} is being bound to {held.node}", conflict=True)
                return held.reservation, False
            refusals = pod_refusals(requirements, topology, ledger, uid)
            refusals += self._policy_refusals(pod, requirements, policies)
            outcome = refusals or plan_on_node(
                requirements, node, topology, ledger, self.clock(), self.settings.fit, pod.spec.priority
            )
            if not isinstance(outcome, Plan):
                raise BindError(f"{pod.key} no longer fits {node}: {_explain(outcome)}", conflict=True)
            try:
                reservation = reservation_for(outcome, requirements, topology, ledger, uid)
                ledger.reserve(uid, pod.key, pod.spec.priority, reservation)
            except (ReservationRefused, AddressPoolExhausted) as error:
                raise BindError(f"{pod.key} no longer fits {node}: {error}", conflict=True) from None
        return reservation, True

    # -- preempt -----------------------------------------------------------------------

    def preempt(self, pod: Pod, candidates: Mapping[str, list[str]]) -> dict[str, list[str]]:
        """For each candidate node, the victims (UIDs) that make the pod fit, or drop the node.

        kube-scheduler proposes victims for its own resources; netsched keeps them and adds
        the lower-priority bandwidth holders kube-scheduler's own preemption would pick
        (``preemption.select_victims``). A node where nothing suffices is left out.
        """
        try:
            requirements, _ = self.requirements_of(pod)
        except (InvalidAnnotation, InvalidPolicy):
            return {}
        if not requirements.needs_resources:
            return {node: list(victims) for node, victims in candidates.items()}
        if pod_refusals(requirements, self.state.topology, self.state.ledger, _uid(pod)):
            return {}
        pods = {_uid(p): p for p in self.state.pods()}
        result = {}
        for node, proposed in candidates.items():
            extra = select_victims(
                self.room(requirements, node), pod.spec.priority, pods, gone=proposed
            )
            if extra is not None:
                result[node] = list(proposed) + [h.uid for h in extra]
        return result

    def room(self, requirements: PodRequirements, node: str) -> Room:
        """The pod's requirements against ``node`` as the cluster is now (for preemption)."""
        state = self.state
        return Room(requirements, node, state.topology, state.ledger, self.clock(), self.settings.fit)

    # -- helpers -----------------------------------------------------------------------

    def requirements_of(self, pod: Pod) -> tuple[PodRequirements, list[NamespacePolicy]]:
        """What the pod asks, with its namespace's defaults filled in, and the namespace's
        policies; raises ``InvalidAnnotation`` or ``InvalidPolicy``.

        Filter, prioritize and bind of one pod ask the same, and so do the replicas of a
        workload: the answer is kept by what it is read from (the pod's netsched
        annotations, its namespace and the state's generation, which every policy change
        bumps), never by the pod's name or UID, which a request body could pair with
        other annotations."""
        metadata = pod.metadata
        namespace = metadata.effective_namespace
        # A pod with a netsched claim asks its bandwidth there: no namespace default beside it.
        claimed = bool(pod.spec.resource_claims) and bool(self.claims_of(pod).keys)
        inputs = tuple(map(metadata.annotations.get, annotations.INPUTS))
        key = (namespace, self.state.generation, claimed, inputs)
        known = self._requirements.get(key)
        if known is None:
            requirements = parse_requirements(metadata.annotations, namespace)
            policies = self.state.namespace_policies(namespace)
            known = (requirements if claimed else with_defaults(requirements, policies)), policies
            if len(self._requirements) >= REMEMBERED_REQUIREMENTS:
                self._requirements.clear()
            self._requirements[key] = known
        return known

    def claims_of(self, pod: Pod) -> PodClaims:
        """The pod's netsched claims as the state knows them (one not seen yet is not counted:
        bind reads them all from the API)."""
        if not pod.spec.resource_claims:
            return NO_CLAIMS
        keys: list[str] = []
        asks: list[ClaimAsk] = []
        allocated: list[ResourceClaim] = []
        for key in pod_claim_names(pod):
            claim = self.state.claim(key)
            if claim is None or not is_netsched_claim(claim):
                continue
            keys.append(key)
            if claim.status.allocation is not None:
                allocated.append(claim)
            else:
                try:
                    asks += claim_asks(claim)
                except InvalidClaim as error:
                    return PodClaims(tuple(keys), (), str(error))
        return PodClaims(tuple(keys), tuple(asks), allocated=tuple(allocated))

    def _policy_refusals(
        self, pod: Pod, requirements: PodRequirements, policies: Sequence[NamespacePolicy]
    ) -> list[Refusal]:
        """The namespace's maximum and totals: the same on every node, so refused everywhere."""
        if not policies:
            return []
        used = self.state.ledger.namespace_reserved(pod.metadata.effective_namespace)
        return [Refusal(Cause.POLICY, problem) for problem in policy_problems(requirements, policies, used)]

    def _peer_rows(self, pod: Pod, requirements: PodRequirements, rows: NodeRows) -> dict[int, int]:
        """Topology row of each node running the pod's peers → how many of them run there."""
        selector = requirements.peers
        if selector is None:
            return {}
        counts = self.state.peer_nodes(pod.metadata.effective_namespace, selector, _uid(pod))
        return {rows.position[node]: count for node, count in counts.items() if node in rows.position}

    def _decided(self, verb: str, pod: Pod, result: FilterResult) -> FilterResult:
        self.decisions.append(
            Decision(
                self.clock(),
                verb,
                pod.key,
                passed=len(result.passed),
                refused={node: _explain(reasons) for node, reasons in result.refusals.items()},
            )
        )
        return result


def _claim_refusal(pod: Pod, requirements: PodRequirements, claims: PodClaims) -> Refusal | None:
    """A netsched claim netsched cannot read, or bandwidth asked both by annotation and by
    claim: one ask, one record (the ledger, the CNI and the views each read one of them)."""
    if claims.problem is not None:
        return Refusal(Cause.CLAIM, claims.problem)
    if not claims.keys:
        return None
    asked = [name for name in (annotations.INGRESS_BANDWIDTH, annotations.EGRESS_BANDWIDTH)
             if pod.metadata.annotations.get(name)]
    asked += sorted({
        annotations.MULTUS_NETWORKS if "/" in a.network else annotations.NETWORKS
        for a in requirements.attachments if a.ingress_bps or a.egress_bps
    })
    if not asked:
        return None
    return Refusal(
        Cause.CLAIM,
        f"bandwidth asked both ways: annotation {', '.join(asked)} and ResourceClaim "
        f"{', '.join(claims.keys)} (DeviceClass {DEVICE_CLASS}); ask by one of them",
    )


def _uid(pod: Pod) -> str:
    return pod.metadata.uid or pod.key


def _explain(reasons: list[Refusal]) -> str:
    return "; ".join(reason.message for reason in reasons)


__all__ = ["BindError", "Decision", "FilterResult", "Scheduler", "SchedulerSettings"]
