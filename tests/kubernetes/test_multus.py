"""Multus clusters through the in-test API server: NetworkAttachmentDefinitions are watched
beside Networks, pods ask with ``k8s.v1.cni.cncf.io/networks`` in both forms, and filter,
bind, the ledger and explain treat those attachments as netsched.io/networks attachments."""

from __future__ import annotations

import dataclasses
import json
import threading

import httpx

from contract import annotations as ann
from scheduler_extender.state import ClusterState
from scheduler_extender.views import explain_view
from tests.kube_api import ApiError
from tests.kubernetes.conftest import (
    FAST,
    NODE_NETWORKS,
    NODES,
    PODS,
    bind_body,
    node_network_object,
    node_object,
    pod_object,
    wait_until,
)

NADS = "/apis/k8s.cni.cncf.io/v1/namespaces/{namespace}/network-attachment-definitions"


def nad(name: str, config: dict, namespace: str = "default") -> dict:
    return {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"config": json.dumps(config)}}


STORAGE_NET = nad("storage-net", {
    "cniVersion": "1.0.0", "name": "storage-net",
    "plugins": [{"type": "macvlan", "master": "eth1", "mode": "bridge",
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.40.0.0/24", "gateway": "10.40.0.1"}]]}},
                {"type": "netsched-cni", "capabilities": {"bandwidth": True}}]})


def multus_pod(name: str, networks: str, namespace: str = "default", **more: str) -> dict:
    pod = pod_object(name, egress=None, namespace=namespace)
    pod["metadata"]["annotations"] = {ann.MULTUS_NETWORKS: networks, **more}
    return pod


def seed_cluster(kube_api) -> None:
    """node-00 and node-01 have the storage link eth1 (25G); node-02 has only eth0."""
    for name in ("node-00", "node-01", "node-02"):
        kube_api.seed(NODES, node_object(name))
        report = node_network_object(name)
        if name == "node-02":
            report["status"]["interfaces"] = report["status"]["interfaces"][:1]
        kube_api.seed(NODE_NETWORKS, report)
    kube_api.seed(NADS.format(namespace="default"), STORAGE_NET)


def filtered(url: str, pod: dict) -> dict:
    body = {"Pod": pod, "Nodes": None, "NodeNames": ["node-00", "node-01", "node-02"]}
    return httpx.post(f"{url}/filter", json=body, timeout=20).json()


def start(kube_api, serve, *pods: dict) -> tuple:
    seeded = [kube_api.seed(f"/api/v1/namespaces/{p['metadata']['namespace']}/pods", p) for p in pods]
    served = serve()
    wait_until(lambda: all(served.extender.state.pod(p["metadata"]["uid"]) for p in seeded), what="the pods")
    return served, seeded


def test_a_definition_is_a_network_reaching_the_nodes_with_its_master_link(kube_api, serve):
    seed_cluster(kube_api)
    served, (comma, ) = start(kube_api, serve, multus_pod("comma", "storage-net@data"))
    topology = served.extender.state.topology
    assert topology.nodes_reaching("default/storage-net") == {"node-00", "node-01"}
    answer = filtered(served.url, comma)
    assert answer["NodeNames"] == ["node-00", "node-01"]
    assert answer["FailedAndUnresolvableNodes"] == {
        "node-02": "NetworkAttachmentDefinition default/storage-net: no up interface eth1"}


def test_a_json_element_is_reserved_on_the_master_link_and_bound_with_its_definition(kube_api, serve):
    seed_cluster(kube_api)
    element = {"name": "storage-net", "interface": "net1", "ips": ["10.40.0.15/24"],
               "bandwidth": {"ingressRate": 2_000_000_000, "ingressBurst": 0, "egressRate": 1_000_000_000,
                             "egressBurst": 0}}
    served, (pod, twin) = start(kube_api, serve, multus_pod("db-0", json.dumps([element])),
                                multus_pod("db-1", json.dumps([element])))
    assert filtered(served.url, pod)["NodeNames"] == ["node-00", "node-01"]
    reply = httpx.post(f"{served.url}/bind", json=bind_body(pod, "node-01"), timeout=20).json()
    assert reply == {"Error": ""}

    stored = kube_api.get(f"{PODS}/db-0")
    reservation = json.loads(stored["metadata"]["annotations"][ann.RESERVATION])
    assert reservation["interfaces"] == {"eth1": {"ingress": 2_000_000_000, "egress": 1_000_000_000}}
    assert reservation["attachments"] == [{
        "network": "default/storage-net", "definition": "default/storage-net", "interface": "net1",
        "mode": "macvlan", "parent": "eth1", "ip": "10.40.0.15/24", "gateway": "10.40.0.1",
        "ingress": 2_000_000_000, "egress": 1_000_000_000}]
    ledger = served.extender.state.ledger
    wait_until(lambda: ledger.reserved("node-01", "eth1") == (2_000_000_000, 1_000_000_000), what="the hold")
    # The same static address for a second pod is refused everywhere, naming Multus's annotation.
    answer = filtered(served.url, twin)
    assert answer["NodeNames"] == []
    assert set(answer["FailedAndUnresolvableNodes"].values()) == {
        f"annotation {ann.MULTUS_NETWORKS}: ip '10.40.0.15' on network 'default/storage-net' is already taken"}


def test_bad_multus_values_are_refused_on_every_node_naming_annotation_and_element(kube_api, serve):
    seed_cluster(kube_api)
    served, pods = start(
        kube_api, serve,
        multus_pod("rate", '[{"name": "storage-net", "bandwidth": {"egressRate": "1G"}}]'),
        multus_pod("missing", "other/storage-net"),
        multus_pod("both", "storage-net", **{ann.NETWORKS: "storage"}),
        multus_pod("outside", '[{"name": "storage-net", "ips": ["10.99.0.5/24"]}]'),
    )
    says = {
        "rate": "element 1 (default/storage-net): bandwidth.egressRate '1G' must be a non-negative integer",
        "missing": f"annotation {ann.MULTUS_NETWORKS}: no NetworkAttachmentDefinition 'other/storage-net'",
        "both": "interface 'net1' is asked by both netsched.io/networks",
        "outside": "ip '10.99.0.5/24' is outside network 'default/storage-net' subnet 10.40.0.0/24",
    }
    for pod in pods:
        answer = filtered(served.url, pod)
        messages = set(answer["FailedAndUnresolvableNodes"].values())
        assert answer["NodeNames"] == [] and len(messages) == 1, answer
        (message,) = messages
        assert ann.MULTUS_NETWORKS in message and says[pod["metadata"]["name"]] in message, message


def test_definitions_follow_the_watch_and_namespaces_default_as_in_multus(kube_api, serve):
    seed_cluster(kube_api)
    served, (pod,) = start(kube_api, serve, multus_pod("team-pod", "fabric, default/storage-net", namespace="team"))
    assert set(filtered(served.url, pod)["FailedAndUnresolvableNodes"].values()) == {
        f"annotation {ann.MULTUS_NETWORKS}: no NetworkAttachmentDefinition 'team/fabric'"}
    # An SR-IOV definition: reach unknown, so every reported node's pod interface stands in.
    kube_api.seed(NADS.format(namespace="team"), nad("fabric", {"cniVersion": "1.0.0", "type": "sriov"}, "team"))
    state = served.extender.state
    wait_until(lambda: "team/fabric" in state.topology.definitions, what="the new definition")
    assert filtered(served.url, pod)["NodeNames"] == ["node-00", "node-01"]
    lines = explain_view(served.extender.scheduler, state.pod(pod["metadata"]["uid"])).definitions
    assert lines[0].startswith("NetworkAttachmentDefinition team/fabric: sriov (reach unknown: SR-IOV")
    assert lines[1] == "NetworkAttachmentDefinition default/storage-net: macvlan on eth1 subnet 10.40.0.0/24"
    kube_api.delete(f"{NADS.format(namespace='team')}/fabric")
    wait_until(lambda: "team/fabric" not in state.topology.definitions, what="the deletion")


def test_a_cluster_without_the_multus_crd_syncs_and_finds_definitions_once_it_is_installed(kube_api, sources):
    """kube-apiserver answers 404 for the list and watch of a resource no CRD serves."""
    seed_cluster(kube_api)
    installed = threading.Event()

    def no_crd(method: str, path: str) -> ApiError | None:
        if "network-attachment-definitions" in path and not installed.is_set():
            return ApiError(404, "NotFound", "the server could not find the requested resource")
        return None

    kube_api.fault = no_crd
    state = ClusterState()
    source = sources(dataclasses.replace(FAST, absent_crd_interval=0.2))
    source.start(state)  # returns once synced: the missing CRD did not hold it up
    assert state.topology.definitions == {} and set(state.topology.nodes) == {"node-00", "node-01", "node-02"}
    installed.set()
    wait_until(lambda: "default/storage-net" in state.topology.definitions, what="the definition")
    kube_api.seed(NADS.format(namespace="team"), nad("fabric", {"type": "macvlan", "master": "eth1"}, "team"))
    wait_until(lambda: "team/fabric" in state.topology.definitions, what="a watched definition")
