"""What one webhook request costs at the ASGI boundary: body reading, the verb and the reply.

The app is called in-process as uvicorn calls it (one ``http`` scope, the body in one
message), so the figures hold no socket, no HTTP parsing and no client. Three apps over
the same cluster and the same request bytes, called in turn for each pod in one run:

- ``fastapi-body``: a pass-through (all nodes, score 0) behind FastAPI's own body handling
  (``args: ExtenderArgs``: the standard library's JSON parser, then validation), as the
  verbs read their bodies before;
- ``read_body``: the same pass-through reading bodies as the extender does now
  (``wire.read_body``: orjson, then only the declared fields validated, called by the verb);
- ``read_body-dependency``: the same, ``read_body`` called through a FastAPI dependency,
  as the verbs called it before;
- ``read_body-dispatched``: the ``read_body`` pass-through with its verbs dispatched ahead
  of FastAPI's middleware and router, as the extender's are now (``webhook_app``);
- ``netsched``: the extender as served, scheduling included.

A second table times the prioritize reply's encoding alone: ``wire.host_priorities``
beside orjson over a dict per host (the baseline), the same names and scores 0..10,
called in turn.

The Pod is the one a real kube-scheduler v1.36 sent (full spec and status), with netsched
annotations; the candidates are the nodes of a sample cluster, by name (``nodeCacheCapable``).

    .venv/bin/python benchmarks/extender_bodies.py [--sizes 500 2000 5000] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import Depends, FastAPI, Request, Response

from benchmarks.extender_latency import bench_cluster, kube_scheduler_candidates
from scheduler_extender.app import body, create_app, json_response
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.webhook_app import WebhookApp
from scheduler_extender.wire import MAX_EXTENDER_PRIORITY, ExtenderArgs, host_priorities, read_body

FIXTURE = ROOT / "tests" / "fixtures" / "extender" / "filter-nodenames.json"


async def call(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}
    sent = False
    status, chunks = 0, []

    async def receive() -> dict:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def all_pass(names: list[str]) -> Response:
    """The pass-through filter reply: every candidate passes."""
    return json_response(orjson.dumps({"Nodes": None, "NodeNames": names, "FailedNodes": {},
                                       "FailedAndUnresolvableNodes": {}, "Error": ""}))


def all_zero(names: list[str]) -> Response:
    """The pass-through prioritize reply: every candidate scores 0."""
    return json_response(host_priorities(names, [0] * len(names)))


def dependency(model: type[ExtenderArgs]) -> Any:
    """``read_body`` as a FastAPI dependency, as the verbs read their bodies before."""

    async def read(request: Request) -> ExtenderArgs:
        return read_body(model, await request.body())

    return read


def apps(nodes: int) -> dict[str, Any]:
    fastapi_body = FastAPI()

    @fastapi_body.post("/filter")
    async def filter_nodes(args: ExtenderArgs) -> Response:
        return all_pass(args.node_names())

    @fastapi_body.post("/prioritize")
    async def prioritize(args: ExtenderArgs) -> Response:
        return all_zero(args.node_names())

    async def read_filter(request: Request) -> Response:
        args = await body(request, ExtenderArgs)
        return all_pass(args.node_names())

    async def read_prioritize(request: Request) -> Response:
        args = await body(request, ExtenderArgs)
        return all_zero(args.node_names())

    reader, dispatched = FastAPI(), WebhookApp()
    for verb, endpoint in (("/filter", read_filter), ("/prioritize", read_prioritize)):
        reader.post(verb)(endpoint)
        dispatched.per_pod_verb(verb)(endpoint)

    through_dependency = FastAPI()

    @through_dependency.post("/filter")
    async def dependency_filter(args: Annotated[ExtenderArgs, Depends(dependency(ExtenderArgs))]) -> Response:
        return all_pass(args.node_names())

    @through_dependency.post("/prioritize")
    async def dependency_prioritize(args: Annotated[ExtenderArgs, Depends(dependency(ExtenderArgs))]) -> Response:
        return all_zero(args.node_names())

    cluster = bench_cluster(nodes)
    extender = Extender.build(FileClusterSource(cluster))
    extender.source.start(extender.state)
    gc.collect()
    gc.freeze()  # what the served app's lifespan does once the cluster is loaded
    return {"fastapi-body": fastapi_body, "read_body": reader, "read_body-dependency": through_dependency,
            "read_body-dispatched": dispatched, "netsched": create_app(extender, start_source=False),
            "names": [node.name for node in cluster.nodes]}


async def measure(apps: dict[str, Any], bodies: list[bytes]) -> dict[tuple[str, str], list[float]]:
    """Filter then prioritize for each pod, as kube-scheduler calls them, each app in turn
    (so that the machine's load falls on all alike); seconds per app and verb."""
    seconds: dict[tuple[str, str], list[float]] = {}
    for index, request in enumerate(bodies):
        for kind, app in apps.items():
            for verb in ("/filter", "/prioritize"):
                begin = time.perf_counter()
                status, reply = await call(app, verb, request)
                if index >= WARM_UP:
                    seconds.setdefault((kind, verb), []).append(time.perf_counter() - begin)
                if status != 200:
                    raise RuntimeError(f"{kind} {verb}: {status} {reply[:200]!r}")
    return seconds


WARM_UP = 20
"""Requests not counted: the first calls fill caches and code paths."""
APPS = ("fastapi-body", "read_body", "read_body-dependency", "read_body-dispatched", "netsched")


def reply_encodings(names: list[str], calls: int) -> dict[str, float]:
    """Median µs of each prioritize reply encoding for ``names``, called in turn."""
    scores = [index % (MAX_EXTENDER_PRIORITY + 1) for index in range(len(names))]
    names = orjson.loads(orjson.dumps(names))  # fresh strings, as a parsed body brings them
    encodings = {
        "host_priorities": lambda: host_priorities(names, scores),
        "orjson, dict per host": lambda: orjson.dumps([{"Host": n, "Score": s} for n, s in zip(names, scores)]),
    }
    assert len({encode() for encode in encodings.values()}) == 1
    seconds: dict[str, list[float]] = {kind: [] for kind in encodings}
    for _ in range(calls):
        for kind, encode in encodings.items():
            begin = time.perf_counter()
            encode()
            seconds[kind].append(time.perf_counter() - begin)
    return {kind: statistics.median(values) * 1e6 for kind, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    template = json.loads(FIXTURE.read_text())["Pod"]
    print(f"{'nodes':>6}{'sent':>6} {'verb':<12}{'app':<22}{'p50 µs':>9}{'p99 µs':>9}{'body KiB':>9}")
    for nodes in args.sizes:
        built = apps(nodes)
        sent = kube_scheduler_candidates(nodes)
        for candidates in dict.fromkeys((sent, nodes)):
            names = built["names"][:candidates]
            bodies = []
            for index in range(args.requests):
                pod = json.loads(json.dumps(template))
                pod["metadata"]["name"] = f"bench-{index}"
                pod["metadata"]["uid"] = f"uid-bench-{index}"
                bodies.append(orjson.dumps({"Pod": pod, "Nodes": None, "NodeNames": names}))
            kinds = {kind: built[kind] for kind in APPS}
            measured = asyncio.run(measure(kinds, bodies))
            for verb in ("/filter", "/prioritize"):
                for kind in kinds:
                    seconds = sorted(measured[(kind, verb)])
                    p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
                    print(f"{nodes:>6}{candidates:>6} {verb:<12}{kind:<22}{statistics.median(seconds) * 1e6:>9.0f}"
                          f"{p99 * 1e6:>9.0f}{len(bodies[0]) / 1024:>9.1f}", flush=True)
    print(f"\n{'names':>6} {'prioritize reply encoding':<24}{'p50 µs':>9}")
    for candidates in sorted({count for nodes in args.sizes for count in (kube_scheduler_candidates(nodes), nodes)}):
        names = [f"node-{index:05d}" for index in range(candidates)]
        for kind, median in reply_encodings(names, args.requests).items():
            print(f"{candidates:>6} {kind:<24}{median:>9.1f}", flush=True)
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Linux {platform.release()}, Python {platform.python_version()}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
