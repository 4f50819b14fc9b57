"""The one backoff: the waits the reporter and the extender's source had before it."""

from __future__ import annotations

import random

import pytest

from kubernetes_access import Backoff


def bounds(initial: float, maximum: float, attempts: int) -> list[float]:
    bound, found = 0.0, []
    for _ in range(attempts):
        bound = min(maximum, bound * 2 if bound else initial)
        found.append(bound)
    return found


def test_waits_double_up_to_the_cap_with_half_of_each_random() -> None:
    backoff = Backoff(initial=0.5, maximum=6.0, rng=random.Random(3))
    waits = [backoff.next_delay() for _ in range(8)]
    for wait, bound in zip(waits, bounds(0.5, 6.0, 8), strict=True):
        assert bound / 2 <= wait <= bound
    assert bounds(0.5, 6.0, 8) == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0, 6.0, 6.0]
    assert len(set(waits[4:])) == 4, "at the cap the waits still differ (jitter)"


def test_the_same_waits_as_the_reporters_backoff_drew() -> None:
    """The reporter drew ``bound/2 + uniform(0, bound/2)``; the source ``uniform(bound/2,
    bound)``: the same draw from one random number, kept here."""
    rng = random.Random(11)
    before = [b / 2 + rng.uniform(0, b / 2) for b in bounds(0.2, 10.0, 12)]
    backoff = Backoff(initial=0.2, maximum=10.0, rng=random.Random(11))
    assert [backoff.next_delay() for _ in range(12)] == pytest.approx(before, rel=1e-12)


def test_reset_starts_again_from_initial() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, rng=random.Random(5))
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_a_cap_below_initial_caps_the_first_wait() -> None:
    """The reporter's ``maxBackoff`` may be set below its first wait of 0.5 s."""
    backoff = Backoff(initial=0.5, maximum=0.2, rng=random.Random(1))
    assert all(0.1 <= backoff.next_delay() <= 0.2 for _ in range(4))


@pytest.mark.parametrize(("field", "value"), [("initial", 0.0), ("maximum", -1.0)])
def test_a_wait_that_is_not_positive_is_refused_by_name(field: str, value: float) -> None:
    settings = {"initial": 0.5, "maximum": 10.0, field: value}
    with pytest.raises(ValueError, match=f"Backoff {field}: must be above 0 seconds, got {value}"):
        Backoff(**settings)
