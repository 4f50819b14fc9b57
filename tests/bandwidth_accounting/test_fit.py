"""``pod_refusals``: what makes a pod unplaceable on every node, each reason once, named;
``reservation_for`` on a NetworkAttachmentDefinition's attachment.

The extender's filter tests reach the same function over HTTP; these call it directly, so
that mutation testing (``make mutate``, which runs in-process tests only) sees it.
"""

from __future__ import annotations

import ipaddress

import pytest

from bandwidth_accounting.fit import Cause, Plan, pod_refusals, reservation_for
from bandwidth_accounting.ipam import AddressPoolExhausted, derived_mac
from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.requirements import AttachmentRequirement, PodRequirements
from contract import annotations
from contract.objects import Network, NetworkInterface, NetworkSpec, ObjectMeta
from contract.reservation import AttachmentReservation, Rates, Reservation
from contract.wire import DefinitionMode, NetworkMode
from topology.attachment_definitions import DefinitionNetwork
from topology.graph import Topology

OURS, MULTUS = annotations.NETWORKS, annotations.MULTUS_NETWORKS

TOPOLOGY = Topology(
    [], [],
    [
        Network(metadata=ObjectMeta(name="storage"), spec=NetworkSpec(
            mode=NetworkMode.MACVLAN, subnet="10.20.0.0/24", gateway="10.20.0.1")),
        Network(metadata=ObjectMeta(name="open"), spec=NetworkSpec(mode=NetworkMode.MACVLAN)),
        Network(metadata=ObjectMeta(name="point"), spec=NetworkSpec(mode=NetworkMode.MACVLAN, subnet="10.30.0.0/31")),
        Network(metadata=ObjectMeta(name="host"), spec=NetworkSpec(mode=NetworkMode.MACVLAN, subnet="10.31.0.7/32")),
        Network(metadata=ObjectMeta(name="six"), spec=NetworkSpec(mode=NetworkMode.MACVLAN, subnet="fd00::/64")),
        Network(metadata=ObjectMeta(name="six-pair"), spec=NetworkSpec(mode=NetworkMode.MACVLAN, subnet="fd01::/127")),
        Network(metadata=ObjectMeta(name="overlay"), spec=NetworkSpec(
            mode=NetworkMode.VXLAN, vni=5001, port=4790, group="239.1.1.1", subnet="10.50.0.0/24",
            gateway="10.50.0.1", mtu=1450)),
        Network(metadata=ObjectMeta(name="tiny"), spec=NetworkSpec(
            mode=NetworkMode.VLAN, vlan=60, subnet="10.60.0.0/30", gateway="10.60.0.1")),
    ],
    [
        DefinitionNetwork(key="team/nas", mode=DefinitionMode.MACVLAN, subnet=ipaddress.ip_network("10.40.0.0/24"),
                          gateway=ipaddress.ip_address("10.40.0.1"), master="bond0", vlan=40, mtu=9000),
        DefinitionNetwork(key="team/dhcp", mode=DefinitionMode.MACVLAN),
    ],
)


def attach(network: str, ip: str | None = None, interface: str = "net1") -> AttachmentRequirement:
    return AttachmentRequirement(network=network, interface=interface,
                                 ip=ipaddress.ip_interface(ip) if ip is not None else None)


def holding_address(network: str, mode: str, ip: str, **spec) -> Ledger:
    """A ledger where pod ``other`` holds ``ip`` on ``network``."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth1"): (1000, 1000)})
    held = AttachmentReservation(network=network, interface="net1", mode=mode, parent="eth1", ip=ip, **spec)
    ledger.reserve("other", "default/other", 0, Reservation(node="n", attachments=[held]))
    return ledger


def refusals(*attachments: AttachmentRequirement, ledger: Ledger | None = None, uid: str = "me") -> list[tuple[Cause, str]]:
    found = pod_refusals(PodRequirements(attachments=attachments), TOPOLOGY, ledger or Ledger(), uid)
    return [(refusal.cause, refusal.message) for refusal in found]


def test_an_unknown_network_is_named_under_the_annotation_that_asked_for_it():
    assert refusals(attach("nowhere"), attach("team/gone", interface="net2"), attach("storage", interface="net3")) == [
        (Cause.UNKNOWN_NETWORK, f"annotation {OURS}: unknown network 'nowhere'"),
        (Cause.UNKNOWN_NETWORK, f"annotation {MULTUS}: no NetworkAttachmentDefinition 'team/gone'"),
    ]


def test_every_attachment_is_checked_after_one_with_nothing_to_check():
    """An attachment without a static address, and a definition whose IPAM hands out no
    pool netsched knows, need no check; the attachments after them still do."""
    outside = (Cause.ADDRESS, f"annotation {OURS}: ip '10.99.0.5/24' is outside network 'storage' subnet 10.20.0.0/24")
    assert refusals(attach("open"), attach("storage", "10.99.0.5/24", "net2")) == [outside]
    assert refusals(attach("open", "192.168.0.9/24"), attach("storage", "10.99.0.5/24", "net2")) == [
        (Cause.ADDRESS, f"annotation {OURS}: ip '192.168.0.9/24' is outside network 'open' subnet None"), outside]
    assert refusals(attach("team/dhcp", "192.168.0.9/24"), attach("storage", "10.99.0.5/24", "net2")) == [outside]
    gateway = (Cause.ADDRESS, f"annotation {OURS}: ip '10.20.0.1' is the gateway address of network 'storage' "
                              "(10.20.0.0/24)")
    assert refusals(attach("storage", "10.99.0.5/24"), attach("storage", "10.20.0.1/24", "net2")) == [outside, gateway]
    assert refusals(attach("storage", "10.20.0.1/24"), attach("storage", "10.99.0.5/24", "net2")) == [gateway, outside]


def test_a_definition_s_subnet_and_gateway_are_checked_under_multus_s_annotation():
    assert refusals(attach("team/nas", "10.40.0.9/24")) == []
    assert refusals(attach("team/nas", "10.41.0.9/24")) == [
        (Cause.ADDRESS, f"annotation {MULTUS}: ip '10.41.0.9/24' is outside network 'team/nas' subnet 10.40.0.0/24")]
    assert refusals(attach("team/nas", "10.40.0.1/24")) == [
        (Cause.ADDRESS, f"annotation {MULTUS}: ip '10.40.0.1' is the gateway address of network 'team/nas' "
                        "(10.40.0.0/24)")]


@pytest.mark.parametrize(("network", "ip", "role"), [
    ("storage", "10.20.0.0/24", "network"),
    ("storage", "10.20.0.255/24", "broadcast"),
    ("storage", "10.20.0.1/24", "gateway"),
    ("storage", "10.20.0.254/24", None),
    ("point", "10.30.0.0/31", None),  # a /31 has no network or broadcast address (RFC 3021)
    ("point", "10.30.0.1/31", None),
    ("host", "10.31.0.7/32", None),
    ("six", "fd00::/64", "network"),  # the subnet-router anycast address
    ("six", "fd00::ffff:ffff:ffff:ffff/64", None),  # IPv6 has no broadcast
    ("six-pair", "fd01::/127", "network"),
])
def test_no_pod_takes_a_subnet_s_network_broadcast_or_gateway_address(network, ip, role):
    address = str(ipaddress.ip_interface(ip).ip)
    subnet = TOPOLOGY.networks[network].spec.subnet
    expected = [] if role is None else [
        (Cause.ADDRESS, f"annotation {OURS}: ip '{address}' is the {role} address of network '{network}' ({subnet})")]
    assert refusals(attach(network, ip)) == expected


def test_an_address_another_pod_holds_is_taken_but_not_one_the_pod_holds_itself():
    ledger = holding_address("storage", "macvlan", "10.20.0.50/24")
    taken = (Cause.ADDRESS, f"annotation {OURS}: ip '10.20.0.50' on network 'storage' is already taken")
    assert refusals(attach("storage", "10.20.0.50/24"), attach("storage", "10.20.0.50/24", "net2"), ledger=ledger) == [
        taken, taken]
    assert refusals(attach("storage", "10.20.0.50/24"), ledger=ledger, uid="other") == []
    assert refusals(attach("storage", "10.20.0.51/24"), ledger=ledger) == []


def test_a_definition_s_attachment_is_recorded_as_asked_and_allocates_nothing():
    """Multus's delegate chain makes the interface and the definition's IPAM addresses it:
    the reservation records the definition, what the pod asked and where it goes."""
    asked = AttachmentRequirement(network="team/nas", interface="net4", ingress_bps=3_000, egress_bps=5_000,
                                  ip=ipaddress.ip_interface("10.40.0.9/24"), mac="02:00:00:00:00:09")
    unaddressed = AttachmentRequirement(network="team/nas", interface="net5")
    bond = NetworkInterface(name="bond0")
    plan = Plan("n", charges={"bond0": (3_000, 5_000)}, attachments=[(asked, bond), (unaddressed, bond)])
    reservation = reservation_for(plan, PodRequirements(attachments=(asked, unaddressed)), TOPOLOGY, Ledger(), "me")
    assert reservation.attachments == [
        AttachmentReservation(network="team/nas", definition="team/nas", interface="net4", mode=DefinitionMode.MACVLAN,
                              vlan=40, parent="bond0", ip="10.40.0.9/24", mac="02:00:00:00:00:09",
                              gateway="10.40.0.1", mtu=9000, ingress=3_000, egress=5_000),
        AttachmentReservation(network="team/nas", definition="team/nas", interface="net5", mode=DefinitionMode.MACVLAN,
                              vlan=40, parent="bond0", gateway="10.40.0.1", mtu=9000),
    ]


def test_a_network_s_attachment_gets_the_network_s_settings_an_address_and_a_mac():
    overlay = AttachmentRequirement(network="overlay", interface="net1", ingress_bps=1_000, egress_bps=2_000)
    storage = AttachmentRequirement(network="storage", interface="net2", ip=ipaddress.ip_interface("10.20.0.15/24"),
                                    mac="02:00:00:00:00:15")
    unaddressed = AttachmentRequirement(network="open", interface="net3")
    asked = PodRequirements(ingress_bps=100, egress_bps=200, attachments=(overlay, storage, unaddressed))
    eth0, eth1 = NetworkInterface(name="eth0"), NetworkInterface(name="eth1")
    plan = Plan("n", charges={"eth0": (100, 200), "eth1": (1_000, 2_000), "eth2": (0, 0)}, primary_parent="eth0",
                attachments=[(overlay, eth1), (storage, eth1), (unaddressed, eth0)])
    reservation = reservation_for(plan, asked, TOPOLOGY, Ledger(), "me")
    assert reservation == Reservation(
        node="n", primary=Rates(ingress=100, egress=200), primary_parent="eth0",
        interfaces={"eth0": Rates(ingress=100, egress=200), "eth1": Rates(ingress=1_000, egress=2_000)},
        attachments=[
            AttachmentReservation(network="overlay", interface="net1", mode=NetworkMode.VXLAN, vni=5001, port=4790,
                                  group="239.1.1.1", parent="eth1", ip="10.50.0.2/24", mac=derived_mac("me", "overlay"),
                                  gateway="10.50.0.1", mtu=1450, ingress=1_000, egress=2_000),
            AttachmentReservation(network="storage", interface="net2", mode=NetworkMode.MACVLAN, parent="eth1",
                                  ip="10.20.0.15/24", mac="02:00:00:00:00:15", gateway="10.20.0.1"),
            AttachmentReservation(network="open", interface="net3", mode=NetworkMode.MACVLAN, parent="eth0",
                                  mac=derived_mac("me", "open")),
        ],
    )


def test_a_full_pool_is_refused_naming_the_network():
    ledger = holding_address("tiny", "vlan", "10.60.0.2/30", vlan=60)
    asked = AttachmentRequirement(network="tiny", interface="net1")
    plan = Plan("n", attachments=[(asked, NetworkInterface(name="eth1"))])
    with pytest.raises(AddressPoolExhausted, match=r"^network 'tiny': no free address left in 10\.60\.0\.0/30$"):
        reservation_for(plan, PodRequirements(attachments=(asked,)), TOPOLOGY, ledger, "me")
    ledger.release("other")
    [attachment] = reservation_for(plan, PodRequirements(attachments=(asked,)), TOPOLOGY, ledger, "me").attachments
    assert (attachment.mode, attachment.vlan, attachment.ip) == (NetworkMode.VLAN, 60, "10.60.0.2/30")
