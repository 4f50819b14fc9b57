"""Every long-running command stops cleanly on SIGTERM and SIGINT, at any moment of its start.

Each command runs as a real subprocess, as PID 1 of a PID namespace of its own
(``unshare --pid --fork --mount-proc``), as a container's entry point runs, and is stopped
the way a container runtime stops a container (``docker stop``, ``podman stop``, kubelet
killing a pod's container): SIGTERM to the container's PID 1, then, if it is still there at
the end of the grace period, SIGKILL (exit 137). It must exit 0 within the grace period with
no traceback in its output.

The moments: while the interpreter starts, before netsched's handler exists (the process is
frozen with SIGSTOP at that point so the moment is certain, and thawed after the SIGTERM; a
freeze does not change how a signal is handled); as soon as it catches SIGTERM (``SigCgt``
in ``/proc/PID/status``: its heavy imports are still ahead); half a second later; and once
it serves, or while it retries an API that does not answer.

PID 1 is the images' entry point, ``tini`` (``deploy/Dockerfile``'s ENTRYPOINT, read from
there): the kernel drops a signal that PID 1 has no handler for, even one from outside the
namespace, so without an init a SIGTERM before the handler is lost and the runtime kills the
command at the end of the grace period. ``test_early_sigterm_is_lost_without_an_init`` shows
that loss, which is why the images have the init; the commands' own handlers are still
tested as PID 1 without it (a manifest may override the entry point).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

GRACE_S = 30.0
"""Kubernetes' default terminationGracePeriodSeconds (podman's and docker's stop timeout is
10 s). A stop during start-up takes effect once the imports in progress are done: seconds on
a loaded 2-core machine."""

UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def image_entrypoint() -> list[str]:
    """The ENTRYPOINT both images run their commands behind (the last one in the file)."""
    entrypoints = re.findall(r"^ENTRYPOINT (\[.*\])$", (REPOSITORY / "deploy/Dockerfile").read_text(), re.M)
    assert entrypoints, "deploy/Dockerfile sets no ENTRYPOINT"
    return json.loads(entrypoints[-1])


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
PYTHON = os.path.realpath(sys.executable)


def status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def catches(pid: int, signum: int) -> bool:
    caught = status(pid).get("SigCgt")
    return caught is not None and bool(int(caught, 16) & (1 << (signum - 1)))


def runs_python(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == PYTHON
    except OSError:
        return False


def child_of(pid: int) -> int | None:
    """``pid``'s child: the one ``unshare --fork`` started (PID 1 inside, another PID out
    here), or the command tini started."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                return int(entry.name)
    return None


def wait_for(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


@dataclass
class Container:
    """One command as PID 1 of its own PID namespace, with or without the images' init."""

    launcher: subprocess.Popen
    pid1: int
    """The namespace's PID 1 as seen from here: what a runtime signals."""
    command: int
    """The command's own process: PID 1 itself without an init, the init's child with one."""
    output: Path
    frozen: bool = False

    def log(self) -> str:
        return self.output.read_text()

    def freeze_before_handler(self) -> bool:
        """Stop the command where it is; True if that is before it catches SIGTERM."""
        os.kill(self.command, signal.SIGSTOP)
        wait_for(lambda: status(self.command).get("State", "").startswith("T"), 10, "the freeze")
        self.frozen = True
        return not catches(self.command, signal.SIGTERM)

    def signal_pid1(self, signum: int) -> None:
        """What the runtime sends goes to PID 1; a frozen command is thawed right after."""
        os.kill(self.pid1, signum)
        if self.frozen:
            os.kill(self.command, signal.SIGCONT)
            self.frozen = False

    def stop(self) -> tuple[int, float, bool]:
        """What a runtime's stop does: SIGTERM to PID 1, SIGKILL after the grace period.
        Returns the exit status, the seconds it took and whether SIGKILL was needed."""
        self.signal_pid1(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            code = self.launcher.wait(timeout=GRACE_S)
            killed = False
        except subprocess.TimeoutExpired:
            os.kill(self.pid1, signal.SIGKILL)
            code = self.launcher.wait()
            killed = True
        return code, time.monotonic() - signalled, killed


@contextmanager
def container(command: Command, tmp: Path, init: bool) -> Iterator[Container]:
    argv = command.argv(tmp)
    if init:
        argv = [*image_entrypoint(), *argv]
    output = tmp / "output.log"
    with output.open("w") as sink:
        launcher = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv],
            stdout=sink, stderr=subprocess.STDOUT, cwd=REPOSITORY,
        )
    try:
        wait_for(lambda: child_of(launcher.pid), 10, "unshare's child", poll=0.001)
        pid1 = child_of(launcher.pid)
        if init:
            wait_for(lambda: child_of(pid1), 10, "the init's child", poll=0.001)
            process = child_of(pid1)
        else:
            process = pid1
        wait_for(lambda: runs_python(process), 10, "the command's exec", poll=0.001)
        yield Container(launcher, pid1, process, output)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


@contextmanager
def frozen_before_handler(command: Command, tmp: Path, init: bool) -> Iterator[Container]:
    """The command frozen before its SIGTERM handler exists. The interpreter's start leaves
    a window of some 50 ms on an idle machine; a freeze that lands after it is retried."""
    for _attempt in range(10):
        with container(command, tmp, init) as running:
            if running.freeze_before_handler():
                yield running
                return
    pytest.fail("never froze the command before its SIGTERM handler existed")


def reach(moment: str, command: Command, running: Container) -> None:
    wait_for(lambda: catches(running.command, signal.SIGTERM), 60, "a SIGTERM handler")
    if moment == "mid-start":
        time.sleep(0.5)
    elif moment == "started":
        wait_for(lambda: command.started in running.log(), 60, command.started)


def assert_clean_stop(running: Container, code: int, took: float, killed: bool) -> None:
    log = running.log()
    assert not killed, f"still running {GRACE_S:.0f} s after SIGTERM, killed\n{log}"
    assert code == 0, log
    assert took < GRACE_S, f"{took:.1f} s"
    assert "Traceback" not in log and "RuntimeError" not in log, log


def stop_at(command: Command, moment: str, init: bool, tmp: Path) -> None:
    if moment == "before-handler":
        with frozen_before_handler(command, tmp, init) as running:
            assert_clean_stop(running, *running.stop())
        return
    with container(command, tmp, init) as running:
        reach(moment, command, running)
        assert running.launcher.poll() is None, running.log()
        assert_clean_stop(running, *running.stop())


MOMENTS = ("before-handler", "handler-installed", "mid-start", "started")


@pytest.mark.kernel
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_sigterm_behind_the_image_init(command: Command, moment: str, tmp_path: Path) -> None:
    stop_at(command, moment, init=True, tmp=tmp_path)


@pytest.mark.kernel
@pytest.mark.parametrize("moment", ("mid-start",))
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_sigterm_as_pid1_without_an_init(command: Command, moment: str, tmp_path: Path) -> None:
    """Once netsched's handler exists it stops the command also when nothing forwards."""
    stop_at(command, moment, init=False, tmp=tmp_path)


@pytest.mark.kernel
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_early_sigterm_is_lost_without_an_init(command: Command, tmp_path: Path) -> None:
    """Why the images have an init: PID 1 without a handler never sees the SIGTERM. The
    command goes on to serve as if no stop had been asked, and only the runtime's SIGKILL
    at the end of the grace period ends it."""
    with frozen_before_handler(command, tmp_path, init=False) as running:
        running.signal_pid1(signal.SIGTERM)
        wait_for(lambda: command.started in running.log(), 60, command.started)
        assert running.launcher.poll() is None, running.log()
        running.signal_pid1(signal.SIGKILL)  # the end of the grace period
        running.launcher.wait()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_sigint_during_start(command: Command, tmp_path: Path) -> None:
    """Ctrl-C while the imports run, in a terminal (not PID 1): no KeyboardInterrupt
    traceback."""
    argv = command.argv(tmp_path)
    output = tmp_path / "output.log"
    with output.open("w") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=REPOSITORY)
    try:
        wait_for(lambda: catches(process.pid, signal.SIGTERM), 60, "a SIGINT handler")
        time.sleep(0.5)
        assert process.poll() is None, output.read_text()
        process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        code = process.wait(timeout=GRACE_S)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = output.read_text()
    assert code == 0, log
    assert took < GRACE_S, f"{took:.1f} s"
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
