"""Fixtures of the CNI tests: a lab of namespaces that is always torn down."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cni.install import CLIENT_BUILD
from tests.cni.lab import Lab, leftover_namespaces
from tests.cni.runner import REPO, THIN_CLIENTS


def _kernel_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "tc", "iperf3", "ping"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    if not Path("/usr/lib/cni/bridge").exists():
        return "needs the reference CNI plugins in /usr/lib/cni (containernetworking-plugins)"
    return None


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = _kernel_ready()
    if reason:
        pytest.skip(reason)
    laboratory = Lab(Path(tempfile.mkdtemp(prefix="netsched-cni-")))
    created = laboratory.namespaces
    try:
        yield laboratory
    finally:
        names = list(created)
        laboratory.close()
        assert not leftover_namespaces(names), "namespaces left behind"


@pytest.fixture(scope="session")
def native_client() -> Path:
    """The native thin client, built from cni/thin_client as `make test` builds it.

    Built here too (a no-op when up to date), so that a test run after editing the Go
    source never exercises an older executable.
    """
    done = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "cni-client"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"make cni-client failed:\n{done.stdout}\n{done.stderr}"
    assert CLIENT_BUILD.is_file(), f"make cni-client did not write {CLIENT_BUILD}"
    return CLIENT_BUILD


@pytest.fixture(params=THIN_CLIENTS)
def thin_client(request: pytest.FixtureRequest) -> str:
    """Each thin client in turn: a test of the node daemon runs once through each."""
    if request.param == "native":
        request.getfixturevalue("native_client")
    return request.param
