"""BandwidthPolicy through the official client and the in-test API server: watched, enforced,
its status written through the status subresource as kube-apiserver serves it (writes to
``/status`` change only ``status``; the object's watch brings the change back)."""

from __future__ import annotations

import json

import httpx

from contract import annotations as ann
from contract.group import API_VERSION
from scheduler_extender.policy_status import PolicyStatusWriter
from tests.kube_api import FakeKubeAPI
from tests.kubernetes.conftest import bind_body, pod_object, seed_nodes, wait_until

POLICIES = "/apis/netsched.io/v1alpha1/namespaces/team-a/bandwidthpolicies"
TEAM_A_PODS = "/api/v1/namespaces/team-a/pods"


def policy_object(hard_egress: str = "250M") -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "BandwidthPolicy",
        "metadata": {"name": "limits", "namespace": "team-a"},
        "spec": {"default": {"ingress": "50M", "egress": "100M"}, "hard": {"egress": hard_egress}},
    }


def filter_then_bind(url: str, pod: dict, nodes: list[str]) -> dict:
    body = {"Pod": pod, "Nodes": None, "NodeNames": nodes}
    result = httpx.post(f"{url}/filter", json=body).json()
    if result["NodeNames"]:
        assert httpx.post(f"{url}/bind", json=bind_body(pod, result["NodeNames"][0])).json() == {"Error": ""}
    return result


def test_policies_are_watched_enforced_and_report_used_and_hard(kube_api: FakeKubeAPI, serve):
    nodes = seed_nodes(kube_api, 2)
    kube_api.seed(POLICIES, policy_object())
    pods = [kube_api.seed(TEAM_A_PODS, pod_object(f"quiet-{i}", egress=None, namespace="team-a")) for i in range(3)]
    served = serve()
    state = served.extender.state
    wait_until(lambda: state.bandwidth_policies("team-a"), what="the policy")
    wait_until(lambda: len(state.pods()) == 3, what="pods")

    for pod in pods[:2]:
        assert filter_then_bind(served.url, pod, nodes)["NodeNames"] == nodes
    bound = kube_api.get(f"{TEAM_A_PODS}/quiet-0")
    assert json.loads(bound["metadata"]["annotations"][ann.RESERVATION])["primary"] == {
        "ingress": 50_000_000, "egress": 100_000_000}
    refused = filter_then_bind(served.url, pods[2], nodes)
    assert refused["FailedAndUnresolvableNodes"] == dict.fromkeys(
        nodes, "BandwidthPolicy team-a/limits: egress 200M used of 250M hard, asks 100M")

    # Status, like ResourceQuota's: hard as the spec says, used as the namespace holds.
    writer = PolicyStatusWriter(state, served.source)
    wait_until(lambda: len(state.pods()) == 3 and state.ledger.namespace_reserved("team-a")[1] == 200_000_000,
               what="the bound pods in the ledger")
    assert writer.sync() == 1
    stored = wait_until(lambda: (kube_api.get(f"{POLICIES}/limits") or {}).get("status"), what="status")
    # (the patch's nulls remove keys, as JSON merge patch does)
    assert stored == {"hard": {"egress": "250M"}, "used": {"egress": "200M"}}
    # The watch brings the written status back: nothing left to write.
    wait_until(lambda: state.bandwidth_policies("team-a")[0].status.used.egress == "200M", what="status echo")
    assert writer.sync() == 0

    # The admin raises the total: the watch delivers it and the third pod fits.
    status, _ = kube_api.handle("PATCH", f"{POLICIES}/limits", "application/merge-patch+json",
                                {"spec": {"hard": {"egress": "1G"}}})
    assert status == 200
    wait_until(lambda: state.bandwidth_policies("team-a")[0].spec.hard.egress == "1G", what="the new total")
    assert filter_then_bind(served.url, pods[2], nodes)["NodeNames"] == nodes
    # The policy goes away: its namespace's pods ask nothing again.
    kube_api.delete(f"{POLICIES}/limits")
    wait_until(lambda: not state.bandwidth_policies("team-a"), what="the deletion")
