"""How each compared scheduler places one pod, after kube-scheduler's own filter.

``BandwidthBlind`` is kube-scheduler alone. ``WithNetsched`` is kube-scheduler with
netsched as its extender: the pod is created in a ``FileClusterSource`` and goes
through the very ``Scheduler.filter``, ``prioritize`` and ``bind`` the webhook calls,
with the placement annotation set to the policy's ``spread`` or ``pack``. The node
reporters' rates reach its ``ObservedLoad`` directly (what ``ClusterState`` does with
each ``NodeNetwork`` it receives, without building 500 objects every ten seconds).
``WithDra`` is kube-scheduler allocating each pod's bandwidth as a DRA claim itself, with
or without netsched's prioritize as a score-only extender.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import numpy as np

from bandwidth_accounting.requirements import PodRequirements
from bandwidth_accounting.settings import CapacitySettings, FitSettings
from contract import annotations
from contract.dra import PodResourceClaim, ResourceClaim
from contract.group import SCHEDULER_NAME
from contract.objects import ObjectMeta, Pod, PodSpec
from contract.reservation import Rates, Reservation
from scheduler_extender.cluster import ClusterSnapshot
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.scheduler import BindError, SchedulerSettings
from scheduler_extender.state import ClusterState
from simulator import PolicyName
from simulator.arrivals import Arrival
from simulator.dra import Allocation, DeviceAllocator, claim_name, claim_requests
from simulator.kube import EXTENDER_SCORE_SCALE, KubeScheduler
from simulator.links import Charge, LinkLoad
from topology.graph import Topology

NAMESPACE = "sim"


class Refused(StrEnum):
    KUBE = "kube"
    """kube-scheduler's own filters left no node (CPU, memory, node affinity)."""
    NETWORK = "network"
    """netsched refused every candidate kube-scheduler sent (bandwidth, networks)."""
    BIND = "bind"
    """netsched's bind found the pod no longer fits (never expected in a sequential run)."""
    CLAIMS = "claims"
    """DRA: kube-scheduler's ``DynamicResources`` filter could allocate the pod's claim on no
    node that fits its CPU and memory ("cannot allocate all claims"): the pod stays pending."""


@dataclass(slots=True)
class Placed:
    arrival: Arrival
    node: int
    """Index in kube-scheduler's node order."""
    node_name: str
    charges: list[Charge]
    pod: Pod | None = None
    allocation: Allocation | None = None
    """DRA: the pod's claim as allocated."""
    claim: ResourceClaim | None = None
    """DRA with netsched's scores: the claim as the extender's source holds it."""


class Policy(Protocol):
    name: PolicyName

    def affinity(self, requirements: PodRequirements) -> np.ndarray | None:
        """Nodes kube-scheduler may consider for the pod (None: all)."""

    def filter_plugin(self, requirements: PodRequirements) -> Callable[[int], bool] | None:
        """A filter plugin of kube-scheduler's own the pod must pass on a node, beside
        CPU, memory and affinity (None: none)."""

    def place(self, arrival: Arrival, requirements: PodRequirements, candidates: np.ndarray) -> Placed | Refused: ...

    def release(self, placed: Placed) -> None: ...

    def observe(self, at: datetime, reports: dict[str, dict[str, tuple[int, int]]]) -> None:
        """Every node reporter published these rates (per node, per interface) at ``at``."""


def primary_traffic(arrival: Arrival, reserved: Rates | None) -> tuple[int, int]:
    """What the pod sends on its primary interface: its rates, shaped to the reservation in
    each direction that has one (the CNI plugin's enforcement)."""
    if reserved is None:
        return arrival.ingress_bps, arrival.egress_bps
    return _shaped(arrival.ingress_bps, reserved.ingress), _shaped(arrival.egress_bps, reserved.egress)


def _shaped(rate: int, reserved: int) -> int:
    return min(rate, reserved) if reserved else rate


def simulated_extender(
    source: FileClusterSource, clock: Callable[[], datetime], observed_window: timedelta, observed: bool = True
) -> Extender:
    """netsched's extender over ``source``, started. Heartbeats do not age in the simulation
    (the simulated clock only orders events); observed rates do, as reporters publish them,
    and count unless ``observed`` is False."""
    fit = FitSettings(report_ttl=None) if observed else FitSettings(report_ttl=None, observed_max_age=None)
    state = ClusterState(CapacitySettings(observed_window=observed_window))
    extender = Extender.build(source, state, settings=SchedulerSettings(fit=fit), clock=clock)
    source.start(extender.state)
    return extender


def record_reports(extender: Extender, at: datetime, reports: dict[str, dict[str, tuple[int, int]]]) -> None:
    """The node reporters' rates reach the extender's observed load."""
    observed, seconds = extender.state.observed, at.timestamp()
    for node, rates in reports.items():
        observed.record(node, seconds, rates)


def netsched_pod(arrival: Arrival, placement: str) -> Pod:
    """The arriving pod as the API holds it, for netsched's profile, with the placement asked."""
    return Pod(
        metadata=ObjectMeta(
            name=arrival.name, namespace=NAMESPACE, uid=arrival.uid, labels=arrival.labels,
            annotations={**arrival.annotations, annotations.PLACEMENT: placement},
        ),
        spec=PodSpec(scheduler_name=SCHEDULER_NAME),
    )


class BandwidthBlind:
    """kube-scheduler's choice among its feasible nodes; the pod's traffic goes where it lands."""

    name = PolicyName.BLIND

    def __init__(self, kube: KubeScheduler, topology: Topology, links: LinkLoad) -> None:
        self.kube, self.topology, self.links = kube, topology, links
        self._affinity: dict[tuple[str, ...], np.ndarray] = {}

    def place(self, arrival: Arrival, requirements: PodRequirements, candidates: np.ndarray) -> Placed | Refused:
        kube = self.kube
        node = kube.choose(candidates, kube.scores(candidates, arrival.cpu, arrival.memory, arrival.template))
        name = kube.names[node]
        rates = []
        pod_interface = self.topology.pod_interface(name)
        if pod_interface is not None:
            rates.append((pod_interface.name, *primary_traffic(arrival, None)))
        for attachment in requirements.attachments:
            carriers = self.topology.interfaces_carrying(name, attachment.network)
            rates.append((carriers[0].name, attachment.ingress_bps, attachment.egress_bps))
        return Placed(arrival, node, name, self.links.charges(name, rates))

    def filter_plugin(self, requirements: PodRequirements) -> Callable[[int], bool] | None:
        """None: kube-scheduler's default filters alone."""
        return None

    def affinity(self, requirements: PodRequirements) -> np.ndarray | None:
        """Nodes carrying every network the pod attaches to: the node affinity a user writes
        when no scheduler knows networks (without it, pods land where they cannot start)."""
        networks = tuple(sorted({a.network for a in requirements.attachments}))
        if not networks:
            return None
        mask = self._affinity.get(networks)
        if mask is None:
            reaching = set.intersection(*(self.topology.nodes_reaching(n) for n in networks))
            mask = self._affinity[networks] = np.array([name in reaching for name in self.kube.names])
        return mask

    def release(self, placed: Placed) -> None:
        """Nothing beyond the simulator's own bookkeeping."""

    def observe(self, at: datetime, reports: dict[str, dict[str, tuple[int, int]]]) -> None:
        """kube-scheduler reads no rates."""


@dataclass(frozen=True, slots=True)
class RunParts:
    """What a policy that places through kube-scheduler's model and an extender is built from."""

    kube: KubeScheduler
    topology: Topology
    snapshot: ClusterSnapshot
    """The cluster as the API holds it at the start (an extender's source is made from it)."""
    links: LinkLoad
    clock: Callable[[], datetime]
    extender_weight: int
    observed_window: timedelta


def with_extender_scores(totals: np.ndarray, scores: list[int], weight: int) -> np.ndarray:
    """kube-scheduler's totals plus an extender's 0-10 scores (one per candidate, in order) × its weight × 10."""
    return totals + weight * EXTENDER_SCORE_SCALE * np.array(scores)


class WithNetsched:
    """kube-scheduler with netsched as extender (filter, prioritize × weight × 10, bind)."""

    def __init__(self, name: PolicyName, parts: RunParts) -> None:
        self.name = name
        self.placement = "pack" if name is PolicyName.PACK else "spread"
        self.kube, self.links, self.extender_weight = parts.kube, parts.links, parts.extender_weight
        self.source = FileClusterSource(parts.snapshot)
        self.extender = simulated_extender(
            self.source, parts.clock, parts.observed_window, observed=name is not PolicyName.RESERVED_ONLY
        )
        self.scheduler = self.extender.scheduler
        self.position = {node: index for index, node in enumerate(parts.kube.names)}

    def affinity(self, requirements: PodRequirements) -> np.ndarray | None:
        """None: networks are netsched's business, pods carry no node affinity for them."""
        return None

    def filter_plugin(self, requirements: PodRequirements) -> Callable[[int], bool] | None:
        """None: netsched filters as kube-scheduler's extender, after its own filters."""
        return None

    def place(self, arrival: Arrival, requirements: PodRequirements, candidates: np.ndarray) -> Placed | Refused:
        kube, scheduler = self.kube, self.scheduler
        pod = self.source.apply(netsched_pod(arrival, self.placement))
        names = [kube.names[index] for index in candidates.tolist()]
        passed = scheduler.filter(pod, names).passed
        if not passed:
            self.source.remove(pod)
            return Refused.NETWORK
        nodes = np.fromiter((self.position[name] for name in passed), dtype=np.int64, count=len(passed))
        totals = kube.scores(nodes, arrival.cpu, arrival.memory, arrival.template)
        if len(passed) > 1:  # kube-scheduler skips prioritize when one node is left
            totals = with_extender_scores(totals, scheduler.prioritize(pod, passed), self.extender_weight)
        node = kube.choose(nodes, totals)
        name = kube.names[node]
        try:
            reservation = scheduler.bind(NAMESPACE, arrival.name, arrival.uid, name)
        except BindError:
            self.source.remove(pod)
            return Refused.BIND
        return Placed(arrival, node, name, self.links.charges(name, self._traffic(arrival, name, reservation)), pod=pod)

    def _traffic(self, arrival: Arrival, node: str, reservation: Reservation | None) -> list[tuple[str, int, int]]:
        """(interface, ingress, egress) the pod sends: attachments as reserved, the primary
        interface's traffic shaped where reserved and as it comes where not."""
        rates = []
        primary = reservation.primary if reservation is not None else None
        parent = reservation.primary_parent if reservation is not None else None
        if reservation is not None:
            for iface, r in reservation.interfaces.items():
                if iface == parent and primary is not None:
                    r = Rates(ingress=r.ingress - primary.ingress, egress=r.egress - primary.egress)
                rates.append((iface, r.ingress, r.egress))
        if parent is None:
            interface = self.extender.state.topology.pod_interface(node)
            parent = interface.name if interface is not None else None
        if parent is not None:
            rates.append((parent, *primary_traffic(arrival, primary)))
        return rates

    def release(self, placed: Placed) -> None:
        """The pod is deleted: the source tells the state, which releases its reservation."""
        assert placed.pod is not None
        self.source.remove(placed.pod)

    def observe(self, at: datetime, reports: dict[str, dict[str, tuple[int, int]]]) -> None:
        record_reports(self.extender, at, reports)



class WithDra:
    """kube-scheduler allocating each pod's claim itself (``simulator.dra``), its
    ``DynamicResources`` filter among its own; with ``DRA_SCORED`` netsched's prioritize adds
    its score (× weight × 10) and its filter and bind are left out, as the DRA scheduler
    configuration has it. The extender's source then holds each allocated ResourceClaim,
    which its ledger reads as holdings (``consumedCapacity`` per device), so that its scores
    see the bandwidth claims took; its observed load counts in its scores, never in the
    allocator. What prioritize reads of the pod is its peers: its rates are in the claim,
    which prioritize does not read, so its scores have no bandwidth opinion."""

    def __init__(self, name: PolicyName, parts: RunParts) -> None:
        self.name = name
        self.kube, self.topology, self.links = parts.kube, parts.topology, parts.links
        self.extender_weight = parts.extender_weight
        self.allocator = DeviceAllocator(parts.topology, parts.kube.names, CapacitySettings())
        self.found: dict[int, Allocation] = {}
        """The filter's allocation per node, this cycle (the plugin's ``nodeAllocations``)."""
        self.source: FileClusterSource | None = None
        self.extender: Extender | None = None
        if name is PolicyName.DRA_SCORED:
            self.source = FileClusterSource(parts.snapshot)
            self.extender = simulated_extender(self.source, parts.clock, parts.observed_window)

    def affinity(self, requirements: PodRequirements) -> np.ndarray | None:
        """None: a claim's requests select devices carrying the networks it attaches to."""
        return None

    def filter_plugin(self, requirements: PodRequirements) -> Callable[[int], bool] | None:
        self.found = {}
        requests = claim_requests(requirements)
        if not requests:
            return None
        allocator, found = self.allocator, self.found

        def allocatable(node: int) -> bool:
            allocation = allocator.allocate(node, requests)
            if allocation is None:
                return False
            found[node] = allocation
            return True

        return allocatable

    def place(self, arrival: Arrival, requirements: PodRequirements, candidates: np.ndarray) -> Placed | Refused:
        kube = self.kube
        totals = kube.scores(candidates, arrival.cpu, arrival.memory, arrival.template)
        pod = None
        if self.extender is not None:
            assert self.source is not None
            pod = self.source.apply(self._pod(arrival))
            if len(candidates) > 1:  # kube-scheduler skips extenders' prioritize when one node is left
                names = [kube.names[index] for index in candidates.tolist()]
                scores = self.extender.scheduler.prioritize(pod, names)
                totals = with_extender_scores(totals, scores, self.extender_weight)
        node = kube.choose(candidates, totals)
        name = kube.names[node]
        allocation = self.found.get(node)
        claim = None
        if allocation is not None:
            self.allocator.commit(allocation)
            if self.source is not None:
                claim = self.source.apply(self.allocator.claim(allocation, NAMESPACE, arrival.name, arrival.uid))
        if pod is not None:
            assert self.source is not None
            self.source.bind(pod, name, {})
        charges = self.links.charges(name, self._traffic(arrival, name, allocation))
        return Placed(arrival, node, name, charges, pod=pod, allocation=allocation, claim=claim)

    @staticmethod
    def _pod(arrival: Arrival) -> Pod:
        """The pod of DRA mode: its rates and networks are in its claim, not in annotations
        (a bound pod's bandwidth annotations count in netsched's ledger as well, so the claim
        would be counted twice); what prioritize reads of it is its peers."""
        pod = netsched_pod(arrival, "spread")
        kept = {annotations.PEERS, annotations.PLACEMENT}
        pod.metadata.annotations = {k: v for k, v in pod.metadata.annotations.items() if k in kept}
        claim = PodResourceClaim(name="bandwidth", resource_claim_name=claim_name(arrival.name))
        pod.spec = pod.spec.model_copy(update={"resource_claims": (claim,)})
        return pod

    def _traffic(self, arrival: Arrival, node: str, allocation: Allocation | None) -> list[tuple[str, int, int]]:
        """(interface, ingress, egress) the pod sends: each attachment on its device, the
        primary traffic on the pod interface, shaped to what its request consumed (netsched's
        node side enforces a claim as it does a reservation)."""
        rates, primary = [], None
        for request, interface in self.allocator.interfaces(allocation) if allocation is not None else []:
            if request.network is None:
                primary = interface, Rates(ingress=request.asks[0], egress=request.asks[1])
            else:
                rates.append((interface, *request.asks))
        if primary is not None:
            rates.append((primary[0], *primary_traffic(arrival, primary[1])))
        elif (interface := self.topology.pod_interface(node)) is not None:
            rates.append((interface.name, *primary_traffic(arrival, None)))
        return rates

    def release(self, placed: Placed) -> None:
        """The pod is deleted and its claim deallocated."""
        if placed.allocation is not None:
            self.allocator.release(placed.allocation)
        if self.source is not None:
            for obj in (placed.claim, placed.pod):
                if obj is not None:
                    self.source.remove(obj)

    def observe(self, at: datetime, reports: dict[str, dict[str, tuple[int, int]]]) -> None:
        """netsched's scores read the reports; the allocator never does."""
        if self.extender is not None:
            record_reports(self.extender, at, reports)
