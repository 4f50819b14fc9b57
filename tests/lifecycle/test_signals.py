"""Every long-running command stops cleanly on SIGTERM and SIGINT, at any moment of its start.

Each command runs as a real subprocess and is signalled at several moments: as soon as it
catches SIGTERM (``SigCgt`` in ``/proc/PID/status``: its handler exists, its heavy imports
are still ahead), half a second later (mid start-up), and once it serves, or while it
retries an API that does not answer. It must exit 0 within the grace period with no
traceback in its output.

SIGTERM is also sent to the command running as PID 1 of its own PID namespace
(``unshare --pid --fork``), as a container's entry point does: the kernel drops a signal
that such a process has no handler for, so a command that caught it late would hang
until the runtime's SIGKILL (what ``podman stop`` showed: exit 137 after 30 s).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

GRACE_S = 30.0
"""Kubernetes' default terminationGracePeriodSeconds. A stop during start-up takes effect
once the imports in progress are done: seconds on a loaded 2-core machine."""

UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def closed_port() -> int:
    """A loopback port nobody listens on: an API server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Command:
    name: str
    argv: Callable[[Path], list[str]]
    started: str
    """Printed (stdout or stderr) once the command serves or retries."""


def _cluster_file(tmp: Path) -> str:
    from demo.sample_cluster import sample_cluster
    from tests.cli.test_commands import write_cluster_file

    path = tmp / "cluster.yaml"
    write_cluster_file(sample_cluster(), path)
    return str(path)


def _kubeconfig(tmp: Path) -> str:
    path = tmp / "kubeconfig"
    path.write_text(UNREACHABLE_KUBECONFIG % closed_port())
    return str(path)


NETSCHED = [sys.executable, "-m", "netsched.cli"]
COMMANDS = [
    Command(
        "serve",
        lambda tmp: [*NETSCHED, "serve", "--cluster", _cluster_file(tmp), "--port", str(closed_port())],
        "Uvicorn running on",
    ),
    Command(
        "serve-kubernetes",
        lambda tmp: [
            *NETSCHED, "serve", "--kubernetes", "--kubeconfig", _kubeconfig(tmp), "--leader-elect",
            "--port", str(closed_port()),
        ],
        "initial list failed",
    ),
    Command("demo", lambda _tmp: [*NETSCHED, "demo", "--port", str(closed_port())], "webhook"),
    Command(
        "reporter",
        lambda tmp: [
            *NETSCHED, "reporter", "--node-name", "node-a", "--kubeconfig", _kubeconfig(tmp),
            "--interval", "1", "--sample-seconds", "0.2", "--metrics-address", "127.0.0.1",
            "--metrics-port", "0",
        ],
        "publishing NodeNetwork node-a failed",
    ),
    Command(
        "cni-daemon",
        lambda tmp: [sys.executable, "-m", "cni.main", "daemon", "--socket", str(tmp / "cni.sock")],
        "ready ",
    ),
]


def catches(pid: int, signum: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signum - 1)))


def child_of(pid: int) -> int | None:
    """The process ``unshare --fork`` started (PID 1 inside, another PID out here)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                return int(entry.name)
    return None


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def stop_at(command: Command, moment: str, signum: int, as_pid1: bool, tmp: Path) -> None:
    argv = command.argv(tmp)
    if as_pid1:
        argv = ["unshare", "--pid", "--fork", "--kill-child", *argv]
    output = tmp / "output.log"
    with output.open("w") as sink:
        launcher = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=REPOSITORY)
    try:
        if as_pid1:
            wait_for(lambda: child_of(launcher.pid), 10, "unshare's child")
            target = child_of(launcher.pid)
        else:
            target = launcher.pid
        wait_for(lambda: catches(target, signal.SIGTERM), 60, "a SIGTERM handler")
        if moment == "mid-start":
            time.sleep(0.5)
        elif moment == "started":
            wait_for(lambda: command.started in output.read_text(), 60, command.started)
        assert launcher.poll() is None, output.read_text()
        os.kill(target, signum)
        signalled = time.monotonic()
        code = launcher.wait(timeout=GRACE_S)
        took = time.monotonic() - signalled
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    log = output.read_text()
    assert code == 0, log
    assert took < GRACE_S, f"{took:.1f} s"
    assert "Traceback" not in log and "RuntimeError" not in log, log


REPOSITORY = Path(__file__).resolve().parents[2]
MOMENTS = ("handler-installed", "mid-start", "started")


@pytest.mark.kernel
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_sigterm_as_pid1(command: Command, moment: str, tmp_path: Path) -> None:
    stop_at(command, moment, signal.SIGTERM, as_pid1=True, tmp=tmp_path)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_sigint_during_start(command: Command, tmp_path: Path) -> None:
    """Ctrl-C while the imports run: no KeyboardInterrupt traceback."""
    stop_at(command, "mid-start", signal.SIGINT, as_pid1=False, tmp=tmp_path)
