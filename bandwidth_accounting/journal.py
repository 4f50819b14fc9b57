"""Which nodes' budgets changed, in order: what lets a cache of fit answers catch up.

A bind changes the reservations of one node; a report changes one node's heartbeat and
observed load. A cache of fit answers over every node (``scheduler_extender.evaluation``)
remembers the ``Mark`` it is current to and checks again only the nodes recorded since,
instead of the thousands that did not change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

KEPT_CHANGES = 4096
"""Entries kept; a mark older than the oldest kept one cannot catch up (its cache starts over)."""


@dataclass(frozen=True, slots=True)
class Mark:
    """A point in the journal: its epoch (bumped by ``reset``) and the position after the
    last entry read."""

    epoch: int
    position: int


@dataclass(frozen=True, slots=True)
class Changes:
    nodes: frozenset[str]
    """The nodes recorded since the mark."""
    timed: bool
    """Whether one of them was a report (heartbeat or observed load): a change to when
    answers go stale, not only to what they are."""
    mark: Mark
    """Where these changes end."""


class ChangeJournal:
    """Node names in the order their budgets, reservations, observed load or reports changed.

    Writers record a node after the change is in place, so a reader that has read an
    entry sees the change when it checks the node. Safe to share between threads.
    """

    def __init__(self, kept: int = KEPT_CHANGES) -> None:
        self._lock = threading.Lock()
        self._kept = kept
        self._entries: list[str] = []
        self._first = 0
        """Position of ``_entries[0]``."""
        self._epoch = 0
        self._last_timed = -1
        """Position of the last timed entry."""

    @property
    def mark(self) -> Mark:
        with self._lock:
            return Mark(self._epoch, self._first + len(self._entries))

    def record(self, node: str, *, timed: bool = False) -> None:
        with self._lock:
            if timed:
                self._last_timed = self._first + len(self._entries)
            self._entries.append(node)
            if len(self._entries) > 2 * self._kept:
                dropped = len(self._entries) - self._kept
                del self._entries[:dropped]
                self._first += dropped

    def reset(self) -> None:
        """Everything changed (capacities replaced, reservations rebuilt): no mark catches up."""
        with self._lock:
            self._epoch += 1
            self._first += len(self._entries)
            self._entries.clear()

    def since(self, mark: Mark) -> Changes | None:
        """What changed after ``mark``; None when the journal no longer holds it."""
        with self._lock:
            if mark.epoch != self._epoch or mark.position < self._first:
                return None
            end = self._first + len(self._entries)
            return Changes(
                nodes=frozenset(self._entries[mark.position - self._first:]),
                timed=self._last_timed >= mark.position,
                mark=Mark(self._epoch, end),
            )
