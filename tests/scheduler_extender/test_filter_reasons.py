"""What a pod author reads in the pod's events: one reason per refused node, named causes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from contract import annotations as ann
from contract.objects import NodeNetwork
from tests.conftest import make_pod


def filter_body(pod, names):
    return {"Pod": pod.model_dump(mode="json"), "Nodes": None, "NodeNames": names}


def all_nodes(extender):
    return extender.state.node_names()


def test_pods_without_annotations_pass_every_node_with_a_neutral_score(served, extender):
    names = all_nodes(extender) + ["node-that-netsched-never-heard-of"]
    body = filter_body(make_pod("plain"), names)
    result = served.post("/filter", json=body).json()
    assert result == {"Nodes": None, "NodeNames": names, "FailedNodes": {}, "FailedAndUnresolvableNodes": {},
                      "Error": ""}
    assert {s["Score"] for s in served.post("/prioritize", json=body).json()} == {0}


def test_bandwidth_refusal_names_interface_direction_and_figures(served, extender, source):
    # node-a-1's eth0 is 25G (22.5G usable); fill it with 22.4G of egress.
    hog = source.apply(make_pod("hog", {ann.EGRESS_BANDWIDTH: "22.4G"}))
    assert served.post("/filter", json=filter_body(hog, ["node-a-1"])).json()["NodeNames"] == ["node-a-1"]
    assert served.post("/bind", json={"PodName": "hog", "PodNamespace": "default", "PodUID": hog.metadata.uid,
                                      "Node": "node-a-1"}).json() == {"Error": ""}
    pod = make_pod("web", {ann.EGRESS_BANDWIDTH: "500M"})
    result = served.post("/filter", json=filter_body(pod, ["node-a-1", "node-a-2"])).json()
    assert result["NodeNames"] == ["node-a-2"]
    # Nothing of lower priority holds it: preemption cannot help.
    assert result["FailedAndUnresolvableNodes"] == {
        "node-a-1": "eth0 egress: 22.4G reserved of 22.5G usable, asks 500M"}


def test_bandwidth_held_by_lower_priority_pods_is_resolvable(served, extender, source):
    low = source.apply(make_pod("low", {ann.INGRESS_BANDWIDTH: "22G"}, priority=0))
    served.post("/filter", json=filter_body(low, ["node-a-1"]))
    assert served.post("/bind", json={"PodName": "low", "PodNamespace": "default", "PodUID": low.metadata.uid,
                                      "Node": "node-a-1"}).json()["Error"] == ""
    high = make_pod("high", {ann.INGRESS_BANDWIDTH: "1G"}, priority=1000)
    result = served.post("/filter", json=filter_body(high, ["node-a-1"])).json()
    assert result["FailedNodes"] == {"node-a-1": "eth0 ingress: 22G reserved of 22.5G usable, asks 1G"}
    assert result["FailedAndUnresolvableNodes"] == {}
    # A pod larger than the link itself can never fit, whatever is evicted.
    huge = make_pod("huge", {ann.INGRESS_BANDWIDTH: "30G"}, priority=1000)
    result = served.post("/filter", json=filter_body(huge, ["node-a-1"])).json()
    assert list(result["FailedAndUnresolvableNodes"]) == ["node-a-1"]


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({ann.INGRESS_BANDWIDTH: "-5M"}, "annotation kubernetes.io/ingress-bandwidth='-5M': '-5M' must be a positive rate"),
        ({ann.EGRESS_BANDWIDTH: "abc"}, "annotation kubernetes.io/egress-bandwidth='abc': 'abc' is not a Kubernetes quantity"),
        ({ann.NETWORKS: "[{oops"}, "annotation netsched.io/networks='[{oops': not valid JSON"),
        ({ann.NETWORKS: "nosuchnet"}, "annotation netsched.io/networks: unknown network 'nosuchnet'"),
        ({ann.NETWORKS: json.dumps([{"name": "storage", "ip": "10.99.0.5/16"}])},
         "annotation netsched.io/networks: ip '10.99.0.5/16' is outside network 'storage' subnet 10.20.0.0/16"),
        ({ann.NETWORKS: json.dumps([{"name": "storage", "mac": "zz:00:00:00:00:01"}])}, "is not a MAC address"),
    ],
)
def test_invalid_annotations_refuse_every_node_with_one_message(served, extender, annotations, message):
    names = all_nodes(extender)
    reply = served.post("/filter", json=filter_body(make_pod("bad", annotations), names))
    assert reply.status_code == 200
    result = reply.json()
    assert result["NodeNames"] == [] and result["FailedNodes"] == {}
    assert set(result["FailedAndUnresolvableNodes"]) == set(names)
    assert len(set(result["FailedAndUnresolvableNodes"].values())) == 1
    assert message in result["FailedAndUnresolvableNodes"]["node-a-1"]


def test_static_ip_already_taken_is_refused_everywhere(served, extender, source):
    networks = json.dumps([{"name": "storage", "ip": "10.20.0.50/16"}])
    first = source.apply(make_pod("first", {ann.NETWORKS: networks}))
    served.post("/filter", json=filter_body(first, ["node-b-1"]))
    assert served.post("/bind", json={"PodName": "first", "PodNamespace": "default",
                                      "PodUID": first.metadata.uid, "Node": "node-b-1"}).json()["Error"] == ""
    second = make_pod("second", {ann.NETWORKS: networks})
    result = served.post("/filter", json=filter_body(second, ["node-a-1", "node-c-1"])).json()
    assert result["FailedAndUnresolvableNodes"] == dict.fromkeys(
        ["node-a-1", "node-c-1"], "annotation netsched.io/networks: ip '10.20.0.50' on network 'storage' is already taken")


def test_network_outside_its_zones_is_unreachable(served):
    pod = make_pod("replica", {ann.NETWORKS: "replication"})
    result = served.post("/filter", json=filter_body(pod, ["node-a-1", "node-c-1"])).json()
    assert result["NodeNames"] == ["node-a-1"]
    assert result["FailedAndUnresolvableNodes"] == {
        "node-c-1": "network 'replication' is not in zone eu-1c (zones: eu-1a, eu-1b)"}


def test_stale_or_missing_reports_fail_pods_that_need_bandwidth_only(served, source):
    report = source.get(NodeNetwork, "node-b-1").model_copy(deep=True)
    report.status.heartbeat_time = datetime.now(UTC) - timedelta(minutes=5)
    source.apply(report)
    source.remove(source.get(NodeNetwork, "node-b-2"))
    needs = make_pod("needs", {ann.EGRESS_BANDWIDTH: "1M"})
    result = served.post("/filter", json=filter_body(needs, ["node-b-1", "node-b-2", "node-b-3"])).json()
    assert result["NodeNames"] == ["node-b-3"]
    assert result["FailedAndUnresolvableNodes"]["node-b-1"].startswith(
        "NodeNetwork report is stale (last heartbeat 300s ago, TTL 60s)")
    assert result["FailedAndUnresolvableNodes"]["node-b-2"] == "no NodeNetwork report for node node-b-2"
    plain = make_pod("plain")
    assert served.post("/filter", json=filter_body(plain, ["node-b-1", "node-b-2"])).json()["NodeNames"] == [
        "node-b-1", "node-b-2"]


def test_every_cause_of_a_node_is_listed(served, source):
    report = source.get(NodeNetwork, "node-c-1").model_copy(deep=True)
    for interface in report.status.interfaces:
        interface.speed_mbps = 100
    source.apply(report)
    pod = make_pod("greedy", {ann.INGRESS_BANDWIDTH: "1G", ann.NETWORKS: json.dumps(
        [{"name": "storage", "egress": "2G"}, {"name": "replication"}])})
    message = served.post("/filter", json=filter_body(pod, ["node-c-1"])).json()["FailedAndUnresolvableNodes"]["node-c-1"]
    assert "network 'replication' is not in zone eu-1c" in message
    assert "eth0 ingress: 0 reserved of 90M usable, asks 1G" in message
    assert "eth1 egress: 0 reserved of 90M usable, asks 2G" in message


def test_spread_prefers_headroom_and_pack_prefers_the_fullest_fit(served, source):
    busy = source.apply(make_pod("busy", {ann.EGRESS_BANDWIDTH: "15G"}))
    served.post("/filter", json=filter_body(busy, ["node-a-1"]))
    served.post("/bind", json={"PodName": "busy", "PodNamespace": "default", "PodUID": busy.metadata.uid,
                               "Node": "node-a-1"})
    names = ["node-a-1", "node-a-2"]  # both 25G on eth0; node-a-1 now two-thirds full
    spread = {s["Host"]: s["Score"] for s in served.post(
        "/prioritize", json=filter_body(make_pod("s", {ann.EGRESS_BANDWIDTH: "1G"}), names)).json()}
    pack = {s["Host"]: s["Score"] for s in served.post("/prioritize", json=filter_body(
        make_pod("p", {ann.EGRESS_BANDWIDTH: "1G", ann.PLACEMENT: "pack"}), names)).json()}
    assert spread["node-a-2"] > spread["node-a-1"]
    assert pack["node-a-1"] > pack["node-a-2"]


def test_peers_prefer_nodes_few_hops_away(served, source):
    db = source.apply(make_pod("db", {ann.EGRESS_BANDWIDTH: "1M"}, labels={"app": "db"}))
    served.post("/filter", json=filter_body(db, ["node-b-3"]))
    served.post("/bind", json={"PodName": "db", "PodNamespace": "default", "PodUID": db.metadata.uid,
                               "Node": "node-b-3"})
    web = make_pod("web", {ann.PEERS: "app=db"})
    names = ["node-b-3", "node-b-4", "node-b-1", "node-c-1"]
    scores = {s["Host"]: s["Score"] for s in served.post("/prioritize", json=filter_body(web, names)).json()}
    assert scores["node-b-3"] > scores["node-b-4"] > scores["node-b-1"] > scores["node-c-1"]
