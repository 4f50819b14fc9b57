"""One pod's asks against its candidates, and the tables that keep that answer for its replicas.

``evaluate`` runs the batch check (``batch_fit``) over every candidate and ``plan_on_node``
where it cannot decide. Its cost grows with the candidates: at 2,000 nodes kube-scheduler
sends 680 with every pod. The replicas of a workload ask the same, and between two of them
the cluster changes on a few nodes (a bind reserves on one, a report refreshes one), so
``FitTables`` keeps, per pod shape seen twice, the answer for every node of the topology
and brings it up to date from the ledger's journal (``ChangeJournal``): only the nodes
recorded since are checked again. A table also knows the first moment one of its answers
would change with time alone (a heartbeat past the report TTL, an observation too old to
count) and starts over then, so a table's answer is always the one ``evaluate`` would give.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from bandwidth_accounting.batch import SlotMap, batch_fit
from bandwidth_accounting.fit import Cause, Plan, Refusal, plan_on_node
from bandwidth_accounting.journal import Changes, Mark
from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.requirements import PodRequirements
from bandwidth_accounting.settings import FitSettings
from scheduler_extender.scoring import headroom_left
from topology.graph import Topology

CACHED_SHAPES = 32
"""Pod shapes (requirements and priority) whose table over every node is kept."""
SEEN_SHAPES = 1024
"""Shapes remembered as seen once: the next pod of such a shape gets a table."""
EXPIRY_MARGIN = 1e-3
"""Seconds before a time boundary that a table stops answering: timestamps are floats
here and datetimes in ``plan_on_node``."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One pod against a list of candidates."""

    fits: np.ndarray
    headroom: np.ndarray
    """Smallest share of usable capacity left after placing the pod; NaN: no budget
    involved, or the pod does not fit there."""
    refusals: dict[str, list[Refusal]]
    """Why each candidate that does not fit cannot go there (``plan_on_node``)."""
    rows: np.ndarray
    """Topology row of each candidate (-1: unknown node)."""

    @property
    def all_fit(self) -> bool:
        """Every candidate fits: each one that does not has its refusals."""
        return not self.refusals


@dataclass(frozen=True, slots=True)
class Shape:
    """What a pod asks, as far as the fit check reads it."""

    requirements: PodRequirements
    priority: int
    """Decides only whether a refusal is curable by preemption."""


@dataclass(frozen=True, slots=True)
class Cluster:
    """The cluster as one evaluation reads it."""

    topology: Topology
    ledger: Ledger
    slots: SlotMap
    settings: FitSettings


def evaluate(shape: Shape, names: list[str], rows: np.ndarray, cluster: Cluster, now: datetime) -> Evaluation:
    """``shape`` against every candidate: ``batch_fit`` for all, ``plan_on_node`` where it
    cannot decide."""
    batch = batch_fit(shape.requirements, rows, cluster.topology, cluster.ledger, cluster.slots, now, cluster.settings)
    fits, headroom = batch.fits.copy(), batch.headroom.copy()
    refusals = _settle(shape, names, np.flatnonzero(~fits).tolist(), cluster, now, fits, headroom)
    return Evaluation(fits=fits, headroom=headroom, refusals=refusals, rows=rows)


def _settle(
    shape: Shape, names: list[str], indices: list[int], cluster: Cluster, now: datetime, fits: np.ndarray,
    headroom: np.ndarray,
) -> dict[str, list[Refusal]]:
    """``plan_on_node`` for the candidates at ``indices``: where it places the pod, ``fits``
    and ``headroom`` are set in place; the others' refusals are returned."""
    refusals = {}
    ledger, since = cluster.ledger, cluster.settings.observed_since(now)
    for index in indices:
        name = names[index]
        outcome = plan_on_node(
            shape.requirements, name, cluster.topology, ledger, now, cluster.settings, shape.priority
        )
        if isinstance(outcome, Plan):
            fits[index] = True
            headroom[index] = headroom_left(outcome, ledger, since)
        else:
            refusals[name] = outcome
    return refusals


@dataclass(slots=True)
class FitTable:
    """``evaluate`` of one shape over every row of a topology, as of ``mark``."""

    topology: Topology
    fits: np.ndarray
    headroom: np.ndarray
    refusals: dict[str, list[Refusal]]
    mark: Mark
    built: float
    expires: float
    """Seconds since the epoch, minus ``EXPIRY_MARGIN``, when an answer changes with time."""

    def current(self, cluster: Cluster, now: float) -> bool:
        """Same topology, and no time boundary crossed (what the ledger changed, its journal says;
        new capacities reset the journal)."""
        return self.topology is cluster.topology and self.built <= now < self.expires


class FitTables:
    """``evaluate`` answered from a table per pod shape (see the module docstring).

    A shape seen for the first time is evaluated over its candidates only: a pod with
    asks of its own (a static address, say) never pays for a table over every node.
    Safe to share between threads; evaluations run one at a time.
    """

    def __init__(self, size: int = CACHED_SHAPES) -> None:
        self._size = size
        self._tables: OrderedDict[Shape, FitTable] = OrderedDict()
        self._seen: OrderedDict[Shape, None] = OrderedDict()
        """Shapes evaluated once, without a table (``SEEN_SHAPES`` at most)."""
        self._lock = threading.Lock()

    def evaluate(self, shape: Shape, names: list[str], rows: np.ndarray, cluster: Cluster, now: datetime) -> Evaluation:
        with self._lock:
            table = self._table(shape, cluster, now)
            if table is None:
                return evaluate(shape, names, rows, cluster, now)
            fits = table.fits[rows] & (rows >= 0)  # row -1 (unknown) reads the last entry: masked
            if fits.all():  # the common case: no candidate to look at again
                return Evaluation(fits=fits, headroom=table.headroom[rows], refusals={}, rows=rows)
            headroom = np.where(fits, table.headroom[rows], np.nan)
            refusals, again = {}, []
            for index in np.flatnonzero(~fits).tolist():
                refused = table.refusals.get(names[index]) if rows[index] >= 0 else None
                if refused is None or any(refusal.cause is Cause.STALE_REPORT for refusal in refused):
                    again.append(index)  # no row in the topology, or a stale report: its message gives the age now
                else:
                    refusals[names[index]] = refused
            refusals.update(_settle(shape, names, again, cluster, now, fits, headroom))
            return Evaluation(fits=fits, headroom=headroom, refusals=refusals, rows=rows)

    def _table(self, shape: Shape, cluster: Cluster, now: datetime) -> FitTable | None:
        """The shape's table brought up to date or built anew; None the first time the shape is seen."""
        table = self._tables.get(shape)
        if table is None and shape not in self._seen:
            self._seen[shape] = None
            if len(self._seen) > SEEN_SHAPES:
                self._seen.popitem(last=False)
            return None
        self._seen.pop(shape, None)
        at = now.timestamp()
        changes = cluster.ledger.changes.since(table.mark) if table is not None and table.current(cluster, at) else None
        if table is None or changes is None:
            table = _build(shape, cluster, now)
        else:
            _catch_up(table, shape, changes, cluster, now)
        self._tables[shape] = table
        self._tables.move_to_end(shape)
        if len(self._tables) > self._size:
            self._tables.popitem(last=False)
        return table


def _catch_up(table: FitTable, shape: Shape, changes: Changes, cluster: Cluster, now: datetime) -> None:
    """Check again, node by node, the nodes recorded since the table's mark: a few nodes cost
    less through ``plan_on_node`` than through the batch check's fixed dozens of array operations."""
    names, position = cluster.topology.rows.names, cluster.topology.rows.position
    changed = sorted(position[node] for node in changes.nodes if node in position)
    table.fits[changed], table.headroom[changed] = False, np.nan
    for row in changed:
        table.refusals.pop(names[row], None)
    table.refusals.update(_settle(shape, names, changed, cluster, now, table.fits, table.headroom))
    if changes.timed:
        table.expires = _expiry(cluster, now.timestamp())
    table.mark = changes.mark


def _build(shape: Shape, cluster: Cluster, now: datetime) -> FitTable:
    mark = cluster.ledger.changes.mark  # before reading: a change during the build is read again
    rows = cluster.topology.rows
    everything = evaluate(shape, rows.names, np.arange(len(rows.names), dtype=np.int64), cluster, now)
    at = now.timestamp()
    return FitTable(
        topology=cluster.topology,
        fits=everything.fits,
        headroom=everything.headroom,
        refusals=everything.refusals,
        mark=mark,
        built=at,
        expires=_expiry(cluster, at),
    )


def _expiry(cluster: Cluster, now: float) -> float:
    """The first moment after ``now`` a heartbeat passes the report TTL or an observation
    stops counting, anywhere (less ``EXPIRY_MARGIN``): until then time changes no answer."""
    settings, soonest = cluster.settings, math.inf
    bounds = []
    if settings.report_ttl is not None:
        bounds.append(cluster.topology.rows.heartbeat + settings.report_ttl.total_seconds())
    if settings.observed_max_age is not None:
        bounds.append(cluster.ledger.observed_rows()[1] + settings.observed_max_age.total_seconds())
    for bound in bounds:
        soonest = min(soonest, float(bound[bound >= now].min(initial=math.inf)))  # NaN: never, no bound
    return soonest - EXPIRY_MARGIN
