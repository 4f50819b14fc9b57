"""The discrete-event loop: arrivals, departures, reports and samples, one policy at a time.

Each policy gets its own copy of the cluster and replays the same arrivals (see
``arrivals``). Events are handled in simulated-time order: departures free CPU,
memory, traffic and (under netsched) the reservation or (under DRA) the claim; an
arrival goes through kube-scheduler's filters (under DRA, its allocator among them), then
the policy; every ``report_interval`` the node reporters publish each link's rate over
the interval just ended (all reporters at once);
samples record every link's utilisation. A refused pod is dropped (kube-scheduler
would keep it pending and retry).
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
from bandwidth_accounting.settings import CapacitySettings
from contract.objects import BandwidthPolicy
from demo.sample_cluster import sample_cluster
from scheduler_extender.cluster import ClusterSnapshot
from simulator import REPORT_INTERVAL, SEED, SHIPPED_EXTENDER_WEIGHT, ClusterShape, PolicyName
from simulator.arrivals import Arrival, draw_arrivals
from simulator.kube import KubeScheduler, feasible_nodes_to_find
from simulator.links import HISTOGRAM_EDGES, LinkLoad
from simulator.peers import PeerIndex
from simulator.policies import (
    NAMESPACE,
    BandwidthBlind,
    Placed,
    Policy,
    Refused,
    RunParts,
    WithDra,
    WithNetsched,
)
from simulator.workload import Workload
from topology.attachment_definitions import describe_definition
from topology.graph import Topology

log = logging.getLogger(__name__)

PROGRESS_STEPS = 10
"""Progress lines (log, INFO) per policy run: long runs say how far they are."""
SAMPLES = 100
"""Utilisation samples per run, evenly spaced after the warm-up."""
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

@dataclass(frozen=True, slots=True)
class SimulationConfig:
    workload: Workload
    nodes: int
    pods: int
    seed: int = SEED
    extender_weight: int = SHIPPED_EXTENDER_WEIGHT
    shape: ClusterShape = ClusterShape()
    observed_window: float = CapacitySettings().observed_window.total_seconds()
    report_interval: float = REPORT_INTERVAL
    namespace_default: str | None = None
    """A BandwidthPolicy default (both directions) in the pods' namespace; None: no policy."""

    def cluster(self) -> ClusterSnapshot:
        snapshot = sample_cluster(*self.shape.for_nodes(self.nodes), heartbeat=EPOCH)
        if self.namespace_default is not None:
            rate = self.namespace_default
            snapshot.bandwidth_policies.append(BandwidthPolicy.model_validate({
                "metadata": {"name": "default-bandwidth", "namespace": NAMESPACE},
                "spec": {"default": {"ingress": rate, "egress": rate}},
            }))
        return snapshot


class PolicyResult(BaseModel):
    policy: PolicyName
    arrived: int
    placed: int
    refused: int
    refused_by_kube: int
    refused_by_netsched: int
    refused_by_allocator: int
    """DRA: pods whose claim no node could take ("cannot allocate all claims")."""
    bind_conflicts: int
    links: int
    links_over_capacity_peak: int
    """Most links over their link speed at any one moment."""
    links_over_capacity_mean: float
    """Links over their link speed at an average moment after the warm-up."""
    episodes: int
    """Times a link went over capacity (an episode lasts until it is back under)."""
    episode_seconds_median: float | None
    episode_seconds_p90: float | None
    noisy_episodes: int
    """Episodes that a noisy pod's arrival started."""
    noisy_episode_seconds_median: float | None
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
    observed_window: float
    report_interval: float
    namespace_default: str | None
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
        observed_window=config.observed_window,
        report_interval=config.report_interval,
        namespace_default=config.namespace_default,
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
        topology = Topology(snapshot.nodes, snapshot.node_networks, snapshot.networks,
                            map(describe_definition, snapshot.definitions))
        workload = config.workload
        rng = random.Random(f"{config.seed}/{name}")
        self.kube = KubeScheduler.build(topology, workload.node.cpu.mean, workload.node.memory.mean, rng)
        self.links = LinkLoad(topology, workload.networks())
        self.peers = PeerIndex(topology)
        self.policy: Policy
        parts = RunParts(
            self.kube, topology, snapshot, self.links, lambda: EPOCH + timedelta(seconds=self.now),
            config.extender_weight, timedelta(seconds=config.observed_window),
        )
        if name is PolicyName.BLIND:
            self.policy = BandwidthBlind(self.kube, topology, self.links)
        elif name in (PolicyName.DRA, PolicyName.DRA_SCORED):
            self.policy = WithDra(name, parts)
        else:
            self.policy = WithNetsched(name, parts)
        self.departures: list[tuple[float, int, Placed]] = []
        self.sample_times = _sample_times(arrivals, workload.mean_lifetime)
        self.warmup = self.sample_times[0] if self.sample_times else 0.0
        self.over_seconds_at_warmup = 0.0
        self.next_report = config.report_interval
        self.reported = self.links.carried.copy()
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
        """Departures, reports and samples due before ``until``, in time order."""
        samples, links = self.sample_times, self.links
        while True:
            next_departure = self.departures[0][0] if self.departures else np.inf
            next_sample = samples[0] if samples else np.inf
            if not (self.departures or samples) or min(next_departure, next_sample, self.next_report) > until:
                break  # reporters run as long as pods do
            next_report = self.next_report
            if next_departure <= min(next_sample, next_report):
                self.now, _, placed = heapq.heappop(self.departures)
                links.advance(self.now)
                self._depart(placed)
            elif next_report <= next_sample:
                self.now = next_report
                links.advance(self.now)
                self._report()
            else:
                self.now = samples.pop(0)
                links.advance(self.now)
                if self.now == self.warmup:
                    self.over_seconds_at_warmup = links.over_seconds
                links.sample()
        self.now = until
        if np.isfinite(until):
            links.advance(until)

    def _report(self) -> None:
        interval = self.config.report_interval
        reports = self.links.reports(self.reported, interval)
        self.reported = self.links.carried.copy()
        self.policy.observe(EPOCH + timedelta(seconds=self.now), reports)
        self.next_report += interval

    def _arrive(self, arrival: Arrival) -> None:
        requirements = parse_requirements(arrival.annotations)
        started = time.perf_counter()
        affinity, plugin = self.policy.affinity(requirements), self.policy.filter_plugin(requirements)
        candidates = self.kube.feasible(arrival.cpu, arrival.memory, affinity, plugin)
        if len(candidates):
            outcome = self.policy.place(arrival, requirements, candidates)
        elif plugin is not None and self.kube.fits(arrival.cpu, arrival.memory, affinity).any():
            outcome = Refused.CLAIMS
        else:
            outcome = Refused.KUBE
        self.schedule_seconds[arrival.index] = time.perf_counter() - started
        if isinstance(outcome, Refused):
            self.counts[outcome] += 1
            return
        self.placed += 1
        self.kube.place(outcome.node, arrival.cpu, arrival.memory, arrival.template)
        self.links.add(outcome.charges, noisy=arrival.noisy)
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
        # Episodes still going on at the last arrival count as long as they lasted until then.
        episodes = links.episodes + links.open_episodes()
        return PolicyResult(
            policy=self.policy.name,
            arrived=len(self.arrivals),
            placed=self.placed,
            refused=refused,
            refused_by_kube=self.counts[Refused.KUBE],
            refused_by_netsched=self.counts[Refused.NETWORK],
            refused_by_allocator=self.counts[Refused.CLAIMS],
            bind_conflicts=self.counts[Refused.BIND],
            links=links.links,
            links_over_capacity_peak=links.over_peak,
            links_over_capacity_mean=round(
                (links.over_seconds - self.over_seconds_at_warmup) / max(links.now - self.warmup, 1e-9), 3
            ),
            episodes=len(episodes),
            episode_seconds_median=_quantile([d for d, _ in episodes], 0.5),
            episode_seconds_p90=_quantile([d for d, _ in episodes], 0.9),
            noisy_episodes=sum(noisy for _, noisy in episodes),
            noisy_episode_seconds_median=_quantile([d for d, noisy in episodes if noisy], 0.5),
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


def _quantile(values: list[float], share: float) -> float | None:
    return round(float(np.quantile(values, share)), 1) if values else None


def _sample_times(arrivals: list[Arrival], mean_lifetime: float) -> list[float]:
    """``SAMPLES`` instants from the end of the warm-up (one mean lifetime, at most half
    the run) to the last arrival."""
    if not arrivals:
        return []
    end = arrivals[-1].time
    warmup = min(mean_lifetime, end / 2)
    return np.linspace(warmup, end, SAMPLES).tolist()
