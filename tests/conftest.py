"""Shared fixtures: the sample cluster, an extender over it, and that extender on a real socket."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import Phase, settings

from contract.group import SCHEDULER_NAME
from contract.objects import ObjectMeta, Pod, PodSpec
from dashboard import dashboard_router
from demo.sample_cluster import sample_cluster
from scheduler_extender.app import create_app
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.server import BackgroundServer, ServeOptions

# This process hosts gRPC (the DRA kubelet plugin's tests serve and call it) and also forks
# plugins and servers with a preexec_fn (tests/cni/runner.py enters the node's namespace).
# With gRPC's fork support on, its handler restarts the poller thread in the forked child,
# and the child's close_fds then closes the poller's epoll fd before exec: the child aborts
# ("Epoll1Poller ... epoll_wait error: Bad file descriptor", grpc/grpc#43055; 146 of 3,838
# forks beside an active channel here, 0 with it off). containerd is a Go process and the
# node daemon forks nothing, so only this harness meets it. Read when grpc is first loaded.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

# `make mutate` runs the tests once per mutant (pyproject.toml's [tool.mutmut] selects this
# profile): one failing example kills the mutant; shrinking it took minutes per mutant.
settings.register_profile("mutmut", phases=[Phase.explicit, Phase.generate], database=None)

# Request bodies a real kube-scheduler sent, and the same shape with netsched annotations.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "extender"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def make_pod(name: str, annotations: dict[str, str] | None = None, *, priority: int = 0,
             labels: dict[str, str] | None = None, namespace: str = "default") -> Pod:
    return Pod(
        metadata=ObjectMeta(name=name, namespace=namespace, uid=f"uid-{namespace}-{name}",
                            annotations=annotations or {}, labels=labels or {}),
        spec=PodSpec(priority=priority, scheduler_name=SCHEDULER_NAME),
    )


@pytest.fixture
def source() -> FileClusterSource:
    """The 12-node sample cluster (zones eu-1a/b/c, nodes node-a-1 … node-c-4), reports fresh."""
    return FileClusterSource(sample_cluster(heartbeat=datetime.now(UTC)))


@pytest.fixture
def extender(source: FileClusterSource) -> Extender:
    extender = Extender.build(source)
    source.start(extender.state)
    return extender


@pytest.fixture
def served(extender: Extender) -> Iterator[httpx.Client]:
    """The extender behind uvicorn on a free loopback port; yields a client bound to it."""
    app = create_app(extender, start_source=False, read_only_routers=[dashboard_router(extender)])
    with BackgroundServer(app, ServeOptions(port=0)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
