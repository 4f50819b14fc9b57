"""The decisions log holds to a byte budget as well as a count; filter bodies are not kept."""

from __future__ import annotations

from contract import annotations as ann
from scheduler_extender.bounded import BoundedLog, text_bytes
from scheduler_extender.scheduler import RECENT_DECISIONS_BYTES
from tests.conftest import make_pod


def test_the_log_drops_the_oldest_beyond_either_bound():
    log: BoundedLog[dict[str, str]] = BoundedLog(max_entries=3, max_bytes=9_500, size=text_bytes)
    for index in range(5):
        log.append({"node": str(index)})
    assert [entry["node"] for entry in log] == ["2", "3", "4"]
    log.append({"node": "x" * 9_000})
    assert [len(entry["node"]) for entry in log] == [9_000]


def test_filters_of_huge_pods_keep_the_scheduler_within_its_budget(extender):
    """The decisions log holds to its bytes; no pod from a filter body is kept (bind reads
    the pod from the watch or the API)."""
    scheduler = extender.scheduler
    for index in range(100):
        pod = make_pod(f"big-{index}", {ann.NETWORKS: "x" * 1_000_000})
        scheduler.filter(pod, ["node-a-1"])
    assert scheduler.decisions.bytes <= RECENT_DECISIONS_BYTES
    assert len(scheduler.decisions) == 100
    assert not [value for value in vars(scheduler).values() if isinstance(value, dict) and len(value) >= 100]
