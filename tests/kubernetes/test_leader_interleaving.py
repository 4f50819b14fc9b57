"""A rebuild that finishes as its term ends must not make the next term ready.

``_prepare_term`` checks "is my term still the current one?" and then marks the
replica ready, under the elector's lock. If a step-down could slip between that check
and the mark, the stale mark would survive into the next term, and the replica would
answer ``/bind`` as leader before rebuilding its ledger from the API (the very thing
``prepare`` is for). The test stops the old rebuild exactly there, with a schedule, so
it fails on every run when the lock is gone. The API is not needed: the Lease is
always granted.
"""

from __future__ import annotations

import itertools
import threading

from kubernetes import client

from scheduler_extender.leader import LeaderElector
from scheduler_extender.settings import LeaseSettings
from tests.interleaving import HANG_S, Schedule


def seamed_elector(schedule: Schedule) -> LeaderElector:
    """An elector whose rebuild thread (``leader-prepare``) has two seams: ``rebuilding``,
    inside ``prepare``, and ``checked``, after it has read ``_leading``, the last read of
    its "still my term?" check. The Lease is always granted; from the second attempt on,
    the campaign loop (``leader-election``) passes the seam ``renewing`` first, outside
    the lock."""

    class Seamed(LeaderElector):
        @property
        def _leading(self) -> bool:
            value = self.__dict__["_leading"]
            if threading.current_thread().name == "leader-prepare":
                schedule.point("checked")
            return value

        @_leading.setter
        def _leading(self, value: bool) -> None:
            self.__dict__["_leading"] = value

    def prepare() -> None:
        schedule.point("rebuilding")

    settings = LeaseSettings(identity="replica-a", lease_duration=60, renew_deadline=50, retry_period=0.05)
    elector = Seamed(client.ApiClient(), settings, prepare=prepare)
    elector._lock = schedule.lock()
    attempts = itertools.count()

    def grant() -> bool:
        if next(attempts):
            schedule.point("renewing")
        return True

    elector._try_acquire_or_renew = grant
    return elector


def rebuild_thread() -> threading.Thread:
    (thread,) = [t for t in threading.enumerate() if t.name == "leader-prepare"]
    return thread


def step_down(elector: LeaderElector) -> None:
    """What the campaign loop does when the Lease is lost."""
    with elector._lock:
        elector._step_down_locked()


def test_a_rebuild_finishing_as_its_term_ends_does_not_make_the_next_term_ready():
    schedule = Schedule()
    elector = seamed_elector(schedule)
    schedule.stop("leader-prepare", at="rebuilding")
    schedule.stop("leader-prepare", at="checked")
    schedule.stop("leader-election", at="renewing")
    elector.start()  # term 1: the Lease is granted, its rebuild starts
    schedule.reach("leader-prepare")
    old_rebuild = rebuild_thread()
    schedule.release("leader-prepare", at="rebuilding")
    schedule.reach("leader-prepare")  # rebuilt; checked that term 1 is still on
    schedule.reach("leader-election")  # the loop's next attempt waits for the test

    schedule.start("step-down", step_down, elector)  # term 1 ends: the Lease was lost
    step_down_did = schedule.next_event("step-down")
    schedule.release("leader-prepare", at="checked")
    old_rebuild.join(HANG_S)
    if step_down_did != "done":
        schedule.reach("step-down", "done")

    schedule.stop("leader-prepare", at="rebuilding")
    schedule.release("leader-election")  # the next term: granted again, its rebuild held
    schedule.reach("leader-prepare")
    try:
        assert elector._leading
        assert not elector.is_leader(), "ready before this term's rebuild"
        assert step_down_did == "blocked"
    finally:
        elector.stop(release=False)
        schedule.finish()
