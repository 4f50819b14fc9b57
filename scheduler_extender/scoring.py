"""Scoring policies: how much a node is preferred once it fits.

Each policy is a separate function returning 0..10 (kube-scheduler's
MaxExtenderPriority) or None when it has no opinion about the pod; the node's score
is the mean of the opinions. Filtering lives elsewhere: a node is only scored once
``plan_on_node`` found room for the pod there.
"""

from __future__ import annotations

from collections.abc import Sequence

from bandwidth_accounting.fit import Plan
from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.requirements import Placement
from topology.graph import Topology

MAX_SCORE = 10
NEUTRAL_SCORE = 0
"""What every node gets from a pod netsched has no opinion about: it changes no ranking."""
MAX_HOPS = 8


def headroom_left(plan: Plan, ledger: Ledger) -> float | None:
    """The smallest share of usable capacity left on the plan's interfaces after placing it."""
    lowest: float | None = None
    node = plan.node
    for interface, asked in plan.charges.items():
        usable = ledger.usable(node, interface)
        reserved = ledger.reserved(node, interface)
        for index in (0, 1):
            if usable[index] > 0:
                share = (usable[index] - reserved[index] - asked[index]) / usable[index]
                if lowest is None or share < lowest:
                    lowest = share
    return None if lowest is None else max(0.0, lowest)


def bandwidth_score(plan: Plan, ledger: Ledger, placement: Placement) -> float | None:
    """``spread`` prefers the most headroom left; ``pack`` the least that still fits."""
    left = headroom_left(plan, ledger)
    if left is None:
        return None
    return MAX_SCORE * (left if placement is Placement.SPREAD else 1.0 - left)


def peer_score(node: str, peer_nodes: Sequence[str], topology: Topology) -> float | None:
    """Prefer nodes few hops from the pod's peers: same node > switch > zone > elsewhere."""
    hops = [h for peer in peer_nodes if (h := topology.hops(node, peer)) is not None]
    if not hops:
        return None
    return MAX_SCORE * (1.0 - sum(hops) / len(hops) / MAX_HOPS)


def combine(opinions: Sequence[float | None]) -> int:
    """The mean of the policies that have an opinion, as kube-scheduler's 0..10 integer."""
    total, count = 0.0, 0
    for opinion in opinions:
        if opinion is not None:
            total += opinion
            count += 1
    if not count:
        return NEUTRAL_SCORE
    return max(0, min(MAX_SCORE, round(total / count)))
