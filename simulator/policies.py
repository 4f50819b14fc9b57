"""How each compared scheduler places one pod, after kube-scheduler's own filter.

``BandwidthBlind`` is kube-scheduler alone. ``WithNetsched`` is kube-scheduler with
netsched as its extender: the pod is created in a ``FileClusterSource`` and goes
through the very ``Scheduler.filter``, ``prioritize`` and ``bind`` the webhook calls,
with the placement annotation set to the policy's ``spread`` or ``pack``. The node
reporters' rates reach its ``ObservedLoad`` directly (what ``ClusterState`` does with
each ``NodeNetwork`` it receives, without building 500 objects every ten seconds).
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


@dataclass(slots=True)
class Placed:
    arrival: Arrival
    node: int
    """Index in kube-scheduler's node order."""
    node_name: str
    charges: list[Charge]
    pod: Pod | None = None


class Policy(Protocol):
    name: PolicyName

    def affinity(self, requirements: PodRequirements) -> np.ndarray | None:
        """Nodes kube-scheduler may consider for the pod (None: all)."""

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


class WithNetsched:
    """kube-scheduler with netsched as extender (filter, prioritize × weight × 10, bind)."""

    def __init__(
        self,
        name: PolicyName,
        kube: KubeScheduler,
        snapshot: ClusterSnapshot,
        links: LinkLoad,
        clock: Callable[[], datetime],
        extender_weight: int,
        observed_window: timedelta,
    ) -> None:
        self.name = name
        self.placement = "pack" if name is PolicyName.PACK else "spread"
        self.kube, self.links, self.extender_weight = kube, links, extender_weight
        self.source = FileClusterSource(snapshot)
        # Heartbeats do not age in the simulation (the simulated clock only orders events);
        # observed rates do, as reporters publish them.
        fit = FitSettings(report_ttl=None)
        if name is PolicyName.RESERVED_ONLY:
            fit = FitSettings(report_ttl=None, observed_max_age=None)
        state = ClusterState(CapacitySettings(observed_window=observed_window))
        self.extender = Extender.build(self.source, state, settings=SchedulerSettings(fit=fit), clock=clock)
        self.source.start(self.extender.state)
        self.scheduler = self.extender.scheduler
        self.position = {node: index for index, node in enumerate(kube.names)}

    def affinity(self, requirements: PodRequirements) -> np.ndarray | None:
        """None: networks are netsched's business, pods carry no node affinity for them."""
        return None

    def place(self, arrival: Arrival, requirements: PodRequirements, candidates: np.ndarray) -> Placed | Refused:
        kube, scheduler = self.kube, self.scheduler
        pod = self.source.apply(
            Pod(
                metadata=ObjectMeta(
                    name=arrival.name, namespace=NAMESPACE, uid=arrival.uid, labels=arrival.labels,
                    annotations={**arrival.annotations, annotations.PLACEMENT: self.placement},
                ),
                spec=PodSpec(scheduler_name=SCHEDULER_NAME),
            )
        )
        names = [kube.names[index] for index in candidates.tolist()]
        passed = scheduler.filter(pod, names).passed
        if not passed:
            self.source.remove(pod)
            return Refused.NETWORK
        nodes = np.fromiter((self.position[name] for name in passed), dtype=np.int64, count=len(passed))
        totals = kube.scores(nodes, arrival.cpu, arrival.memory, arrival.template)
        if len(passed) > 1:  # kube-scheduler skips prioritize when one node is left
            scores = scheduler.prioritize(pod, passed)
            totals = totals + self.extender_weight * EXTENDER_SCORE_SCALE * np.array([scores[n] for n in passed])
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
        observed, seconds = self.extender.state.observed, at.timestamp()
        for node, rates in reports.items():
            observed.record(node, seconds, rates)

