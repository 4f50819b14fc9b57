"""VLAN discovery over netlink messages of a VLAN link, for kernels without 802.1q.

The CI kernel cannot create a VLAN link, so these RTM_NEWLINK/RTM_NEWADDR messages are
not captured from a kernel: they are encoded to bytes in the kernel's wire layout by
pyroute2's own rtnetlink message classes (the attributes an 802.1q link carries:
IFLA_LINK to the parent, IFLA_LINKINFO kind "vlan" with IFLA_VLAN_PROTOCOL and
IFLA_VLAN_ID) and decoded by the same marshal the IPRoute socket uses on what the
kernel sends. test_discovery.py exercises the same path on a real 802.1q kernel.
"""

from __future__ import annotations

from typing import Any

from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from contract.objects import InterfaceRole
from node_reporter.config import ReporterConfig
from node_reporter.netlink import parse_snapshot
from node_reporter.rates import Rate
from node_reporter.report import build_interfaces, segments_by_link

RTM_NEWLINK, RTM_NEWADDR = 16, 20
IFF_UP_RUNNING_LOWER_UP = 0x1 | 0x40 | 0x10000 | 0x1000 | 0x2


def link_message(
    index: int,
    name: str,
    mac: str,
    *,
    kind: str | None = None,
    parent: int | None = None,
    data: list[tuple[str, Any]] | None = None,
    mtu: int = 1500,
    master: int | None = None,
) -> bytes:
    msg = ifinfmsg()
    msg["header"]["type"] = RTM_NEWLINK
    msg["index"], msg["flags"], msg["ifi_type"] = index, IFF_UP_RUNNING_LOWER_UP, 1
    attrs: list[tuple[str, Any]] = [
        ("IFLA_IFNAME", name),
        ("IFLA_MTU", mtu),
        ("IFLA_OPERSTATE", "UP"),
        ("IFLA_ADDRESS", mac),
        ("IFLA_STATS64", {"rx_bytes": 1000 * index, "tx_bytes": 2000 * index}),
    ]
    if parent is not None:
        attrs.append(("IFLA_LINK", parent))
    if master is not None:
        attrs.append(("IFLA_MASTER", master))
    if kind is not None:
        info: list[tuple[str, Any]] = [("IFLA_INFO_KIND", kind)]
        if data:
            info.append(("IFLA_INFO_DATA", {"attrs": data}))
        attrs.append(("IFLA_LINKINFO", {"attrs": info}))
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data)


def address_message(index: int, address: str, prefixlen: int) -> bytes:
    msg = ifaddrmsg()
    msg["header"]["type"] = RTM_NEWADDR
    msg["family"], msg["prefixlen"], msg["index"], msg["scope"] = 2, prefixlen, index, 0
    msg["attrs"] = [("IFA_ADDRESS", address), ("IFA_LOCAL", address)]
    msg.encode()
    return bytes(msg.data)


def decoded(*buffers: bytes) -> list[Any]:
    return list(MarshalRtnl().parse(b"".join(buffers)))


# A physical NIC (no IFLA_LINKINFO), VLAN 100 and 200 on it, and a VXLAN whose
# underlay is the VLAN-100 link by its local address: a common storage layout.
LINKS = decoded(
    link_message(2, "ens3", "52:54:00:12:34:56", mtu=9000),
    link_message(
        3,
        "ens3.100",
        "52:54:00:12:34:56",
        kind="vlan",
        parent=2,
        data=[("IFLA_VLAN_PROTOCOL", 0x8100), ("IFLA_VLAN_ID", 100)],
    ),
    link_message(
        4,
        "ens3.200",
        "52:54:00:12:34:56",
        kind="vlan",
        parent=2,
        data=[("IFLA_VLAN_PROTOCOL", 0x8100), ("IFLA_VLAN_ID", 200)],
    ),
    link_message(
        5,
        "vxlan7",
        "0a:00:00:00:00:07",
        kind="vxlan",
        mtu=1450,
        data=[("IFLA_VXLAN_ID", 7), ("IFLA_VXLAN_LOCAL", "10.100.0.5")],
    ),
)
ADDRESSES = decoded(address_message(3, "10.100.0.5", 24), address_message(2, "192.0.2.10", 24))


def test_vlan_links_are_decoded_with_their_tag_and_parent() -> None:
    snapshot = parse_snapshot(LINKS, ADDRESSES, taken_at=0.0)
    vlan = next(link for link in snapshot.links if link.name == "ens3.100")
    assert (vlan.kind, vlan.vlan_id, vlan.parent) == ("vlan", 100, 2)
    assert next(link for link in snapshot.links if link.name == "ens3").kind == "physical"


def test_vlan_tags_go_to_the_parent_and_vnis_to_the_underlay() -> None:
    snapshot = parse_snapshot(LINKS, ADDRESSES, taken_at=0.0)
    vlans, vnis = segments_by_link(snapshot)
    assert vlans == {2: {100, 200}}
    assert vnis == {3: {7}}


def test_vlan_role_mapping_and_trunk_merge() -> None:
    config = ReporterConfig.model_validate(
        {
            "interfaces": [{"name": "ens3", "trunkVlans": [300, 100]}],
            "roles": [{"vlan": 300, "role": "storage"}],
        }
    )
    snapshot = parse_snapshot(LINKS, ADDRESSES, taken_at=0.0)
    interfaces = {
        i.name: i for i in build_interfaces(snapshot, config, {2: 25_000}, {2: Rate(8, 16)})
    }
    uplink = interfaces["ens3"]
    assert uplink.vlans == [100, 200, 300]
    assert uplink.role is InterfaceRole.STORAGE
    assert (uplink.kind, uplink.speed_mbps, uplink.mtu, uplink.addresses) == (
        "physical",
        25_000,
        9000,
        ["192.0.2.10/24"],
    )
    assert (uplink.rx_bps, uplink.tx_bps) == (8, 16)
    assert interfaces["ens3.100"].vlans == [] and interfaces["ens3.100"].vnis == [7]
    assert interfaces["vxlan7"].vnis == []
