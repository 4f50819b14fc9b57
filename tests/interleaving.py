"""Forcing one interleaving of threads, deterministically, for tests of check-then-act code.

The GIL rarely switches threads between a check and the update it guards, so racing
threads and hoping proves nothing: a test must put them there. ``Schedule`` does it
with two seams the code under test already has or that a test patches in:

- ``point(name)``, called from a hook placed between the check and the act, parks the
  thread the test told to stop there until the test releases it;
- ``lock()`` is a re-entrant lock that reports a thread that has to wait for it.

A test stops thread A between its check and its act, then starts thread B and asks
what B did next: ``blocked`` (on the lock: the code serialises) or ``paused``/``done``
(it went through: nothing serialises). No sleeps, no timing: the same events in the
same order on every run, on a loaded machine too. The timeout below only turns a bug
that would hang the test into a failure.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

HANG_S = 30.0
"""How long a test waits for an event before it calls the code under test hung."""


class Schedule:
    def __init__(self) -> None:
        self._events: queue.Queue[tuple[str, str]] = queue.Queue()
        self._stops: dict[tuple[str, str], threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self.results: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}

    # -- in the threads under test ------------------------------------------------------

    def point(self, name: str, who: str | None = None) -> None:
        """A seam: park here if the test stopped this thread (``who``, else its name) here."""
        who = who or threading.current_thread().name
        release = self._stops.get((who, name))
        if release is not None:
            self._events.put((who, "paused"))
            if not release.wait(HANG_S):
                raise TimeoutError(f"{who} was never released from {name}")

    def blocked(self, who: str | None = None) -> None:
        """Report that ``who`` (else the calling thread) has to wait for a lock."""
        self._events.put((who or threading.current_thread().name, "blocked"))

    def lock(self) -> ObservedLock:
        return ObservedLock(self)

    # -- in the test ----------------------------------------------------------------------

    def stop(self, who: str, at: str) -> None:
        """Make ``who`` park at point ``at`` until ``release(who)``."""
        self._stops[(who, at)] = threading.Event()

    def release(self, who: str, at: str | None = None) -> None:
        """Let ``who`` go on from point ``at`` (else from every point it was stopped at)."""
        for (name, point), event in self._stops.items():
            if name == who and at in (None, point):
                event.set()

    def start(self, who: str, call: Callable[..., Any], *args: Any) -> None:
        """Run ``call(*args)`` in a thread named ``who``; its result or error is kept."""

        def run() -> None:
            try:
                self.results[who] = call(*args)
            except BaseException as error:  # noqa: BLE001 - kept for the test to assert on
                self.errors[who] = error
            finally:
                self._events.put((who, "done"))

        thread = threading.Thread(target=run, name=who, daemon=True)
        self._threads[who] = thread
        thread.start()

    def next_event(self, who: str) -> str:
        """What ``who`` did next: ``paused``, ``blocked`` or ``done`` (others' events are skipped)."""
        while True:
            name, event = self._events.get(timeout=HANG_S)
            if name == who:
                return event

    def reach(self, who: str, event: str = "paused") -> None:
        """Wait for ``who`` to report ``event``, skipping its other events (a thread the
        test does not drive may have to wait for a lock on its way)."""
        while (seen := self.next_event(who)) != event:
            assert seen != "done", f"{who} finished instead of reporting {event}"

    def any_event(self) -> tuple[str, str]:
        """The next (thread, event), for threads the test did not start and name itself."""
        return self._events.get(timeout=HANG_S)

    def finish(self) -> None:
        """Release everybody and wait for every thread."""
        for event in self._stops.values():
            event.set()
        for thread in self._threads.values():
            thread.join(HANG_S)
            assert not thread.is_alive(), f"{thread.name} hung"


class ObservedLock:
    """A re-entrant lock like ``threading.RLock`` that tells its schedule when a thread waits."""

    def __init__(self, schedule: Schedule) -> None:
        self._schedule = schedule
        self._lock = threading.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        self._schedule.blocked()
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()
