"""The report of a node built in a network namespace matches what was built.

The node: three veth "physical" uplinks whose other ends sit in a "switch" namespace
(one uplink down), VXLAN 100 over uplink 1 (``dev``), VXLAN 200 whose underlay is
uplink 2 only through its local address, a macvlan over uplink 1, addresses, and the
things a real node has that must stay out: loopback, a bridge, a pod-side veth
enslaved to it, and a CNI leftover named like Calico's.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest

from contract.objects import InterfaceRole, NetworkInterface
from node_reporter.config import ReporterConfig
from node_reporter.netlink import NetlinkSource
from node_reporter.report import Reporter
from tests.node_reporter.conftest import (
    Namespaces,
    ethtool_speed,
    ip,
    suffix,
    sysfs,
    wait_operstate,
)

pytestmark = pytest.mark.kernel


@dataclass
class BuiltNode:
    netns: str
    switch: str
    up1: str
    up2: str
    up3: str
    vx100: str
    vx200: str
    macvlan: str


def build_node(namespaces: Namespaces) -> BuiltNode:
    node, switch = namespaces.create("ns"), namespaces.create("sw")
    s = suffix()
    built = BuiltNode(node, switch, f"up1{s}", f"up2{s}", f"up3{s}", f"vx{s}a", f"vx{s}b", f"mv{s}")

    def on_node(command: str) -> None:
        ip("-n", node, *command.split())

    uplinks = ((1, built.up1, 9000), (2, built.up2, 1500), (3, built.up3, 1500))
    for number, name, mtu in uplinks:
        on_node(
            f"link add {name} mtu {mtu} address 02:00:00:00:00:0{number} "
            f"type veth peer name sw{number}{s} netns {switch}"
        )
        ip("-n", switch, "link", "set", f"sw{number}{s}", "up")
        on_node(f"addr add 10.3{number}.0.1/24 dev {name}")
    on_node(f"addr add 2001:db8:31::1/64 dev {built.up1} nodad")
    on_node(f"link set {built.up1} up")
    on_node(f"link set {built.up2} up")
    on_node(
        f"link add {built.vx100} mtu 1400 address 02:00:00:00:01:00 "
        f"type vxlan id 100 dev {built.up1} dstport 4789"
    )
    on_node(
        f"link add {built.vx200} mtu 1400 address 02:00:00:00:02:00 "
        f"type vxlan id 200 local 10.32.0.1 dstport 4790"
    )
    on_node(
        f"link add {built.macvlan} link {built.up1} address 02:00:00:00:00:99 "
        "type macvlan mode bridge"
    )
    for name in (built.vx100, built.vx200, built.macvlan):
        on_node(f"link set {name} up")
    for name in (built.up1, built.up2):
        wait_operstate(node, name, "up")
    # What the report must leave out: a bridge with a pod-side veth in it, a CNI
    # leftover named like Calico's, and a segment device netsched-cni made (VXLAN 300
    # over up2, marked by its alias), whose VNI still belongs to up2.
    on_node(f"link add cni{s} type bridge")
    on_node(f"link add veth{s} type veth peer name eth0p{s} netns {switch}")
    on_node(f"link set veth{s} master cni{s}")
    on_node(f"link add cali{s} type veth peer name calp{s} netns {switch}")
    on_node(f"link add nsx{s} type vxlan id 300 dev {built.up2} dstport 4791")
    ip("-n", node, "link", "set", f"nsx{s}", "alias", "netsched-segment vxlan 300")
    return built


CONFIG = {
    "interfaces": [{"name": "up2*", "trunkVlans": [31, 30]}, {"name": "up3*", "speedMbps": 25000}],
    "roles": [
        {"interface": "up1*", "role": "pod"},
        {"vlan": 30, "role": "storage"},
        {"interface": "up3*", "role": "control"},
    ],
}


def expected(built: BuiltNode) -> list[NetworkInterface]:
    n = built.netns

    def oper(name: str) -> str:
        return sysfs(n, name, "operstate")

    return [
        NetworkInterface(
            name=built.up1,
            kind="veth",
            role=InterfaceRole.POD,
            speed_mbps=10_000,
            mtu=9000,
            mac="02:00:00:00:00:01",
            oper_state="up",
            vlans=[],
            vnis=[100],
            addresses=["10.31.0.1/24", "2001:db8:31::1/64"],
        ),
        NetworkInterface(
            name=built.up2,
            kind="veth",
            role=InterfaceRole.STORAGE,
            speed_mbps=10_000,
            mtu=1500,
            mac="02:00:00:00:00:02",
            oper_state="up",
            vlans=[30, 31],
            vnis=[200, 300],
            addresses=["10.32.0.1/24"],
        ),
        NetworkInterface(
            name=built.up3,
            kind="veth",
            role=InterfaceRole.CONTROL,
            speed_mbps=25_000,
            mtu=1500,
            mac="02:00:00:00:00:03",
            oper_state="down",
            addresses=["10.33.0.1/24"],
        ),
        NetworkInterface(
            name=built.vx100,
            kind="vxlan",
            role=InterfaceRole.ANY,
            speed_mbps=ethtool_speed(n, built.vx100),
            mtu=1400,
            mac="02:00:00:00:01:00",
            oper_state=oper(built.vx100),
        ),
        NetworkInterface(
            name=built.vx200,
            kind="vxlan",
            role=InterfaceRole.ANY,
            speed_mbps=ethtool_speed(n, built.vx200),
            mtu=1400,
            mac="02:00:00:00:02:00",
            oper_state=oper(built.vx200),
        ),
        NetworkInterface(
            name=built.macvlan,
            kind="macvlan",
            role=InterfaceRole.ANY,
            speed_mbps=ethtool_speed(n, built.macvlan),
            mtu=9000,
            mac="02:00:00:00:00:99",
            oper_state=oper(built.macvlan),
        ),
    ]


def without_rates(interfaces: list[NetworkInterface]) -> list[dict]:
    return [i.model_dump(exclude={"rx_bps", "tx_bps"}) for i in interfaces]


@pytest.fixture
def built(namespaces: Namespaces) -> BuiltNode:
    return build_node(namespaces)


def test_report_matches_the_node_that_was_built(built: BuiltNode) -> None:
    config = ReporterConfig.model_validate(
        {"netns": built.netns, "nodeName": "node-a", "zone": "eu-1a", **CONFIG}
    )
    with NetlinkSource(built.netns) as source:
        reporter = Reporter(config, source)
        reporter.prime()
        report = reporter.cycle()
    assert report.metadata.name == "node-a"
    assert report.status.zone == "eu-1a"
    assert without_rates(report.status.interfaces) == without_rates(expected(built))
    # The oracle agrees with the kernel's own tools on what ethtool says for veth.
    assert ethtool_speed(built.netns, built.up1) == 10_000


def test_default_rule_keeps_uplinks_and_leaves_out_plumbing(built: BuiltNode) -> None:
    config = ReporterConfig(netns=built.netns)
    with NetlinkSource(built.netns) as source:
        reporter = Reporter(config, source)
        reporter.prime()
        names = [i.name for i in reporter.cycle().status.interfaces]
    assert names == [built.up1, built.up2, built.up3, built.vx100, built.vx200, built.macvlan]


def test_include_pattern_wins_over_exclusions(built: BuiltNode) -> None:
    config = ReporterConfig.model_validate(
        {"netns": built.netns, "exclude": {"include": ["cali*"], "kinds": ["vxlan", "loopback"]}}
    )
    with NetlinkSource(built.netns) as source:
        reporter = Reporter(config, source)
        reporter.prime()
        names = {i.name for i in reporter.cycle().status.interfaces}
    assert any(name.startswith("cali") for name in names)
    assert not names & {built.vx100, built.vx200}
    assert not any(name.startswith(("veth", "cni")) for name in names)


def test_vlan_link_is_discovered_where_the_kernel_has_8021q(built: BuiltNode) -> None:
    vlan = f"vl{suffix()}"
    try:
        ip(
            "-n",
            built.netns,
            "link",
            "add",
            "link",
            built.up1,
            "name",
            vlan,
            "type",
            "vlan",
            "id",
            "42",
        )
    except subprocess.CalledProcessError as error:
        pytest.skip(
            f"this kernel has no 802.1q VLAN link type ({error.stderr.strip()}); "
            "the VLAN path is covered by test_vlan_messages.py"
        )
    config = ReporterConfig.model_validate(
        {"netns": built.netns, "roles": [{"vlan": 42, "role": "storage"}]}
    )
    with NetlinkSource(built.netns) as source:
        reporter = Reporter(config, source)
        reporter.prime()
        interfaces = {i.name: i for i in reporter.cycle().status.interfaces}
    assert interfaces[built.up1].vlans == [42]
    assert interfaces[built.up1].role is InterfaceRole.STORAGE
    assert interfaces[vlan].kind == "vlan" and interfaces[vlan].vlans == []
