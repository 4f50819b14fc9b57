"""The extender's picture of the cluster: topology snapshot, pods and the ledger.

``ClusterState`` is the sink every cluster source feeds. It derives everything it
can instead of storing it: the topology is rebuilt from the API objects when they
change, usable capacity from the topology, and the ledger from the pods' recorded
reservations.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from bandwidth_accounting.batch import SlotMap
from bandwidth_accounting.claims import ClaimProblem, ClaimReading, claim_holdings
from bandwidth_accounting.interning import Interning
from bandwidth_accounting.ledger import Holding, Ledger, node_headroom, usable_by_interface
from bandwidth_accounting.observed import ObservedLoad
from bandwidth_accounting.policy import NamespacePolicy
from bandwidth_accounting.requirements import InvalidAnnotation, LabelSelector, primary_rates
from bandwidth_accounting.settings import CapacitySettings
from contract import annotations
from contract.attachment_definitions import NetworkAttachmentDefinition
from contract.dra import ResourceClaim
from contract.group import SCHEDULER_NAME
from contract.objects import BandwidthPolicy, Network, Node, NodeNetwork, Pod, PodSpec, PodStatus
from contract.reservation import Rates, Reservation
from scheduler_extender.cluster import ClusterObject, ClusterSnapshot
from scheduler_extender.peers import PeerCounts
from topology.attachment_definitions import DefinitionNetwork, describe_definition
from topology.graph import Topology

log = logging.getLogger(__name__)

DELETED_CLAIMS_KEPT = 4096
"""Deleted ResourceClaims remembered, so that a bind's older read cannot bring one back."""
KEPT_POD_ANNOTATIONS = frozenset((*annotations.INPUTS, annotations.RESERVATION))
"""The annotations of a pod that netsched reads: what its author asks, and the reservation
bind wrote. A held pod keeps no other (``ClusterState._keep``)."""


class Rejection(StrEnum):
    """Why a bound pod's recorded reservation is not counted; the metric's ``reason`` label."""

    UNREADABLE = "unreadable"
    TOO_LARGE = "too_large"
    OTHER_NODE = "other_node"
    NOT_NETSCHED = "not_netsched_pod"


@dataclass(frozen=True, slots=True)
class RejectedReservation:
    """A reservation on a bound pod that the ledger refuses to count, and why."""

    uid: str
    pod: str
    reason: Rejection
    detail: str


def _read_reservation(
    pod: Pod, held: Reservation | None
) -> Reservation | tuple[Rejection, str] | None:
    raw = pod.metadata.annotations.get(annotations.RESERVATION)
    if raw is None:
        return None
    if (too_long := annotations.oversized(annotations.RESERVATION, raw)) is not None:
        return Rejection.TOO_LARGE, f"{annotations.RESERVATION} {too_long}"
    if held is not None and raw == held.annotation():
        # What bind wrote, back through the watch: writing it again costs a third of reading it.
        return held
    try:
        return Reservation.model_validate_json(raw)
    except ValidationError as error:
        return Rejection.UNREADABLE, f"{annotations.RESERVATION} is unreadable ({error.error_count()} errors)"


def checked_reservation(
    pod: Pod, scheduler_names: frozenset[str], held: Reservation | None = None
) -> Reservation | RejectedReservation | None:
    """The reservation a bound pod holds, as the ledger may count it, or why it may not.

    Only netsched writes reservations, for pods of a scheduler it serves, naming the node
    it binds the pod to; one that breaks either rule, is unreadable or is over its size
    cap was written by someone else (a pod author, without the admission policy of
    deploy/) and is not counted. ``held``: what the ledger holds for the pod already, reused
    when the annotation is its JSON.
    """
    found = _read_reservation(pod, held)
    if found is None or isinstance(found, Reservation) and (
        found.node == pod.spec.node_name and pod.spec.scheduler_name in scheduler_names
    ):
        return found
    uid = pod.metadata.uid or pod.key
    if not isinstance(found, Reservation):
        return RejectedReservation(uid, pod.key, *found)
    if found.node != pod.spec.node_name:
        return RejectedReservation(
            uid, pod.key, Rejection.OTHER_NODE,
            f"names node {annotations.quoted(found.node)}, the pod is on {pod.spec.node_name}",
        )
    served = ", ".join(sorted(scheduler_names))
    return RejectedReservation(
        uid, pod.key, Rejection.NOT_NETSCHED,
        f"the pod's schedulerName {annotations.quoted(pod.spec.scheduler_name)} is not one netsched serves ({served})",
    )


def holds_reservation(pod: Pod) -> bool:
    """Bound, not finished: a pod whose recorded reservation counts in the ledger."""
    return bool(pod.spec.node_name) and not pod.is_terminal


class ClusterState:
    """Thread-safe cluster picture; implements ``ClusterSink``."""

    def __init__(
        self, capacity: CapacitySettings | None = None,
        scheduler_names: frozenset[str] = frozenset({SCHEDULER_NAME}),
    ) -> None:
        self.capacity = capacity or CapacitySettings()
        self.scheduler_names = scheduler_names
        """Pods of these schedulers are netsched's: only their reservations are counted."""
        self.ledger = Ledger()
        self._rejected: dict[str, RejectedReservation] = {}
        """uid → a bound pod's reservation that is not counted (see ``checked_reservation``)."""
        self.observed = ObservedLoad(self.ledger, self.capacity.observed_window)
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._node_networks: dict[str, NodeNetwork] = {}
        self._networks: dict[str, Network] = {}
        self._definitions: dict[str, DefinitionNetwork] = {}
        """namespace/name → what netsched read of each NetworkAttachmentDefinition."""
        self._policies: dict[str, dict[str, BandwidthPolicy]] = {}
        """namespace → name → BandwidthPolicy."""
        self._pods: dict[str, Pod] = {}
        self._specs: Interning[PodSpec] = Interning()
        self._statuses: Interning[PodStatus] = Interning()
        """Each distinct spec and status of the pods held, the one object they share (``_keep``)."""
        self._placed: dict[str, dict[str, Pod]] = {}
        """namespace → uid → bound, running pods: what peer selectors are matched against."""
        self._peers = PeerCounts()
        """For the peer selectors asked, ``_placed`` pods matching them counted per node."""
        self._claims: dict[str, ResourceClaim] = {}
        """namespace/name → ResourceClaim (every claim: a pod's filter reads what it asks)."""
        self._claim_holdings: dict[str, set[str]] = {}
        """namespace/name of a claim → the ledger keys of its DRA holdings."""
        self._claim_problems: dict[str, list[ClaimProblem]] = {}
        """namespace/name of a claim → what of its allocation is not counted as written."""
        self._deleted_claims: OrderedDict[str, None] = OrderedDict()
        """uids of the last claims deleted: a bind's read of one, applied after its deletion, is stale."""
        self._topology: Topology | None = None
        self._slot_map: SlotMap | None = None
        self.generation = 0
        """Bumped whenever the topology or a BandwidthPolicy changes; callers key caches on it."""
        self.ready = threading.Event()

    # -- ClusterSink -------------------------------------------------------------------

    def reset(self, snapshot: ClusterSnapshot) -> None:
        with self._lock:
            self._nodes = {n.name: n for n in snapshot.nodes}
            self._node_networks = {n.metadata.name: n for n in snapshot.node_networks}
            self._networks = {n.name: n for n in snapshot.networks}
            self._definitions = {d.key: describe_definition(d) for d in snapshot.definitions}
            self._policies = {}
            for policy in snapshot.bandwidth_policies:
                self._policies.setdefault(policy.metadata.effective_namespace, {})[policy.metadata.name] = policy
            self._pods = {}
            self._specs, self._statuses = Interning(), Interning()
            self._placed = {}
            self._peers.clear()
            self._rejected = {}
            for pod in snapshot.pods:
                self._index_pod(pod)
            for node in self.observed.nodes() - set(self._node_networks):
                self.observed.forget(node)
            for report in snapshot.node_networks:
                self.observed.record_report(report)
            self._claims = {c.key: c for c in snapshot.claims}
            self._invalidate_topology()
            self._claim_holdings, self._claim_problems = {}, {}
            readings = [self._read_claim(claim) for claim in self._claims.values()]
            warnings = self.ledger.rebuild(
                [holding for pod in self._pods.values() if (holding := self._holding_of(pod)) is not None]
                + [holding for reading in readings for holding in reading.holdings]
            )
            for warning in warnings:
                log.warning("rebuilt ledger: %s", warning)
            self.ready.set()

    def upsert(self, obj: ClusterObject) -> None:
        with self._lock:
            if isinstance(obj, Pod):
                self._upsert_pod(obj)
                return
            if isinstance(obj, ResourceClaim):
                self._upsert_claim(obj)
                return
            if isinstance(obj, BandwidthPolicy):
                self._policies.setdefault(obj.metadata.effective_namespace, {})[obj.metadata.name] = obj
                self.generation += 1  # what pods of the namespace ask changes: cached plans go
                return
            if isinstance(obj, NodeNetwork):
                self._node_networks[obj.metadata.name] = obj
                self.observed.record_report(obj)
                if self._topology is not None and self._topology.refresh_report(obj):
                    # A heartbeat: same structure, nothing to rebuild; fit answers of this node go.
                    self.ledger.changes.record(obj.metadata.name, timed=True)
                    return
                self._invalidate_topology()
                self._recount_foreign(obj.metadata.name)
                self._recount_claims(obj.metadata.name)
                return
            if isinstance(obj, Node):
                if self._refresh_node(obj):
                    return
            elif isinstance(obj, Network):
                self._networks[obj.name] = obj
            elif isinstance(obj, NetworkAttachmentDefinition):
                self._definitions[obj.key] = describe_definition(obj)
            self._invalidate_topology()

    def delete(self, obj: ClusterObject) -> None:
        with self._lock:
            if isinstance(obj, Pod):
                uid = obj.metadata.uid or obj.key
                self._pods.pop(uid, None)
                namespace = obj.metadata.effective_namespace
                self._peers.moved(namespace, self._placed.get(namespace, {}).pop(uid, None), None)
                self._rejected.pop(uid, None)
                self.ledger.release(uid)
                return
            if isinstance(obj, ResourceClaim):
                key = obj.key
                if obj.metadata.uid:
                    self._deleted_claims[obj.metadata.uid] = None
                    while len(self._deleted_claims) > DELETED_CLAIMS_KEPT:
                        self._deleted_claims.popitem(last=False)
                self._claims.pop(key, None)
                self._claim_problems.pop(key, None)
                for share in self._claim_holdings.pop(key, set()):
                    self.ledger.release(share)
                return
            if isinstance(obj, BandwidthPolicy):
                self._policies.get(obj.metadata.effective_namespace, {}).pop(obj.metadata.name, None)
                self.generation += 1
                return
            if isinstance(obj, Node):
                self._nodes.pop(obj.name, None)
            elif isinstance(obj, NodeNetwork):
                self._node_networks.pop(obj.metadata.name, None)
                self.observed.forget(obj.metadata.name)
            elif isinstance(obj, Network):
                self._networks.pop(obj.name, None)
            elif isinstance(obj, NetworkAttachmentDefinition):
                self._definitions.pop(obj.key, None)
            self._invalidate_topology()

    # -- reading -----------------------------------------------------------------------

    @property
    def topology(self) -> Topology:
        topology = self._topology
        if topology is None:
            with self._lock:
                if self._topology is None:
                    self._topology = Topology(
                        self._nodes.values(),
                        self._node_networks.values(),
                        self._networks.values(),
                        self._definitions.values(),
                    )
                topology = self._topology
        return topology

    def slot_map(self, topology: Topology) -> SlotMap:
        """Ledger slots of ``topology``'s interfaces, for batch fit checks; cached per topology."""
        with self._lock:
            if self._slot_map is None or self._slot_map.rows is not topology.rows:
                self._slot_map = SlotMap(topology.rows, self.ledger)
            return self._slot_map

    def pod(self, uid: str) -> Pod | None:
        return self._pods.get(uid)

    def pods(self) -> list[Pod]:
        with self._lock:
            return list(self._pods.values())

    def peer_nodes(self, namespace: str, selector: LabelSelector, excluding: str) -> dict[str, int]:
        """Bound, running pods of ``namespace`` that ``selector`` matches, the pod of uid
        ``excluding`` left out, counted per node (``PeerCounts``)."""
        with self._lock:
            return self._peers.counts(namespace, selector, self._placed.get(namespace, {}), excluding)

    def bandwidth_policies(self, namespace: str | None = None) -> list[BandwidthPolicy]:
        """The namespace's BandwidthPolicies by name (every namespace's without one)."""
        with self._lock:
            chosen = [self._policies.get(namespace, {})] if namespace is not None else self._policies.values()
            return [by_name[name] for by_name in chosen for name in sorted(by_name)]

    def namespace_policies(self, namespace: str) -> list[NamespacePolicy]:
        """The namespace's policies, parsed; raises ``InvalidPolicy`` naming a bad value."""
        return [NamespacePolicy.of(policy) for policy in self.bandwidth_policies(namespace)]

    def rejected_reservations(self) -> list[RejectedReservation]:
        """Reservations on bound pods that the ledger does not count, by pod name."""
        with self._lock:
            return sorted(self._rejected.values(), key=lambda r: r.pod)

    @contextmanager
    def locked(self) -> Iterator[ClusterState]:
        """Hold the state still. Take it before the ledger's lock, never after: sources apply
        events holding this lock and then the ledger's."""
        with self._lock:
            yield self

    def claim(self, key: str) -> ResourceClaim | None:
        """A ResourceClaim by namespace/name, as the watch (or a bind's read) last saw it."""
        return self._claims.get(key)

    def claim_charges(self, key: str) -> dict[str, tuple[int, int]]:
        """What claim ``key`` holds per node, all interfaces together: (ingress, egress)."""
        with self._lock:
            charges: dict[str, tuple[int, int]] = {}
            for uid in self._claim_holdings.get(key, ()):
                holding = self.ledger.holding(uid)
                if holding is not None:
                    ingress, egress = charges.get(holding.node, (0, 0))
                    for rates in holding.reservation.interfaces.values():
                        ingress, egress = ingress + rates.ingress, egress + rates.egress
                    charges[holding.node] = (ingress, egress)
            return charges

    def claim_problems(self) -> list[ClaimProblem]:
        """What of the DRA allocations is not counted as written, by claim."""
        with self._lock:
            return [p for key in sorted(self._claim_problems) for p in self._claim_problems[key]]

    def claim_reading(self, claim: ResourceClaim) -> ClaimReading:
        """``claim``'s allocation as holdings on the nodes as they are now (nothing recorded)."""
        with self._lock:
            return claim_holdings(claim, self._node_interfaces)

    def node_names(self) -> list[str]:
        return list(self.topology.nodes)

    # -- internals ---------------------------------------------------------------------

    def _keep(self, pod: Pod) -> None:
        """Make ``pod`` what the state holds: only the annotations netsched reads, and
        the spec and status objects that equal pods held already have.

        The state holds every pod of the cluster, 150,000 at 5,000 nodes
        (``bandwidth_accounting.interning``). Other annotations (kubectl's last-applied
        configuration, Multus's network status, a mesh's sidecar status) are as large as
        their writers make them. Most pods on a node have equal specs as netsched reads
        them (node, priority, scheduler), and most pods one of a few statuses (their
        phase); a spec or status naming claims is the pod's own."""
        metadata = pod.metadata
        if not metadata.annotations.keys() <= KEPT_POD_ANNOTATIONS:
            metadata.annotations = {
                name: value for name, value in metadata.annotations.items() if name in KEPT_POD_ANNOTATIONS
            }
        if not pod.spec.resource_claims:
            pod.spec = self._specs.of(pod.spec)
        if not pod.status.resource_claim_statuses:
            pod.status = self._statuses.of(pod.status)

    def _index_pod(self, pod: Pod) -> None:
        self._keep(pod)
        uid = pod.metadata.uid or pod.key
        self._pods[uid] = pod
        namespace = pod.metadata.effective_namespace
        placed = self._placed.setdefault(namespace, {})
        before = placed.pop(uid, None)
        if holds_reservation(pod):
            placed[uid] = pod
        self._peers.moved(namespace, before, placed.get(uid))

    def _upsert_pod(self, pod: Pod) -> None:
        uid = pod.metadata.uid or pod.key
        self._index_pod(pod)
        holding = self._holding_of(pod)
        if holding is None:
            # A pending pod may carry a reservation mid-bind; only a finished one frees it,
            # and a rejected one must not keep what an earlier version of the pod held.
            if pod.is_terminal or uid in self._rejected:
                self.ledger.release(uid)
            return
        self.ledger.record(holding)

    def _holding_of(self, pod: Pod) -> Holding | None:
        uid = pod.metadata.uid or pod.key
        if not holds_reservation(pod):
            self._rejected.pop(uid, None)
            return None
        held = self.ledger.holding(uid)
        own = held.reservation if held is not None and not (held.foreign or held.claim) else None
        checked = checked_reservation(pod, self.scheduler_names, own)
        if isinstance(checked, RejectedReservation):
            if self._rejected.get(uid) != checked:
                log.warning("pod %s: not counting its %s: %s", pod.key, annotations.RESERVATION, checked.detail)
            self._rejected[uid] = checked
            return self._foreign_holding(pod)
        self._rejected.pop(uid, None)
        if checked is None:
            return self._foreign_holding(pod)
        return Holding(uid, pod.key, pod.spec.priority, checked)

    def _foreign_holding(self, pod: Pod) -> Holding | None:
        """A bound pod without a reservation netsched counts still gets what its bandwidth
        annotations ask, on its node's pod interface: the runtime shapes it to that, whoever
        placed it. No attachments, no addresses: those only netsched's reservations make."""
        try:
            ingress, egress = primary_rates(pod.metadata.annotations)
        except InvalidAnnotation as error:
            log.warning("pod %s: not counting its bandwidth: %s", pod.key, error)
            return None
        node = pod.spec.node_name or ""
        interface = self.topology.pod_interface(node)
        if not (ingress or egress) or interface is None:
            return None
        rates = Rates(ingress=ingress, egress=egress)
        reservation = Reservation(
            node=node, primary=rates, primary_parent=interface.name, interfaces={interface.name: rates}
        )
        return Holding(pod.metadata.uid or pod.key, pod.key, pod.spec.priority, reservation, foreign=True)

    def _recount_foreign(self, node: str) -> None:
        """A node's interfaces changed: charge its foreign pods to its pod interface as it is now."""
        for pod in self._pods.values():
            if pod.spec.node_name == node:
                holding = self._holding_of(pod)
                if holding is not None and holding.foreign:
                    self.ledger.record(holding)

    def _upsert_claim(self, claim: ResourceClaim) -> None:
        key = claim.key
        if claim.metadata.uid in self._deleted_claims:
            return  # a bind read it just before its deletion reached the watch
        known = self._claims.get(key)
        if known is not None and _older(claim.metadata.resource_version, known.metadata.resource_version):
            # A bind read this claim from the API ahead of the watch, which now brings an
            # earlier write (kube-scheduler adds its finalizer before it writes the allocation).
            return
        self._claims[key] = claim
        before = self._claim_holdings.get(key, set())
        reading = self._read_claim(claim)
        for stale in before - self._claim_holdings[key]:
            self.ledger.release(stale)
        for holding in reading.holdings:
            self.ledger.record(holding)

    def _read_claim(self, claim: ResourceClaim) -> ClaimReading:
        """The claim's holdings; what cannot be counted as written is logged when it changes."""
        key = claim.key
        reading = claim_holdings(claim, self._node_interfaces)
        if reading.problems != self._claim_problems.get(key, []):
            for problem in reading.problems:
                log.warning("%s", problem.message)
        if reading.problems:
            self._claim_problems[key] = reading.problems
        else:
            self._claim_problems.pop(key, None)
        self._claim_holdings[key] = {h.uid for h in reading.holdings}
        return reading

    def _recount_claims(self, node: str) -> None:
        """A node's interfaces changed: read again the claims allocated there (or waiting for
        its report), so each device is charged to the interface it now names."""
        for key, claim in list(self._claims.items()):
            if claim.status.allocation is not None and any(
                r.pool == node for r in claim.netsched_results()
            ):
                self._upsert_claim(claim)

    def _node_interfaces(self, node: str) -> tuple[list[str], str | None] | None:
        report = self._node_networks.get(node)
        if report is None:
            return None
        pod_interface = self.topology.pod_interface(node)
        return [i.name for i in report.status.interfaces], pod_interface.name if pod_interface else None

    def _refresh_node(self, node: Node) -> bool:
        """Apply a Node event without a rebuild when it leaves the node where it was: its
        status writes change nothing netsched reads, and a new headroom only changes that
        node's capacity. False: the node is new or moved, and the caller rebuilds."""
        previous = self._nodes.get(node.name)
        self._nodes[node.name] = node
        if previous is None or _place(previous) != _place(node):
            return False
        if self._topology is not None:
            self._topology.replace_node(node)
        default = self.capacity.headroom
        if node_headroom(previous, default) != node_headroom(node, default):
            if not self.ledger.update_usable(self._usable_of(node.name)):
                self._sync_capacity()
            self.generation += 1
        return True

    def _invalidate_topology(self) -> None:
        self._topology = None
        self.generation += 1
        self._sync_capacity()

    def _sync_capacity(self) -> None:
        usable = {}
        for name in self._node_networks:
            usable.update(self._usable_of(name))
        self.ledger.set_usable(usable)

    def _usable_of(self, name: str) -> dict[tuple[str, str], tuple[int, int]]:
        """Usable (ingress, egress) of each interface of node ``name``'s report."""
        report = self._node_networks.get(name)
        if report is None:
            return {}
        usable = usable_by_interface(report, self._nodes.get(name), self.capacity)
        return {(name, interface): (bps, bps) for interface, bps in usable.items()}


def _older(version: str | None, than: str | None) -> bool:
    """Whether resourceVersion ``version`` was written before ``than``: kube-apiserver's are
    etcd revisions, one counter for every write; anything else is never called older."""
    if not (version and than and version.isdigit() and than.isdigit()):
        return False
    return int(version) < int(than)


def _place(node: Node) -> tuple[str | None, str | None, str | None]:
    """What places a node in the topology: its region, zone and switch labels."""
    return node.region, node.zone, node.switch
