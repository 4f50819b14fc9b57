"""Rates and attachments from the pod's ``netsched.io/reservation``, read via a kubeconfig.

The official kubernetes client inside the plugin talks to a small API server listening
on the node namespace's loopback (where the runtime runs the plugin), with Pod JSON
as the real API server sends it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from contract.annotations import RESERVATION
from contract.reservation import AttachmentReservation, Rates, Reservation
from tests.cni.lab import Lab, ifb_of, link_names, qdiscs, tbf_rate
from tests.cni.pod_api import PodAPI, pod_json
from tests.cni.runner import PluginError, running_daemon
from tests.cni.topologies import MBIT, Node, switched_nodes

pytestmark = pytest.mark.kernel

POD_ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID=x"


@pytest.fixture
def cluster(lab: Lab) -> Iterator[tuple[Node, PodAPI]]:
    node, _ = switched_nodes(lab)
    with PodAPI(netns=node.netns) as api:
        yield node, api


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
    runtime = node.runtime(extra={"kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig")),
                                  "nodeName": "node-a-1"})
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
    ({("shop", "ghost"): {RESERVATION: json.dumps({"node": "node-a-1", "attachments": [{
        "network": "s", "interface": "net1", "mode": "vxlan", "vni": 0, "parent": "x",
        "mac": "02:00:00:00:00:01"}]})}}, 7, "reservation.attachments[0].vni: 0"),
])
def test_reservation_errors_are_cni_errors(lab: Lab, cluster: tuple[Node, PodAPI],
                                           pods: dict, code: int, words: str) -> None:
    node, api = cluster
    for key, pod_annotations in pods.items():
        api.pods[key] = pod_json(*key, pod_annotations)
    runtime = node.runtime(extra={"kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig")),
                                  "nodeName": "node-a-1"})
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


FORGED = Reservation(node="node-a-1", primary=Rates(ingress=40 * MBIT, egress=20 * MBIT))


@pytest.mark.parametrize(("pod", "reservation", "config", "why"), [
    ({"scheduler": "default-scheduler"}, FORGED, {"nodeName": "node-a-1"},
     "the pod's schedulerName 'default-scheduler' is not a netsched scheduler "
     "(netsched-scheduler)"),
    ({}, FORGED.model_copy(update={"node": "node-b-2"}), {"nodeName": "node-a-1"},
     "its node 'node-b-2' is not the pod's spec.nodeName 'node-a-1'"),
    ({"node": "node-b-2"}, FORGED.model_copy(update={"node": "node-b-2"}),
     {"nodeName": "node-a-1"}, "its node 'node-b-2' is not this node 'node-a-1'"),
    ({}, FORGED, {}, "this node's name is unknown (set nodeName in the config, or NODE_NAME)"),
    ({"scheduler": "tenant-scheduler"}, FORGED,
     {"nodeName": "node-a-1", "schedulerNames": ["netsched-scheduler", "gpu-netsched"]},
     "the pod's schedulerName 'tenant-scheduler' is not a netsched scheduler "
     "(netsched-scheduler, gpu-netsched)"),
])
def test_a_reservation_netsched_did_not_make_here_is_rejected(
        lab: Lab, cluster: tuple[Node, PodAPI], pod: dict, reservation: Reservation,
        config: dict, why: str) -> None:
    """Forged by a pod author (issue: a default-scheduler pod naming another node got
    shaping and an uplink attachment): ADD fails with error 103 naming the reason, the
    refusal is logged on stderr, and nothing is enforced."""
    node, api = cluster
    api.pods[("shop", "forged")] = pod_json("shop", "forged",
                                            {RESERVATION: reservation.model_dump_json()}, **pod)
    runtime = node.runtime(extra={"kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig")),
                                  **config})
    netns = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        runtime.add("ctr-forged", lab.path(netns), args=POD_ARGS.format(name="forged"))
    assert failure.value.code == 103
    assert failure.value.error["msg"] == (
        f"annotation {RESERVATION} of pod shop/forged rejected: {why}")
    assert f"rejected {RESERVATION} of pod shop/forged: {why}" in failure.value.stderr
    assert not {q["kind"] for q in qdiscs(netns, "eth0")} & {"tbf", "ingress"}
    assert link_names(netns) == {"lo", "eth0"}


def test_the_daemon_knows_its_node_from_node_name(lab: Lab, cluster: tuple[Node, PodAPI]) -> None:
    """The DaemonSet sets NODE_NAME from spec.nodeName (downward API); the config has none."""
    node, api = cluster
    api.pods[("shop", "web-2")] = pod_json("shop", "web-2", {RESERVATION: FORGED.model_dump_json()})
    api.pods[("shop", "elsewhere")] = pod_json(
        "shop", "elsewhere", {RESERVATION: FORGED.model_copy(update={"node": "node-b-2"})
                              .model_dump_json()}, node="node-b-2")
    socket_path = lab.workdir / "run" / "cni.sock"
    with running_daemon(node.netns, socket_path, node_name="node-a-1") as daemon:
        runtime = node.runtime(extra={
            "kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig")),
            "socket": str(socket_path)})
        pod, _, _ = node.pod(runtime, args=POD_ARGS.format(name="web-2"))
        assert tbf_rate(pod, "eth0") == 20 * MBIT
        with pytest.raises(PluginError) as failure:
            runtime.add("ctr-elsewhere", lab.path(lab.netns("pd")),
                        args=POD_ARGS.format(name="elsewhere"))
        assert failure.value.code == 103
        assert "is not this node 'node-a-1'" in failure.value.error["msg"]
    assert "rejected netsched.io/reservation of pod shop/elsewhere" in daemon.process.stderr.read()
