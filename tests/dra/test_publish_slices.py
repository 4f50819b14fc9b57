"""The extender's ResourceSlice writer (``scheduler_extender.slices``) against the in-test
API server, through the official client's ``ResourceV1Api``.

The server stands in for kube-apiserver serving ``resource.k8s.io/v1``: cluster-scoped
``resourceslices`` with 409 on a stale ``resourceVersion`` and on a second create of one
name, and the field selectors the real one accepts for slices (``spec.driver``,
``spec.nodeName``). An API server without the group is reproduced by answering 404 for
every path under it, as kube-apiserver does for a group/version it does not serve.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from bandwidth_accounting.devices import node_devices
from bandwidth_accounting.settings import CapacitySettings
from contract import annotations, dra
from contract.objects import Network, Node, NodeNetwork
from scheduler_extender.cluster import ClusterSnapshot
from scheduler_extender.slices import RELIST_SECONDS, SlicePublisher
from scheduler_extender.state import ClusterState
from tests.kube_api import ApiError, FakeKubeAPI, kube_api, kube_client  # noqa: F401 - fixtures

SLICES = "/apis/resource.k8s.io/v1/resourceslices"


def node(name: str, headroom: str | None = None) -> Node:
    meta = {"name": name, "uid": f"uid-{name}", "labels": {"topology.kubernetes.io/zone": "z1"}}
    if headroom:
        meta["annotations"] = {annotations.HEADROOM: headroom}
    return Node.model_validate({"metadata": meta})


def report(name: str, speed_mbps: int = 10_000) -> NodeNetwork:
    return NodeNetwork.model_validate({"metadata": {"name": name}, "status": {"interfaces": [
        {"name": "eth0", "role": "pod", "speedMbps": speed_mbps},
        {"name": "eth1", "role": "storage", "speedMbps": 25_000, "vlans": [100]},
    ]}})


STORAGE = Network.model_validate({"metadata": {"name": "storage"}, "spec": {"mode": "vlan", "vlan": 100}})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state() -> ClusterState:
    state = ClusterState(CapacitySettings(headroom=0.1))
    state.reset(ClusterSnapshot(
        nodes=[node("node-a"), node("node-b")], node_networks=[report("node-a"), report("node-b")],
        networks=[STORAGE],
    ))
    return state


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def publisher(state, kube_client, clock) -> SlicePublisher:
    return SlicePublisher(state, kube_client, clock=clock)


def stored(kube_api: FakeKubeAPI) -> dict[str, dra.ResourceSlice]:
    return {o["metadata"]["name"]: dra.ResourceSlice.model_validate(o) for o in kube_api.list_objects(SLICES)}


def writes(kube_api: FakeKubeAPI) -> list[tuple[str, str]]:
    return [(r.method, r.path.split("?")[0]) for r in kube_api.requests if r.method != "GET"]


def test_one_slice_per_node_is_created_as_the_builder_makes_it(kube_api, publisher, state):
    result = publisher.sync()
    assert (result.created, result.updated, result.deleted) == (2, 0, 0)
    slices = stored(kube_api)
    assert set(slices) == {"node-a-netsched.io", "node-b-netsched.io"}
    built = node_devices(state.topology, "node-a", state.capacity).slice
    assert slices["node-a-netsched.io"].spec == built.spec
    assert slices["node-a-netsched.io"].metadata.owner_references == built.metadata.owner_references
    (listing,) = [r.path for r in kube_api.requests if r.method == "GET"]
    assert "fieldSelector=spec.driver%3Dnetsched.io" in listing


def test_nothing_is_written_when_nothing_changed(kube_api, publisher, clock):
    publisher.sync()
    before = len(writes(kube_api))
    assert publisher.sync() is None  # nothing changed here: not even a list
    clock.now += RELIST_SECONDS  # later it lists again, and finds nothing to write
    assert publisher.sync().created == 0
    assert len(writes(kube_api)) == before
    assert [m for m, _ in writes(kube_api)] == ["POST", "POST"]
    assert len([r for r in kube_api.requests if r.method == "GET"]) == 2


def test_a_slice_someone_else_changed_is_put_back_at_the_next_list(kube_api, publisher, clock):
    publisher.sync()
    obj = kube_api.get(f"{SLICES}/node-a-netsched.io")
    obj["spec"]["devices"] = []
    kube_api.handle("PUT", f"{SLICES}/node-a-netsched.io", "application/json", obj)
    clock.now += RELIST_SECONDS
    assert publisher.sync().updated == 1
    restored = stored(kube_api)["node-a-netsched.io"]
    assert [d.name for d in restored.spec.devices] == ["eth0", "eth1"] and restored.spec.pool.generation == 2


def test_a_changed_link_or_headroom_replaces_the_slice_with_the_pool_generation_bumped(
    kube_api, publisher, state
):
    publisher.sync()
    state.upsert(report("node-a", speed_mbps=25_000))
    result = publisher.sync()
    assert (result.created, result.updated) == (0, 1)
    a = stored(kube_api)["node-a-netsched.io"]
    assert a.spec.pool.generation == 2
    assert a.spec.devices[0].capacity[dra.EGRESS].value == "22500M"
    assert stored(kube_api)["node-b-netsched.io"].spec.pool.generation == 1
    state.upsert(node("node-a", headroom="50%"))
    assert publisher.sync().updated == 1
    a = stored(kube_api)["node-a-netsched.io"]
    assert (a.spec.pool.generation, a.spec.devices[0].capacity[dra.INGRESS].value) == (3, "12500M")
    assert writes(kube_api).count(("PUT", f"{SLICES}/node-a-netsched.io")) == 2


def test_a_slice_goes_with_its_node_or_its_report(kube_api, publisher, state):
    publisher.sync()
    state.delete(node("node-a"))
    assert publisher.sync().deleted == 1
    assert set(stored(kube_api)) == {"node-b-netsched.io"}
    state.delete(report("node-b"))
    assert publisher.sync().deleted == 1
    assert stored(kube_api) == {}


def test_only_our_drivers_slices_are_touched(kube_api, publisher):
    theirs = {"apiVersion": dra.GROUP_VERSION, "kind": "ResourceSlice", "metadata": {"name": "gpu-node-a"},
              "spec": {"driver": "gpu.example.com", "nodeName": "node-a",
                       "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1}, "devices": []}}
    stale = {**theirs, "metadata": {"name": "node-a-netsched.io-old"},
             "spec": {**theirs["spec"], "driver": dra.DRIVER}}
    kube_api.seed(SLICES, theirs)
    kube_api.seed(SLICES, stale)
    result = publisher.sync()
    assert (result.created, result.deleted) == (2, 1)  # one slice per pool: the stray one goes
    assert set(stored(kube_api)) == {"gpu-node-a", "node-a-netsched.io", "node-b-netsched.io"}


def test_a_write_that_loses_a_race_is_written_again_next_time(kube_api, publisher, state):
    publisher.sync()
    state.upsert(report("node-a", speed_mbps=25_000))
    # another writer changed the slice after our list: our PUT carries a stale resourceVersion
    original = kube_api.fault

    def bump_first(method: str, path: str):
        if method == "PUT":
            kube_api.fault = original
            obj = kube_api.get(f"{SLICES}/node-a-netsched.io")
            obj["metadata"]["labels"] = {"touched": "yes"}
            kube_api.handle("PUT", f"{SLICES}/node-a-netsched.io", "application/json", obj)
        return None

    kube_api.fault = bump_first
    result = publisher.sync()
    assert (result.updated, result.conflicts) == (0, 1)
    assert stored(kube_api)["node-a-netsched.io"].spec.pool.generation == 1
    assert publisher.sync().updated == 1  # due again at once, from a new list
    assert stored(kube_api)["node-a-netsched.io"].spec.pool.generation == 2


def test_a_replica_that_is_not_the_leader_writes_nothing(kube_api, state, kube_client):
    leading = False
    publisher = SlicePublisher(state, kube_client, may_write=lambda: leading)
    assert publisher.sync() is None
    assert kube_api.requests == []
    leading = True
    assert publisher.sync().created == 2


def run_for(publisher: SlicePublisher, seconds: float) -> threading.Thread:
    stopping = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stopping, 0.05), daemon=True)
    thread.start()
    time.sleep(seconds)
    alive = thread.is_alive()
    stopping.set()
    thread.join(timeout=5)
    assert alive and not thread.is_alive()
    return thread


def test_an_api_server_without_resource_k8s_io_v1_is_said_once_and_nothing_crashes(
    kube_api, publisher, caplog
):
    kube_api.fault = lambda method, path: (
        ApiError(404, "NotFound", "the server could not find the requested resource")
        if path.startswith("/apis/resource.k8s.io/") else None
    )
    with caplog.at_level(logging.INFO, logger="scheduler_extender.slices"):
        run_for(publisher, 0.3)
    lines = [r for r in caplog.records if r.name == "scheduler_extender.slices"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "does not serve resource.k8s.io/v1 resourceslices (404" in lines[0].getMessage()
    assert "looking again every 300s" in lines[0].getMessage()
    assert len([r for r in kube_api.requests if "resource.k8s.io" in r.path]) == 1  # no retry storm


def test_rbac_refusal_is_said_once_with_what_to_apply(kube_api, publisher, caplog):
    kube_api.fault = lambda method, path: (
        ApiError(403, "Forbidden", 'resourceslices.resource.k8s.io is forbidden: User "x" cannot list')
        if "resourceslices" in path else None
    )
    with caplog.at_level(logging.WARNING, logger="scheduler_extender.slices"):
        run_for(publisher, 0.3)
    lines = [r.getMessage() for r in caplog.records if r.name == "scheduler_extender.slices"]
    assert len(lines) == 1 and "deploy/dra/" in lines[0] and "403" in lines[0]
    assert len([r for r in kube_api.requests if "resourceslices" in r.path]) > 1  # it keeps trying


def test_netsched_serve_publishes_as_the_leader(kube_api, tmp_path):
    """The flag end to end: ``netsched serve --kubernetes --leader-elect
    --publish-resource-slices`` takes the Lease, then writes one slice per node."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from tests.kubernetes.conftest import NODE_NETWORKS, NODES, node_network_object, node_object

    for name in ("node-00", "node-01"):
        kube_api.seed(NODES, node_object(name))
        kube_api.seed(NODE_NETWORKS, node_network_object(name))
    kubeconfig = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "netsched.cli", "serve", "--kubernetes", "--kubeconfig", str(kubeconfig),
         "--port", str(port), "--leader-elect", "--identity", "r1", "--publish-resource-slices"],
        cwd=Path(__file__).resolve().parents[2], stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while len(stored(kube_api)) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert set(stored(kube_api)) == {"node-00-netsched.io", "node-01-netsched.io"}, log.read_text()
        uid = kube_api.get(f"{NODES}/node-00")["metadata"]["uid"]
        assert stored(kube_api)["node-00-netsched.io"].metadata.owner_references[0]["uid"] == uid
        lease = kube_api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/netsched-extender")
        assert lease["spec"]["holderIdentity"] == "r1"
    finally:
        process.terminate()
        process.wait(timeout=15)
