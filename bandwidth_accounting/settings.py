"""The placement settings an operator sets: how much of each link netsched promises, and
how old a node's reports may be.

The one place their defaults are written: the extender, the simulator and the command
line's flags (``netsched serve``, ``netsched simulate``) read them from these dataclasses.
Standard library only, so that building the command line's parser loads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class CapacitySettings:
    headroom: float = 0.10
    """Share of each link's speed kept free; a node's ``netsched.io/headroom`` overrides it."""
    observed_window: timedelta = timedelta(seconds=60)
    """A link's observed load is the highest rate reported within this window. Six
    reporter intervals; chosen with ``netsched simulate`` (docs/placement.md,
    noisy-neighbours)."""


@dataclass(frozen=True, slots=True)
class FitSettings:
    report_ttl: timedelta | None = timedelta(seconds=60)
    """A node whose NodeNetwork heartbeat is older fails pods that need bandwidth."""
    observed_max_age: timedelta | None = timedelta(seconds=30)
    """Observed load counts when observed at most this long ago (None: never, reservations
    alone bound what is free). An older observation neither blocks a pod (the fit ignores
    it) nor invites one (the node gets no bandwidth score). Three reporter intervals: one
    late report does not yet make a link's load unknown."""

    def observed_since(self, now: datetime) -> float | None:
        """Oldest observation time (seconds since the epoch) that still counts at ``now``."""
        if self.observed_max_age is None:
            return None
        return (now - self.observed_max_age).timestamp()
