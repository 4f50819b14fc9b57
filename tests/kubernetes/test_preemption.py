"""Bandwidth preemption on stock kube-scheduler: netsched evicts, nominates, and the pod binds.

The scene is the one a real kube-scheduler v1.36 left Pending forever: a node's 9G usable held
by nine 1G pods of priority 10, and a pod of priority 100000 asking 3G. kube-scheduler never
calls ``/preempt`` for it (its own filters need no victim there), so the extender's filter
refusal starts netsched's own preemption. The in-test API server answers the Eviction API as
kube-apiserver v1.36 does (PodDisruptionBudgets, graceful deletion); the kubelet's part — the
deletion finishing after the grace period — is done by the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bandwidth_accounting.requirements import parse_requirements
from bandwidth_accounting.settings import FitSettings
from contract.objects import Pod
from scheduler_extender.preemption import DisruptionBudget, Preemptor, Room, select_victims
from tests.kubernetes.conftest import (
    PODS,
    Served,
    bind_body,
    pod_object,
    seed_nodes,
    wait_until,
)

PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
EVICTIONS = "/eviction"


def post(url: str, verb: str, body: dict) -> dict:
    return httpx.post(f"{url}/{verb}", json=body, timeout=20).json()


def pod_with(name: str, egress: str, priority: int, **extra: Any) -> dict[str, Any]:
    pod = pod_object(name, egress)
    pod["spec"]["priority"] = priority
    for key, value in extra.items():
        if key == "labels":
            pod["metadata"]["labels"] = value
        else:
            pod["spec"][key] = value
    return pod


@pytest.fixture
def preempting(serve, client_for) -> Iterator[Callable[[], tuple[Served, Preemptor]]]:
    made: list[Preemptor] = []

    def start() -> tuple[Served, Preemptor]:
        served = serve()
        preemptor = Preemptor(client_for(), served.extender.scheduler)
        served.extender.refusal_listeners.append(preemptor)
        preemptor.start()
        made.append(preemptor)
        return served, preemptor

    yield start
    for preemptor in made:
        preemptor.stop()


def fill_node(kube_api, served: Served, count: int = 9, priority: int = 10, **extra: Any) -> list[dict]:
    """``count`` 1G pods bound to node-00 through the extender (the ledger holds them)."""
    pods = [kube_api.seed(PODS, pod_with(f"low-{i}", "1G", priority, **extra)) for i in range(count)]
    wait_until(lambda: all(served.extender.state.pod(p["metadata"]["uid"]) for p in pods), what="pods")
    for pod in pods:
        assert post(served.url, "bind", bind_body(pod, "node-00")) == {"Error": ""}
    wait_until(lambda: len(served.extender.state.ledger.holdings_on("node-00")) == count, what="ledger")
    return pods


def seed_db_budget(kube_api, healthy: int, desired: int) -> None:
    """A budget over the ``app=db`` pods, as the disruption controller computed it."""
    kube_api.seed(PDBS, {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "db"},
        "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": "db"}}},
        "status": {"observedGeneration": 1, "disruptionsAllowed": healthy - desired,
                   "desiredHealthy": desired, "currentHealthy": healthy},
    })


def filter_body(pod: dict[str, Any]) -> dict[str, Any]:
    return {"Pod": pod, "Nodes": None, "NodeNames": ["node-00"]}


def evictions(kube_api) -> list[str]:
    return [r.path.split("/")[-2] for r in kube_api.requests if r.path.endswith(EVICTIONS)]


def deleting(kube_api) -> list[str]:
    return sorted(
        p["metadata"]["name"] for p in kube_api.list_objects(PODS)
        if p["metadata"].get("deletionTimestamp")
    )


def finish_deletions(kube_api) -> None:
    """The kubelet's part: the evicted pods' grace period is over, the pods go."""
    for name in deleting(kube_api):
        kube_api.delete(f"{PODS}/{name}")


def test_lower_priority_holders_are_evicted_the_node_nominated_and_the_pod_binds(
    kube_api, preempting
):
    seed_nodes(kube_api, 1)  # 10G: 9G usable
    served, preemptor = preempting()
    low = fill_node(kube_api, served)
    vip = kube_api.seed(PODS, pod_with("vip", "3G", 100_000))
    wait_until(lambda: served.extender.state.pod(vip["metadata"]["uid"]), what="vip")

    refused = post(served.url, "filter", filter_body(vip))
    assert refused["NodeNames"] == [] and "node-00" in refused["FailedNodes"]
    wait_until(lambda: preemptor.records, what="a preemption")
    (record,) = preemptor.records
    assert record.node == "node-00" and not record.error
    # the fewest: 6 x 1G + 3G fit in 9G, so three go, evicted through the Eviction API
    assert len(record.evicted) == 3 and len(set(evictions(kube_api))) == 3
    assert deleting(kube_api) == sorted(k.split("/")[1] for k in record.evicted)
    stored = kube_api.get(f"{PODS}/vip")
    assert stored["status"]["nominatedNodeName"] == "node-00"
    assert not stored["spec"].get("nodeName")

    # while the victims run out their grace period the pod still waits, and nothing more goes
    assert post(served.url, "filter", filter_body(vip))["NodeNames"] == []
    wait_until(lambda: len(preemptor.records) == 2, what="a second look")
    assert preemptor.records[1].evicted == [] and len(set(evictions(kube_api))) == 3

    finish_deletions(kube_api)
    wait_until(lambda: len(served.extender.state.ledger.holdings_on("node-00")) == 6, what="room")
    vip = kube_api.get(f"{PODS}/vip")
    assert post(served.url, "filter", filter_body(vip))["NodeNames"] == ["node-00"]
    assert post(served.url, "bind", bind_body(vip, "node-00")) == {"Error": ""}
    assert kube_api.get(f"{PODS}/vip")["spec"]["nodeName"] == "node-00"
    survivors = {p["metadata"]["name"] for p in kube_api.list_objects(PODS)} - {"vip"}
    assert len(survivors) == 6 and survivors < {p["metadata"]["name"] for p in low}


def test_pods_a_disruption_budget_protects_are_not_chosen(kube_api, preempting):
    seed_nodes(kube_api, 1)
    served, preemptor = preempting()
    guarded = fill_node(kube_api, served, count=5, labels={"app": "db"})
    others = [kube_api.seed(PODS, pod_with(f"web-{i}", "1G", 10)) for i in range(4)]
    wait_until(lambda: all(served.extender.state.pod(p["metadata"]["uid"]) for p in others), what="pods")
    for pod in others:
        assert post(served.url, "bind", bind_body(pod, "node-00")) == {"Error": ""}
    seed_db_budget(kube_api, healthy=5, desired=5)
    vip = kube_api.seed(PODS, pod_with("vip", "4G", 1000))
    wait_until(lambda: served.extender.state.pod(vip["metadata"]["uid"]), what="vip")
    post(served.url, "filter", filter_body(vip))
    wait_until(lambda: preemptor.records, what="a preemption")
    (record,) = preemptor.records
    # four must go; only the four unguarded pods can
    assert sorted(record.evicted) == sorted(f"default/web-{i}" for i in range(4))
    assert not {p["metadata"]["name"] for p in guarded} & set(evictions(kube_api))


@pytest.mark.parametrize(
    ("name", "ask", "priority", "policy"),
    [
        ("never", "3G", 100_000, "Never"),       # preemptionPolicy: Never waits
        ("equal", "3G", 10, None),               # equal priority: never a victim
        ("too-big", "9500M", 100_000, None),     # would not fit even on an empty link
    ],
)
def test_nothing_is_evicted_when_preemption_may_not_or_cannot_help(
    kube_api, preempting, name, ask, priority, policy
):
    seed_nodes(kube_api, 1)
    served, preemptor = preempting()
    fill_node(kube_api, served)
    extra = {"preemptionPolicy": policy} if policy else {}
    pod = kube_api.seed(PODS, pod_with(name, ask, priority, **extra))
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="pod")
    assert post(served.url, "filter", filter_body(pod))["NodeNames"] == []
    time.sleep(0.5)  # the preemptor would have acted by now
    assert not preemptor.records
    assert evictions(kube_api) == [] and deleting(kube_api) == []
    assert "nominatedNodeName" not in (kube_api.get(f"{PODS}/{name}").get("status") or {})


def test_nothing_is_evicted_when_the_budgets_forbid_enough_evictions(kube_api, preempting):
    seed_nodes(kube_api, 1)
    served, preemptor = preempting()
    fill_node(kube_api, served, labels={"app": "db"})
    seed_db_budget(kube_api, healthy=9, desired=7)
    vip = kube_api.seed(PODS, pod_with("vip", "3G", 100_000))  # needs three to go
    wait_until(lambda: served.extender.state.pod(vip["metadata"]["uid"]), what="vip")
    post(served.url, "filter", filter_body(vip))
    wait_until(lambda: preemptor.records, what="a look")
    assert preemptor.records[0].node is None
    assert evictions(kube_api) == [] and deleting(kube_api) == []


# -- the choice itself, as kube-scheduler's default preemption makes it ---------------------


def holdings_scene(served: Served) -> tuple[Room, dict[str, Pod]]:
    state = served.extender.state
    requirements = parse_requirements({"kubernetes.io/egress-bandwidth": "3G"})
    room = Room(requirements, "node-00", state.topology, state.ledger, datetime.now(UTC),
                FitSettings())
    return room, {(p.metadata.uid or p.key): p for p in state.pods()}


def test_victims_are_the_lowest_priority_and_never_equal_or_higher(kube_api, serve):
    seed_nodes(kube_api, 1)
    served = serve()
    pods = [kube_api.seed(PODS, pod_with(f"p{prio}", "1500M", prio)) for prio in (1, 2, 3, 4, 5, 6)]
    wait_until(lambda: all(served.extender.state.pod(p["metadata"]["uid"]) for p in pods), what="pods")
    for pod in pods:
        assert post(served.url, "bind", bind_body(pod, "node-00")) == {"Error": ""}
    room, by_uid = holdings_scene(served)
    # 9G held in six 1.5G pods; 3G needs two of them gone: the two least important
    victims = select_victims(room, 5, by_uid)
    assert [h.pod for h in victims] == ["default/p1", "default/p2"]
    # priority 2 may only take p1 (1.5G): not enough, so nothing
    assert select_victims(room, 2, by_uid) is None
    # a budget over all of them allowing two disruptions: taken most important first, p4 and p3
    # use them up and p2, p1 would break it, so kube-scheduler reprieves p2 and p1 first
    budget = DisruptionBudget.model_validate({
        "metadata": {"name": "b", "namespace": "default", "generation": 1},
        "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}},
        "status": {"observedGeneration": 1, "disruptionsAllowed": 2},
    })
    assert [h.pod for h in select_victims(room, 5, by_uid, [budget])] == ["default/p3", "default/p4"]
    budget.status.disruptions_allowed = 1  # two must go, one may
    assert select_victims(room, 5, by_uid, [budget]) is None
