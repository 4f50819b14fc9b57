"""Traffic on the cluster's links, as the placed pods send it.

A *link* is one direction (ingress or egress) of a host interface that pods' traffic
uses: every node's pod interface and every interface carrying a network the workload
attaches to. Its capacity is the interface's full link speed (not netsched's usable
share), so "over capacity" means the link is physically oversubscribed. Each pod sends
exactly its annotated rates (primary on the pod interface, each attachment on the
interface carrying its network), for its whole lifetime, whoever placed it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bandwidth_accounting.reservation import DIRECTIONS
from topology.graph import Topology

HISTOGRAM_EDGES = np.linspace(0.0, 2.0, 201)
"""Utilisation bins of 1 %, up to twice the capacity (higher values land in the last bin)."""

Charge = tuple[int, int, float]
"""(link, direction index, bits/s)."""


class LinkLoad:
    def __init__(self, topology: Topology, networks: Iterable[str]) -> None:
        self.index: dict[tuple[str, str], int] = {}
        speeds = []
        for node in sorted(topology.nodes):
            used = [topology.pod_interface(node)]
            used += [iface for network in sorted(networks) for iface in topology.interfaces_carrying(node, network)]
            for interface in used:
                if interface is not None and (node, interface.name) not in self.index and interface.speed_mbps > 0:
                    self.index[(node, interface.name)] = len(speeds)
                    speeds.append(interface.speed_mbps * 1_000_000)
        self.capacity = np.array(speeds, dtype=np.float64)
        self.traffic = np.zeros((len(speeds), len(DIRECTIONS)))
        self.over_now = 0
        self.over_peak = 0
        self.worst = 0.0
        self.histogram = np.zeros(len(HISTOGRAM_EDGES) - 1, dtype=np.int64)
        self.samples = 0

    @property
    def links(self) -> int:
        return self.traffic.size

    def charges(self, node: str, rates: Iterable[tuple[str, float, float]]) -> list[Charge]:
        """(interface, ingress, egress) on ``node`` as charges; unknown interfaces carry nothing."""
        result = []
        for interface, ingress, egress in rates:
            link = self.index.get((node, interface))
            if link is None:
                continue
            result += [(link, d, rate) for d, rate in enumerate((ingress, egress)) if rate > 0]
        return result

    def add(self, charges: list[Charge]) -> None:
        for link, direction, rate in charges:
            before = self.traffic[link, direction]
            after = before + rate
            self.traffic[link, direction] = after
            capacity = self.capacity[link]
            if before <= capacity < after:
                self.over_now += 1
                self.over_peak = max(self.over_peak, self.over_now)
            self.worst = max(self.worst, after / capacity)

    def remove(self, charges: list[Charge]) -> None:
        for link, direction, rate in charges:
            before = self.traffic[link, direction]
            after = max(0.0, before - rate)
            self.traffic[link, direction] = after
            if after <= self.capacity[link] < before:
                self.over_now -= 1

    def sample(self) -> None:
        """Add every link's utilisation now to the distribution."""
        utilisation = np.minimum(self.traffic / self.capacity[:, None], HISTOGRAM_EDGES[-1])
        self.histogram += np.histogram(utilisation, bins=HISTOGRAM_EDGES)[0]
        self.samples += 1

    def percentile(self, share: float) -> float:
        """The 1 % bin holding the ``share`` quantile of the sampled link states (its lower edge)."""
        total = self.histogram.sum()
        if total == 0:
            return 0.0
        position = int(np.searchsorted(np.cumsum(self.histogram), share * total))
        return float(HISTOGRAM_EDGES[min(position, len(HISTOGRAM_EDGES) - 2)])
