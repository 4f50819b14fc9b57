"""Rates and attachments from the pod's ``netsched.io/reservation``, read via a kubeconfig.

The official kubernetes client inside the plugin talks to a small API server listening
on the node namespace's loopback (where the runtime runs the plugin), with Pod JSON
as the real API server sends it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bandwidth_accounting.annotations import RESERVATION
from bandwidth_accounting.reservation import AttachmentReservation, Rates, Reservation
from tests.cni.lab import Lab, link_names, qdiscs
from tests.cni.pod_api import PodAPI, pod_json
from tests.cni.runner import PluginError
from tests.cni.topologies import MBIT, Node, switched_nodes

pytestmark = pytest.mark.kernel

POD_ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID=x"


@pytest.fixture
def cluster(lab: Lab) -> Iterator[tuple[Node, PodAPI]]:
    node, _ = switched_nodes(lab)
    with PodAPI(netns=node.netns) as api:
        yield node, api


def tbf_rate(netns: str, dev: str) -> int | None:
    for qdisc in qdiscs(netns, dev):
        if qdisc["kind"] == "tbf":
            return qdisc["options"]["rate"] * 8
    return None


def ifb_of(netns: str) -> str:
    return next(name for name in link_names(netns) if name.startswith("nsb"))


def test_rates_and_attachments_come_from_the_annotation(lab: Lab,
                                                        cluster: tuple[Node, PodAPI]) -> None:
    node, api = cluster
    reservation = Reservation(
        node="node-a-1", primary=Rates(ingress=40 * MBIT, egress=20 * MBIT),
        attachments=[AttachmentReservation(
            network="storage", interface="net1", mode="vxlan", vni=900, parent=node.uplink,
            ip="10.90.9.15/24", mac="02:00:00:00:90:15", ingress=0, egress=30 * MBIT)])
    api.pods[("shop", "web-1")] = pod_json("shop", "web-1", {
        RESERVATION: reservation.model_dump_json(), "kubernetes.io/ingress-bandwidth": "40M"})
    runtime = node.runtime(extra={"kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig"))})
    pod, cid, result = node.pod(runtime, args=POD_ARGS.format(name="web-1"))

    assert api.requests == ["/api/v1/namespaces/shop/pods/web-1"]
    assert tbf_rate(pod, "eth0") == 20 * MBIT
    assert tbf_rate(pod, ifb_of(pod)) == 40 * MBIT
    assert tbf_rate(pod, "net1") == 30 * MBIT
    assert "net1" in link_names(pod) and "nsx900" in link_names(node.netns)
    assert set(result["netsched"]["shaping"]["net1"]) == {"egress"}, "net1 ingress is unlimited"
    runtime.check(cid, lab.path(pod), args=POD_ARGS.format(name="web-1"))


def test_pod_without_reservation_falls_back_to_runtime_config(lab: Lab,
                                                              cluster: tuple[Node, PodAPI]) -> None:
    node, api = cluster
    api.pods[("shop", "plain")] = pod_json("shop", "plain", {})
    runtime = node.runtime(extra={"kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig"))})
    pod, _, result = node.pod(runtime, args=POD_ARGS.format(name="plain"),
                              runtime_config={"bandwidth": {"egressRate": 15 * MBIT}})
    assert tbf_rate(pod, "eth0") == 15 * MBIT
    assert "ingress" not in result["netsched"]["shaping"]["eth0"]


@pytest.mark.parametrize(("pods", "code", "words"), [
    ({}, 101, "pod shop/ghost: API answered 404"),
    ({("shop", "ghost"): {RESERVATION: '{"node": "n", "primary": {"ingress": -5}}'}}, 7,
     f"annotation {RESERVATION}: primary.ingress"),
    ({("shop", "ghost"): {RESERVATION: json.dumps({"node": "n", "attachments": [{
        "network": "s", "interface": "net1", "mode": "vxlan", "vni": 0, "parent": "x",
        "mac": "02:00:00:00:00:01"}]})}}, 7, "reservation.attachments[0].vni: 0"),
])
def test_reservation_errors_are_cni_errors(lab: Lab, cluster: tuple[Node, PodAPI],
                                           pods: dict, code: int, words: str) -> None:
    node, api = cluster
    for key, pod_annotations in pods.items():
        api.pods[key] = pod_json(*key, pod_annotations)
    runtime = node.runtime(extra={"kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig"))})
    pod = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        runtime.add("ctr-ghost", lab.path(pod), args=POD_ARGS.format(name="ghost"))
    assert failure.value.code == code
    assert failure.value.error["msg"].startswith(words), failure.value.error
    assert link_names(pod) == {"lo", "eth0"}


def test_unreachable_api_is_try_again_later(lab: Lab) -> None:
    node, _ = switched_nodes(lab)
    with PodAPI(netns=node.netns) as api:
        kubeconfig = api.kubeconfig(lab.workdir / "kubeconfig")
    runtime = node.runtime(extra={"kubeconfig": str(kubeconfig)})
    pod = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        runtime.add("ctr-down", lab.path(pod), args=POD_ARGS.format(name="web-1"))
    assert failure.value.code == 11
