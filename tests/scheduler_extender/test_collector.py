"""While it serves, the extender's process sets Python's cyclic collector for its heap
(``app.collector_tuned``): the cluster picture loaded at start frozen out of the
collector's generations, young collections ``YOUNG_COLLECTION_ALLOCATIONS`` apart. When
it stops, Python's own thresholds are back: tests and the CLI share the process."""

from __future__ import annotations

import functools
import gc
import http.client
import json

import httpx

from contract import annotations as ann
from scheduler_extender.app import YOUNG_COLLECTION_ALLOCATIONS, create_app
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.server import BackgroundServer, ServeOptions
from tests.conftest import make_pod


def test_serving_sets_the_collector_and_stopping_gives_it_back(extender: Extender) -> None:
    gc.unfreeze()
    python_thresholds = gc.get_threshold()
    assert python_thresholds[0] != YOUNG_COLLECTION_ALLOCATIONS
    with BackgroundServer(create_app(extender, start_source=False), ServeOptions(port=0)) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert gc.get_threshold() == (YOUNG_COLLECTION_ALLOCATIONS, *python_thresholds[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == python_thresholds


def test_objects_kept_for_a_moment_meet_no_young_collection_while_serving(extender: Extender) -> None:
    """What the setting is for: the thousands of objects a pod's requests keep alive for a
    moment are gone before a collection would promote them."""
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    def keep_for_a_moment() -> int:
        gc.collect()
        collections.clear()
        kept = [[index] for index in range(YOUNG_COLLECTION_ALLOCATIONS // 2)]
        return len(kept)

    gc.callbacks.append(count)
    try:
        keep_for_a_moment()
        assert collections, "Python's own threshold collects among them"
        with BackgroundServer(create_app(extender, start_source=False), ServeOptions(port=0)):
            keep_for_a_moment()
            assert not collections
    finally:
        gc.callbacks.remove(count)


def test_the_verbs_leave_no_reference_cycles(extender: Extender, source: FileClusterSource) -> None:
    """Garbage in reference cycles waits for a collection, and with young collections
    ``YOUNG_COLLECTION_ALLOCATIONS`` apart that is thousands of requests: a cycle holding
    a request's body would keep megabytes. So each verb, served over a real socket, must
    leave every object it made to reference counting. A failed bind is left out: its
    traceback is a cycle of frames, Python's own, and a few kilobytes."""
    asks = {ann.EGRESS_BANDWIDTH: "10M", ann.NETWORKS: json.dumps([{"name": "storage", "egress": "100M"}])}
    pod = make_pod("asking", asks).model_dump(mode="json", by_alias=True, exclude_none=True)
    candidates = ["node-a-1", "node-b-1", "node-c-1"]
    requests = {
        "filter": ("/filter", {"Pod": pod, "Nodes": None, "NodeNames": candidates}),
        "prioritize": ("/prioritize", {"Pod": pod, "Nodes": None, "NodeNames": candidates}),
        "filter, unreadable annotation": (
            "/filter", {"Pod": make_pod("unreadable", {ann.NETWORKS: "[" * 10_000}).model_dump(mode="json"),
                        "Nodes": None, "NodeNames": candidates}),
        "preempt": ("/preempt", {"Pod": pod, "NodeNameToMetaVictims": {"node-a-1": {"Pods": [], "NumPDBViolations": 0}}}),
        "body that is not the verb's": ("/filter", {"Pod": {"metadata": 5}, "NodeNames": "node-a-1"}),
    }
    pods = [source.apply(make_pod(f"bound-{index}", asks)) for index in range(13)]
    with BackgroundServer(create_app(extender, start_source=False), ServeOptions(port=0)) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

        def post(path: str, body: dict) -> int:
            connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            reply = connection.getresponse()
            reply.read()
            return reply.status

        binds = iter(pods)

        def bind() -> int:
            bound = next(binds)
            return post("/bind", {"PodName": bound.metadata.name, "PodNamespace": "default",
                                  "PodUID": bound.metadata.uid, "Node": "node-a-1"})

        calls = {name: functools.partial(post, path, body) for name, (path, body) in requests.items()}
        calls["bind"] = bind
        for name, call in calls.items():
            call()  # first calls fill caches that live on
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                statuses = {call() for _ in range(10)}
                gc.collect()
                left = [type(garbage).__name__ for garbage in gc.garbage]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
            assert statuses <= {200, 422}, (name, statuses)
            assert not left, f"{name} left {len(left)} objects in reference cycles: {sorted(set(left))}"
        connection.close()
    assert all(extender.state.ledger.holding(bound.metadata.uid) for bound in pods[:11])
