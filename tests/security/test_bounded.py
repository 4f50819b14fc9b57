"""The filter's pod cache and the decisions log hold to a byte budget as well as a count."""

from __future__ import annotations

from bandwidth_accounting import annotations as ann
from scheduler_extender.bounded import ENTRY_OVERHEAD, BoundedLog, BoundedLRU, text_bytes
from scheduler_extender.scheduler import RECENT_PODS_BYTES
from tests.conftest import make_pod


def test_the_lru_drops_the_oldest_beyond_its_bytes_and_keeps_what_was_stored_last():
    cache: BoundedLRU[str, str] = BoundedLRU(max_entries=100, max_bytes=3 * (1000 + ENTRY_OVERHEAD), size=len)
    for key in "abcde":
        cache.put(key, key * 1000)
    assert len(cache) == 3 and cache.bytes <= cache.max_bytes
    assert [cache.get(key) is not None for key in "abcde"] == [False, False, True, True, True]
    cache.put("c", "c")  # storing again makes it the newest and recounts its size
    cache.put("f", "f" * 1000)
    assert cache.get("c") == "c" and cache.get("d") is None


def test_one_entry_larger_than_the_budget_is_not_kept():
    cache: BoundedLRU[str, str] = BoundedLRU(max_entries=10, max_bytes=100, size=len)
    cache.put("huge", "x" * 1000)
    assert len(cache) == 0 and cache.bytes == 0


def test_the_log_drops_the_oldest_beyond_either_bound():
    log: BoundedLog[dict[str, str]] = BoundedLog(max_entries=3, max_bytes=9_500, size=text_bytes)
    for index in range(5):
        log.append({"node": str(index)})
    assert [entry["node"] for entry in log] == ["2", "3", "4"]
    log.append({"node": "x" * 9_000})
    assert [len(entry["node"]) for entry in log] == [9_000]


def test_filters_of_huge_pods_keep_the_scheduler_within_its_budget(extender):
    scheduler = extender.scheduler
    for index in range(100):
        pod = make_pod(f"big-{index}", {ann.NETWORKS: "x" * 1_000_000})
        scheduler.filter(pod, ["node-a-1"])
    assert scheduler._recent_pods.bytes <= RECENT_PODS_BYTES
    assert 0 < len(scheduler._recent_pods) < 100
    assert scheduler._recent_pods.get("uid-default-big-99") is not None, "the newest pod is kept for bind"
