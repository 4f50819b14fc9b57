"""One object for each distinct value held many times over.

The extender holds every pod of the cluster and a reservation for each bound one, and
most of them repeat a few values: the pods on a node have equal specs as netsched reads
them, a workload's replicas ask equal rates. Each object held is memory and work for
every full collection of the cyclic collector, which stops the extender while it runs
(``benchmarks/extender_memory.py``): equal values are held once.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

DISTINCT_VALUES = 65536
"""Distinct values an ``Interning`` keeps before it starts over."""


class Interning(Generic[T]):
    """Equal values, one object. The values must be immutable (frozen models): every
    holder of one shares it. Past ``size`` distinct values the table starts over: the
    objects handed out stay what they are, and later equal values are not shared with
    them, so values that come and go (nodes' names) cannot grow it without bound."""

    def __init__(self, size: int = DISTINCT_VALUES) -> None:
        self._size = size
        self._values: dict[T, T] = {}

    def __len__(self) -> int:
        return len(self._values)

    def of(self, value: T) -> T:
        """The object held for values equal to ``value``: ``value`` itself, the first time."""
        values = self._values
        if len(values) >= self._size and value not in values:
            values.clear()
        return values.setdefault(value, value)
