"""The Kubernetes source against the in-test API server: rebuild, watch lag and bind throughput.

1. Rebuild: ``start()`` (paged lists of Nodes, NodeNetworks, Networks and Pods, parsing, ledger
   rebuild) with every pod bound and holding a reservation, by cluster size. Wall time and this
   process's CPU (which includes the in-process API server's JSON encoding).
2. Watch lag: a pod bound in the API until the ledger holds it, median and p95 over 200 pods.
3. Binds: 8 client threads POST /bind (HTTP, uvicorn) for 500 pods; each bind is one Binding
   (carrying the reservation) against the API server. Binds per second, latency percentiles,
   and the API writes the binds made, by kind, counted at the server: what the row measures.

The API server is the Python test fixture, not kube-apiserver: absolute times include its cost.

    .venv/bin/python benchmarks/kubernetes_source.py [--sizes 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scheduler_extender.app import create_app
from scheduler_extender.extender import Extender
from scheduler_extender.kubernetes_source import KubernetesClusterSource, api_client
from scheduler_extender.server import BackgroundServer, ServeOptions
from scheduler_extender.state import ClusterState
from tests.kube_api import FakeKubeAPI
from tests.kubernetes.conftest import PODS, bind_body, pod_object, seed_nodes


def bound_pod(name: str, node: str) -> dict:
    pod = pod_object(name, egress="1M")
    pod["metadata"]["annotations"]["netsched.io/reservation"] = json.dumps(
        {"node": node, "primary": {"egress": 1_000_000}, "primaryParent": "eth0",
         "interfaces": {"eth0": {"ingress": 0, "egress": 1_000_000}}})
    pod["spec"]["nodeName"] = node
    pod["status"]["phase"] = "Running"
    return pod


def rebuild(size: int, folder: Path) -> tuple[float, float]:
    with FakeKubeAPI() as api:
        nodes = seed_nodes(api, max(10, size // 20))
        for i in range(size):
            api.seed(PODS, bound_pod(f"p{i}", nodes[i % len(nodes)]))
        source = KubernetesClusterSource(api_client(str(api.write_kubeconfig(folder / "k"))))
        state = ClusterState()
        wall, cpu = time.perf_counter(), time.process_time()
        source.start(state)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        source.stop()
        assert len(state.ledger.holdings()) == size
        return wall, cpu


def watch_lag(folder: Path, count: int = 200) -> list[float]:
    with FakeKubeAPI() as api:
        nodes = seed_nodes(api, 10)
        source = KubernetesClusterSource(api_client(str(api.write_kubeconfig(folder / "k"))))
        state = ClusterState()
        source.start(state)
        lags = []
        for i in range(count):
            started = time.perf_counter()
            created = api.seed(PODS, bound_pod(f"lag{i}", nodes[i % 10]))
            uid = created["metadata"]["uid"]
            while state.ledger.holding(uid) is None:
                time.sleep(0.0002)
            lags.append(time.perf_counter() - started)
        source.stop()
        return lags


def binds(folder: Path, count: int = 500, clients: int = 8) -> tuple[float, list[float], int, Counter[str]]:
    writes: Counter[str] = Counter()

    def count_write(method: str, path: str) -> None:
        if method != "GET":
            writes[f"{method} {'pods/binding' if path.endswith('/binding') else path.split('?')[0]}"] += 1

    with FakeKubeAPI() as api:
        nodes = seed_nodes(api, 20)
        pods = [api.seed(PODS, pod_object(f"b{i}", egress="100M")) for i in range(count)]
        source = KubernetesClusterSource(api_client(str(api.write_kubeconfig(folder / "k"))))
        extender = Extender.build(source)
        source.start(extender.state)
        with BackgroundServer(create_app(extender, start_source=False), ServeOptions(port=0)) as server:
            def run(share: list[int]) -> list[tuple[float, str]]:
                out = []
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    for i in share:
                        started = time.perf_counter()
                        error = client.post("/bind", json=bind_body(pods[i], nodes[i % 20])).json()["Error"]
                        out.append((time.perf_counter() - started, error))
                return out

            api.fault = count_write
            wall = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                results = [r for part in pool.map(run, [list(range(k, count, clients)) for k in range(clients)])
                           for r in part]
            wall = time.perf_counter() - wall
        source.stop()
        return wall, [latency for latency, _ in results], sum(1 for _, error in results if error), writes


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        print("\n| bound pods | nodes | rebuild wall (s) | rebuild CPU (s) |")
        print("| ---: | ---: | ---: | ---: |")
        for size in args.sizes:
            wall, cpu = rebuild(size, path)
            print(f"| {size:,} | {max(10, size // 20):,} | {wall:.2f} | {cpu:.2f} |")
        lags = watch_lag(path)
        print("\n| watch lag, 200 pods | median (ms) | p95 (ms) |")
        print("| --- | ---: | ---: |")
        print(f"| write in the API → ledger | {statistics.median(lags) * 1000:.1f} | "
              f"{percentile(lags, 0.95) * 1000:.1f} |")
        wall, latencies, errors, writes = binds(path)
        made = ", ".join(f"{count} {kind}" for kind, count in writes.most_common())
        print("\n| 500 binds, 8 clients | binds/s | p50 (ms) | p99 (ms) | errors | API writes |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        print(f"| /bind → one Binding | {len(latencies) / wall:.0f} | "
              f"{percentile(latencies, 0.5) * 1000:.1f} | {percentile(latencies, 0.99) * 1000:.1f} | {errors} | {made} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
