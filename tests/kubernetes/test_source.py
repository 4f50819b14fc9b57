"""The Kubernetes source follows the API: initial list, events, 410 relists, drops and 500s."""

from __future__ import annotations

import json
import random
import threading
import time

from contract import annotations as ann
from contract.objects import Pod
from scheduler_extender.kubernetes_source import WATCHED_RESOURCES, KubernetesClusterSource
from scheduler_extender.state import ClusterState
from tests.kube_api import ApiError, FakeKubeAPI
from tests.kubernetes.conftest import (
    NETWORKS,
    NODE_NETWORKS,
    NODES,
    PODS,
    node_network_object,
    node_object,
    pod_object,
    seed_nodes,
    wait_until,
)


def reservation_json(node: str, egress: int = 300_000_000) -> str:
    return json.dumps(
        {
            "node": node,
            "primary": {"egress": egress},
            "primaryParent": "eth0",
            "interfaces": {"eth0": {"ingress": 0, "egress": egress}},
        }
    )


def bound_pod(name: str, node: str, phase: str = "Running") -> dict:
    pod = pod_object(name)
    pod["metadata"]["annotations"][ann.RESERVATION] = reservation_json(node)
    pod["spec"]["nodeName"] = node
    pod["status"]["phase"] = phase
    return pod


STORAGE = {
    "apiVersion": "netsched.io/v1alpha1",
    "kind": "Network",
    "metadata": {"name": "storage"},
    "spec": {"mode": "vlan", "vlan": 100, "subnet": "10.20.0.0/16"},
}


def truth(api: FakeKubeAPI) -> dict[str, object]:
    """What the API holds, in the shape the state holds it, for convergence checks."""
    return {
        "nodes": sorted(o["metadata"]["name"] for o in api.list_objects(NODES)),
        "node_networks": sorted(o["metadata"]["name"] for o in api.list_objects(NODE_NETWORKS)),
        "networks": sorted(o["metadata"]["name"] for o in api.list_objects(NETWORKS)),
        "pods": sorted(
            (o["metadata"]["uid"], o["metadata"]["resourceVersion"])
            for o in api.list_objects("/api/v1/pods")
        ),
    }


def seen(state: ClusterState) -> dict[str, object]:
    topology = state.topology
    return {
        "nodes": sorted(state._nodes),
        "node_networks": sorted(topology.node_networks),
        "networks": sorted(state._networks),
        "pods": sorted((p.metadata.uid, p.metadata.resource_version) for p in state.pods()),
    }


def test_start_lists_everything_and_rebuilds_the_ledger_from_bound_pods(kube_api, sources):
    seed_nodes(kube_api, 3)
    kube_api.seed(NETWORKS, STORAGE)
    holder = kube_api.seed(PODS, bound_pod("holder", "node-00"))
    kube_api.seed(PODS, bound_pod("finished", "node-01", phase="Succeeded"))
    kube_api.seed(PODS, bound_pod("failed", "node-01", phase="Failed"))
    pending = pod_object("pending")
    pending["metadata"]["annotations"][ann.RESERVATION] = reservation_json("node-02")
    kube_api.seed(PODS, pending)  # annotated mid-bind, never bound: holds nothing
    state = ClusterState()
    source = sources()
    source.start(state)
    assert state.ready.is_set()
    assert seen(state) == truth(kube_api)
    holdings = state.ledger.holdings()
    assert [(h.uid, h.node) for h in holdings] == [(holder["metadata"]["uid"], "node-00")]
    assert state.ledger.reserved("node-00", "eth0") == (0, 300_000_000)
    assert state.ledger.reserved("node-01", "eth0") == (0, 0)
    # lists are paged (FAST pages hold 50): every page was asked with a limit
    lists = [r.path for r in kube_api.requests if "limit=" in r.path]
    assert len(lists) == WATCHED_RESOURCES
    assert any(path.startswith("/apis/k8s.cni.cncf.io/v1/network-attachment-definitions?") for path in lists)


def test_events_move_the_topology_and_the_ledger(kube_api, sources):
    seed_nodes(kube_api, 2)
    state = ClusterState()
    source = sources()
    source.start(state)
    # a new node and its report
    kube_api.seed(NODES, node_object("node-new"))
    kube_api.seed(NODE_NETWORKS, node_network_object("node-new", 25_000))
    wait_until(lambda: "node-new" in state.topology.nodes, what="the new node")
    assert state.ledger.usable("node-new", "eth0") == (22_500_000_000, 22_500_000_000)
    # a network appears, then goes
    kube_api.seed(NETWORKS, STORAGE)
    wait_until(lambda: "storage" in state._networks, what="the network")
    kube_api.delete(f"{NETWORKS}/storage")
    wait_until(lambda: "storage" not in state._networks, what="the network's deletion")
    # a bound pod holds; finishing releases; a deleted pod releases
    for name, node in (("a", "node-00"), ("b", "node-01")):
        kube_api.seed(PODS, bound_pod(name, node))
    wait_until(lambda: len(state.ledger.holdings()) == 2, what="two holdings")
    kube_api.handle(
        "PATCH",
        f"{PODS}/a/status",
        "application/merge-patch+json",
        {"status": {"phase": "Succeeded"}},
    )
    wait_until(lambda: state.ledger.reserved("node-00", "eth0") == (0, 0), what="a's release")
    kube_api.delete(f"{PODS}/b")
    wait_until(lambda: state.ledger.holdings() == [], what="b's release")
    assert seen(state) == truth(kube_api)


def test_bookmarks_move_the_resume_point_without_changes(kube_api, sources):
    seed_nodes(kube_api, 1)
    kube_api.bookmark_interval = 0.2
    state = ClusterState()
    source = sources()
    source.start(state)
    kube_api.seed("/api/v1/namespaces/other/configmaps", {"metadata": {"name": "unrelated"}})
    revision = str(kube_api.revision)
    wait_until(
        lambda: set(source.resource_versions().values()) == {revision},
        what="every watch bookmarked at the newest revision",
    )


def test_410_gone_relists_and_converges(kube_api, sources):
    seed_nodes(kube_api, 2)
    for name in ("a", "b", "c"):
        kube_api.seed(PODS, bound_pod(name, "node-00"))
    state = ClusterState()
    source = sources()
    source.start(state)
    wait_until(lambda: kube_api.open_watches == WATCHED_RESOURCES, what="a watch per kind")
    # The watch cache moves on without us: changes we never see as events, then 410.
    kube_api.pause()
    kube_api.delete(f"{PODS}/a")
    kube_api.seed(PODS, bound_pod("d", "node-01"))
    kube_api.handle(
        "PATCH", f"{PODS}/b/status", "application/merge-patch+json", {"status": {"phase": "Failed"}}
    )
    kube_api.delete(f"{NODES}/node-01")
    kube_api.compact()
    kube_api.resume()
    wait_until(lambda: seen(state) == truth(kube_api), what="convergence after 410")
    assert source.relists >= 1
    assert {h.pod for h in state.ledger.holdings()} == {"default/c", "default/d"}
    # c did not change: what the source knows of it for a later deletion is the object the
    # state holds, not a second copy from the new listing.
    pods = next(resource for resource in source._resources if resource.model is Pod)
    unchanged = state.pod(kube_api.get(f"{PODS}/c")["metadata"]["uid"])
    assert next(pod for pod in pods.known.values() if pod.metadata.name == "c") is unchanged
    gone = [r for r in kube_api.requests if "watch=true" in r.path]
    assert gone, "the source watched"


def test_open_watches_told_410_relist(kube_api, sources):
    seed_nodes(kube_api, 1)
    state = ClusterState()
    source = sources()
    source.start(state)
    wait_until(lambda: kube_api.open_watches == WATCHED_RESOURCES, what="a watch per kind")
    kube_api.seed(PODS, bound_pod("before", "node-00"))
    kube_api.expire_watches()
    kube_api.seed(PODS, bound_pod("after", "node-00"))
    wait_until(lambda: seen(state) == truth(kube_api), what="convergence after expiry")
    assert source.relists >= 1


def test_dropped_streams_resume_from_the_last_version_without_a_relist(kube_api, sources):
    seed_nodes(kube_api, 1)
    state = ClusterState()
    source = sources()
    source.start(state)
    for round_ in range(3):
        wait_until(lambda: kube_api.open_watches == WATCHED_RESOURCES, what="a watch per kind")
        kube_api.seed(PODS, bound_pod(f"p{round_}", "node-00"))
        kube_api.drop_watches()
        kube_api.seed(PODS, bound_pod(f"q{round_}", "node-00"))
    wait_until(lambda: seen(state) == truth(kube_api), what="convergence after drops")
    assert source.relists == 0
    assert len(state.ledger.holdings()) == 6
    resumed = [r.path for r in kube_api.requests if "watch=true" in r.path and "/pods" in r.path]
    assert all("resourceVersion=" in path for path in resumed)


def test_500s_for_a_while_then_recovery(kube_api, sources):
    seed_nodes(kube_api, 1)
    state = ClusterState()
    source = sources()
    source.start(state)
    wait_until(lambda: kube_api.open_watches == WATCHED_RESOURCES, what="a watch per kind")
    failures = []

    def internal_error(method: str, path: str):
        failures.append(path)
        return ApiError(500, "InternalError", "etcdserver: request timed out")

    kube_api.fault = internal_error
    kube_api.drop_watches()
    kube_api.seed(PODS, bound_pod("during", "node-00"))  # seeded directly: no fault
    wait_until(lambda: len(failures) >= 8, what="the source to keep retrying")
    kube_api.fault = None
    kube_api.seed(PODS, bound_pod("after", "node-00"))
    wait_until(lambda: seen(state) == truth(kube_api), what="convergence after 500s")
    assert len(state.ledger.holdings()) == 2


def test_start_waits_for_an_unreachable_api(kube_api, sources):
    seed_nodes(kube_api, 1)
    kube_api.pause()
    state = ClusterState()
    source: KubernetesClusterSource = sources()
    starter = threading.Thread(target=source.start, args=(state,), daemon=True)
    starter.start()
    starter.join(0.5)
    assert starter.is_alive() and not state.ready.is_set()
    kube_api.resume()
    starter.join(10)
    assert state.ready.is_set() and seen(state) == truth(kube_api)


def test_objects_that_do_not_validate_are_ignored_not_fatal(kube_api, sources):
    seed_nodes(kube_api, 1)
    bad = dict(STORAGE, metadata={"name": "bad"}, spec={"mode": "vlan", "vlan": 5000})
    kube_api.seed(NETWORKS, bad)
    state = ClusterState()
    source = sources()
    source.start(state)
    assert "bad" not in state._networks
    kube_api.seed(NETWORKS, STORAGE)
    wait_until(lambda: "storage" in state._networks, what="the valid network")
    # a valid object that turns invalid is forgotten
    kube_api.handle(
        "PATCH", f"{NETWORKS}/storage", "application/merge-patch+json", {"spec": {"vlan": 0}}
    )
    wait_until(lambda: "storage" not in state._networks, what="the invalid network forgotten")
    assert isinstance(state.pods(), list) and all(isinstance(p, Pod) for p in state.pods())


def test_converges_after_a_storm_of_changes_and_faults(kube_api, sources):
    """Changes keep coming while watches are cut, the API answers 500s and history is
    compacted under open watches; once the storm passes the state equals the API's."""
    rng = random.Random(7)
    seed_nodes(kube_api, 3)
    state = ClusterState()
    source = sources()
    source.start(state)
    stop = threading.Event()

    def writer() -> None:
        alive: list[str] = []
        for step in range(400):
            if stop.is_set():
                return
            roll = rng.random()
            if roll < 0.5 or not alive:
                name = f"w{step}"
                kube_api.seed(PODS, bound_pod(name, f"node-0{rng.randrange(3)}"))
                alive.append(name)
            elif roll < 0.75:
                name = rng.choice(alive)
                kube_api.handle(
                    "PATCH",
                    f"{PODS}/{name}/status",
                    "application/merge-patch+json",
                    {"status": {"phase": rng.choice(["Running", "Succeeded", "Failed"])}},
                )
            elif roll < 0.95:
                name = alive.pop(rng.randrange(len(alive)))
                kube_api.delete(f"{PODS}/{name}")
            else:
                kube_api.handle(
                    "PATCH",
                    f"{NODE_NETWORKS}/node-0{rng.randrange(3)}/status",
                    "application/merge-patch+json",
                    {"status": {"switch": f"tor-{step}"}},
                )
            time.sleep(0.005)

    thread = threading.Thread(target=writer)
    thread.start()

    def answer_500s() -> None:
        kube_api.fault = lambda method, path: ApiError(500, "InternalError", "storm")
        time.sleep(0.2)
        kube_api.fault = None

    # Every kind of fault strikes, in turn, for as long as the writer runs (and at least
    # twice each, however fast the writer is): the schedule is not left to chance.
    faults = [answer_500s, kube_api.drop_watches, kube_api.expire_watches, kube_api.compact]
    struck = 0
    while thread.is_alive() or struck < 2 * len(faults):
        faults[struck % len(faults)]()
        struck += 1
        time.sleep(0.1)
    thread.join()
    wait_until(
        lambda: seen(state) == truth(kube_api), timeout=20, what="convergence after the storm"
    )
    bound = {
        o["metadata"]["uid"]
        for o in kube_api.list_objects("/api/v1/pods")
        if o["status"]["phase"] == "Running"
    }
    assert {h.uid for h in state.ledger.holdings()} == bound
    switches = {
        o["metadata"]["name"]: o["status"].get("switch")
        for o in kube_api.list_objects(NODE_NETWORKS)
    }
    assert {n: state.topology.node_networks[n].status.switch for n in switches} == switches
    assert source.relists >= 1


def test_resync_rebuilds_everything_and_the_watches_go_on_from_there(kube_api, sources):
    seed_nodes(kube_api, 2)
    kube_api.seed(PODS, bound_pod("a", "node-00"))
    state = ClusterState()
    source = sources()
    source.start(state)
    wait_until(lambda: kube_api.open_watches == WATCHED_RESOURCES, what="a watch per kind")
    watches_before = sum(1 for r in kube_api.requests if "watch=true" in r.path)
    state.ledger.release(state.ledger.holdings()[0].uid)  # the ledger drifted somehow
    source.resync()
    assert [h.pod for h in state.ledger.holdings()] == ["default/a"]
    wait_until(
        lambda: sum(1 for r in kube_api.requests if "watch=true" in r.path) >= watches_before + 4,
        what="every watch restarted from the new snapshot",
    )
    kube_api.seed(PODS, bound_pod("b", "node-01"))
    wait_until(lambda: seen(state) == truth(kube_api), what="events after the resync")
    assert {h.pod for h in state.ledger.holdings()} == {"default/a", "default/b"}


def test_a_stop_during_start_is_final(kube_api, sources):
    """A process stopped while it retries an unreachable API (a pod deleted during start-up)
    starts no watch thread afterwards, whenever the stop comes."""
    seed_nodes(kube_api, 1)
    kube_api.pause()
    source: KubernetesClusterSource = sources()
    starter = threading.Thread(target=source.start, args=(ClusterState(),), daemon=True)
    starter.start()
    starter.join(0.5)
    assert starter.is_alive()
    source.stop()
    kube_api.resume()  # the list in flight may now succeed: still no watch
    starter.join(10)
    assert not starter.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("watch-")]

    early: KubernetesClusterSource = sources()
    early.stop()
    early.start(ClusterState())  # returns at once, follows nothing
    assert not [t for t in threading.enumerate() if t.name.startswith("watch-")]
