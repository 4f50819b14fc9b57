"""The discrete-event loop: arrivals, departures and utilisation samples, one policy at a time.

Each policy gets its own copy of the cluster and replays the same arrivals (see
``arrivals``). Events are handled in simulated-time order: departures free CPU,
memory, traffic and (under netsched) the reservation; an arrival goes through
kube-scheduler's filter, then the policy; samples record every link's utilisation.
A refused pod is dropped (kube-scheduler would keep it pending and retry).
"""

from __future__ import annotations

import heapq
import logging
import multiprocessing
import random
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from pydantic import BaseModel

from bandwidth_accounting.requirements import parse_requirements
from scheduler_extender.cluster import ClusterSnapshot
from scheduler_extender.demo.sample_cluster import sample_cluster
from scheduler_extender.simulation.arrivals import Arrival, draw_arrivals
from scheduler_extender.simulation.kube import KubeScheduler, feasible_nodes_to_find
from scheduler_extender.simulation.links import HISTOGRAM_EDGES, LinkLoad
from scheduler_extender.simulation.peers import PeerIndex
from scheduler_extender.simulation.policies import (
    BandwidthBlind,
    Placed,
    Policy,
    Refused,
    WithNetsched,
)
from scheduler_extender.simulation.policy_names import PolicyName
from scheduler_extender.simulation.workload import Workload
from topology.graph import Topology

log = logging.getLogger(__name__)

PROGRESS_STEPS = 10
"""Progress lines (log, INFO) per policy run: long runs say how far they are."""
SAMPLES = 100
"""Utilisation samples per run, evenly spaced after the warm-up."""
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ClusterShape:
    zones: int = 4
    nodes_per_switch: int = 25

    def for_nodes(self, nodes: int) -> tuple[int, int, int]:
        """(zones, switches per zone, nodes per switch) closest to ``nodes`` nodes."""
        zones = max(1, min(self.zones, nodes))
        per_switch = max(1, min(self.nodes_per_switch, nodes // zones))
        switches = max(1, round(nodes / (zones * per_switch)))
        return zones, switches, per_switch


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    workload: Workload
    nodes: int
    pods: int
    seed: int = 1
    extender_weight: int = 1
    shape: ClusterShape = ClusterShape()

    def cluster(self) -> ClusterSnapshot:
        return sample_cluster(*self.shape.for_nodes(self.nodes), heartbeat=EPOCH)


class PolicyResult(BaseModel):
    policy: PolicyName
    arrived: int
    placed: int
    refused: int
    refused_by_kube: int
    refused_by_netsched: int
    bind_conflicts: int
    links: int
    links_over_capacity_peak: int
    """Most links over their link speed at any one moment."""
    worst_utilisation: float
    utilisation_p50: float
    utilisation_p99: float
    peer_pairs: int
    average_peer_hops: float | None
    """Hops a peer byte travels, on average (None: no pod had running peers)."""
    peer_terabytes: float
    cross_zone_terabytes: float
    schedule_ms_mean: float
    schedule_ms_p99: float
    events: int
    seconds: float
    utilisation_histogram: list[int]
    """Sampled link states per 1 % utilisation bin (0-200 %)."""


class SimulationReport(BaseModel):
    workload: str
    nodes: int
    zones: int
    pods: int
    pods_per_node: float
    seed: int
    extender_weight: int
    candidates_per_pod: int
    """Feasible nodes kube-scheduler sends the extender (percentageOfNodesToScore)."""
    simulated_seconds: float
    histogram_edges: list[float]
    policies: list[PolicyResult]
    seconds: float
    peak_rss_mib: float


def run_simulation(config: SimulationConfig, policies: list[PolicyName], jobs: int = 1) -> SimulationReport:
    """Every policy over the same arrivals; with ``jobs`` > 1 policies run in parallel
    processes (each draws the same arrivals from the seed)."""
    started = time.perf_counter()
    arrivals = draw_arrivals(config.workload, config.nodes, config.pods, config.seed)
    if jobs > 1 and len(policies) > 1:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(jobs, len(policies)), mp_context=context) as pool:
            results = list(pool.map(run_policy, [config] * len(policies), policies))
    else:
        results = [PolicyRun(config, name, arrivals).run() for name in policies]
    zones, switches, per_switch = config.shape.for_nodes(config.nodes)
    nodes = zones * switches * per_switch
    return SimulationReport(
        workload=config.workload.name,
        nodes=nodes,
        zones=zones,
        pods=config.pods,
        pods_per_node=config.workload.pods_per_node,
        seed=config.seed,
        extender_weight=config.extender_weight,
        candidates_per_pod=feasible_nodes_to_find(nodes),
        simulated_seconds=arrivals[-1].time if arrivals else 0.0,
        histogram_edges=HISTOGRAM_EDGES.tolist(),
        policies=results,
        seconds=time.perf_counter() - started,
        peak_rss_mib=peak_rss_mib(),
    )


def run_policy(config: SimulationConfig, name: PolicyName) -> PolicyResult:
    """One policy in a worker process."""
    arrivals = draw_arrivals(config.workload, config.nodes, config.pods, config.seed)
    return PolicyRun(config, name, arrivals).run()


def peak_rss_mib() -> float:
    """Largest resident set of this process or of any policy worker it waited for."""
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return round(peak / 1024, 1)


class PolicyRun:
    """One policy over the whole arrival sequence, with its own cluster and bookkeeping."""

    def __init__(self, config: SimulationConfig, name: PolicyName, arrivals: list[Arrival]) -> None:
        self.config = config
        self.arrivals = arrivals
        self.now = 0.0
        snapshot = config.cluster()
        topology = Topology(snapshot.nodes, snapshot.node_networks, snapshot.networks)
        workload = config.workload
        rng = random.Random(f"{config.seed}/{name}")
        self.kube = KubeScheduler.build(topology, workload.node.cpu.mean, workload.node.memory.mean, rng)
        self.links = LinkLoad(topology, workload.networks())
        self.peers = PeerIndex(topology)
        self.policy: Policy
        if name is PolicyName.BLIND:
            self.policy = BandwidthBlind(self.kube, topology, self.links)
        else:
            clock = lambda: EPOCH + timedelta(seconds=self.now)
            self.policy = WithNetsched(name, self.kube, snapshot, self.links, clock, config.extender_weight)
        self.departures: list[tuple[float, int, Placed]] = []
        self.sample_times = _sample_times(arrivals, workload.mean_lifetime)
        self.counts = {reason: 0 for reason in Refused}
        self.placed = self.events = 0
        self.schedule_seconds = np.zeros(len(arrivals))

    def run(self) -> PolicyResult:
        started = time.perf_counter()
        every = max(1, len(self.arrivals) // PROGRESS_STEPS)
        for arrival in self.arrivals:
            self._advance(arrival.time)
            self.events += 1
            self._arrive(arrival)
            if (arrival.index + 1) % every == 0:
                log.info(
                    "%s: %d of %d pods, %d running, %.1f s",
                    self.policy.name, arrival.index + 1, len(self.arrivals), len(self.departures),
                    time.perf_counter() - started,
                )
        return self._result(time.perf_counter() - started)

    def drain(self) -> None:
        """Let every pod still running leave (the books must then be empty)."""
        self._advance(np.inf)

    def _advance(self, until: float) -> None:
        """Departures and samples due before ``until``, in time order."""
        samples = self.sample_times
        while True:
            next_departure = self.departures[0][0] if self.departures else np.inf
            next_sample = samples[0] if samples else np.inf
            if min(next_departure, next_sample) > until or not (self.departures or samples):
                break
            if next_departure <= next_sample:
                self.now, _, placed = heapq.heappop(self.departures)
                self._depart(placed)
            else:
                self.now = samples.pop(0)
                self.links.sample()
        self.now = until

    def _arrive(self, arrival: Arrival) -> None:
        requirements = parse_requirements(arrival.annotations)
        started = time.perf_counter()
        candidates = self.kube.feasible(arrival.cpu, arrival.memory, self.policy.affinity(requirements))
        outcome = self.policy.place(arrival, requirements, candidates) if len(candidates) else Refused.KUBE
        self.schedule_seconds[arrival.index] = time.perf_counter() - started
        if isinstance(outcome, Refused):
            self.counts[outcome] += 1
            return
        self.placed += 1
        self.kube.place(outcome.node, arrival.cpu, arrival.memory, arrival.template)
        self.links.add(outcome.charges)
        self.peers.placed(outcome, requirements)
        heapq.heappush(self.departures, (arrival.time + arrival.lifetime, arrival.index, outcome))

    def _depart(self, placed: Placed) -> None:
        self.events += 1
        arrival = placed.arrival
        self.kube.remove(placed.node, arrival.cpu, arrival.memory, arrival.template)
        self.links.remove(placed.charges)
        self.peers.departed(placed)
        self.policy.release(placed)

    def _result(self, seconds: float) -> PolicyResult:
        links, peers, times = self.links, self.peers, self.schedule_seconds * 1000
        refused = sum(self.counts.values())
        return PolicyResult(
            policy=self.policy.name,
            arrived=len(self.arrivals),
            placed=self.placed,
            refused=refused,
            refused_by_kube=self.counts[Refused.KUBE],
            refused_by_netsched=self.counts[Refused.NETWORK],
            bind_conflicts=self.counts[Refused.BIND],
            links=links.links,
            links_over_capacity_peak=links.over_peak,
            worst_utilisation=round(links.worst, 4),
            utilisation_p50=links.percentile(0.50),
            utilisation_p99=links.percentile(0.99),
            peer_pairs=peers.pairs,
            average_peer_hops=round(peers.byte_hops / peers.bytes, 3) if peers.bytes else None,
            peer_terabytes=round(peers.bytes / 1e12, 3),
            cross_zone_terabytes=round(peers.cross_zone_bytes / 1e12, 3),
            schedule_ms_mean=round(float(times.mean()), 3) if len(times) else 0.0,
            schedule_ms_p99=round(float(np.percentile(times, 99)), 3) if len(times) else 0.0,
            events=self.events,
            seconds=round(seconds, 2),
            utilisation_histogram=links.histogram.tolist(),
        )


def _sample_times(arrivals: list[Arrival], mean_lifetime: float) -> list[float]:
    """``SAMPLES`` instants from the end of the warm-up (one mean lifetime, at most half
    the run) to the last arrival."""
    if not arrivals:
        return []
    end = arrivals[-1].time
    warmup = min(mean_lifetime, end / 2)
    return np.linspace(warmup, end, SAMPLES).tolist()
