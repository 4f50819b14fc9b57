"""Segment devices on the node: the VXLAN device of a VNI or the VLAN sub-interface.

One device per segment, shared by every pod of the node on that network; pods get a
macvlan on it. The device carries an alias starting with ``netsched-segment`` so that
only devices netsched-cni made are ever removed. ``macvlan`` networks need no device:
the pods' macvlans sit on the uplink itself.
"""

from __future__ import annotations

import hashlib

from pyroute2.iproute.linux import IPRoute

from cni.errors import CNIError, ErrorCode, invalid_config
from cni.validate import vxlan_group
from contract.reservation import AttachmentReservation

SEGMENT_ALIAS = "netsched-segment"
VXLAN_DEFAULT_PORT = 4789


def segment_name(att: AttachmentReservation) -> str | None:
    """The node-side device name of ``att``'s segment, or None for untagged macvlan."""
    if att.mode == "vxlan":
        return f"nsx{att.vni}"
    if att.mode == "vlan":
        conventional = f"{att.parent}.{att.vlan}"
        if len(conventional) <= 15:
            return conventional
        return f"nsv{att.vlan}-{hashlib.sha256(att.parent.encode()).hexdigest()[:6]}"
    return None


def link_index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def parent_index(ipr: IPRoute, att: AttachmentReservation, field: str) -> int:
    index = link_index(ipr, att.parent)
    if index is None:
        raise invalid_config(f"{field}.parent", att.parent, "is not an interface on this node")
    return index


def ensure_segment(ipr: IPRoute, att: AttachmentReservation, field: str) -> int:
    """The ifindex the pod's macvlan goes on: the segment device (made if missing) or the uplink."""
    uplink = parent_index(ipr, att, field)
    name = segment_name(att)
    if name is None:
        return uplink
    existing = link_index(ipr, name)
    if existing is not None:
        _check_existing(ipr, existing, name, att)
        return existing
    segment_id = att.vni if att.mode == "vxlan" else att.vlan
    alias = f"{SEGMENT_ALIAS} {att.mode} {segment_id}"
    if att.mode == "vxlan":
        group = str(att.group) if att.group is not None else vxlan_group(att.vni or 0)
        ipr.link("add", ifname=name, kind="vxlan", vxlan_id=att.vni, vxlan_link=uplink,
                 vxlan_group=group, vxlan_port=att.port or VXLAN_DEFAULT_PORT)
    else:
        ipr.link("add", ifname=name, kind="vlan", link=uplink, vlan_id=att.vlan)
    index = link_index(ipr, name)
    assert index is not None
    # the kernel ignores IFLA_IFALIAS when creating a link: set it afterwards
    ipr.link("set", index=index, ifalias=alias, state="up")
    return index


def _check_existing(ipr: IPRoute, index: int, name: str, att: AttachmentReservation) -> None:
    link = ipr.link("get", index=index)[0]
    kind = link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
    data = link.get(("IFLA_LINKINFO", "IFLA_INFO_DATA"))
    want = att.vni if att.mode == "vxlan" else att.vlan
    have = None
    if data is not None:
        have = data.get("IFLA_VXLAN_ID") if kind == "vxlan" else data.get("IFLA_VLAN_ID")
    if kind != str(att.mode) or have != want:
        raise CNIError(ErrorCode.INVALID_CONFIG,
                       f"device {name} exists as {kind} {have}, not {att.mode} {want}",
                       "another device holds the segment device's name")
    ipr.link("set", index=index, state="up")


def is_segment(ipr: IPRoute, index: int) -> bool:
    link = ipr.link("get", index=index)[0]
    return (link.get("IFLA_IFALIAS") or "").startswith(SEGMENT_ALIAS)


def remove_segment(ipr: IPRoute, name: str) -> None:
    """Delete segment device ``name`` if it exists and is netsched's."""
    index = link_index(ipr, name)
    if index is not None and is_segment(ipr, index):
        ipr.link("del", index=index)


def orphan_segments(ipr: IPRoute) -> list[str]:
    """Names of all netsched segment devices on the node (GC compares them with the holds)."""
    return [link.get("IFLA_IFNAME") for link in ipr.get_links()
            if (link.get("IFLA_IFALIAS") or "").startswith(SEGMENT_ALIAS)]
