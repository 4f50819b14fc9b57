"""Replay request bodies a real kube-scheduler sent, over a real socket, and check the replies
against the extender/v1 wire facts (docs/scheduling.md, "The four verbs")."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from contract import annotations as ann
from contract.objects import Node, NodeNetwork, Pod
from scheduler_extender.app import create_app
from scheduler_extender.cluster import ClusterSnapshot
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.scheduler import SchedulerSettings
from scheduler_extender.server import BackgroundServer, ServeOptions
from tests.conftest import load_fixture, make_pod
from tests.kubernetes.conftest import node_network_object
from tests.scheduler_extender.fit_checks import counting_evaluations

REAL = "kube-scheduler-v1.36/"
FILTER_REPLY_KEYS = {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}


@pytest.fixture
def real_cluster() -> Iterator[tuple[httpx.Client, FileClusterSource, Extender]]:
    """The three nodes the real kube-scheduler saw, each with a NodeNetwork report, and the
    pods it scheduled, pending."""
    nodes = [Node.model_validate(item) for item in load_fixture(REAL + "nocache-filter.json")["Nodes"]["items"]]
    reports = [NodeNetwork.model_validate(node_network_object(node.metadata.name)) for node in nodes]
    pods = [Pod.model_validate(load_fixture(REAL + name)["Pod"])
            for name in ("bind-filter.json", "nodecache-filter.json", "nocache-filter.json")]
    source = FileClusterSource(ClusterSnapshot(nodes=nodes, node_networks=reports, pods=pods))
    # The capturing kube-scheduler called the extender from its default profile.
    extender = Extender.build(source, settings=SchedulerSettings(scheduler_names=frozenset({"default-scheduler"})))
    with BackgroundServer(create_app(extender), ServeOptions(port=0)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        yield client, source, extender


def test_node_cache_filter_answers_node_names(real_cluster):
    client, *_ = real_cluster
    body = load_fixture(REAL + "nodecache-filter.json")
    assert body["Nodes"] is None
    reply = client.post("/filter", json=body)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    result = reply.json()
    assert set(result) == FILTER_REPLY_KEYS
    assert result["NodeNames"] == body["NodeNames"]
    assert result["Nodes"] is None
    assert result["FailedNodes"] == {} and result["FailedAndUnresolvableNodes"] == {} and result["Error"] == ""


def test_filter_without_node_cache_answers_the_node_list(real_cluster):
    """Without nodeCacheCapable kube-scheduler reads only Nodes: a NodeNames-only reply would drop every node."""
    client, *_ = real_cluster
    body = load_fixture(REAL + "nocache-filter.json")
    assert body["NodeNames"] is None
    result = client.post("/filter", json=body).json()
    assert result["NodeNames"] is None
    assert result["Nodes"]["items"] == body["Nodes"]["items"]  # full objects, echoed untouched


@pytest.mark.parametrize("name", ["nodecache-prioritize.json", "nocache-prioritize.json", "bind-prioritize.json"])
def test_prioritize_scores_pods_without_annotations_neutrally(real_cluster, name):
    client, *_ = real_cluster
    body = load_fixture(REAL + name)
    names = body["NodeNames"] or [n["metadata"]["name"] for n in body["Nodes"]["items"]]
    assert client.post("/prioritize", json=body).json() == [{"Host": n, "Score": 0} for n in names]


def test_prioritize_reads_the_filter_of_its_cycle_as_kube_scheduler_sends_them(real_cluster, monkeypatch):
    """One scheduling cycle as the real kube-scheduler sent it: prioritize carries fewer nodes
    than filter did (node-b and node-c of the three). With bandwidth asked, prioritize reads
    the filter's evaluation instead of checking again, and takes it: a second prioritize
    (kube-scheduler sends none) checks again and scores the same."""
    client, _, extender = real_cluster
    filter_body, prioritize_body = (load_fixture(REAL + f"nodecache-{verb}.json") for verb in ("filter", "prioritize"))
    assert filter_body["Pod"] == prioritize_body["Pod"]  # the same object: what ``prepared`` relies on
    assert set(prioritize_body["NodeNames"]) < set(filter_body["NodeNames"])
    for body in (filter_body, prioritize_body):
        body["Pod"]["metadata"]["annotations"][ann.EGRESS_BANDWIDTH] = "100M"
    assert client.post("/filter", json=filter_body).json()["NodeNames"] == filter_body["NodeNames"]
    evaluations = counting_evaluations(extender.scheduler, monkeypatch)
    first = client.post("/prioritize", json=prioritize_body).json()
    assert evaluations == []
    assert [entry["Host"] for entry in first] == prioritize_body["NodeNames"]
    assert client.post("/prioritize", json=prioritize_body).json() == first
    assert evaluations == [len(prioritize_body["NodeNames"])]


def test_bind_creates_the_binding(real_cluster):
    client, source, _ = real_cluster
    client.post("/filter", json=load_fixture(REAL + "bind-filter.json"))
    body = load_fixture(REAL + "bind-bind.json")
    assert client.post("/bind", json=body).json() == {"Error": ""}
    bound = source.get(Pod, f"{body['PodNamespace']}/{body['PodName']}")
    assert bound.spec.node_name == body["Node"]
    # kube-scheduler retrying a lost reply gets the same answer; another node is refused.
    assert client.post("/bind", json=body).json() == {"Error": ""}
    elsewhere = {**body, "Node": "node-a"}
    assert client.post("/bind", json=elsewhere).json() == {
        "Error": f"pod {body['PodNamespace']}/{body['PodName']} is already bound to {body['Node']}"}


def test_preempt_keeps_kube_schedulers_victims_for_pods_without_bandwidth(real_cluster):
    client, *_ = real_cluster
    body = load_fixture(REAL + "preempt-extender-nodecache-preempt.json")
    assert body["NodeNameToVictims"] is None
    assert client.post("/preempt", json=body).json() == {"NodeNameToMetaVictims": body["NodeNameToMetaVictims"]}


def test_annotated_fixtures_filter_on_the_sample_cluster(served):
    result = served.post("/filter", json=load_fixture("filter-nodenames.json")).json()
    assert result["NodeNames"] == load_fixture("filter-nodenames.json")["NodeNames"]
    result = served.post("/filter", json=load_fixture("filter-nodes.json")).json()
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == [
        n["metadata"]["name"] for n in load_fixture("filter-nodes.json")["Nodes"]["items"]]
    plain = load_fixture("filter-plain-nodenames.json")
    assert served.post("/filter", json=plain).json()["NodeNames"] == plain["NodeNames"]


def test_annotated_prioritize_scores_by_the_headroom_left(served, source):
    """The pod asks 2G into the storage network (eth1 everywhere, 22.5G usable).

    Spread scores 10 × the smallest share of usable capacity left after the pod, rounded:
    on an empty node 1 − 2/22.5 → 9; on node-a-1, where 18G of eth1 is already held,
    1 − 20/22.5 → 1. The other interfaces (eth0: 100M of 9G and more) leave more.
    """
    holder = source.apply(make_pod("holder", {ann.NETWORKS: json.dumps(
        [{"name": "storage", "ingress": "18G"}])}))
    assert served.post("/bind", json={"PodName": "holder", "PodNamespace": "default",
                                      "PodUID": holder.metadata.uid, "Node": "node-a-1"}).json() == {"Error": ""}
    body = load_fixture("prioritize-nodenames.json")
    scores = served.post("/prioritize", json=body).json()
    expected = {name: round(10 * (1 - 2 / 22.5)) for name in body["NodeNames"]}
    expected["node-a-1"] = round(10 * (1 - 20 / 22.5))
    assert scores == [{"Host": name, "Score": expected[name]} for name in body["NodeNames"]]
    assert expected["node-a-1"] == 1 and expected["node-b-1"] == 9


def test_annotated_bind_records_the_reservation_then_binds(served, source, extender):
    served.post("/filter", json=load_fixture("filter-nodenames.json"))
    pod = Pod.model_validate(load_fixture("filter-nodenames.json")["Pod"])
    source.apply(pod)
    assert served.post("/bind", json=load_fixture("bind.json")).json() == {"Error": ""}
    bound = source.get(Pod, pod.key)
    assert bound.spec.node_name == "node-a-1"
    reservation = extender.state.ledger.holding(pod.metadata.uid).reservation
    assert bound.metadata.annotations["netsched.io/reservation"] == reservation.model_dump_json(exclude_none=True)
    assert reservation.interfaces["eth0"].model_dump() == {"ingress": 100_000_000, "egress": 200_000_000}
    assert reservation.interfaces["eth1"].model_dump() == {"ingress": 2_000_000_000, "egress": 1_000_000_000}
    (storage,) = reservation.attachments
    assert (storage.network, storage.vlan, storage.parent, storage.ip) == ("storage", 100, "eth1", "10.20.0.2/16")


def test_bodies_accept_case_and_extra_fields_of_full_api_objects(served):
    body = load_fixture("filter-nodenames.json")
    body["Pod"]["status"]["conditions"] = [{"type": "PodScheduled", "status": "False"}]
    body["Pod"]["spec"]["overhead"] = None
    body["SomethingNew"] = {"x": 1}
    assert served.post("/filter", json=body).json()["Error"] == ""
