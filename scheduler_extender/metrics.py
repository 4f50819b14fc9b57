"""Prometheus metrics of the extender (names start with ``netsched_``).

Counters and histograms are updated by the webhook; per-interface capacity,
reservation and observed traffic are read from the cluster state at scrape time,
so they can never drift from the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bandwidth_accounting.reservation import DIRECTIONS
from scheduler_extender.state import ClusterState

VERB_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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
        self.registry.register(InterfaceCollector(state))


class InterfaceCollector(Collector):
    """Capacity, reservations and observed rates per node, interface and direction."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["node", "interface", "direction"]
        capacity = GaugeMetricFamily(
            "netsched_interface_capacity_bps", "Usable capacity (link speed less headroom), bits/s.", labels=labels
        )
        reserved = GaugeMetricFamily(
            "netsched_interface_reserved_bps", "Bandwidth reserved by bound pods, bits/s.", labels=labels
        )
        observed = GaugeMetricFamily(
            "netsched_interface_observed_bps", "Traffic the node reporter observed, bits/s.", labels=labels
        )
        topology, ledger = self.state.topology, self.state.ledger
        for node, report in topology.node_networks.items():
            for interface in report.status.interfaces:
                usable = ledger.usable(node, interface.name)
                held = ledger.reserved(node, interface.name)
                seen = (interface.rx_bps, interface.tx_bps)
                for index, direction in enumerate(DIRECTIONS):
                    key = [node, interface.name, direction]
                    capacity.add_metric(key, usable[index])
                    reserved.add_metric(key, held[index])
                    observed.add_metric(key, seen[index])
        yield capacity
        yield reserved
        yield observed
