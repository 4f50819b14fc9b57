"""Prometheus metrics of the extender (names start with ``netsched_``).

Counters and histograms are updated by the webhook; per-interface capacity,
reservation and observed traffic are read from the cluster state at scrape time,
so they can never drift from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bandwidth_accounting.claims import ClaimProblemKind
from contract.reservation import DIRECTIONS
from scheduler_extender.state import ClusterState, Rejection

VERB_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


VERBS = ("filter", "prioritize", "bind", "preempt")


class ExtenderMetrics:
    """The extender's metrics, in a registry of their own (no global state)."""

    def __init__(self, state: ClusterState, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.request_seconds = Histogram(
            "netsched_extender_request_duration_seconds",
            "Time to answer a kube-scheduler webhook call, per verb.",
            ["verb"],
            buckets=VERB_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.verb_seconds = {verb: self.request_seconds.labels(verb) for verb in VERBS}
        """Each verb's histogram, looked up once: ``labels`` costs a lock and a dict per call."""
        self.filter_rejections = Counter(
            "netsched_filter_rejections",
            "Nodes refused by filter, per reason.",
            ["reason"],
            registry=self.registry,
        )
        self.bind_conflicts = Counter(
            "netsched_bind_conflicts",
            "Binds refused because the pod no longer fitted or the API refused the write.",
            registry=self.registry,
        )
        self.binds = Counter(
            "netsched_binds", "Pods bound by the extender.", registry=self.registry
        )
        self.prepared_prioritizes = Counter(
            "netsched_prioritize_prepared",
            "Prioritize calls answered with the scores prepared after their filter (scheduler_extender.prepared).",
            registry=self.registry,
        )
        self.registry.register(InterfaceCollector(state))
        self.registry.register(NodeCollector(state))
        self.registry.register(RejectionCollector(state))


class RejectionCollector(Collector):
    """Reservations on bound pods that the ledger refuses to count, per reason (docs/security.md),
    and DRA allocation results it does not count as written, per reason (docs/dra.md)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rejected = GaugeMetricFamily(
            "netsched_rejected_reservations",
            "Bound pods whose netsched.io/reservation is not counted: unreadable, too large, "
            "naming another node than the pod's, or on a pod of a scheduler netsched does not serve.",
            labels=["reason"],
        )
        reasons = [r.reason for r in self.state.rejected_reservations()]
        for reason in Rejection:
            rejected.add_metric([reason.value], reasons.count(reason))
        yield rejected
        uncounted = GaugeMetricFamily(
            "netsched_claim_allocation_problems",
            "DRA allocation results not counted as written: a pool without NodeNetwork report, a "
            "device no interface is (charged to the pod interface), a consumed capacity netsched cannot read.",
            labels=["reason"],
        )
        kinds = [p.kind for p in self.state.claim_problems()]
        for kind in ClaimProblemKind:
            uncounted.add_metric([kind.value], kinds.count(kind))
        yield uncounted


class InterfaceCollector(Collector):
    """Capacity, reservations and observed rates per node, interface and direction."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["node", "interface", "direction"]
        capacity = GaugeMetricFamily(
            "netsched_interface_capacity_bps",
            "Usable capacity (link speed less headroom), bits/s.",
            labels=labels,
        )
        reserved = GaugeMetricFamily(
            "netsched_interface_reserved_bps",
            "Bandwidth held on the interface: bound pods' reservations and DRA claims' allocations, bits/s.",
            labels=labels,
        )
        claimed = GaugeMetricFamily(
            "netsched_interface_claimed_bps",
            "The part of netsched_interface_reserved_bps that DRA ResourceClaims hold "
            "(kube-scheduler allocated it), bits/s.",
            labels=labels,
        )
        observed = GaugeMetricFamily(
            "netsched_interface_observed_bps",
            "Traffic the node reporter observed, bits/s.",
            labels=labels,
        )
        topology, ledger = self.state.topology, self.state.ledger
        for node, report in topology.node_networks.items():
            for interface in report.status.interfaces:
                usable = ledger.usable(node, interface.name)
                held = ledger.reserved(node, interface.name)
                by_claims = ledger.claimed(node, interface.name)
                seen = (interface.rx_bps, interface.tx_bps)
                for index, direction in enumerate(DIRECTIONS):
                    key = [node, interface.name, direction]
                    capacity.add_metric(key, usable[index])
                    reserved.add_metric(key, held[index])
                    claimed.add_metric(key, by_claims[index])
                    observed.add_metric(key, seen[index])
        yield capacity
        yield reserved
        yield claimed
        yield observed


class NodeCollector(Collector):
    """Where each node hangs, how fresh its report is, and how many pods hold bandwidth there.

    ``netsched_node_info`` carries the zone and switch as labels so that PromQL can
    sum the interface gauges per zone or switch (``* on(node) group_left(zone)``).
    """

    def __init__(
        self, state: ClusterState, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.state = state
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "netsched_node_info",
            "Location of each node (always 1).",
            labels=["node", "region", "zone", "switch"],
        )
        age = GaugeMetricFamily(
            "netsched_node_report_age_seconds",
            "Seconds since the node's NodeNetwork heartbeat.",
            labels=["node"],
        )
        pods = GaugeMetricFamily(
            "netsched_node_reserving_pods",
            "Pods holding a bandwidth reservation on the node.",
            labels=["node"],
        )
        reachable = GaugeMetricFamily(
            "netsched_network_nodes",
            "Nodes where the network is reachable.",
            labels=["network", "mode"],
        )
        topology, ledger, now = self.state.topology, self.state.ledger, self.clock()
        holding_counts: dict[str, int] = {}
        for holding in ledger.holdings():
            if holding.claim is not None:
                continue  # an allocation result, not a pod: netsched_interface_claimed_bps shows it
            holding_counts[holding.node] = holding_counts.get(holding.node, 0) + 1
        for node in sorted(topology.nodes.keys() | topology.node_networks.keys()):
            location = topology.location(node)
            info.add_metric([node, location.region, location.zone, location.switch], 1)
            heartbeat = topology.heartbeat(node)
            if heartbeat is not None:
                age.add_metric([node], max(0.0, (now - heartbeat).total_seconds()))
            pods.add_metric([node], holding_counts.get(node, 0))
        for name, network in sorted(topology.networks.items()):
            reachable.add_metric(
                [name, network.spec.mode.value], len(topology.nodes_reaching(name))
            )
        for name, definition in sorted(topology.definitions.items()):
            reachable.add_metric([name, definition.mode.value], len(topology.nodes_reaching(name)))
        yield info
        yield age
        yield pods
        yield reachable
