"""A cycle's prioritize answer, prepared while kube-scheduler reads the filter's.

kube-scheduler calls prioritize right after filter, with the same Pod object and the
nodes that passed, in the order the extender answered them (``findNodesThatPassExtenders``
keeps it). When every candidate passed, the two ``ExtenderArgs`` it sends are the same
objects, and Go's encoding of them is the same bytes. So the extender computes the scores
as soon as the filter's answer is out, while kube-scheduler reads it and runs its own
score plugins, and the prioritize whose body is those bytes takes them: no second parse
of the body, no scoring on the scheduling cycle's path.

The scores are those the prioritize would compute from its filter's evaluation
(``scheduler.Cycle``), a few milliseconds sooner. Any other prioritize (other bytes, a
new topology generation in between, an answer not ready yet) is answered as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Answer:
    request: bytes
    generation: int
    body: bytes


class PreparedPrioritize:
    """One prepared answer at a time: kube-scheduler runs one scheduling cycle at a time.
    Used on the event loop alone, by the filter and prioritize verbs.

    Answers are prepared only while prioritize calls come (one has come since the last
    preparation): kube-scheduler calls an extender configured without ``prioritizeVerb``,
    or a cycle left with one node, for filter alone."""

    def __init__(self) -> None:
        self._answer: _Answer | None = None
        self._asked = True

    def wanted(self) -> bool:
        """Whether a prioritize came since the last answer was prepared."""
        return self._asked

    def drop(self) -> None:
        """A filter starts a new cycle: what was prepared for the last one goes."""
        self._answer = None

    def prepare(self, request: bytes, generation: int, answer: Callable[[], bytes]) -> None:
        """Keep ``answer()`` for the prioritize whose body is ``request``; ``generation`` is
        the topology's when the answer is computed."""
        self._asked = False
        self._answer = None  # an answer that fails is no answer
        self._answer = _Answer(request, generation, answer())

    def take(self, request: bytes, generation: int) -> bytes | None:
        """The answer prepared for exactly this body under the same topology, once; else None."""
        self._asked = True
        answer, self._answer = self._answer, None
        if answer is None or answer.generation != generation or answer.request != request:
            return None
        return answer.body
