"""Filter + prioritize + bind per pod over HTTP, netsched beside a pass-through extender.

Each configuration starts a fresh server process (uvicorn + FastAPI, as deployed) on
loopback, then plays kube-scheduler: for every pod, POST /filter, /prioritize with the
nodes that passed, and /bind to the best one, one pod after another over a kept-alive
connection. The pass-through extender parses the same extender/v1 bodies on the same
stack and answers "all nodes, score 0, bound": the floor any extender pays.

Latency is measured twice: at the client (the three calls of a pod, JSON building and
parsing included, as kube-scheduler would see it from a Python client) and inside the
server process (the time the ASGI app spends on each call, from the first byte of the
request handed over by uvicorn to the last byte of the reply, summed per pod), so that
the harness's own cost can be told from the extender's.

    .venv/bin/python benchmarks/extender_latency.py [--pods 300] [--sizes 100 1000 5000]

Prints one table; figures and the machine go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import socket
import statistics
import time
import uuid
from pathlib import Path

import orjson
from fastapi import FastAPI, Response

from contract.objects import Pod
from scheduler_extender.app import json_response
from scheduler_extender.wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    HostPriority,
)

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "extender"


def kube_scheduler_candidates(nodes: int) -> int:
    """How many feasible nodes kube-scheduler sends by default (percentageOfNodesToScore)."""
    percentage = max(5, 50 - nodes // 125)
    return min(nodes, max(100, nodes * percentage // 100))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerTiming:
    """ASGI wrapper timing every webhook call; ``GET /bench/timings`` hands them over."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.seconds: list[float] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/timings":
            body = orjson.dumps(self.seconds)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        started = time.perf_counter()
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "POST":
            self.seconds.append(time.perf_counter() - started)


def serve(kind: str, nodes: int, port: int, pods: int) -> None:
    """Server process: netsched on a sample cluster of ``nodes`` nodes, or the pass-through.

    The ``pods`` pending pods the client will schedule exist in the cluster from the
    start, as they would in the API server when kube-scheduler picks them up.
    """
    import uvicorn

    if kind == "netsched":
        from scheduler_extender.app import create_app
        from scheduler_extender.extender import Extender
        from scheduler_extender.file_source import FileClusterSource

        snapshot = bench_cluster(nodes)
        template = json.loads((FIXTURES / "filter-nodenames.json").read_text())["Pod"]
        snapshot.pods = [Pod.model_validate(pod_body(template, index)) for index in range(pods)]
        app = create_app(Extender.build(FileClusterSource(snapshot)))
    else:
        app = passthrough_app()
    uvicorn.run(ServerTiming(app), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def passthrough_app() -> FastAPI:
    app = FastAPI()

    # The same response path as netsched's webhook: serialised once, no re-validation.
    @app.post("/filter", response_model=ExtenderFilterResult)
    async def filter_nodes(args: ExtenderArgs) -> Response:
        if args.NodeNames is not None:
            return json_response(ExtenderFilterResult(NodeNames=args.NodeNames).model_dump_json())
        return json_response(ExtenderFilterResult(Nodes=args.Nodes).model_dump_json())

    @app.post("/prioritize", response_model=list[HostPriority])
    async def prioritize(args: ExtenderArgs) -> Response:
        return json_response(orjson.dumps([{"Host": name, "Score": 0} for name in args.node_names()]))

    @app.post("/bind", response_model=ExtenderBindingResult)
    def bind(args: ExtenderBindingArgs) -> ExtenderBindingResult:
        return ExtenderBindingResult()

    return app


def bench_cluster(nodes: int):
    """The sample cluster's shape at ``nodes`` nodes: 10 zones from 1,000 up, 20-200 nodes a switch."""
    from demo.sample_cluster import sample_cluster

    zones = 10 if nodes >= 1000 else 1
    switches = max(1, nodes // 200)
    return sample_cluster(zones=zones, switches_per_zone=switches, nodes_per_switch=max(1, nodes // zones // switches))


def full_node(template: dict, name: str) -> dict:
    node = json.loads(json.dumps(template))
    node["metadata"]["name"] = name
    node["metadata"]["labels"]["kubernetes.io/hostname"] = name
    return node


def pod_body(template: dict, index: int) -> dict:
    pod = json.loads(json.dumps(template))
    pod["metadata"]["name"] = f"bench-{index}"
    pod["metadata"]["uid"] = str(uuid.uuid5(uuid.NAMESPACE_OID, f"bench-{index}"))
    return pod


def measure(kind: str, nodes: int, candidates: int, node_cache: bool, pods: int) -> dict:
    port = free_port()
    process = multiprocessing.Process(target=serve, args=(kind, nodes, port, pods), daemon=True)
    process.start()
    deadline = time.monotonic() + 120
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/docs")
            connection.getresponse().read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

    request = json.loads((FIXTURES / "filter-nodenames.json").read_text())
    node_template = json.loads((FIXTURES / "filter-nodes.json").read_text())["Nodes"]["items"][0]
    names = [node.name for node in bench_cluster(nodes).nodes][:candidates]
    full_nodes = {"metadata": {}, "items": [full_node(node_template, n) for n in names]} if not node_cache else None

    def post(path: str, body: dict) -> object:
        data = orjson.dumps(body)
        connection.request("POST", path, data, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {payload[:200]!r}")
        return orjson.loads(payload)

    latencies, calls = [], []
    started = time.perf_counter()
    for index in range(pods):
        pod = pod_body(request["Pod"], index)
        args = {"Pod": pod, "Nodes": full_nodes, "NodeNames": names if node_cache else None}
        begin = time.perf_counter()
        filtered = post("/filter", args)
        if node_cache:
            passed = filtered["NodeNames"]
            args["NodeNames"] = passed
        else:
            passed = [item["metadata"]["name"] for item in filtered["Nodes"]["items"]]
            args["Nodes"] = filtered["Nodes"]
        prioritized = len(passed) > 1
        scores = post("/prioritize", args) if prioritized else [{"Host": passed[0], "Score": 0}]
        best = max(scores, key=lambda s: s["Score"])["Host"]
        bound = post("/bind", {"PodName": pod["metadata"]["name"], "PodNamespace": "default",
                               "PodUID": pod["metadata"]["uid"], "Node": best})
        latencies.append(time.perf_counter() - begin)
        calls.append(3 if prioritized else 2)
        if bound["Error"]:
            raise RuntimeError(bound["Error"])
    elapsed = time.perf_counter() - started
    connection.request("GET", "/bench/timings")
    per_call = iter(orjson.loads(connection.getresponse().read()))
    server = sorted(sum(next(per_call) for _ in range(count)) for count in calls)
    rss_kib = peak_rss_kib(process.pid)
    connection.close()
    process.terminate()
    process.join(10)
    latencies.sort()
    return {
        "extender": kind,
        "nodes": nodes,
        "candidates": candidates,
        "mode": "NodeNames" if node_cache else "Nodes",
        "pods": pods,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": p99(latencies) * 1000,
        "server_p50_ms": statistics.median(server) * 1000,
        "server_p99_ms": p99(server) * 1000,
        "pods_per_s": pods / elapsed,
        "peak_rss_mib": rss_kib / 1024,
    }


def p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=300, help="pods per configuration (NodeNames mode)")
    parser.add_argument("--pods-full-nodes", type=int, default=60, help="pods per configuration (Nodes mode)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()

    rows = []
    for nodes in args.sizes:
        configurations = [(nodes, True), (kube_scheduler_candidates(nodes), True), (nodes, False)]
        for candidates, node_cache in dict.fromkeys(configurations):
            for kind in ("passthrough", "netsched"):
                pods = args.pods if node_cache else args.pods_full_nodes
                rows.append(measure(kind, nodes, candidates, node_cache, pods))
                print_row(rows[-1], header=len(rows) == 1)
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Linux {platform.release()}, Python {platform.python_version()}")


def print_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'extender':<12}{'nodes':>6}{'sent':>6} {'mode':<10}{'pods':>5}"
              f"{'p50 ms':>9}{'p99 ms':>9}{'server p50':>11}{'server p99':>11}{'pods/s':>9}{'RSS MiB':>9}")
    print(f"{row['extender']:<12}{row['nodes']:>6}{row['candidates']:>6} {row['mode']:<10}{row['pods']:>5}"
          f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['server_p50_ms']:>11.2f}{row['server_p99_ms']:>11.2f}"
          f"{row['pods_per_s']:>9.1f}{row['peak_rss_mib']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
