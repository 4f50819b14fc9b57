"""The topology as arrays, one row per node, for checks that run over thousands of candidates.

kube-scheduler sends up to every node in the cluster to filter and prioritize; asking
the graph node by node costs microseconds each. These arrays answer the same
questions (report freshness, interfaces carrying a network, hops) for all candidates
in a few vectorised operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from topology.graph import Location

NEVER = np.nan
"""Heartbeat of a node whose reporter never reported."""
LEVEL_HOPS = 2
"""Hops two nodes are further apart for each level (region, zone, switch, node) they do not share."""
MAX_HOPS = 4 * LEVEL_HOPS
"""Hops between nodes in different regions."""


def _ids(values: list[str]) -> np.ndarray:
    numbering: dict[str, int] = {}
    return np.array([numbering.setdefault(value, len(numbering)) for value in values], dtype=np.int64)


@dataclass(slots=True)
class NodeRows:
    names: list[str]
    position: dict[str, int]
    reported: np.ndarray
    """Whether the node has a NodeNetwork report."""
    heartbeat: np.ndarray
    """Last heartbeat, seconds since the epoch; NaN when never."""
    pod_interface: list[str | None]
    carriers: dict[str, list[list[str]]]
    """network → per row, names of the interfaces carrying it."""
    region: np.ndarray
    zone: np.ndarray
    switch: np.ndarray

    @classmethod
    def build(
        cls,
        locations: dict[str, Location],
        reported: set[str],
        heartbeats: dict[str, float],
        pod_interface: dict[str, str],
        carriers: dict[str, dict[str, list[str]]],
        networks: list[str],
    ) -> NodeRows:
        names = sorted(locations)
        return cls(
            names=names,
            position={name: row for row, name in enumerate(names)},
            reported=np.array([name in reported for name in names], dtype=bool),
            heartbeat=np.array([heartbeats.get(name, NEVER) for name in names], dtype=np.float64),
            pod_interface=[pod_interface.get(name) for name in names],
            carriers={
                network: [carriers.get(name, {}).get(network, []) for name in names] for network in networks
            },
            region=_ids([locations[name].region for name in names]),
            zone=_ids([f"{locations[name].region}/{locations[name].zone}" for name in names]),
            switch=_ids(
                [f"{locations[name].region}/{locations[name].zone}/{locations[name].switch}" for name in names]
            ),
        )

    def rows_of(self, names: list[str]) -> np.ndarray:
        """Row of each name; -1 for names the topology does not know."""
        if len(names) > 1:
            try:  # every name known, the common case: one C call for the lot, half the cost of a lookup each
                found = itemgetter(*names)(self.position)
            except KeyError:
                pass
            else:  # fromiter: the dtype is given, so no pass over the items to find one (np.array)
                return np.fromiter(found, dtype=np.int64, count=len(names))
        return np.fromiter(map(self.position.get, names, repeat(-1)), dtype=np.int64, count=len(names))

    def total_hops(self, rows: np.ndarray, peers: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """For each node at ``rows``, its hops to the pods on the nodes at ``peers`` added
        up, ``counts`` pods on each: ``hops_between`` summed over them, without a pass for
        each.

        Two nodes are 8 hops apart, less 2 for each level of region, zone, switch and
        node they share; the levels nest (a zone's id names its region, a switch's its
        zone). So the sum is 8 per pod, less 2 for every pod sharing each level: one count
        of pods per region, zone, switch and node answers every candidate."""
        total = np.full(len(rows), MAX_HOPS * int(counts.sum()), dtype=np.int64)
        for level in (self.region, self.zone, self.switch, np.arange(len(self.names))):
            # every id of a level is below the number of nodes (``_ids`` numbers them from 0)
            shared = np.bincount(level[peers], weights=counts, minlength=len(self.names))
            total -= LEVEL_HOPS * shared.astype(np.int64)[level[rows]]
        return total

    def hops_between(self, rows: np.ndarray, row: int) -> np.ndarray:
        """Hops from the nodes at ``rows`` to the node at ``row`` (as ``Location.hops_to``)."""
        return np.where(
            rows == row, 0,
            np.where(self.switch[rows] == self.switch[row], LEVEL_HOPS,
                     np.where(self.zone[rows] == self.zone[row], 2 * LEVEL_HOPS,
                              np.where(self.region[rows] == self.region[row], 3 * LEVEL_HOPS, MAX_HOPS))),
        )
