"""A pod's DRA allocation enforced on a real kernel, the way a v1.36 node runs it.

``netsched-cni daemon`` runs in a node namespace with the DRA kubelet plugin on, reading
the node's real links. The test is the kubelet: it registers the plugin over the
registration socket and calls NodePrepareResources for the pod's claim before the
sandbox (as the kubelet does), then the runtime's CNI chain runs ADD through the thin
client, and the daemon reads the pod and its claims from the in-test API server
(``tests/kube_api``), listening on the node's loopback. The claim's allocation is the one
kube-scheduler writes (consumed capacity on the node's uplink, a shareID).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.annotations import RESERVATION
from contract.dra import device_name
from contract.reservation import Rates, Reservation
from tests.cni.dra_objects import CLAIMS, PODS, Kubelet, allocated_claim, pod_with_claims
from tests.cni.lab import MOST_GOODPUT, Lab, ifb_of, inside, ipv4_of, link_names, qdiscs, tbf_rate
from tests.cni.runner import Daemon, PluginError, Runtime, running_daemon
from tests.cni.topologies import MBIT, Node, assert_nothing_of_ours, switched_nodes
from tests.kube_api.server import FakeKubeAPI

pytestmark = pytest.mark.kernel

NODE = "node-a-1"
POD_ARGS = "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID=x"


@dataclass
class DraNode:
    node: Node
    api: FakeKubeAPI
    runtime: Runtime
    kubelet: Kubelet
    daemon: Daemon

    def claim(self, name: str, consumed: dict[str, str], pod: str) -> dict:
        return self.api.seed(CLAIMS.format(namespace="shop"), allocated_claim(
            "shop", name, node=NODE, device=device_name(self.node.uplink or ""),
            consumed=consumed, pod=pod))

    def pod_object(self, name: str, claims: dict[str, str], **extra: object) -> None:
        self.api.seed(PODS.format(namespace="shop"), pod_with_claims("shop", name, claims,
                                                                      **extra))  # type: ignore[arg-type]

    def claims_dir(self) -> Path:
        return Path(self.node.state_dir()) / "claims"


@pytest.fixture
def dra(lab: Lab) -> Iterator[DraNode]:
    node, _ = switched_nodes(lab)
    api = FakeKubeAPI()
    with inside(node.netns):  # the API server on the node's loopback, where the daemon runs
        api.resume()
    try:
        kubeconfig = str(api.write_kubeconfig(lab.workdir / "kubeconfig"))
        socket_path = lab.workdir / "run" / "cni.sock"
        registry = lab.workdir / "registry"
        args = ["--kubelet-registry", str(registry), "--kubelet-plugin-dir",
                str(lab.workdir / "plugin"), "--state-dir", node.state_dir(),
                "--kubeconfig", kubeconfig]
        with running_daemon(node.netns, socket_path, node_name=NODE, args=args) as daemon:
            runtime = node.runtime(extra={"kubeconfig": kubeconfig, "socket": str(socket_path),
                                          "nodeName": NODE})
            kubelet = Kubelet(registry)
            kubelet.register()
            yield DraNode(node, api, runtime, kubelet, daemon)
    finally:
        api.pause()


def test_the_claims_consumed_capacity_is_enforced_both_ways_and_del_leaves_nothing(
        lab: Lab, dra: DraNode) -> None:
    egress, ingress = 40 * MBIT, 20 * MBIT
    claim = dra.claim("web-bandwidth", {"egress": "40M", "ingress": "20M"}, pod="web-1")
    dra.pod_object("web-1", {"bandwidth": "web-bandwidth"})
    dra.pod_object("server", {})
    assert dra.kubelet.prepare(claim).claims[claim["metadata"]["uid"]].error == ""

    server, server_cid, _ = dra.node.pod(dra.runtime, args=POD_ARGS.format(name="server"))
    shaped, cid, result = dra.node.pod(dra.runtime, args=POD_ARGS.format(name="web-1"))
    assert result["netsched"]["shaping"]["eth0"]["egress"]["rate"] == egress
    assert result["netsched"]["shaping"]["eth0"]["ingress"]["rate"] == ingress
    assert tbf_rate(shaped, "eth0") == egress
    assert tbf_rate(shaped, ifb_of(shaped)) == ingress
    assert tbf_rate(server, "eth0") is None, "a pod without claims is not shaped"

    for direction, rate, shaper in (("egress", egress, (shaped, "eth0")),
                                    ("ingress", ingress, (shaped, ifb_of(shaped)))):
        # egress: the shaped pod sends; ingress: the unshaped server sends to it (-R)
        ratios = lab.goodput_ratios(server, ipv4_of(server, "eth0"), shaped, rate,
                                    reverse=direction == "ingress", low=0.95, shaper=shaper)
        assert 0.95 <= ratios[-1] <= MOST_GOODPUT, f"{direction}: {ratios}"

    dra.runtime.delete(cid, lab.path(shaped), args=POD_ARGS.format(name="web-1"))
    dra.runtime.delete(server_cid, lab.path(server), args=POD_ARGS.format(name="server"))
    assert_nothing_of_ours(dra.node, shaped, eth0_expected=False)
    dra.kubelet.unprepare(claim)
    assert not list(dra.claims_dir().iterdir()), "the prepared claim's record"


def test_claims_of_one_pod_add_up_per_direction_from_a_template_too(lab: Lab,
                                                                    dra: DraNode) -> None:
    """One claim named in the pod, one made from a template (its name only in the pod's
    status, as the resource claim controller writes it)."""
    first = dra.claim("web-base", {"egress": "30M", "ingress": "10M"}, pod="web-2")
    second = dra.claim("web-2-burst-x7k2p", {"egress": "15M", "ingress": "0"}, pod="web-2")
    dra.pod_object("web-2", {"base": "web-base"}, from_template={"burst": "web-2-burst-x7k2p"})
    dra.kubelet.prepare(first, second)
    shaped, cid, _ = dra.node.pod(dra.runtime, args=POD_ARGS.format(name="web-2"))
    assert tbf_rate(shaped, "eth0") == 45 * MBIT
    assert tbf_rate(shaped, ifb_of(shaped)) == 10 * MBIT
    dra.runtime.check(cid, lab.path(shaped), args=POD_ARGS.format(name="web-2"))


def test_the_shaping_survives_a_daemon_restart_between_prepare_and_add(lab: Lab,
                                                                       dra: DraNode) -> None:
    """The kubelet prepares once and does not ask again when the daemon restarts (a
    DaemonSet rollout between Prepare and the sandbox): the record is on disk."""
    claim = dra.claim("web-bandwidth", {"egress": "25M", "ingress": "0"}, pod="web-3")
    dra.pod_object("web-3", {"bandwidth": "web-bandwidth"})
    dra.kubelet.prepare(claim)
    assert dra.daemon.stop() == 0
    with running_daemon(dra.node.netns, dra.daemon.socket_path, node_name=NODE):
        shaped, _, _ = dra.node.pod(dra.runtime, args=POD_ARGS.format(name="web-3"))
    assert tbf_rate(shaped, "eth0") == 25 * MBIT


def test_a_pod_with_a_reservation_and_claims_is_refused(lab: Lab, dra: DraNode) -> None:
    """Shaping it to both would enforce one of two bookings the ledger holds twice."""
    claim = dra.claim("web-bandwidth", {"egress": "25M", "ingress": "0"}, pod="both")
    reservation = Reservation(node=NODE, primary=Rates(egress=20 * MBIT))
    dra.pod_object("both", {"bandwidth": "web-bandwidth"}, scheduler="netsched-scheduler",
                   annotations={RESERVATION: reservation.model_dump_json()})
    dra.kubelet.prepare(claim)
    netns = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        dra.runtime.add("ctr-both", lab.path(netns), args=POD_ARGS.format(name="both"))
    assert failure.value.code == 103
    assert failure.value.error["msg"] == (
        f"pod shop/both has both a {RESERVATION} annotation and netsched ResourceClaims: "
        "netsched enforces one or the other, never both")
    assert link_names(netns) == {"lo", "eth0"}
    assert not {q["kind"] for q in qdiscs(netns, "eth0")} & {"tbf", "ingress"}
