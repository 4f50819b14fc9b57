"""KeyedLock: calls for one key wait for each other, calls for other keys do not."""

from __future__ import annotations

import pytest

from scheduler_extender.keyed_lock import KeyedLock
from tests.interleaving import Schedule


def test_a_key_held_makes_the_same_key_wait_and_lets_another_through():
    schedule = Schedule()
    locks = KeyedLock(schedule.lock)

    def take(key: str) -> str:
        with locks.held(key):
            schedule.point("holding")
        return key

    schedule.stop("pod-a", at="holding")
    schedule.start("pod-a", take, "a")
    assert schedule.next_event("pod-a") == "paused"
    schedule.start("pod-b", take, "b")
    assert schedule.next_event("pod-b") == "done"  # another key: no wait
    schedule.start("pod-a-again", take, "a")
    assert schedule.next_event("pod-a-again") == "blocked"
    assert len(locks) == 1
    schedule.finish()
    assert schedule.results == {"pod-a": "a", "pod-b": "b", "pod-a-again": "a"}
    assert len(locks) == 0  # nothing kept once no call holds or waits for a key


def test_a_key_is_freed_when_its_holder_raises():
    locks = KeyedLock()
    with pytest.raises(ValueError), locks.held("a"):
        raise ValueError("bind failed")
    assert len(locks) == 0
    with locks.held("a"):
        assert len(locks) == 1
