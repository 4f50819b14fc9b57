"""Scoring policies: how much a node is preferred once it fits.

Each policy gives every candidate 0..10 (kube-scheduler's MaxExtenderPriority) or
NaN where it has no opinion; a node's score is the mean of the opinions it got,
rounded. Policies work on arrays because prioritize scores up to every node of the
cluster at once. Filtering lives elsewhere: only nodes found to fit are scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bandwidth_accounting.fit import Plan
from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.requirements import Placement
from scheduler_extender.wire import MAX_EXTENDER_PRIORITY as MAX_SCORE
from topology.rows import MAX_HOPS, NodeRows

NEUTRAL_SCORE = 0
"""What every node gets from a pod netsched has no opinion about: it changes no ranking."""


def headroom_left(plan: Plan, ledger: Ledger, observed_since: float | None = None) -> float:
    """The smallest share of usable capacity left on a plan's interfaces beside their load
    (observed load counted from ``observed_since``). NaN: no interface has capacity, or
    observed load counts and one of them was not observed since then (unknown load
    must not attract pods)."""
    lowest = np.inf
    node = plan.node
    for interface, asked in plan.charges.items():
        if observed_since is not None and not ledger.observed_at(node, interface) >= observed_since:
            return np.nan
        usable = ledger.usable(node, interface)
        load = ledger.load(node, interface, observed_since)
        for index in (0, 1):
            if usable[index] > 0:
                lowest = min(lowest, (usable[index] - load[index] - asked[index]) / usable[index])
    return np.nan if np.isinf(lowest) else max(0.0, lowest)


def bandwidth_scores(headroom: np.ndarray, placement: Placement) -> np.ndarray:
    """``spread`` prefers the most headroom left; ``pack`` the least that still fits."""
    return MAX_SCORE * (headroom if placement is Placement.SPREAD else 1.0 - headroom)


def peer_scores(candidates: np.ndarray, peers: Mapping[int, int], rows: NodeRows) -> np.ndarray:
    """Prefer nodes few hops from the pod's peers: same node > switch > zone > elsewhere.

    ``candidates`` are topology rows, ``peers`` the row of each node running peers → how
    many run there; unknown candidates (-1) get NaN. The work grows with the candidates
    and the peers' nodes, not their product (``NodeRows.total_hops``).
    """
    if not peers:
        return np.full(len(candidates), np.nan)
    counts = np.fromiter(peers.values(), dtype=np.int64, count=len(peers))
    at = np.where(candidates >= 0, candidates, 0)
    total = rows.total_hops(at, np.fromiter(peers, dtype=np.int64, count=len(peers)), counts)
    mean_hops = total / counts.sum()
    return np.where(candidates >= 0, MAX_SCORE * (1.0 - mean_hops / MAX_HOPS), np.nan)


def combine(opinions: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Mean of the opinions present per node, as kube-scheduler's 0..10 integers."""
    if len(opinions) == 1:  # the common case, at every prioritize: no mean to take
        mean = np.asarray(opinions[0], dtype=np.float64)
    else:
        stacked = np.array(opinions, dtype=np.float64).reshape(len(opinions), size)
        present = ~np.isnan(stacked)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(present, stacked, 0.0).sum(axis=0) / present.sum(axis=0)
    return np.clip(np.rint(np.where(np.isnan(mean), NEUTRAL_SCORE, mean)), 0, MAX_SCORE).astype(np.int64)
