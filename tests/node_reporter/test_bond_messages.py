"""Bond discovery over netlink messages, for kernels without the bonding driver.

The CI kernel cannot create a bond, so, as in test_vlan_messages.py, these messages are
encoded in the kernel's wire layout by pyroute2's own rtnetlink classes and decoded by the
marshal the IPRoute socket uses: two NICs enslaved to ``bond0`` (IFLA_MASTER), the bond
(IFLA_LINKINFO kind "bond") carrying VLAN 100 and a VXLAN underlay address.
"""

from __future__ import annotations

from contract.objects import InterfaceRole
from node_reporter.config import ReporterConfig
from node_reporter.netlink import parse_snapshot
from node_reporter.rates import Rate
from node_reporter.report import build_interfaces
from tests.node_reporter.test_vlan_messages import address_message, decoded, link_message

BOND = 4
LINKS = decoded(
    link_message(2, "ens3", "52:54:00:00:00:03", master=BOND, mtu=9000),
    link_message(3, "ens4", "52:54:00:00:00:03", master=BOND, mtu=9000),
    link_message(BOND, "bond0", "52:54:00:00:00:03", kind="bond", mtu=9000),
    link_message(5, "bond0.100", "52:54:00:00:00:03", kind="vlan", parent=BOND,
                 data=[("IFLA_VLAN_PROTOCOL", 0x8100), ("IFLA_VLAN_ID", 100)]),
    link_message(6, "vxlan9", "0a:00:00:00:00:09", kind="vxlan", mtu=8950,
                 data=[("IFLA_VXLAN_ID", 9), ("IFLA_VXLAN_LOCAL", "10.9.0.5")]),
)
ADDRESSES = decoded(address_message(BOND, "10.9.0.5", 24))


def test_the_bond_is_reported_and_its_members_are_not() -> None:
    config = ReporterConfig.model_validate({"roles": [{"vlan": 100, "role": "storage"}]})
    snapshot = parse_snapshot(LINKS, ADDRESSES, taken_at=0.0)
    # ethtool reports a bond's speed as the sum of its active members'.
    interfaces = {i.name: i for i in build_interfaces(snapshot, config, {BOND: 50_000},
                                                      {BOND: Rate(80, 160)})}
    assert set(interfaces) == {"bond0", "bond0.100", "vxlan9"}
    bond = interfaces["bond0"]
    assert (bond.kind, bond.speed_mbps, bond.mtu, bond.vlans, bond.vnis) == (
        "bond", 50_000, 9000, [100], [9])
    assert bond.addresses == ["10.9.0.5/24"]
    assert bond.role is InterfaceRole.STORAGE
    assert (bond.rx_bps, bond.tx_bps) == (80, 160)


def test_members_are_reported_when_the_rule_keeps_them() -> None:
    config = ReporterConfig.model_validate({"exclude": {"enslaved": False}})
    snapshot = parse_snapshot(LINKS, ADDRESSES, taken_at=0.0)
    names = {i.name for i in build_interfaces(snapshot, config, {}, {})}
    assert {"ens3", "ens4", "bond0"} <= names
