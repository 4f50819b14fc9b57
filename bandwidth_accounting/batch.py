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

from bandwidth_accounting.fit import FitSettings
from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.requirements import PodRequirements
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
    """Smallest share of usable capacity left after placing the pod (NaN: no budget involved)."""


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

    ``rows`` are the candidates' topology rows (``topology.rows.rows_of(names)``).
    """
    node_rows = topology.rows
    known = rows >= 0
    at = np.where(known, rows, 0)
    fits = known & node_rows.reported[at]
    if settings.report_ttl is not None:
        # NaN (never reported) compares False: stale, as in plan_on_node.
        fits &= node_rows.heartbeat[at] >= now.timestamp() - settings.report_ttl.total_seconds()

    charges: list[tuple[np.ndarray, int, int]] = []
    if requirements.ingress_bps or requirements.egress_bps:
        charges.append((slots.pod_slots[at], requirements.ingress_bps, requirements.egress_bps))
    for attachment in requirements.attachments:
        carrier, several = slots.carriers(attachment.network)
        fits &= ~several[at]
        charges.append((carrier[at], attachment.ingress_bps, attachment.egress_bps))

    usable, reserved = ledger.budget_rows()
    observed, observed_at = ledger.observed_rows()
    since = settings.observed_since(now)
    if usable is not slots.numbering:
        fits[:] = False  # capacities changed under us: let plan_on_node decide every node
    headroom = np.full(len(rows), np.inf)
    # Observed load counts but is stale on a charged link: no bandwidth score (see FitSettings).
    unknown_load = np.zeros(len(rows), dtype=bool)
    for slot, _, _ in charges:
        fits &= slot >= 0
    for slot, _, _ in charges:
        # Charges landing on the same interface add up (primary and attachment on eth0).
        asked_in = sum(np.where(other == slot, ingress, 0) for other, ingress, _ in charges)
        asked_out = sum(np.where(other == slot, egress, 0) for other, _, egress in charges)
        at_slot = np.where(slot >= 0, slot, 0)
        budget = usable[at_slot] if len(usable) else np.zeros((len(rows), 2), dtype=np.int64)
        held = reserved[at_slot] if len(reserved) else budget * 0
        if since is not None and len(observed):
            fresh = observed_at[at_slot] >= since  # NaN (never observed) is not fresh
            held = np.maximum(held, np.where(fresh[:, None], observed[at_slot], 0))
            unknown_load |= (slot >= 0) & ~fresh
        for direction, asked in ((0, asked_in), (1, asked_out)):
            left = budget[:, direction] - held[:, direction] - asked
            fits &= (asked == 0) | (left >= 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(budget[:, direction] > 0, left / budget[:, direction], np.inf)
            headroom = np.minimum(headroom, share)
    headroom = np.where(np.isinf(headroom) | unknown_load, np.nan, np.maximum(headroom, 0.0))
    return BatchFit(rows=rows, fits=fits, headroom=headroom)
