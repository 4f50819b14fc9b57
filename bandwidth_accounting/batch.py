"""The fit check over many candidate nodes at once.

``plan_on_node`` answers for one node and explains refusals; at thousands of
candidates per pod its per-node cost dominates the webhook's latency. ``batch_fit``
decides the common case for all candidates in a few array operations: a node whose
report is fresh, whose pod interface and network carriers are unambiguous (one
interface each) and whose budgets hold the pod beside the load (reservations, or the
observed traffic where higher) surely fits, with exactly the rules of
``plan_on_node``. Every other node (refused, or with several interfaces to choose
from) is left to ``plan_on_node``, which gives the plan or the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.requirements import PodRequirements
from bandwidth_accounting.settings import FitSettings
from topology.graph import Topology
from topology.rows import NodeRows


@dataclass(slots=True)
class SlotMap:
    """Ledger slots of the interfaces the topology's rows name; built once per topology."""

    rows: NodeRows
    ledger: Ledger
    pod_slots: np.ndarray = field(init=False)
    numbering: np.ndarray = field(init=False)
    """The ledger's usable array these slots index; replaced whenever capacities change."""
    _carriers: dict[str, tuple[np.ndarray, np.ndarray]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.numbering = self.ledger.budget_rows()[0]
        slot = self.ledger.slot
        self.pod_slots = np.array(
            [slot(node, iface) if iface else -1 for node, iface in zip(self.rows.names, self.rows.pod_interface, strict=True)],
            dtype=np.int64,
        )

    def carriers(self, network: str) -> tuple[np.ndarray, np.ndarray]:
        """(slot of the only carrier or -1, whether there are several) per row."""
        cached = self._carriers.get(network)
        if cached is None:
            per_row = self.rows.carriers.get(network) or [[] for _ in self.rows.names]
            slot = self.ledger.slot
            slots = np.array(
                [slot(node, ifaces[0]) if len(ifaces) == 1 else -1 for node, ifaces in zip(self.rows.names, per_row, strict=True)],
                dtype=np.int64,
            )
            several = np.array([len(ifaces) > 1 for ifaces in per_row], dtype=bool)
            cached = self._carriers[network] = (slots, several)
        return cached


@dataclass(slots=True)
class BatchFit:
    """One pod against many candidates."""

    rows: np.ndarray
    """Topology row of each candidate (-1: unknown node)."""
    fits: np.ndarray
    """True where the pod surely fits; False means "ask plan_on_node"."""
    headroom: np.ndarray
    """Smallest share of usable capacity left after placing the pod where it surely fits
    (NaN: no budget involved, or not decided here)."""


def batch_fit(
    requirements: PodRequirements,
    rows: np.ndarray,
    topology: Topology,
    ledger: Ledger,
    slots: SlotMap,
    now: datetime,
    settings: FitSettings,
) -> BatchFit:
    """Vectorised ``plan_on_node`` for the unambiguous case (see the module docstring).

    ``rows`` are the candidates' topology rows (``topology.rows.rows_of(names)``). This
    runs once per pod and scheduling cycle over up to every node, and each array
    operation costs microseconds whatever its length, so it takes as few as it can: a
    row of -1 (an unknown name) or a slot of -1 (no such interface) indexes the last
    entry of its array, and a mask refuses it.
    """
    node_rows = topology.rows
    usable, reserved = ledger.budget_rows()
    size = len(rows)
    if not node_rows.names or not len(usable) or usable is not slots.numbering:
        # Nothing to index, or capacities changed under us: plan_on_node decides every node.
        return BatchFit(rows=rows, fits=np.zeros(size, dtype=bool), headroom=np.full(size, np.nan))
    if settings.report_ttl is not None:
        # NaN (never reported, or no heartbeat) compares False: stale, as in plan_on_node.
        fits = node_rows.heartbeat[rows] >= now.timestamp() - settings.report_ttl.total_seconds()
    else:
        fits = node_rows.reported[rows]
    fits &= rows >= 0

    charges: list[tuple[np.ndarray, int, int]] = []
    """(ledger slot per candidate, ingress, egress asked there)."""
    if requirements.ingress_bps or requirements.egress_bps:
        charges.append((slots.pod_slots[rows], requirements.ingress_bps, requirements.egress_bps))
    for attachment in requirements.attachments:
        carrier, several = slots.carriers(attachment.network)
        fits &= ~several[rows]
        charges.append((carrier[rows], attachment.ingress_bps, attachment.egress_bps))

    observed, observed_at = ledger.observed_rows()
    since = settings.observed_since(now)
    headroom: np.ndarray | None = None
    # Observed load counts but is stale on a charged link: no bandwidth score (see FitSettings).
    unknown_load: np.ndarray | None = None
    with np.errstate(divide="ignore", invalid="ignore"):
        for slot, ingress, egress in charges:
            fits &= slot >= 0
            asked_in: np.ndarray | int = ingress
            asked_out: np.ndarray | int = egress
            for other, more_in, more_out in charges:
                if other is not slot:  # charges on the same interface add up (primary and attachment on eth0)
                    same = other == slot
                    asked_in = asked_in + same * more_in
                    asked_out = asked_out + same * more_out
            budget = usable[slot]
            held = reserved[slot]
            if since is not None:
                fresh = observed_at[slot] >= since  # NaN (never observed) is not fresh
                held = np.maximum(held, observed[slot] * fresh[:, None])
                unknown_load = ~fresh if unknown_load is None else unknown_load | ~fresh
            for direction, asked in ((0, asked_in), (1, asked_out)):
                capacity = budget[:, direction]
                left = capacity - held[:, direction] - asked
                if isinstance(asked, np.ndarray):
                    fits &= (left >= 0) | (asked == 0)
                elif asked:
                    fits &= left >= 0
                # A direction the pod asks nothing of still bounds its headroom (headroom_left).
                share = np.where(capacity > 0, left / capacity, np.inf)
                headroom = share if headroom is None else np.minimum(headroom, share)
    if headroom is None:
        return BatchFit(rows=rows, fits=fits, headroom=np.full(size, np.nan))
    # Only the candidates that surely fit get a headroom; plan_on_node gives the others'.
    scored = fits & ~np.isinf(headroom)
    if unknown_load is not None:
        scored &= ~unknown_load
    return BatchFit(rows=rows, fits=fits, headroom=np.where(scored, np.maximum(headroom, 0.0), np.nan))
