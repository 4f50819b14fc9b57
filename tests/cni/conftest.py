"""Fixtures of the CNI tests: a lab of namespaces that is always torn down."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cni.lab import Lab, leftover_namespaces


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
