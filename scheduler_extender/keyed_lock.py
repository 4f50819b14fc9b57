"""One lock per key: work for the same key runs one call at a time, other keys go on.

kube-scheduler may bind a pod again while the extender still runs the first bind (its
call timed out, or the reply was lost). The first bind reserves, then writes the Binding;
a retry that reused the reservation and wrote its Binding in between would make the API
server refuse the first's, and the first would release the reservation from under the
bound pod. So binds of one pod run one after the other, Binding included, while binds of
other pods do not wait. An entry lives only while a call holds or waits for it: the map
is as small as the work in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

Lock = AbstractContextManager[Any]


class KeyedLock:
    def __init__(self, new_lock: Callable[[], Lock] = threading.Lock) -> None:
        self._new_lock = new_lock
        """Makes each key's lock (a test passes one that reports who waits)."""
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[Lock, int]] = {}
        """key → its lock and how many calls hold or wait for it."""

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        """Hold ``key``'s lock for the block, waiting for any other holder of it."""
        with self._guard:
            lock, users = self._locks.get(key) or (self._new_lock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        """Keys held or waited for now."""
        with self._guard:
            return len(self._locks)
