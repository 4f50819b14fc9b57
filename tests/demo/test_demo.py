"""``netsched demo`` as a user runs it: a real process, a real port, pods flowing through the verbs."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_serves_the_sample_cluster_and_schedules_pods():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "netsched.cli", "demo", "--port", str(port), "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        banner = []
        deadline = time.monotonic() + 60
        while not any("webhook" in line for line in banner):
            assert time.monotonic() < deadline, banner
            line = process.stdout.readline()
            assert line, f"demo exited: {banner}"
            banner.append(line)
        text = "".join(banner)
        assert "netsched demo: 12 nodes in 3 zones" in text
        assert f"http://127.0.0.1:{port}/dashboard" in text

        url = f"http://127.0.0.1:{port}"
        topology = httpx.get(f"{url}/api/v1/topology").json()
        assert len(topology["nodes"]) == 12
        assert {n["zone"] for n in topology["nodes"]} == {"eu-1a", "eu-1b", "eu-1c"}
        assert {n["name"] for n in topology["networks"]} == {"storage", "replication", "tenant"}
        assert topology["reservations"], "some pods are placed before serving"

        before = len(httpx.get(f"{url}/api/v1/decisions").json())
        deadline = time.monotonic() + 30
        lines = []
        while len(lines) < 5:
            assert time.monotonic() < deadline
            lines.append(process.stdout.readline())
        assert any("→ node-" in line for line in lines), lines
        decisions = httpx.get(f"{url}/api/v1/decisions").json()
        assert len(decisions) > before or len(decisions) == 200
        assert {"filter", "bind"} <= {d["verb"] for d in decisions}
        assert "netsched_binds_total" in httpx.get(f"{url}/metrics").text
    finally:
        process.terminate()
        process.wait(timeout=20)
