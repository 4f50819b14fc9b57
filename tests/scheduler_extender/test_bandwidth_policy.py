"""A namespace's BandwidthPolicy through the webhook on a real socket: defaults, maximum, total."""

from __future__ import annotations

import json

import pytest

from contract import annotations as ann
from contract.objects import BandwidthPolicy, Pod
from tests.conftest import make_pod

NAMES = ["node-a-1", "node-b-1"]


def filter_body(pod, names=NAMES):
    return {"Pod": pod.model_dump(mode="json"), "Nodes": None, "NodeNames": names}


def policy(namespace: str, name: str = "limits", **spec) -> BandwidthPolicy:
    return BandwidthPolicy.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": spec})


def schedule(served, source, pod: Pod) -> dict:
    """Filter, then bind to the first node that passed; the filter reply."""
    pod = source.apply(pod)
    result = served.post("/filter", json=filter_body(pod)).json()
    if result["NodeNames"]:
        bound = served.post("/bind", json={"PodName": pod.metadata.name, "PodNamespace": pod.metadata.namespace,
                                           "PodUID": pod.metadata.uid, "Node": result["NodeNames"][0]}).json()
        assert bound == {"Error": ""}
    return result


def reservation(source, pod: Pod) -> dict:
    stored = source.get(Pod, pod.key)
    return json.loads(stored.metadata.annotations[ann.RESERVATION])


@pytest.fixture
def team_a(source):
    source.apply(policy("team-a", default={"ingress": "50M", "egress": "100M"}, max={"egress": "1G"},
                        hard={"egress": "250M"}))


def test_a_pod_that_asks_nothing_gets_the_default_reserved(served, source, team_a):
    quiet = make_pod("quiet", namespace="team-a")
    assert schedule(served, source, quiet)["NodeNames"] == NAMES
    held = reservation(source, quiet)
    # Reserved like an annotated pod's: the CNI plugin shapes eth0 to these rates.
    assert held["primary"] == {"ingress": 50_000_000, "egress": 100_000_000}
    assert held["interfaces"]["eth0"] == {"ingress": 50_000_000, "egress": 100_000_000}
    # A direction the pod does annotate keeps its own rate; the other gets the default.
    half = make_pod("half", {ann.EGRESS_BANDWIDTH: "20M"}, namespace="team-a")
    schedule(served, source, half)
    assert reservation(source, half)["primary"] == {"ingress": 50_000_000, "egress": 20_000_000}


def test_the_namespace_total_refuses_with_the_policy_named(served, source, team_a):
    for index in range(2):
        assert schedule(served, source, make_pod(f"p{index}", namespace="team-a"))["NodeNames"] == NAMES
    result = schedule(served, source, make_pod("p2", namespace="team-a"))
    assert result["NodeNames"] == []
    assert result["FailedAndUnresolvableNodes"] == dict.fromkeys(
        NAMES, "BandwidthPolicy team-a/limits: egress 200M used of 250M hard, asks 100M")
    # A pod that leaves gives its share back.
    source.remove(source.get(Pod, "team-a/p0"))
    assert schedule(served, source, make_pod("p3", namespace="team-a"))["NodeNames"] == NAMES


def test_the_per_pod_maximum_counts_every_interface(served, source, team_a):
    big = make_pod("big", {ann.EGRESS_BANDWIDTH: "600M",
                           ann.NETWORKS: json.dumps([{"name": "storage", "egress": "600M"}])}, namespace="team-a")
    result = schedule(served, source, big)
    assert result["FailedAndUnresolvableNodes"]["node-a-1"] == (
        "BandwidthPolicy team-a/limits: egress 1.2G exceeds the per-pod maximum 1G; "
        "BandwidthPolicy team-a/limits: egress 0 used of 250M hard, asks 1.2G")


def test_other_namespaces_and_every_policy_of_one(served, source, team_a):
    # No policy in default: a pod asking nothing passes everywhere, reserves nothing.
    plain = make_pod("plain")
    assert schedule(served, source, plain)["NodeNames"] == NAMES
    assert ann.RESERVATION not in source.get(Pod, plain.key).metadata.annotations
    # A second policy in team-a: both hold (as ResourceQuotas do).
    source.apply(policy("team-a", name="ingress-cap", hard={"ingress": "60M"}))
    schedule(served, source, make_pod("first", namespace="team-a"))
    result = schedule(served, source, make_pod("second", namespace="team-a"))
    assert result["FailedAndUnresolvableNodes"]["node-a-1"] == (
        "BandwidthPolicy team-a/ingress-cap: ingress 50M used of 60M hard, asks 50M")


def test_a_policy_netsched_cannot_use_refuses_its_namespace_and_says_why(served, source):
    source.apply(policy("team-b", default={"egress": "0"}))
    result = schedule(served, source, make_pod("any", namespace="team-b"))
    assert result["FailedAndUnresolvableNodes"] == dict.fromkeys(
        NAMES, "BandwidthPolicy team-b/limits: spec.default.egress: '0' must be a positive rate")
    bind = served.post("/bind", json={"PodName": "any", "PodNamespace": "team-b", "PodUID": "uid-team-b-any",
                                      "Node": "node-a-1"}).json()
    assert "spec.default.egress" in bind["Error"]


def test_the_dashboard_and_topology_show_used_beside_the_policy(served, source, team_a):
    schedule(served, source, make_pod("quiet", namespace="team-a"))
    expected = {"namespace": "team-a", "name": "limits",
                "spec": {"default": {"ingress": "50M", "egress": "100M"}, "max": {"ingress": None, "egress": "1G"},
                         "hard": {"ingress": None, "egress": "250M"}},
                "used": {"ingress": 50_000_000, "egress": 100_000_000}}
    assert served.get("/api/v1/topology").json()["policies"] == [expected]
    assert served.get("/api/v1/dashboard").json()["policies"] == [expected]


def test_bind_checks_the_namespace_total_again(served, extender, source, team_a):
    """Two pods hold 200M of team-a's 250M hard egress; a third, bound without a filter that
    saw them (kube-scheduler filtered it earlier), is refused at bind and reserves nothing."""
    for index in range(2):
        assert schedule(served, source, make_pod(f"p{index}", namespace="team-a"))["NodeNames"] == NAMES
    late = source.apply(make_pod("late", namespace="team-a"))
    bound = served.post("/bind", json={"PodName": "late", "PodNamespace": "team-a",
                                       "PodUID": late.metadata.uid, "Node": "node-a-1"}).json()
    assert bound == {"Error": "team-a/late no longer fits node-a-1: "
                              "BandwidthPolicy team-a/limits: egress 200M used of 250M hard, asks 100M"}
    assert extender.state.ledger.holding(late.metadata.uid) is None
    assert extender.state.ledger.namespace_reserved("team-a") == (100_000_000, 200_000_000)
