"""Attachments on a real kernel: two nodes whose veth uplinks meet on a switch bridge.

VXLAN networks 100 and 200 over that underlay isolate pods from each other; an untagged
macvlan network connects pods on both nodes; VLAN runs the same test where the kernel
has 802.1q. Static IPs and MACs are what was asked, and the last pod leaving a segment
removes the node's segment device.
"""

from __future__ import annotations

import json
import secrets

import pytest

from tests.cni.lab import Lab, link_names, links, sh
from tests.cni.topologies import Node, attachment, switched_nodes

pytestmark = pytest.mark.kernel


def pod_with(node: Node, **attach) -> tuple[str, str, dict]:
    runtime = node.runtime(extra={"attachments": [attachment(node, **attach)]})
    return node.pod(runtime)


def mac_and_addresses(netns: str, ifname: str) -> tuple[str, list[str], int]:
    data = json.loads(sh("ip", "-n", netns, "-j", "addr", "show", "dev", ifname))[0]
    addresses = [f"{a['local']}/{a['prefixlen']}" for a in data["addr_info"] if a["family"] == "inet"]
    return data["address"], addresses, data["mtu"]


def kernel_has_8021q(lab: Lab) -> bool:
    probe = lab.netns("vq")
    sh("ip", "-n", probe, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
    done = sh("ip", "-n", probe, "link", "add", "link", "up0", "name", "up0.7", "type", "vlan",
              "id", "7", check=False)
    del done
    return "up0.7" in link_names(probe)


def test_vxlan_networks_connect_and_isolate(lab: Lab) -> None:
    node1, node2 = switched_nodes(lab)
    a, _, result_a = pod_with(node1, mode="vxlan", vni=100, ip="10.100.0.1/24",
                              mac="02:00:00:00:01:01")
    b, _, _ = pod_with(node2, mode="vxlan", vni=100, ip="10.100.0.2/24", mac="02:00:00:00:01:02")
    c, _, _ = pod_with(node2, mode="vxlan", vni=200, ip="10.100.0.3/24", mac="02:00:00:00:01:03")

    assert lab.pings(a, "10.100.0.2", count=3), "same VNI on two nodes must connect"
    assert lab.pings(b, "10.100.0.1"), "and back"
    assert not lab.pings(c, "10.100.0.1", timeout=1), "VNI 200 must not reach VNI 100"
    assert not lab.pings(c, "10.100.0.2", timeout=1), "not even on the same node"

    assert mac_and_addresses(a, "net1")[:2] == ("02:00:00:00:01:01", ["10.100.0.1/24"])
    assert {"name": "net1", "mac": "02:00:00:00:01:01", "sandbox": lab.path(a)}.items() <= \
        result_a["interfaces"][-1].items()
    net1 = result_a["netsched"]["attachments"][0]
    assert (net1["interface"], net1["ip"], net1["segment"]) == ("net1", "10.100.0.1/24", "nsx100")
    vxlan = {link["ifname"]: link for link in links(node2.netns)}["nsx200"]
    assert vxlan["linkinfo"]["info_data"]["id"] == 200
    assert vxlan["linkinfo"]["info_data"]["group"] == "239.0.0.200"
    routes = sh("ip", "-n", a, "route", "show", "dev", "net1")
    assert "10.100.0.0/24" in routes


def test_macvlan_network_untagged(lab: Lab) -> None:
    node1, node2 = switched_nodes(lab)
    a, _, _ = pod_with(node1, mode="macvlan", ip="10.30.0.11/24", mac="02:00:00:00:03:11",
                       mtu=1400)
    b, _, _ = pod_with(node2, mode="macvlan", ip="10.30.0.12/24", mac="02:00:00:00:03:12")
    assert lab.pings(a, "10.30.0.12", count=3)
    assert lab.pings(b, "10.30.0.11")
    assert mac_and_addresses(a, "net1") == ("02:00:00:00:03:11", ["10.30.0.11/24"], 1400)
    assert mac_and_addresses(b, "net1")[:2] == ("02:00:00:00:03:12", ["10.30.0.12/24"])


def test_vlan_networks_connect_and_isolate(lab: Lab) -> None:
    if not kernel_has_8021q(lab):
        pytest.skip("this kernel has no 802.1q VLAN support: VLAN mode is tested where it has")
    node1, node2 = switched_nodes(lab)
    a, _, _ = pod_with(node1, mode="vlan", vlan=100, ip="10.101.0.1/24", mac="02:00:00:00:05:01")
    b, _, _ = pod_with(node2, mode="vlan", vlan=100, ip="10.101.0.2/24", mac="02:00:00:00:05:02")
    c, _, _ = pod_with(node2, mode="vlan", vlan=200, ip="10.101.0.3/24", mac="02:00:00:00:05:03")
    assert lab.pings(a, "10.101.0.2", count=3)
    assert lab.pings(b, "10.101.0.1")
    assert not lab.pings(c, "10.101.0.1", timeout=1)
    assert mac_and_addresses(a, "net1")[:2] == ("02:00:00:00:05:01", ["10.101.0.1/24"])


def test_last_pod_leaving_removes_segment_device(lab: Lab) -> None:
    node1, _ = switched_nodes(lab)
    first, _, _ = pod_with(node1, mode="vxlan", vni=4242, ip="10.42.0.1/24",
                           mac="02:00:00:00:42:01")
    pod_with(node1, mode="vxlan", vni=4242, ip="10.42.0.2/24", mac="02:00:00:00:42:02")
    assert lab.pings(first, "10.42.0.2"), "pods of one node share the segment"
    (runtime1, cid1, ns1), (runtime2, cid2, ns2) = node1.pods
    assert "nsx4242" in link_names(node1.netns)
    runtime1.delete(cid1, lab.path(ns1))
    assert "nsx4242" in link_names(node1.netns), "still used by the second pod"
    runtime2.delete(cid2, lab.path(ns2))
    assert "nsx4242" not in link_names(node1.netns), "the last pod removes it"


def test_attachment_from_several_networks_in_one_pod(lab: Lab) -> None:
    node1, node2 = switched_nodes(lab)
    suffix = secrets.randbelow(200) + 20
    runtime = node1.runtime(extra={"attachments": [
        attachment(node1, mode="vxlan", vni=300, interface="net1", ip=f"10.43.0.{suffix}/24",
                   mac="02:00:00:00:43:01"),
        attachment(node1, mode="macvlan", interface="net2", ip="10.44.0.1/24",
                   mac="02:00:00:00:44:01"),
    ]})
    pod, _, result = node1.pod(runtime)
    peer, _, _ = pod_with(node2, mode="vxlan", vni=300, ip="10.43.0.2/24", mac="02:00:00:00:43:02")
    assert {"net1", "net2", "eth0"} <= link_names(pod)
    assert [i["name"] for i in result["interfaces"]][-2:] == ["net1", "net2"]
    assert lab.pings(peer, f"10.43.0.{suffix}")
