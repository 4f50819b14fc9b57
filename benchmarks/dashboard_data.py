"""Time of the dashboard's data endpoint (and of drawing it in Chromium) by cluster size.

A server process runs the extender (uvicorn + FastAPI, as deployed) on the sample
cluster at each size, with about one pod per two nodes already bound through the
scheduler. The client then polls ``GET /api/v1/dashboard`` as the page does:

- *changed*: a ``/filter`` call (500 candidates, as kube-scheduler sends at 5,000
  nodes) adds a decision before every poll, so every poll rebuilds the document;
- *cached*: the same version again without ``If-None-Match`` (another open page);
- *unchanged*: ``If-None-Match`` with the current ETag, answered ``304``.

``/api/v1/topology`` at the same size is shown for comparison. With ``--browser``,
headless Chromium loads the page and reports the first render (from navigation)
and the median redraw of five updates.

    .venv/bin/python benchmarks/dashboard_data.py [--sizes 500 5000] [--polls 30] [--browser]

Prints one table; figures and the machine go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing
import os
import platform
import random
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_cluster(nodes: int):
    """The sample cluster's shape at ``nodes`` nodes: 10 zones from 1,000 up, 50 nodes a switch."""
    from demo.sample_cluster import sample_cluster

    zones = 10 if nodes >= 1000 else max(1, nodes // 100)
    per_switch = 50
    switches = max(1, nodes // zones // per_switch)
    return sample_cluster(
        zones=zones, switches_per_zone=switches, nodes_per_switch=nodes // zones // switches
    )


def serve(nodes: int, port: int) -> None:
    """Server process: the extender with observed traffic and about one bound pod per two nodes."""
    import uvicorn

    from contract import annotations
    from contract.objects import ObjectMeta, Pod
    from dashboard import dashboard_router
    from scheduler_extender.app import create_app
    from scheduler_extender.extender import Extender
    from scheduler_extender.file_source import FileClusterSource

    snapshot = bench_cluster(nodes)
    rng = random.Random(nodes)
    for report in snapshot.node_networks:  # observed traffic, as node reporters publish it
        for interface in report.status.interfaces:
            interface.rx_bps = rng.randrange(0, interface.speed_mbps * 400_000)
            interface.tx_bps = rng.randrange(0, interface.speed_mbps * 400_000)
    source = FileClusterSource(snapshot)
    extender = Extender.build(source)
    source.start(extender.state)
    names = extender.state.node_names()
    for index in range(nodes // 2):
        pod = source.apply(
            Pod(
                metadata=ObjectMeta(
                    name=f"held-{index}",
                    namespace="bench",
                    uid=str(uuid.uuid4()),
                    annotations={
                        annotations.INGRESS_BANDWIDTH: "300M",
                        annotations.EGRESS_BANDWIDTH: "700M",
                    },
                )
            )
        )
        extender.scheduler.bind(
            "bench", pod.metadata.name, pod.metadata.uid, names[(index * 7) % len(names)]
        )
    extender.scheduler.decisions.clear()
    uvicorn.run(
        create_app(extender, start_source=False, read_only_routers=[dashboard_router(extender)]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


class Client:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ):
        self.connection.request(method, path, body, headers or {})
        response = self.connection.getresponse()
        return response, response.read()


def timed(fn) -> float:
    begin = time.perf_counter()
    fn()
    return (time.perf_counter() - begin) * 1000


def wait_until_up(port: int) -> None:
    deadline = time.monotonic() + 300
    while True:
        try:
            Client(port).request("GET", "/healthz")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def measure(nodes: int, polls: int, browser: bool) -> dict:
    port = free_port()
    process = multiprocessing.Process(target=serve, args=(nodes, port), daemon=True)
    process.start()
    try:
        wait_until_up(port)
        client = Client(port)
        names = [n.name for n in bench_cluster(nodes).nodes][:500]
        changed, changed_gz, cached, unchanged, topology = [], [], [], [], []
        sizes = {}
        for index in range(polls):
            pod = {
                "metadata": {
                    "name": f"probe-{index}",
                    "namespace": "bench",
                    "uid": str(uuid.uuid4()),
                    "annotations": {"kubernetes.io/egress-bandwidth": "2G"},
                }
            }
            filter_body = json.dumps({"Pod": pod, "Nodes": None, "NodeNames": names}).encode()
            for encoding, into in (("identity", changed), ("gzip", changed_gz)):
                client.request("POST", "/filter", filter_body, {"Content-Type": "application/json"})
                result = {}

                def poll(encoding: str = encoding, result: dict = result) -> None:
                    response, body = client.request(
                        "GET", "/api/v1/dashboard", headers={"Accept-Encoding": encoding}
                    )
                    assert response.status == 200, response.status
                    result["etag"], result["body"] = response.getheader("ETag"), body

                into.append(timed(poll))
                sizes[encoding] = len(result["body"])
            etag = result["etag"]
            cached.append(
                timed(
                    lambda: client.request(
                        "GET", "/api/v1/dashboard", headers={"Accept-Encoding": "gzip"}
                    )
                )
            )

            def not_modified(etag: str = etag) -> None:
                response, _ = client.request(
                    "GET", "/api/v1/dashboard", headers={"If-None-Match": etag}
                )
                assert response.status == 304, response.status

            unchanged.append(timed(not_modified))
            if index < max(5, polls // 3):
                topology.append(timed(lambda: client.request("GET", "/api/v1/topology")))
        document = json.loads(gzip.decompress(result["body"]))
        row = {
            "nodes": nodes,
            "pods": len(document["reservations"]),
            "changed_ms": statistics.median(changed),
            "changed_p95_ms": sorted(changed)[
                int(len(changed) * 0.95) - 1 if len(changed) > 1 else 0
            ],
            "changed_gzip_ms": statistics.median(changed_gz),
            "cached_ms": statistics.median(cached),
            "not_modified_ms": statistics.median(unchanged),
            "topology_ms": statistics.median(topology),
            "json_mb": sizes["identity"] / 1e6,
            "gzip_mb": sizes["gzip"] / 1e6,
        }
        if browser:
            row.update(render_in_chromium(port, names))
        return row
    finally:
        process.terminate()
        process.join(10)


UPDATES = 5
"""Redraws timed in the browser; the median is reported."""


def render_in_chromium(port: int, names: list[str]) -> dict:
    from tests.dashboard.browser import browser_available, chromium

    if browser_available() is not None:
        return {}
    with chromium(1440, 900) as driver:
        driver.get(f"http://127.0.0.1:{port}/dashboard")
        deadline = time.monotonic() + 120
        while not driver.execute_script("return window.netschedDashboard.firstRenderAt"):
            if time.monotonic() > deadline:
                raise RuntimeError("the dashboard did not render")
            time.sleep(0.05)
        first = driver.execute_script("return window.netschedDashboard.firstRenderAt")
        client = Client(port)  # the polls' connection has idled out by now
        updates = []
        for index in range(UPDATES):
            version = driver.execute_script("return document.body.dataset.version")
            pod = {
                "metadata": {
                    "name": f"probe-browser-{index}",
                    "namespace": "bench",
                    "uid": str(uuid.uuid4()),
                }
            }
            client.request(
                "POST",
                "/filter",
                json.dumps({"Pod": pod, "Nodes": None, "NodeNames": names}).encode(),
                {"Content-Type": "application/json"},
            )
            while driver.execute_script("return document.body.dataset.version") == version:
                if time.monotonic() > deadline:
                    raise RuntimeError("the dashboard did not update")
                time.sleep(0.05)
            updates.append(driver.execute_script("return window.netschedDashboard.renderMs"))
    return {"first_render_ms": first, "update_render_ms": statistics.median(updates)}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument(
        "--browser", action="store_true", help="also time the page in headless Chromium"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    rows = [measure(nodes, args.polls, args.browser) for nodes in args.sizes]
    columns = [
        ("nodes", "nodes", "{:d}"),
        ("pods", "pods", "{:d}"),
        ("changed_ms", "changed ms", "{:.1f}"),
        ("changed_p95_ms", "p95", "{:.1f}"),
        ("changed_gzip_ms", "changed gzip ms", "{:.1f}"),
        ("cached_ms", "cached gzip ms", "{:.1f}"),
        ("not_modified_ms", "304 ms", "{:.2f}"),
        ("topology_ms", "/topology ms", "{:.1f}"),
        ("json_mb", "JSON MB", "{:.2f}"),
        ("gzip_mb", "gzip MB", "{:.2f}"),
        ("first_render_ms", "page first render ms", "{:.0f}"),
        ("update_render_ms", "update render ms", "{:.0f}"),
    ]
    columns = [c for c in columns if any(c[0] in row for row in rows)]
    print("| " + " | ".join(title for _, title, _ in columns) + " |")
    print("|" + "|".join("---:" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |")


if __name__ == "__main__":
    main()
