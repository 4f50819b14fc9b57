"""The pod's end of an attachment: a macvlan moved into its namespace and configured."""

from __future__ import annotations

import ipaddress

from pyroute2.iproute.linux import IPRoute

from contract.reservation import AttachmentReservation

MACVLAN_BRIDGE = "bridge"


def create_macvlan(host: IPRoute, lower: int, netns_fd: int, att: AttachmentReservation) -> None:
    """Create the macvlan on ``lower`` directly inside the pod's namespace under its final name.

    Created in place, it never exists in the node's namespace, so two pods asking for
    ``net1`` at once cannot collide there.
    """
    extra = {"mtu": att.mtu} if att.mtu else {}
    host.link("add", ifname=att.interface, kind="macvlan", link=lower,
              macvlan_mode=MACVLAN_BRIDGE, address=att.mac.lower(), net_ns_fd=netns_fd, **extra)


def configure(pod: IPRoute, att: AttachmentReservation, container_id: str) -> int:
    """Alias, address (its prefix route comes with it) and up; returns the ifindex."""
    index = pod.link_lookup(ifname=att.interface)[0]
    pod.link("set", index=index, ifalias=container_id, state="up")
    if att.ip is not None:
        interface = ipaddress.ip_interface(att.ip)
        pod.addr("add", index=index, address=str(interface.ip),
                 prefixlen=interface.network.prefixlen)
    return index


def remove(pod: IPRoute, name: str) -> None:
    for index in pod.link_lookup(ifname=name):
        pod.link("del", index=index)


def describe(pod: IPRoute, name: str) -> dict[str, object] | None:
    """MAC, MTU and addresses of ``name`` in the pod, or None if it is not there (CHECK)."""
    found = pod.link_lookup(ifname=name)
    if not found:
        return None
    link = pod.link("get", index=found[0])[0]
    addresses = [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in pod.get_addr(index=found[0])
                 if a.get("IFA_ADDRESS") and not a.get("IFA_ADDRESS").startswith("fe80")]
    return {"index": found[0], "mac": link.get("IFLA_ADDRESS"), "mtu": link.get("IFLA_MTU"),
            "addresses": addresses, "alias": link.get("IFLA_IFALIAS")}
