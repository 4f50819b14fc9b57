"""Memory the extender keeps for later, bounded in bytes as well as in entries.

An entry count alone does not bound memory when a caller chooses the size of each
entry: 200 decisions that each quote a refusal for 5,000 nodes, or 4,096 remembered
pods with 1 MB of annotations each (4 GB, twice the Deployment's memory limit;
the extender no longer keeps pods from filter bodies at all). The log here takes a
``size`` function that estimates an entry's bytes (the strings it holds, which are
what a caller controls) and drops the oldest entries until both bounds hold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")

ENTRY_OVERHEAD = 256
"""Bytes counted per entry beyond its strings: the objects that hold them."""


def text_bytes(*mappings: Mapping[str, str]) -> int:
    """What the strings of ``mappings`` (labels, annotations, reasons per node) occupy, roughly."""
    return sum(len(key) + len(value) for mapping in mappings for key, value in mapping.items())


class BoundedLog(Generic[V]):
    """Append-only, newest last; the oldest entries go beyond either bound."""

    def __init__(self, max_entries: int, max_bytes: int, size: Callable[[V], int]) -> None:
        self.max_entries, self.max_bytes, self._size = max_entries, max_bytes, size
        self._entries: deque[tuple[V, int]] = deque()
        self.bytes = 0

    def append(self, value: V) -> None:
        size = self._size(value) + ENTRY_OVERHEAD
        self._entries.append((value, size))
        self.bytes += size
        while self._entries and (len(self._entries) > self.max_entries or self.bytes > self.max_bytes):
            self.bytes -= self._entries.popleft()[1]

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __iter__(self) -> Iterator[V]:
        return (value for value, _ in list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
