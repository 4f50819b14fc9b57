"""A NetworkAttachmentDefinition's conflist (macvlan + netsched-cni) run as Multus runs it.

Multus (``pkg/types/conf.go``) runs a NAD's conflist through libcni for each element of
the pod's ``k8s.v1.cni.cncf.io/networks`` with: CNI_IFNAME the element's ``interface``
(else ``net<N>``); CNI_ARGS ``IgnoreUnknown=true;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;
K8S_POD_INFRA_CONTAINER_ID=…;K8S_POD_UID=…``; and the capability arguments built from
the element — ``bandwidth`` (its BandwidthEntry: the four json-tagged Go ints, so absent
bursts arrive as 0), ``ips``, ``mac`` — which libcni injects as ``runtimeConfig`` into the
plugins declaring the capability. The runtime emulation (tests/cni/runner.py) does that
injection; the conflist is the one in deploy/samples/multus.yaml, on the lab's uplink.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.annotations import MULTUS_NETWORKS, RESERVATION
from contract.attachment_definitions import NetworkAttachmentDefinition
from contract.reservation import AttachmentReservation, Rates, Reservation
from tests.cni.lab import MOST_GOODPUT, Lab, ifb_of, link_names, links, qdiscs, sh, tbf_rate
from tests.cni.pod_api import PodAPI, pod_json
from tests.cni.runner import REPO, Runtime
from tests.cni.topologies import GBIT, MBIT, Node, switched_nodes
from topology.attachment_definitions import describe_definition

pytestmark = pytest.mark.kernel

SAMPLE = REPO / "deploy" / "samples" / "multus.yaml"


def sample() -> tuple[NetworkAttachmentDefinition, dict[str, Any]]:
    nad, pod = yaml.safe_load_all(SAMPLE.read_text())
    return NetworkAttachmentDefinition.model_validate(nad), pod


def nad_runtime(node: Node, workdir: Path, *, reservation_mode: dict[str, Any] | None = None) -> Runtime:
    """The sample NAD's conflist on ``node``: its uplink as master, the lab's state dirs,
    in-process (no daemon socket) and, unless ``reservation_mode`` gives one, no kubeconfig."""
    conflist = json.loads(sample()[0].spec.config)
    macvlan, ours = conflist["plugins"]
    macvlan["master"] = node.uplink
    macvlan["ipam"]["dataDir"] = str(workdir / "ipam")
    ours.pop("socket")
    ours.pop("kubeconfig")
    ours["stateDir"] = str(workdir / "netsched")
    ours.update(reservation_mode or {})
    return Runtime(conflist, node.netns)


def multus_runtime_config(element: dict[str, Any]) -> dict[str, Any]:
    """The capability arguments Multus builds from one network-selection element."""
    config: dict[str, Any] = {}
    if "bandwidth" in element:
        given = element["bandwidth"]
        config["bandwidth"] = {key: given.get(key, 0)
                               for key in ("ingressRate", "ingressBurst", "egressRate", "egressBurst")}
    if element.get("ips"):
        config["ips"] = element["ips"]
    if element.get("mac"):
        config["mac"] = element["mac"]
    return config


def multus_args(namespace: str, name: str, container_id: str) -> str:
    return (f"IgnoreUnknown=true;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};"
            f"K8S_POD_INFRA_CONTAINER_ID={container_id};K8S_POD_UID=uid-{name}")


def multus_pod(lab: Lab, node: Node, runtime: Runtime, element: dict[str, Any], name: str,
               *, primary_args: str = "") -> tuple[str, str, dict[str, Any]]:
    """A pod as Multus makes it: the cluster network's chain for eth0, then the NAD's for
    the element's interface. Returns (pod namespace, container id, the NAD chain's result)."""
    pod, container_id, _ = node.pod(node.runtime(), args=primary_args)
    result = runtime.add(container_id, lab.path(pod), ifname=element.get("interface", "net1"),
                         runtime_config=multus_runtime_config(element),
                         args=multus_args("default", name, container_id))
    return pod, container_id, result


def test_the_sample_definition_is_a_shaped_macvlan_network_on_eth1() -> None:
    nad, pod = sample()
    network = describe_definition(nad)
    assert (network.key, network.mode, network.master, str(network.subnet)) == (
        "default/storage-net", "macvlan", "eth1", "10.40.0.0/24")
    assert network.shaped and network.reach_known
    (element,) = json.loads(pod["metadata"]["annotations"][MULTUS_NETWORKS])
    assert element["name"] == "storage-net"


def test_netsched_cni_in_the_definitions_chain_shapes_what_multus_passes(lab: Lab) -> None:
    node1, node2 = switched_nodes(lab)
    (element,) = json.loads(sample()[1]["metadata"]["annotations"][MULTUS_NETWORKS])
    other = {**element, "ips": ["10.40.0.16/24"], "bandwidth": {"egressRate": 50 * MBIT}}
    pod1, cid1, result = multus_pod(lab, node1, nad_runtime(node1, lab.workdir / "n1"), element, "db-0")
    runtime2 = nad_runtime(node2, lab.workdir / "n2")
    pod2, cid2, _ = multus_pod(lab, node2, runtime2, other, "db-1")

    # macvlan made net1 on the uplink with the address Multus passed as the ips capability.
    net1 = {link["ifname"]: link for link in links(pod1)}["net1"]
    assert net1["linkinfo"]["info_kind"] == "macvlan"
    assert "10.40.0.15" in sh("ip", "-n", pod1, "-4", "addr", "show", "dev", "net1")
    assert lab.pings(pod1, "10.40.0.16", count=3), "the NAD's network joins pods on two nodes"

    # netsched-cni shaped net1 both ways to the element's bandwidth, and left eth0 alone.
    assert tbf_rate(pod1, "net1") == 1 * GBIT
    assert tbf_rate(pod1, ifb_of(pod1)) == 2 * GBIT
    assert set(result["netsched"]["shaping"]) == {"net1"}
    assert not [q for q in qdiscs(pod1, "eth0") if q["kind"] == "tbf"]
    assert tbf_rate(pod2, "net1") == 50 * MBIT and not any(n.startswith("nsb") for n in link_names(pod2))
    assert [i["name"] for i in result["interfaces"]][-1] == "net1", "the chain's result is macvlan's, extended"

    # Across the NAD's network, pod 2 sends at its 50 Mbit/s egress: by goodput and by the
    # tbf's own byte counter (the bounds of tests/cni/test_enforcement.py).
    ratios = lab.goodput_ratios(pod1, "10.40.0.15", pod2, 50 * MBIT, reverse=False, low=0.95,
                                shaper=(pod2, "net1"))
    assert 0.95 <= ratios[-1] <= MOST_GOODPUT, ratios

    runtime2.check(cid2, lab.path(pod2), ifname="net1", args=multus_args("default", "db-1", cid2))
    nad_runtime(node1, lab.workdir / "n1").delete(cid1, lab.path(pod1), ifname="net1",
                                                  args=multus_args("default", "db-0", cid1))
    assert "net1" not in link_names(pod1) and not any(n.startswith("nsb") for n in link_names(pod1))
    assert "eth0" in link_names(pod1), "Multus's DEL of one network leaves the others"


def test_with_a_kubeconfig_the_definitions_chain_shapes_to_the_reservation(lab: Lab) -> None:
    node, _ = switched_nodes(lab)
    reservation = Reservation(
        node="node-a-1", primary=Rates(egress=20 * MBIT), primary_parent="eth0",
        interfaces={node.uplink: Rates(ingress=30 * MBIT, egress=10 * MBIT)},
        attachments=[AttachmentReservation(
            network="default/storage-net", definition="default/storage-net", interface="net1",
            mode="macvlan", parent=node.uplink, ip="10.40.0.15/24", ingress=30 * MBIT, egress=10 * MBIT)])
    element = {"name": "storage-net", "interface": "net1", "ips": ["10.40.0.15/24"],
               "bandwidth": {"ingressRate": 900 * MBIT, "egressRate": 900 * MBIT}}
    with PodAPI(netns=node.netns) as api:
        api.pods[("default", "db-0")] = pod_json("default", "db-0", {
            RESERVATION: reservation.model_dump_json(), MULTUS_NETWORKS: json.dumps([element])})
        kube = {"kubeconfig": str(api.kubeconfig(lab.workdir / "kubeconfig")), "nodeName": "node-a-1"}
        primary = node.runtime(extra=kube)
        pod, container_id, primary_result = node.pod(primary, args=multus_args("default", "db-0", "x"))
        assert "net1" not in link_names(pod), "the cluster network's chain leaves net1 to Multus"
        assert set(primary_result["netsched"]["shaping"]) == {"eth0"}
        runtime = nad_runtime(node, lab.workdir / "nad", reservation_mode=kube)
        result = runtime.add(container_id, lab.path(pod), ifname="net1",
                             runtime_config=multus_runtime_config(element),
                             args=multus_args("default", "db-0", container_id))
    # The reservation, not the element's larger ask, is what the kernel enforces.
    assert tbf_rate(pod, "net1") == 10 * MBIT
    assert set(result["netsched"]["shaping"]) == {"net1"}
    assert tbf_rate(pod, "eth0") == 20 * MBIT
    ingress = [name for name in link_names(pod) if name.startswith("nsb")]
    assert sorted(tbf_rate(pod, name) for name in ingress) == [30 * MBIT]
