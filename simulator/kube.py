"""What kube-scheduler does on its own: CPU/memory filters, node sampling and default scores.

A model of the default profile, detailed where it decides placement:

- Nodes are visited in kube-scheduler's node-tree order (zones interleaved, one node of
  each zone in turn) from a start index that moves on after every cycle.
- ``NodeResourcesFit`` filters nodes without the pod's CPU and memory free.
- Filtering stops after ``numFeasibleNodesToFind`` feasible nodes (the default adaptive
  ``percentageOfNodesToScore``: max(5, 50 − nodes/125) % of the nodes, at least 100);
  only those reach the extender.
- Scores (0–100 each): ``NodeResourcesFit`` least-allocated (weight 1),
  ``NodeResourcesBalancedAllocation`` (weight 1) and ``PodTopologySpread`` with the system
  default constraints (zone and hostname, ``ScheduleAnyway``; weight 2) over pods of the
  same ``app``. Extender scores (0–10) are added × extender weight × 10. The highest total
  wins; ties are broken at random, as ``selectHost`` does.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from topology.graph import Topology

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
SPREAD_WEIGHT = 2
MAX_NODE_SCORE = 100
EXTENDER_SCORE_SCALE = MAX_NODE_SCORE // 10
"""kube-scheduler's node score range over the extender's MaxExtenderPriority."""


def feasible_nodes_to_find(nodes: int) -> int:
    """kube-scheduler's ``numFeasibleNodesToFind`` with ``percentageOfNodesToScore`` unset."""
    if nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return nodes
    percentage = max(MIN_FEASIBLE_NODES_PERCENTAGE, 50 - nodes // 125)
    return max(MIN_FEASIBLE_NODES_TO_FIND, nodes * percentage // 100)


def node_tree_order(topology: Topology) -> list[str]:
    """Node names as kube-scheduler's node tree lists them: one per zone in turn."""
    by_zone: dict[str, list[str]] = defaultdict(list)
    for name in sorted(topology.nodes):
        location = topology.location(name)
        by_zone[f"{location.region}/{location.zone}" if location else ""].append(name)
    zones = [by_zone[zone] for zone in sorted(by_zone)]
    order = []
    for index in range(max(map(len, zones), default=0)):
        order.extend(zone[index] for zone in zones if index < len(zone))
    return order


@dataclass(slots=True)
class KubeScheduler:
    """CPU/memory bookkeeping and kube-scheduler's own filter and score steps."""

    names: list[str]
    zone: np.ndarray
    cpu_allocatable: np.ndarray
    memory_allocatable: np.ndarray
    rng: random.Random
    cpu_used: np.ndarray = field(init=False)
    memory_used: np.ndarray = field(init=False)
    app_pods: dict[str, np.ndarray] = field(init=False, default_factory=dict)
    """Pods per node of each ``app``, for topology spreading."""
    next_start: int = 0

    def __post_init__(self) -> None:
        self.cpu_used = np.zeros(len(self.names))
        self.memory_used = np.zeros(len(self.names))

    @classmethod
    def build(cls, topology: Topology, cpu: float, memory: float, rng: random.Random) -> KubeScheduler:
        names = node_tree_order(topology)
        zones: dict[str, int] = {}
        zone = np.array([zones.setdefault(topology.zone_of(name) or "", len(zones)) for name in names])
        return cls(names, zone, np.full(len(names), cpu), np.full(len(names), memory), rng)

    # -- filter --------------------------------------------------------------------------

    def fits(self, cpu: float, memory: float, affinity: np.ndarray | None = None) -> np.ndarray:
        """Which nodes pass ``NodeResourcesFit`` and the required node affinity (``affinity``
        masks the nodes it allows)."""
        fits = (self.cpu_used + cpu <= self.cpu_allocatable) & (self.memory_used + memory <= self.memory_allocatable)
        if affinity is not None:
            fits &= affinity
        return fits

    def feasible(
        self, cpu: float, memory: float, affinity: np.ndarray | None = None,
        plugin: Callable[[int], bool] | None = None,
    ) -> np.ndarray:
        """Indexes of the nodes kube-scheduler would send on: the first feasible ones found
        from the rotating start, at most ``feasible_nodes_to_find``. ``plugin`` is one more
        filter plugin of kube-scheduler's own (DRA's ``DynamicResources``): a node must pass
        it too to count as found, so the search goes on past the nodes it fails."""
        count = len(self.names)
        start = self.next_start
        wanted = feasible_nodes_to_find(count)
        order = np.flatnonzero(np.roll(self.fits(cpu, memory, affinity), -start))
        if plugin is None:
            found = order[:wanted]
        else:
            kept = []
            for position in order.tolist():
                if plugin((position + start) % count):
                    kept.append(position)
                    if len(kept) == wanted:
                        break
            found = np.array(kept, dtype=np.int64)
        examined = count if len(found) < wanted else int(found[-1]) + 1
        self.next_start = (start + examined) % count
        return (found + start) % count

    # -- score ---------------------------------------------------------------------------

    def scores(self, candidates: np.ndarray, cpu: float, memory: float, app: str) -> np.ndarray:
        """kube-scheduler's weighted sum of its default score plugins for each candidate."""
        cpu_share = (self.cpu_used[candidates] + cpu) / self.cpu_allocatable[candidates]
        memory_share = (self.memory_used[candidates] + memory) / self.memory_allocatable[candidates]
        least_allocated = np.floor(MAX_NODE_SCORE * ((1 - cpu_share) + (1 - memory_share)) / 2)
        balanced = np.floor(MAX_NODE_SCORE * (1 - np.abs(cpu_share - memory_share) / 2))
        return least_allocated + balanced + SPREAD_WEIGHT * self._spread_scores(candidates, app)

    def _spread_scores(self, candidates: np.ndarray, app: str) -> np.ndarray:
        """``PodTopologySpread`` scoring: fewer pods of the same app in the node's zone and on
        the node score higher, each constraint weighted by log(domains + 2), then normalised."""
        per_node = self.app_pods.get(app)
        if per_node is None:
            return np.full(len(candidates), float(MAX_NODE_SCORE))
        per_zone = np.bincount(self.zone, weights=per_node)
        zone_weight = math.log(len(per_zone) + 2)
        host_weight = math.log(len(candidates) + 2)
        raw = per_zone[self.zone[candidates]] * zone_weight + per_node[candidates] * host_weight
        low, high = raw.min(), raw.max()
        if high == low:
            return np.full(len(candidates), float(MAX_NODE_SCORE))
        return np.floor(MAX_NODE_SCORE * (high - raw) / (high - low))

    def choose(self, candidates: np.ndarray, totals: np.ndarray) -> int:
        """The best-scoring candidate; ties broken at random, as ``selectHost`` does."""
        best = np.flatnonzero(totals == totals.max())
        return int(candidates[best[self.rng.randrange(len(best))] if len(best) > 1 else best[0]])

    # -- bookkeeping ---------------------------------------------------------------------

    def place(self, node: int, cpu: float, memory: float, app: str) -> None:
        self.cpu_used[node] += cpu
        self.memory_used[node] += memory
        per_node = self.app_pods.get(app)
        if per_node is None:
            per_node = self.app_pods[app] = np.zeros(len(self.names))
        per_node[node] += 1

    def remove(self, node: int, cpu: float, memory: float, app: str) -> None:
        self.cpu_used[node] -= cpu
        self.memory_used[node] -= memory
        self.app_pods[app][node] -= 1
