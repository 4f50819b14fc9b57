"""Checks on attachments before anything touches the kernel.

The shared :class:`AttachmentReservation` model types the fields; this module holds
the ranges a kernel would otherwise reject half way through an ADD (VLAN ids, VNIs,
MACs, CIDRs, interface names). Every failure names the field and the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from cni.config import valid_ifname
from cni.errors import invalid_config
from contract.rates import rate_problem
from contract.reservation import AttachmentReservation

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def validate_network_name(name: str) -> None:
    if not _NETWORK_NAME.match(name):
        raise invalid_config("name", name, "must be letters, digits, '_', '.' or '-'")


def check_rate(field: str, bps: int) -> None:
    """A rate the extender would have refused is refused here too (one shared range)."""
    problem = rate_problem(bps)
    if problem is not None:
        raise invalid_config(field, bps, problem)


def validate_attachments(attachments: Sequence[AttachmentReservation], primary_ifname: str,
                         source: str) -> None:
    """Raise a CNI error for the first bad field of ``attachments`` (from ``source``)."""
    seen = {primary_ifname}
    for position, att in enumerate(attachments):
        field = f"{source}[{position}]"
        if not valid_ifname(att.interface):
            raise invalid_config(f"{field}.interface", att.interface, "is not a valid interface name")
        if att.interface in seen:
            raise invalid_config(f"{field}.interface", att.interface, "is used twice in the pod")
        seen.add(att.interface)
        if not valid_ifname(att.parent):
            raise invalid_config(f"{field}.parent", att.parent, "is not a valid interface name")
        if att.mode == "vlan" and not (att.vlan is not None and 1 <= att.vlan <= 4094):
            raise invalid_config(f"{field}.vlan", att.vlan, "must be a VLAN id in 1-4094")
        if att.mode == "vxlan":
            if not (att.vni is not None and 1 <= att.vni <= 16_777_215):
                raise invalid_config(f"{field}.vni", att.vni, "must be a VNI in 1-16777215")
            if att.port is not None and not 1 <= att.port <= 65535:
                raise invalid_config(f"{field}.port", att.port, "must be a UDP port in 1-65535")
            if att.group is not None and not att.group.is_multicast:
                raise invalid_config(f"{field}.group", str(att.group), "is not a multicast address")
            if att.group is not None and att.group.version != 4:
                raise invalid_config(f"{field}.group", str(att.group),
                                     "is IPv6; VXLAN segments use an IPv4 underlay group")
        _validate_mac(f"{field}.mac", att.mac)
        if att.ip is not None:
            _validate_cidr(f"{field}.ip", att.ip, att.gateway)
        if att.mtu is not None and not 68 <= att.mtu <= 65535:
            raise invalid_config(f"{field}.mtu", att.mtu, "must be in 68-65535")
        check_rate(f"{field}.ingress", att.ingress)
        check_rate(f"{field}.egress", att.egress)


def _validate_mac(field: str, mac: str) -> None:
    if not _MAC.match(mac):
        raise invalid_config(field, mac, "is not a MAC address like 02:00:00:00:00:15")
    first = int(mac[:2], 16)
    if first & 1 or mac.replace(":", "").strip("0") == "":
        raise invalid_config(field, mac, "must be a unicast, non-zero MAC address")


def _validate_cidr(field: str, cidr: str, gateway: object = None) -> None:
    """A host address with its prefix, and one a host may hold on that subnet.

    As Kubernetes and IPAM plugins refuse them: not the subnet's network address, nor
    its IPv4 broadcast (both exist only below /31), nor the gateway's address.
    """
    try:
        interface = ipaddress.ip_interface(cidr)
    except ValueError as exc:
        raise invalid_config(field, cidr, "is not an address with prefix like 10.20.0.15/24") from exc
    network = interface.network
    if "/" not in cidr:
        raise invalid_config(field, cidr, "needs a host address with its prefix length")
    if network.prefixlen < network.max_prefixlen - 1:
        if interface.ip == network.network_address:
            raise invalid_config(field, cidr, f"is the network address of {network}")
        if network.version == 4 and interface.ip == network.broadcast_address:
            raise invalid_config(field, cidr, f"is the broadcast address of {network}")
    if gateway is not None and str(interface.ip) == str(gateway):
        raise invalid_config(field, cidr, f"is the gateway's address {gateway}")


def vxlan_group(vni: int) -> str:
    """The multicast group of a VNI without one: 239.x.y.z holding the VNI's three bytes.

    Deterministic, so every node derives the same group; unique per VNI; inside the
    organisation-local scope 239.0.0.0/8 (RFC 2365).
    """
    return f"239.{(vni >> 16) & 0xFF}.{(vni >> 8) & 0xFF}.{vni & 0xFF}"
