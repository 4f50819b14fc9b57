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
    shares = []
    for interface, charge in plan.charges.items():
        usable = ledger.usable(plan.node, interface)
        reserved = ledger.reserved(plan.node, interface)
        for index, asked in enumerate((charge.ingress, charge.egress)):
            if usable[index] > 0:
                shares.append((usable[index] - reserved[index] - asked) / usable[index])
    return max(0.0, min(shares)) if shares else None


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
    present = [opinion for opinion in opinions if opinion is not None]
    if not present:
        return NEUTRAL_SCORE
    return max(0, min(MAX_SCORE, round(sum(present) / len(present))))
