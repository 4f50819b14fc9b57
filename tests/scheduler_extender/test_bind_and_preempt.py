"""Bind is authoritative: atomic check-and-reserve, then one Binding carrying the reservation."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from ipaddress import IPv4Address

import httpx
import pytest

from bandwidth_accounting.fit import reservation_for
from bandwidth_accounting.requirements import parse_requirements
from contract import annotations as ann
from contract.objects import Network, Pod
from contract.reservation import Reservation
from scheduler_extender import scheduler as scheduler_module
from scheduler_extender.cluster import BindConflict
from scheduler_extender.keyed_lock import KeyedLock
from tests.conftest import make_pod
from tests.interleaving import Schedule


def bind_body(pod: Pod, node: str) -> dict:
    return {"PodName": pod.metadata.name, "PodNamespace": pod.metadata.namespace,
            "PodUID": pod.metadata.uid, "Node": node}


def test_fifty_concurrent_binds_racing_for_one_interface(served, extender, source):
    """node-a-1 eth1 (storage trunk) is 25G, 22.5G usable: exactly 11 pods of 2G fit."""
    pods = [source.apply(make_pod(f"racer-{i}", {ann.NETWORKS: json.dumps(
        [{"name": "storage", "ingress": "2G", "egress": "100M"}])})) for i in range(50)]
    base_url = str(served.base_url)

    def bind(pod: Pod) -> str:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            return client.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        errors = list(pool.map(bind, pods))
    won = [pod for pod, error in zip(pods, errors, strict=True) if not error]
    assert len(won) == 11
    for error in filter(None, errors):
        assert "no longer fits node-a-1" in error and "eth1 ingress" in error
    ledger = extender.state.ledger
    assert ledger.reserved("node-a-1", "eth1") == (22_000_000_000, 1_100_000_000)
    assert ledger.reserved("node-a-1", "eth1")[0] <= ledger.usable("node-a-1", "eth1")[0]
    bound = [p for p in source.snapshot().pods if p.spec.node_name == "node-a-1"]
    assert {p.metadata.uid for p in bound} == {p.metadata.uid for p in won}
    addresses = [json.loads(p.metadata.annotations[ann.RESERVATION])["attachments"][0]["ip"] for p in bound]
    assert len(set(addresses)) == 11
    assert extender.metrics.registry.get_sample_value("netsched_bind_conflicts_total") == 39


def test_bind_of_an_unknown_pod_is_an_error_not_a_crash(served):
    result = served.post("/bind", json={"PodName": "ghost", "PodNamespace": "default", "PodUID": "nope",
                                        "Node": "node-a-1"})
    assert result.status_code == 200
    assert result.json() == {"Error": "pod default/ghost does not exist"}


def test_failed_binding_releases_the_reservation(served, extender, source, monkeypatch):
    """The reservation is taken and carried by the Binding; then the API server refuses it."""
    pod = source.apply(make_pod("lost", {ann.EGRESS_BANDWIDTH: "1G"}))
    reached = []

    def refuse(bound: Pod, node: str, annotations: dict[str, str]) -> None:
        reached.append((bound.metadata.uid, node, json.loads(annotations[ann.RESERVATION])["node"]))
        assert extender.state.ledger.reserved("node-a-1", "eth0") == (0, 1_000_000_000)
        raise BindConflict('pod lost is already assigned to node "node-a-2"')

    monkeypatch.setattr(source, "bind", refuse)
    error = served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"]
    assert reached == [(pod.metadata.uid, "node-a-1", "node-a-1")]
    assert error == 'binding failed: pod lost is already assigned to node "node-a-2"'
    assert extender.state.ledger.holdings() == []
    assert extender.state.ledger.reserved("node-a-1", "eth0") == (0, 0)
    assert ann.RESERVATION not in source.get(Pod, pod.key).metadata.annotations  # one write, refused
    assert extender.metrics.registry.get_sample_value("netsched_bind_conflicts_total") == 1  # a lost race
    *_, decision = extender.scheduler.decisions  # what the dashboard and `netsched explain` show
    assert (decision.verb, decision.pod, decision.node, decision.error) == ("bind", "default/lost", "node-a-1", error)
    assert isinstance(decision.time, datetime)


def test_deleting_a_bound_pod_releases_its_reservation(served, extender, source):
    pod = source.apply(make_pod("short", {ann.INGRESS_BANDWIDTH: "3G"}))
    assert served.post("/bind", json=bind_body(pod, "node-b-1")).json()["Error"] == ""
    assert extender.state.ledger.reserved("node-b-1", "eth0") == (3_000_000_000, 0)
    source.remove(source.get(Pod, pod.key))
    assert extender.state.ledger.reserved("node-b-1", "eth0") == (0, 0)


def test_finished_pods_release_and_restart_rebuilds_the_same_ledger(served, extender, source):
    pods = [source.apply(make_pod(f"job-{i}", {ann.INGRESS_BANDWIDTH: "1G", ann.NETWORKS: "storage"}))
            for i in range(6)]
    for index, pod in enumerate(pods):
        assert served.post("/bind", json=bind_body(pod, f"node-c-{index % 4 + 1}")).json()["Error"] == ""
    done = source.get(Pod, pods[0].key).model_copy(deep=True)
    done.status = done.status.model_copy(update={"phase": "Succeeded"})
    source.apply(done)
    before = {h.uid: h.reservation for h in extender.state.ledger.holdings()}
    assert len(before) == 5

    from scheduler_extender.extender import Extender

    restarted = Extender.build(source)
    source.start(restarted.state)
    assert {h.uid: h.reservation for h in restarted.state.ledger.holdings()} == before


def test_preempt_adds_lower_priority_bandwidth_holders_until_the_pod_fits(served, extender, source):
    holders = []
    for name, rate, priority in (("a", "10G", 10), ("b", "8G", 5), ("c", "4G", 1)):
        pod = source.apply(make_pod(name, {ann.EGRESS_BANDWIDTH: rate}, priority=priority))
        assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""
        holders.append(pod)
    a, b, c = (p.metadata.uid for p in holders)
    high = make_pod("vip", {ann.EGRESS_BANDWIDTH: "9G"}, priority=100)
    body = {
        "Pod": high.model_dump(mode="json"),
        "NodeNameToVictims": None,
        "NodeNameToMetaVictims": {
            "node-a-1": {"Pods": [{"UID": c}], "NumPDBViolations": 0},
            "node-c-1": {"Pods": [], "NumPDBViolations": 0},
        },
    }
    result = served.post("/preempt", json=body).json()
    # 22.5G usable, 22G held: freeing c (4G) leaves 4.5G; the next cheapest is b (8G) → 12.5G ≥ 9G.
    assert result == {"NodeNameToMetaVictims": {
        "node-a-1": {"Pods": [{"UID": c}, {"UID": b}], "NumPDBViolations": 0},
        "node-c-1": {"Pods": [], "NumPDBViolations": 0},
    }}
    assert a not in json.dumps(result)


def test_preempt_drops_nodes_where_no_victims_suffice(served, source):
    pod = source.apply(make_pod("top", {ann.EGRESS_BANDWIDTH: "20G"}, priority=1000))
    assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""  # 25G link
    vip = make_pod("vip", {ann.EGRESS_BANDWIDTH: "9G"}, priority=100)
    body = {"Pod": vip.model_dump(mode="json"), "NodeNameToVictims": None,
            "NodeNameToMetaVictims": {"node-a-1": {"Pods": [], "NumPDBViolations": 0}}}
    assert served.post("/preempt", json=body).json() == {"NodeNameToMetaVictims": {}}


def test_a_retried_bind_is_answered_and_keeps_the_reservation(served, extender, source):
    pod = source.apply(make_pod("retry", {ann.EGRESS_BANDWIDTH: "1G"}))
    before = datetime.now(UTC)
    assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""
    *_, decision = extender.scheduler.decisions  # what the dashboard and `netsched explain` show
    assert (decision.verb, decision.pod, decision.node, decision.error) == ("bind", "default/retry", "node-a-1", "")
    assert before <= decision.time <= datetime.now(UTC)
    # The reply was lost; kube-scheduler binds again.
    assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""
    assert extender.state.ledger.reserved("node-a-1", "eth0") == (0, 1_000_000_000)
    error = served.post("/bind", json=bind_body(pod, "node-a-2")).json()["Error"]
    assert error == "pod default/retry is already bound to node-a-1"
    assert extender.state.ledger.reserved("node-a-1", "eth0") == (0, 1_000_000_000)


def test_concurrent_binds_of_one_pod_charge_it_once(served, extender, source):
    pod = source.apply(make_pod("twice", {ann.EGRESS_BANDWIDTH: "2G", ann.NETWORKS: "storage"}))
    base_url = str(served.base_url)

    def bind(_: int) -> str:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            return client.post("/bind", json=bind_body(pod, "node-b-1")).json()["Error"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = list(pool.map(bind, range(8)))
    assert "" in errors
    assert extender.state.ledger.reserved("node-b-1", "eth0") == (0, 2_000_000_000)
    assert source.get(Pod, pod.key).spec.node_name == "node-b-1"
    assert len(extender.state.ledger.holdings()) == 1


@pytest.fixture
def schedule(extender, source, monkeypatch) -> Schedule:
    """Binds that stop where told: ``planned`` (``reservation_for`` returned: plan made,
    address picked, nothing taken yet) or ``binding`` (reserved, the Binding not yet
    written). The ledger's lock and each pod's bind lock report who has to wait for them.
    """
    schedule = Schedule()
    extender.state.ledger._lock = schedule.lock()
    extender.scheduler._binding = KeyedLock(schedule.lock)
    write_binding = source.bind

    def planned_then_pause(*args, **kwargs):
        reservation = reservation_for(*args, **kwargs)
        schedule.point("planned")
        return reservation

    def pause_then_bind(*args, **kwargs):
        schedule.point("binding")
        return write_binding(*args, **kwargs)

    monkeypatch.setattr(scheduler_module, "reservation_for", planned_then_pause)
    monkeypatch.setattr(source, "bind", pause_then_bind)
    return schedule


def retried_while_the_first_is_at(point: str, extender, source, schedule: Schedule) -> str:
    """Bind a pod asking 2G to node-b-1, stop that bind at ``point``, retry it, let both
    finish; check that the pod is bound there and holds the reservation its annotation
    records, charged once. What the retry did when the first was stopped is returned."""
    pod = source.apply(make_pod("retried", {ann.EGRESS_BANDWIDTH: "2G"}))
    bind = extender.scheduler.bind
    schedule.stop("first", at=point)
    schedule.start("first", bind, "default", "retried", pod.metadata.uid, "node-b-1")
    assert schedule.next_event("first") == "paused"
    schedule.start("retry", bind, "default", "retried", pod.metadata.uid, "node-b-1")
    retry_did = schedule.next_event("retry")
    schedule.finish()

    bound = source.get(Pod, pod.key)
    assert bound.spec.node_name == "node-b-1"
    holding = extender.state.ledger.holding(pod.metadata.uid)
    assert holding is not None
    assert holding.reservation.model_dump_json(exclude_none=True) == bound.metadata.annotations[ann.RESERVATION]
    assert extender.state.ledger.reserved("node-b-1", "eth0") == (0, 2_000_000_000)
    assert "first" in schedule.results and len(schedule.results) + len(schedule.errors) == 2
    assert len(extender.scheduler._binding) == 0  # no lock kept for a pod no bind is running for
    return retry_did


def test_a_bind_retried_while_the_first_is_planning_keeps_the_pod_s_reservation(extender, source, schedule):
    """kube-scheduler retries a bind whose reply it lost while the first is still running.

    The retry must wait for the first's check-and-reserve: if both could plan before
    either reserved, both would own the reservation, and the one whose Binding the API
    server refuses (the pod is bound by then) would release it from under the bound pod.
    """
    assert retried_while_the_first_is_at("planned", extender, source, schedule) == "blocked"


def test_a_retry_answered_while_the_first_bind_writes_its_binding_keeps_the_reservation(extender, source, schedule):
    """The first bind has reserved (the ledger's lock is free again) and not yet written its
    Binding when the retry arrives.

    If the retry could reuse the reservation and write its Binding first, the API server
    would refuse the first's (the pod is bound by then; the in-test source refuses a second
    Binding as kube-apiserver does) and the first would release the reservation from under
    the bound pod. Binds of one pod must run one at a time, Binding included; the retry,
    which then finds the pod bound, is answered with the same reservation.
    """
    assert retried_while_the_first_is_at("binding", extender, source, schedule) == "blocked"
    assert schedule.errors == {}
    assert schedule.results["first"] == schedule.results["retry"]


def test_two_pods_planning_addresses_at_once_get_different_ones(extender, source, schedule):
    """Address allocation is check-then-act: the first free address, then the reservation.

    B must not pick its address while A holds a picked but untaken one, or both pick the
    same and one bind fails although the network has addresses to spare.
    """
    pods = [source.apply(make_pod(name, {ann.NETWORKS: "storage"})) for name in ("a", "b")]
    bind = extender.scheduler.bind
    schedule.stop("a", at="planned")
    schedule.start("a", bind, "default", "a", pods[0].metadata.uid, "node-a-1")
    assert schedule.next_event("a") == "paused"
    schedule.start("b", bind, "default", "b", pods[1].metadata.uid, "node-a-2")
    b_did = schedule.next_event("b")
    schedule.finish()

    assert schedule.errors == {}
    addresses = {schedule.results[name].attachments[0].ip for name in ("a", "b")}
    assert len(addresses) == 2
    for pod in pods:
        annotated = json.loads(source.get(Pod, pod.key).metadata.annotations[ann.RESERVATION])
        assert annotated["attachments"][0]["ip"] in addresses
    assert b_did == "blocked"


def test_a_bind_to_another_node_while_the_pod_is_being_bound_is_a_conflict(served, extender, source):
    """A first bind has reserved on node-a-1 and not yet written the Binding; a second one
    for node-a-2 must neither take a second reservation nor release the first's."""
    pod = source.apply(make_pod("split", {ann.EGRESS_BANDWIDTH: "1G"}, priority=7))
    in_flight = extender.scheduler._reserve(pod, parse_requirements(pod.metadata.annotations), "node-a-1")
    error = served.post("/bind", json=bind_body(pod, "node-a-2")).json()["Error"]
    assert error == "default/split is being bound to node-a-1"
    ledger = extender.state.ledger
    holding = ledger.holding(pod.metadata.uid)
    assert holding.reservation == in_flight[0]
    # preemption reads who holds it and at which priority before the Binding's update arrives
    assert (holding.pod, holding.priority) == ("default/split", 7)
    assert ledger.reserved("node-a-2", "eth0") == (0, 0)
    assert extender.metrics.registry.get_sample_value("netsched_bind_conflicts_total") == 1
    assert source.get(Pod, pod.key).spec.node_name is None


def test_a_retried_bind_of_a_pod_that_asks_nothing_is_answered(served, extender, source):
    """The pod holds no reservation: the retry finds it bound and answers with nothing."""
    pod = source.apply(make_pod("plain"))
    for _ in range(2):
        assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""
    assert source.get(Pod, pod.key).spec.node_name == "node-a-1"
    assert extender.state.ledger.holdings() == []


def test_a_retry_that_reused_the_in_flight_reservation_releases_nothing_when_its_binding_is_refused(
    served, extender, source, monkeypatch
):
    """The first bind reserved on node-a-1 and its Binding is not in the watch yet; a retry for
    the same node reuses that reservation. When the API server refuses the retry's Binding
    (the first's got there), the reservation stays: it is the first's, and the pod is bound."""
    pod = source.apply(make_pod("reused", {ann.EGRESS_BANDWIDTH: "1G"}))
    in_flight, taken = extender.scheduler._reserve(pod, parse_requirements(pod.metadata.annotations), "node-a-1")
    assert taken

    def refuse(bound: Pod, node: str, annotations: dict[str, str]) -> None:
        raise BindConflict('pod reused is already assigned to node "node-a-1"')

    monkeypatch.setattr(source, "bind", refuse)
    error = served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"]
    assert error == 'binding failed: pod reused is already assigned to node "node-a-1"'
    ledger = extender.state.ledger
    assert ledger.holding(pod.metadata.uid).reservation == in_flight
    assert ledger.reserved("node-a-1", "eth0") == (0, 1_000_000_000)


def test_the_reservation_annotation_carries_only_the_fields_that_are_set(served, extender, source):
    """What the CNI plugin and `netsched explain` read back: an attachment's unset fields
    (VLAN, VNI, gateway...) are left out, not written as nulls on every bound pod."""
    pod = source.apply(make_pod("attached", {ann.NETWORKS: "storage", ann.EGRESS_BANDWIDTH: "1G"}))
    assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""
    annotation = source.get(Pod, pod.key).metadata.annotations[ann.RESERVATION]
    assert "null" not in annotation
    held = extender.state.ledger.holding(pod.metadata.uid).reservation
    assert annotation == held.model_dump_json(exclude_none=True)
    assert held.model_dump_json() != annotation  # the attachment has unset fields to leave out


def test_the_watch_s_copy_of_a_bind_keeps_the_held_reservation_and_an_edited_one_is_read_again(
        served, extender, source, monkeypatch):
    """kube-apiserver sends every bound pod back on the pod watch, carrying the annotation
    bind wrote: the ledger keeps the reservation it holds, and nothing is parsed again. An
    annotation that differs from it is read and counted as written."""
    pod = source.apply(make_pod("echoed", {ann.NETWORKS: "storage", ann.EGRESS_BANDWIDTH: "1G"}))
    assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""
    held = extender.state.ledger.holding(pod.metadata.uid).reservation
    parsed = []
    parse = Reservation.model_validate_json
    monkeypatch.setattr(Reservation, "model_validate_json", lambda raw: parsed.append(raw) or parse(raw))
    bound = source.get(Pod, pod.key)
    source.apply(bound.model_copy(deep=True))  # the watch's MODIFIED event of the bind
    assert parsed == []
    assert extender.state.ledger.holding(pod.metadata.uid).reservation is held

    edited = bound.model_copy(deep=True)
    written = json.loads(edited.metadata.annotations[ann.RESERVATION])
    written["interfaces"]["eth0"]["egress"] = 2_000_000_000
    edited.metadata.annotations[ann.RESERVATION] = json.dumps(written)
    source.apply(edited)
    assert len(parsed) == 1
    assert extender.state.ledger.holding(pod.metadata.uid).reservation.interfaces["eth0"].egress == 2_000_000_000
    assert extender.state.ledger.reserved("node-a-1", "eth0")[1] == 2_000_000_000


def test_a_bind_finding_the_network_s_pool_empty_is_a_conflict_naming_the_network(served, extender, source):
    """The tenant network's range narrowed to two addresses (an operator edited it): the
    third pod's plan fits the link, but no address is left when the bind allocates one."""
    tenant = source.get(Network, "tenant").model_copy(deep=True)
    tenant.spec.range_start, tenant.spec.range_end = IPv4Address("10.40.1.0"), IPv4Address("10.40.1.1")
    source.apply(tenant)
    pods = [source.apply(make_pod(f"t{i}", {ann.NETWORKS: "tenant"})) for i in range(3)]
    for pod in pods[:2]:
        assert served.post("/bind", json=bind_body(pod, "node-a-1")).json()["Error"] == ""
    error = served.post("/bind", json=bind_body(pods[2], "node-a-1")).json()["Error"]
    assert error == "default/t2 no longer fits node-a-1: network 'tenant': no free address left in 10.40.0.0/16"
    assert extender.state.ledger.holding(pods[2].metadata.uid) is None
    assert extender.metrics.registry.get_sample_value("netsched_bind_conflicts_total") == 1
