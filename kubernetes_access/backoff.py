"""How long to wait before the next attempt while the API server is away or failing."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with a cap and jitter; ``reset`` after a success.

    The n-th wait after a success is drawn between half and all of
    ``min(maximum, initial * 2**(n-1))``: half fixed, so a failing server is not hammered,
    half random, so the many clients that lost the API together (every node's reporter,
    the extender's watches) do not come back in step. Each user keeps its own
    instance (one per watch, one per reporter): its state is its own run of failures.
    """

    initial: float
    """The first wait's upper bound, in seconds."""
    maximum: float
    """The cap on any wait, in seconds (a cap below ``initial`` caps the first wait too)."""
    rng: random.Random = field(default_factory=random.Random)
    _next: float = 0.0

    def __post_init__(self) -> None:
        for name in ("initial", "maximum"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"Backoff {name}: must be above 0 seconds, got {value!r}")

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; each call doubles the bound, up to the cap."""
        self._next = min(self.maximum, self._next * 2 if self._next else self.initial)
        return self.rng.uniform(self._next / 2, self._next)

    def reset(self) -> None:
        """The API answered: the next failure starts again from ``initial``."""
        self._next = 0.0
