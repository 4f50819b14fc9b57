"""Traffic on the cluster's links, as the placed pods send it, and what the reporters see of it.

A *link* is one direction (ingress or egress) of a host interface that pods' traffic
uses: every node's pod interface and every interface carrying a network the workload
attaches to. Its capacity is the interface's full link speed (not netsched's usable
share), so "over capacity" means the link is physically oversubscribed. Each pod sends
its rates (primary on the pod interface, each attachment on the interface carrying its
network) for its whole lifetime, whoever placed it; a direction with a reservation is
shaped to it, as the CNI plugin does. Pods without annotations send too: all traffic
counts.

The links also count the bits they carried, so that a node reporter can be played as
the real one works: every interval it publishes each interface's rate over that
interval (byte counters read twice), which the extender then holds over its window.
An *episode* is one stretch of time a link spends over capacity.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from contract.reservation import DIRECTIONS
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
        self.by_node: dict[str, list[tuple[str, int]]] = {}
        """node → (interface, link) of the links it has."""
        for (node, interface), link in self.index.items():
            self.by_node.setdefault(node, []).append((interface, link))
        self.now = 0.0
        self.carried = np.zeros_like(self.traffic)
        """Bits carried since the start, per link and direction (the reporters' byte counters × 8)."""
        self.over_seconds = 0.0
        """Link-seconds spent over capacity (÷ elapsed time: links over capacity at an average moment)."""
        self._over_since: dict[tuple[int, int], tuple[float, bool]] = {}
        self.episodes: list[tuple[float, bool]] = []
        """(seconds over capacity, whether a noisy pod's arrival started it) of each ended episode."""

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

    def advance(self, now: float) -> None:
        """Let the current traffic flow until ``now``."""
        elapsed = now - self.now
        if elapsed > 0:
            self.carried += self.traffic * elapsed
            self.over_seconds += self.over_now * elapsed
            self.now = now

    def add(self, charges: list[Charge], noisy: bool = False) -> None:
        """A pod starts sending; ``noisy``: one without annotations (for the episode statistics)."""
        for link, direction, rate in charges:
            before = self.traffic[link, direction]
            after = before + rate
            self.traffic[link, direction] = after
            capacity = self.capacity[link]
            if before <= capacity < after:
                self.over_now += 1
                self.over_peak = max(self.over_peak, self.over_now)
                self._over_since[(link, direction)] = (self.now, noisy)
            self.worst = max(self.worst, after / capacity)

    def remove(self, charges: list[Charge]) -> None:
        for link, direction, rate in charges:
            before = self.traffic[link, direction]
            after = max(0.0, before - rate)
            self.traffic[link, direction] = after
            if after <= self.capacity[link] < before:
                self.over_now -= 1
                since, noisy = self._over_since.pop((link, direction))
                self.episodes.append((self.now - since, noisy))

    def open_episodes(self) -> list[tuple[float, bool]]:
        """Episodes still going on now, as long as they have lasted so far."""
        return [(self.now - since, noisy) for since, noisy in self._over_since.values()]

    def reports(self, previous: np.ndarray, interval: float) -> dict[str, dict[str, tuple[int, int]]]:
        """What every node's reporter publishes now: each interface's (ingress, egress) rate
        over the last ``interval`` seconds, from the bits carried then (``previous``) and now."""
        rates = ((self.carried - previous) / interval).astype(np.int64)
        return {
            node: {interface: (int(rates[link, 0]), int(rates[link, 1])) for interface, link in links}
            for node, links in self.by_node.items()
        }

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
