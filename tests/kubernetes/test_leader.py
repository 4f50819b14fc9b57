"""Leader election on a Lease, and failover between two ``netsched serve`` replicas."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from scheduler_extender.leader import LeaderElector
from scheduler_extender.settings import LeaseSettings
from tests.kube_api import ApiError, FakeKubeAPI
from tests.kubernetes.conftest import (
    PODS,
    PROCESS_START_TIMEOUT,
    bind_body,
    seed_nodes,
    seed_pods,
    wait_until,
)

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/netsched-extender"
QUICK = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.2}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def electors(client_for) -> Iterator:
    made: list[LeaderElector] = []

    def make(identity: str, prepare=lambda: None, **timing) -> LeaderElector:
        settings = LeaseSettings(identity=identity, **{**QUICK, **timing})
        made.append(LeaderElector(client_for(), settings, prepare=prepare))
        made[-1].start()
        return made[-1]

    yield make
    for elector in made:
        elector.stop(release=False)


def holder(api: FakeKubeAPI) -> str | None:
    lease = api.get(LEASE)
    return lease["spec"].get("holderIdentity") if lease else None


def test_one_leads_and_the_other_takes_over_when_it_dies(kube_api, electors):
    a = electors("a")
    wait_until(a.is_leader, what="a to lead")
    b = electors("b")
    time.sleep(1.0)  # several retry periods: b sees a renewing and waits
    assert not b.is_leader() and holder(kube_api) == "a"
    lease = kube_api.get(LEASE)
    assert lease["spec"]["leaseDurationSeconds"] == 2 and lease["spec"]["leaseTransitions"] == 0
    renewed = datetime.fromisoformat(lease["spec"]["renewTime"])
    assert abs((datetime.now(UTC) - renewed).total_seconds()) < 1.0

    died = time.monotonic()
    a.stop(release=False)  # a crash: no hand-over, the lease must expire
    assert not a.is_leader()
    wait_until(b.is_leader, what="b to take over")
    took = time.monotonic() - died
    assert 1.5 <= took <= 5.0, f"b took over after {took:.1f}s; the lease lasts 2s"
    lease = kube_api.get(LEASE)
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1


def test_a_released_lease_is_taken_at_once(kube_api, electors):
    a = electors("a", lease_duration=30, renew_deadline=20)
    wait_until(a.is_leader, what="a to lead")
    b = electors("b", lease_duration=30, renew_deadline=20)
    time.sleep(0.5)
    assert not b.is_leader()
    a.stop(release=True)
    wait_until(b.is_leader, timeout=3, what="b to take the released lease well before 30s")


def test_a_leader_that_cannot_renew_steps_down_before_its_lease_expires(kube_api, electors):
    a = electors("a", lease_duration=4, renew_deadline=1.0, retry_period=0.2)
    wait_until(a.is_leader, what="a to lead")
    kube_api.fault = lambda method, path: (
        ApiError(500, "InternalError", "etcd unavailable") if "/leases" in path else None
    )
    cut = time.monotonic()
    wait_until(lambda: not a.is_leader(), timeout=3, what="a to step down")
    assert time.monotonic() - cut < 4, (
        "stepped down within the renew deadline, before the lease ran out"
    )
    kube_api.fault = None
    wait_until(a.is_leader, what="a to lead again once the API is back")


def test_only_one_of_many_racing_electors_leads(kube_api, electors):
    group = [electors(f"r{i}") for i in range(5)]
    wait_until(lambda: any(e.is_leader() for e in group), what="a leader")
    for _ in range(10):
        assert sum(e.is_leader() for e in group) == 1
        time.sleep(0.1)
    leader = next(e for e in group if e.is_leader())
    assert holder(kube_api) == leader.settings.identity


def test_a_new_leader_is_ready_only_after_it_has_rebuilt(kube_api, electors):
    rebuilt = threading.Event()
    attempts = []

    def prepare() -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise RuntimeError("API list failed")  # retried while the lease is held
        rebuilt.wait(10)

    a = electors("a", prepare=prepare)
    wait_until(lambda: holder(kube_api) == "a", what="a to hold the lease")
    time.sleep(0.5)
    assert not a.is_leader(), "holding the lease but not rebuilt yet: not ready"
    rebuilt.set()
    wait_until(a.is_leader, what="a ready after the rebuild")
    assert len(attempts) == 2


def test_bad_timings_are_refused_with_the_numbers(client_for):
    with pytest.raises(ValueError, match=r"renew deadline \(20.0s\) < lease duration \(15.0s\)"):
        LeaderElector(client_for(), LeaseSettings(identity="a", renew_deadline=20.0))


# -- two real replicas -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Replica:
    def __init__(self, name: str, kubeconfig: Path, logs: Path) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logs / f"{name}.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netsched.cli",
                "serve",
                "--kubernetes",
                "--kubeconfig",
                str(kubeconfig),
                "--port",
                str(self.port),
                "--leader-elect",
                "--identity",
                name,
                "--lease-duration",
                "2",
                "--renew-deadline",
                "1.5",
                "--retry-period",
                "0.25",
            ],
            cwd=ROOT,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def bind(self, pod: dict, node: str) -> str:
        return httpx.post(f"{self.url}/bind", json=bind_body(pod, node), timeout=20).json()["Error"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def test_failover_between_two_replicas(kube_api, kubeconfig, tmp_path):
    seed_nodes(kube_api, 1)  # node-00 has room for 30 pods of 300M
    pods = seed_pods(kube_api, 45)
    replicas = [Replica(name, kubeconfig, tmp_path) for name in ("replica-1", "replica-2")]
    try:
        wait_until(lambda: any(r.ready() for r in replicas), timeout=PROCESS_START_TIMEOUT, what="a ready replica")
        time.sleep(0.6)
        ready = [r for r in replicas if r.ready()]
        assert len(ready) == 1, "only the leader reports ready"
        leader = ready[0]
        follower = next(r for r in replicas if r is not leader)
        wait_until(
            lambda: httpx.get(f"{follower.url}/healthz", timeout=2).status_code == 200,
            what="the follower serving",
        )
        assert httpx.get(f"{follower.url}/readyz", timeout=2).text == "not the leader"
        assert follower.bind(pods[0], "node-00") == "this extender replica is not the leader"
        assert all(leader.bind(pod, "node-00") == "" for pod in pods[:20])

        leader.process.send_signal(signal.SIGKILL)  # no hand-over: the Lease must expire
        leader.process.wait(timeout=10)
        wait_until(follower.ready, timeout=15, what="the follower to take over")
        assert holder(kube_api) == follower.name

        errors = [follower.bind(pod, "node-00") for pod in pods[20:]]
        assert errors.count("") == 10, errors
        assert all("no longer fits node-00" in e for e in errors if e)
        bound = [o for o in kube_api.list_objects("/api/v1/pods") if o["spec"].get("nodeName")]
        assert len(bound) == 30
        assert (
            kube_api.get(f"{PODS}/{pods[0]['metadata']['name']}")["spec"]["nodeName"] == "node-00"
        )
    finally:
        for replica in replicas:
            replica.close()
        for replica in replicas:
            print(replica.log.read_text()[-3000:])


def test_a_replica_stopped_with_sigterm_hands_the_lease_back(kube_api, kubeconfig, tmp_path):
    """A rolling update stops pods with SIGTERM: the leader releases the Lease on its way out."""
    seed_nodes(kube_api, 1)
    replica = Replica("replica-1", kubeconfig, tmp_path)
    try:
        wait_until(replica.ready, timeout=PROCESS_START_TIMEOUT, what="the replica to lead")
        assert holder(kube_api) == "replica-1"
        replica.process.send_signal(signal.SIGTERM)
        assert replica.process.wait(timeout=15) == 0
        lease = kube_api.get(LEASE)
        assert (
            not lease["spec"].get("holderIdentity") and lease["spec"]["leaseDurationSeconds"] == 1
        )
    finally:
        replica.close()
        print(replica.log.read_text()[-3000:])
