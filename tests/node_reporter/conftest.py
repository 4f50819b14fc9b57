"""Network namespaces for the reporter's kernel tests, removed whatever the outcome.

Every link a test builds lives inside a namespace made here (never in the host's), so
removing the namespaces removes the links; processes started in them are tracked and
killed first, because a process would keep its namespace (and links) alive.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube_api import kube_api  # noqa: F401 - the fake API server fixture

NETNS_DIR = Path("/run/netns")


def suffix() -> str:
    return secrets.token_hex(3)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def in_netns(netns: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *command], check=True, capture_output=True, text=True
    )


def sysfs(netns: str, name: str, attribute: str) -> str:
    """A link attribute as the namespace's own sysfs shows it (``ip netns exec`` remounts
    /sys): an oracle independent of the reporter's netlink path."""
    return in_netns(netns, "cat", f"/sys/class/net/{name}/{attribute}").stdout.strip()


def wait_operstate(netns: str, name: str, wanted: str, timeout: float = 5.0) -> None:
    """The kernel applies carrier changes asynchronously (linkwatch, up to ~1 s)."""
    deadline = time.monotonic() + timeout
    while sysfs(netns, name, "operstate") != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} in {netns} did not become {wanted}")
        time.sleep(0.05)


def ethtool_speed(netns: str, name: str) -> int:
    """The speed the ethtool tool prints (0 for "Unknown!"), another independent oracle."""
    out = in_netns(netns, "ethtool", name).stdout
    for line in out.splitlines():
        if line.strip().startswith("Speed:"):
            value = line.split(":", 1)[1].strip()
            return int(value.removesuffix("Mb/s")) if value.endswith("Mb/s") else 0
    return 0


class Namespaces:
    """Creates namespaces and background processes; :meth:`cleanup` removes them all."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.processes: list[subprocess.Popen[str]] = []

    def create(self, prefix: str = "ns") -> str:
        name = f"{prefix}{suffix()}"
        ip("netns", "add", name)
        self.names.append(name)
        return name

    def spawn(self, netns: str, *command: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", netns, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def cleanup(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        leftovers = [name for name in self.names if (NETNS_DIR / name).exists()]
        assert not leftovers, f"namespaces left behind: {leftovers}"


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to build network namespaces")
    made = Namespaces()
    try:
        yield made
    finally:
        made.cleanup()
