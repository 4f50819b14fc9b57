"""Where a pod's peers run: per peer selector asked, the placed pods it matches, counted per node.

``netsched.io/peers`` scores each candidate by its hops to the pods its selector matches
in the pod's namespace. Matching every placed pod of the namespace on each prioritize
cost about 1.5 µs a pod, 15 ms a call with 10,000 of them. ``PeerCounts`` keeps, for the
selectors asked lately, the matching pods counted per node, and moves those counts with
each pod that is placed, changes its labels or leaves: a prioritize reads one count per
node that runs a peer.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping

from bandwidth_accounting.requirements import LabelSelector
from contract.objects import Pod

SELECTORS_KEPT = 64
"""Selectors per namespace whose counts are kept up to date; the least recently asked go."""


class PeerCounts:
    """Counts of placed pods per node for the peer selectors asked, by namespace.

    Not locked itself: ``ClusterState`` calls it under its own lock, where the placed pods
    it is told about change.
    """

    def __init__(self) -> None:
        self._counts: dict[str, OrderedDict[LabelSelector, Counter[str]]] = {}

    def clear(self) -> None:
        self._counts.clear()

    def counts(
        self, namespace: str, selector: LabelSelector, placed: Mapping[str, Pod], excluding: str
    ) -> dict[str, int]:
        """Pods matching ``selector`` per node, the pod of uid ``excluding`` left out;
        ``placed`` (the namespace's bound, running pods, by uid) is scanned only for a
        selector not kept yet. A copy: the caller reads it after letting go of its lock."""
        kept = self._counts.setdefault(namespace, OrderedDict())
        counts = kept.get(selector)
        if counts is None:
            counts = kept[selector] = Counter(
                pod.spec.node_name for pod in placed.values() if selector.matches(pod.metadata.labels)
            )
            if len(kept) > SELECTORS_KEPT:
                kept.popitem(last=False)
        else:
            kept.move_to_end(selector)
        found = dict(counts)
        own = placed.get(excluding)
        if own is not None and selector.matches(own.metadata.labels):
            _take_one(found, own.spec.node_name)
        return found

    def moved(self, namespace: str, before: Pod | None, after: Pod | None) -> None:
        """A pod of ``namespace`` was placed (``after``), changed (both) or left (``before``):
        ``before`` and ``after`` are its placed versions, None when it was or is not placed."""
        for selector, counts in self._counts.get(namespace, {}).items():
            if before is not None and selector.matches(before.metadata.labels):
                _take_one(counts, before.spec.node_name)
            if after is not None and selector.matches(after.metadata.labels):
                counts[after.spec.node_name] += 1


def _take_one(counts: dict[str, int], node: str) -> None:
    """One pod fewer on ``node``; a node with none left is no key (a copy lists only peers' nodes)."""
    counts[node] -= 1
    if not counts[node]:
        del counts[node]
