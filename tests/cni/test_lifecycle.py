"""ADD, DEL, CHECK, GC, STATUS and VERSION as a runtime drives them, on a real kernel.

DEL after ADD and every failed ADD leave no interface, qdisc, ifb, segment device or
state record; DEL is idempotent; CHECK sees tampering; GC removes what belongs to
containers no longer valid; every result is in the conflist's cniVersion format.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.cni.lab import Lab, link_names, qdiscs, sh
from tests.cni.runner import PluginError, Runtime
from tests.cni.topologies import (
    MBIT,
    assert_nothing_of_ours,
    attachment,
    lone_node,
    switched_nodes,
)

pytestmark = pytest.mark.kernel

RATES = {"bandwidth": {"ingressRate": 50 * MBIT, "egressRate": 20 * MBIT}}


def ours(runtime: Runtime, version: str = "1.1.0", **extra: Any) -> dict[str, Any]:
    """netsched-cni's own plugin config from ``runtime``'s conflist, for direct calls."""
    conf = copy.deepcopy(runtime.conflist["plugins"][-1])
    conf.update(cniVersion=version, name=runtime.conflist["name"], **extra)
    return conf


def test_del_after_add_leaves_nothing(lab: Lab) -> None:
    node1, _ = switched_nodes(lab)
    runtime = node1.runtime(extra={"attachments": [attachment(
        node1, mode="vxlan", vni=710, ip="10.71.0.5/24", mac="02:00:00:00:71:05",
        ingress=30 * MBIT, egress=30 * MBIT)]})
    pod, cid, _ = node1.pod(runtime, runtime_config=RATES)
    assert len([n for n in link_names(pod) if n.startswith("nsb")]) == 2, "ifb for eth0 and net1"
    runtime.delete(cid, lab.path(pod))
    assert_nothing_of_ours(node1, pod, eth0_expected=False)


def test_del_is_idempotent(lab: Lab) -> None:
    """CNI spec: DEL must succeed when what it would remove is already gone. Every DEL
    below answers nothing (exit 0), and the pod and node hold nothing of ours after each."""
    node = lone_node(lab)
    runtime = node.runtime()
    pod, cid, _ = node.pod(runtime, runtime_config=RATES)
    assert any(n.startswith("nsb") for n in link_names(pod)), "the ingress ifb to remove"
    conf = ours(runtime, "1.0.0")
    for container in (cid, cid, "never-added"):
        assert runtime.invoke("netsched-cni", "DEL", conf, container, lab.path(pod), "eth0") is None
        assert_nothing_of_ours(node, pod, eth0_expected=True)
    sh("ip", "netns", "del", pod)
    for netns in (lab.path(pod), ""):  # the namespace is gone; the runtime may not say which
        assert runtime.invoke("netsched-cni", "DEL", conf, cid, netns, "eth0") is None
    assert not list((Path(node.state_dir()) / "records").iterdir())


def test_del_after_namespace_is_gone_releases_segment(lab: Lab) -> None:
    node1, _ = switched_nodes(lab)
    runtime = node1.runtime(extra={"attachments": [attachment(
        node1, mode="vxlan", vni=720, ip="10.72.0.5/24", mac="02:00:00:00:72:05")]})
    pod, cid, _ = node1.pod(runtime, runtime_config=RATES)
    sh("ip", "netns", "del", pod)
    runtime.delete(cid, lab.path(pod))
    assert "nsx720" not in link_names(node1.netns)


BAD_ATTACHMENTS = {
    "vlan 5000": ({"mode": "vlan", "vlan": 5000}, "attachments[0].vlan: 5000"),
    "vni 0": ({"mode": "vxlan", "vni": 0}, "attachments[0].vni: 0"),
    "bad mac": ({"mode": "vxlan", "vni": 730, "mac": "02:00:00:00:zz:01"},
                "attachments[0].mac: '02:00:00:00:zz:01'"),
    "multicast mac": ({"mode": "macvlan", "mac": "01:00:5e:00:00:01"},
                      "attachments[0].mac: '01:00:5e:00:00:01'"),
    "bad cidr": ({"mode": "macvlan", "ip": "10.73.0.300/24"}, "attachments[0].ip: '10.73.0.300/24'"),
    "missing parent": ({"mode": "vxlan", "vni": 731, "parent": "nosuchlink0"},
                       "attachments[0].parent: 'nosuchlink0'"),
    "bad interface name": ({"mode": "macvlan", "interface": "net/1"},
                           "attachments[0].interface: 'net/1'"),
}


@pytest.mark.parametrize("case", list(BAD_ATTACHMENTS))
def test_bad_config_fails_with_cni_error_and_leaves_nothing(lab: Lab, case: str) -> None:
    override, expected = BAD_ATTACHMENTS[case]
    node1, _ = switched_nodes(lab)
    bad = {**attachment(node1, mode="macvlan", ip="10.73.0.5/24", mac="02:00:00:00:73:05",
                        ingress=10 * MBIT), **override}
    runtime = node1.runtime(extra={"attachments": [bad]})
    pod = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        runtime.add("ctr-bad", lab.path(pod), runtime_config=RATES)
    assert failure.value.plugin == "netsched-cni"
    assert failure.value.code == 7, failure.value.error
    assert failure.value.error["msg"].startswith(expected), failure.value.error
    assert_nothing_of_ours(node1, pod, eth0_expected=True)


def test_add_failing_half_way_removes_what_it_made(lab: Lab) -> None:
    node1, _ = switched_nodes(lab)
    runtime = node1.runtime(extra={"attachments": [
        attachment(node1, mode="vxlan", vni=740, ip="10.74.0.5/24", mac="02:00:00:00:74:05",
                   ingress=10 * MBIT, egress=10 * MBIT),
        {**attachment(node1, mode="macvlan", interface="net2", ip="10.75.0.5/24",
                      mac="02:00:00:00:75:05"), "parent": "gone0"},
    ]})
    pod = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        runtime.add("ctr-half", lab.path(pod), runtime_config=RATES)
    assert failure.value.error["msg"].startswith("attachments[1].parent: 'gone0'")
    assert_nothing_of_ours(node1, pod, eth0_expected=True)


def test_add_failing_in_the_kernel_removes_what_it_made(lab: Lab) -> None:
    """An MTU above the segment's (VXLAN: 1450) is refused by the kernel half way."""
    node1, _ = switched_nodes(lab)
    runtime = node1.runtime(extra={"attachments": [
        attachment(node1, mode="vxlan", vni=750, ip="10.76.0.5/24", mac="02:00:00:00:76:05"),
        attachment(node1, mode="vxlan", vni=751, interface="net2", ip="10.77.0.5/24",
                   mac="02:00:00:00:77:05", mtu=9000),
    ]})
    pod = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        runtime.add("ctr-mtu", lab.path(pod), runtime_config=RATES)
    assert failure.value.code == 100
    assert "attachments[1]" in failure.value.error["msg"]
    assert_nothing_of_ours(node1, pod, eth0_expected=True)


@pytest.mark.parametrize("limits", [RATES, None], ids=["with-limits", "without-limits"])
def test_check_passes_on_a_healthy_pod(lab: Lab, limits: dict | None) -> None:
    node1, _ = switched_nodes(lab)
    runtime = node1.runtime(extra={"attachments": [attachment(
        node1, mode="vxlan", vni=760, ip="10.78.0.5/24", mac="02:00:00:00:78:05",
        ingress=10 * MBIT if limits else 0)]})
    pod, cid, _ = node1.pod(runtime, runtime_config=limits)
    # CHECK answers a healthy pod with exit 0 and nothing else, so "nothing raised" is the
    # claim; what makes it one is that there was something to check, asserted here.
    kinds = {q["kind"] for q in qdiscs(pod, "eth0")}
    assert ("tbf" in kinds) == bool(limits), kinds
    assert "net1" in link_names(pod)
    runtime.check(cid, lab.path(pod))


def test_check_sees_tampering(lab: Lab) -> None:
    node = lone_node(lab)
    runtime = node.runtime()
    pod, cid, _ = node.pod(runtime, runtime_config=RATES)
    runtime.check(cid, lab.path(pod))
    sh("tc", "-n", pod, "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "90mbit",
       "burst", "20kb", "latency", "25ms")
    with pytest.raises(PluginError) as failure:
        runtime.check(cid, lab.path(pod))
    assert failure.value.code == 102 and "eth0 egress" in failure.value.error["msg"]
    sh("tc", "-n", pod, "qdisc", "del", "dev", "eth0", "ingress")
    runtime.delete(cid, lab.path(pod))


def test_gc_removes_only_invalid_attachments(lab: Lab) -> None:
    node1, _ = switched_nodes(lab)

    def runtime_for(host: int):
        return node1.runtime(extra={"attachments": [attachment(
            node1, mode="vxlan", vni=770, ip=f"10.79.0.{host}/24", mac=f"02:00:00:00:79:{host:02d}",
            ingress=10 * MBIT)]})

    keep, keep_id, _ = node1.pod(runtime_for(1), runtime_config=RATES)
    drop, drop_id, _ = node1.pod(runtime_for(2), runtime_config=RATES)
    runtime = node1.pods[0][0]
    runtime.invoke("netsched-cni", "GC", ours(runtime, **{
        "cni.dev/valid-attachments": [{"containerID": keep_id, "ifname": "eth0"}]}))
    assert link_names(drop) == {"lo", "eth0"}, "net1 and both ifbs of the stale pod are gone"
    assert "net1" in link_names(keep)
    assert "nsx770" in link_names(node1.netns), "still used by the valid pod"
    runtime.invoke("netsched-cni", "GC", ours(runtime, **{"cni.dev/valid-attachments": []}))
    assert link_names(keep) == {"lo", "eth0"}
    assert_nothing_of_ours(node1, keep, eth0_expected=True)
    del drop_id


def test_gc_and_status_need_cni_110(lab: Lab) -> None:
    node = lone_node(lab)
    runtime = node.runtime()
    for verb in ("GC", "STATUS"):
        with pytest.raises(PluginError) as failure:
            runtime.invoke("netsched-cni", verb, ours(runtime, "1.0.0"))
        assert failure.value.code == 1


def test_status_reports_readiness(lab: Lab, tmp_path: Path) -> None:
    node = lone_node(lab)
    runtime = node.runtime()
    assert runtime.invoke("netsched-cni", "STATUS", ours(runtime)) is None
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PluginError) as failure:
        runtime.invoke("netsched-cni", "STATUS", ours(runtime, stateDir=str(blocker / "x")))
    assert failure.value.code == 50 and "stateDir" in failure.value.error["msg"]


def test_version(lab: Lab) -> None:
    runtime = lone_node(lab).runtime()
    answer = runtime.invoke("netsched-cni", "VERSION", {"cniVersion": "1.0.0"})
    assert answer == {"cniVersion": "1.0.0",
                      "supportedVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_result_in_each_versions_format(lab: Lab, version: str) -> None:
    node1, _ = switched_nodes(lab)
    runtime = node1.runtime(version=version, extra={"attachments": [attachment(
        node1, mode="macvlan", ip="10.80.0.5/24", mac="02:00:00:00:80:05", mtu=1400)]})
    pod, cid, result = node1.pod(runtime, runtime_config=RATES)
    assert result["cniVersion"] == version
    net1 = result["interfaces"][-1]
    assert net1["name"] == "net1"
    if version.startswith("0."):
        assert all(ip["version"] == "4" for ip in result["ips"])
        assert "mtu" not in net1
    else:
        assert all("version" not in ip for ip in result["ips"])
        assert net1["mtu"] == 1400
    if version == "0.3.1":
        with pytest.raises(PluginError) as failure:
            runtime.invoke("netsched-cni", "CHECK", ours(runtime, version, prevResult=result),
                           cid, lab.path(pod), "eth0")
        assert failure.value.code == 1
    else:
        runtime.check(cid, lab.path(pod))


def test_bad_environment_and_document(lab: Lab) -> None:
    runtime = lone_node(lab).runtime()
    conf = ours(runtime, "1.0.0", prevResult={"cniVersion": "1.0.0"})
    with pytest.raises(PluginError) as failure:
        runtime.invoke("netsched-cni", "ADD", conf, "bad id!", "/var/run/netns/x", "eth0")
    assert failure.value.code == 4 and "CNI_CONTAINERID" in failure.value.error["msg"]
    with pytest.raises(PluginError) as failure:
        runtime.invoke("netsched-cni", "ADD", {**conf, "cniVersion": "9.9.9"}, "c1",
                       "/var/run/netns/x", "eth0")
    assert failure.value.code == 1
    with pytest.raises(PluginError) as failure:
        runtime.invoke("netsched-cni", "ADD", conf, "c1", "/var/run/netns/none-such", "eth0")
    assert failure.value.code == 3
