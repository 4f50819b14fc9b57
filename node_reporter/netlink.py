"""What the kernel says about a node's links, read over netlink with pyroute2.

Two rtnetlink dumps (links with their 64-bit counters, and addresses) make one
:class:`Snapshot`; link speed comes from ethtool over generic netlink, which, unlike
``/sys/class/net``, answers for the namespace the socket was opened in. The parsing
functions take pyroute2 messages, so they run as well on messages decoded from bytes
(the unit tests replay a VLAN link this kernel cannot create).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

# Imported from their modules, not the package root: they work whether ``pyroute2``
# was imported whole or registered bare (as netsched-cni does to start faster).
from pyroute2.iproute.linux import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic.ethtool import NlEthtool

log = logging.getLogger(__name__)

IFF_LOOPBACK = 0x8
SPEED_UNKNOWN = 0xFFFFFFFF
SCOPE_LINK = 253
"""Addresses of scope link (fe80::/10) or host (127.0.0.1) say nothing about reachability."""


@dataclass(frozen=True, slots=True)
class Link:
    """One link as rtnetlink describes it; ``kind`` is ``physical`` for a driver-backed NIC."""

    index: int
    name: str
    kind: str
    mtu: int
    mac: str | None
    oper_state: str
    master: int | None
    parent: int | None
    """``IFLA_LINK`` when it names a link of the same namespace (VLAN, macvlan parent)."""
    rx_bytes: int
    tx_bytes: int
    vlan_id: int | None = None
    vxlan_vni: int | None = None
    vxlan_underlay: int | None = None
    vxlan_local: str | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    index: int
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    scope: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Links and addresses of one moment; ``taken_at`` is ``time.monotonic()``."""

    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    taken_at: float


def parse_link(message: Any) -> Link:
    """A :class:`Link` from an ``RTM_NEWLINK`` message (pyroute2 ``ifinfmsg``)."""
    # One pass over the attributes rather than a scan of the list per get().
    attrs = {slot[0]: slot[1] for slot in message["attrs"]}
    linkinfo = attrs.get("IFLA_LINKINFO")
    kind = linkinfo.get("IFLA_INFO_KIND") if linkinfo is not None else None
    if kind is None:
        kind = "loopback" if message["flags"] & IFF_LOOPBACK else "physical"
    data = linkinfo.get("IFLA_INFO_DATA") if linkinfo is not None else None
    # IFLA_LINK of a veth names its peer, maybe in another namespace (then
    # IFLA_LINK_NETNSID is set): such an index means nothing here.
    parent = attrs.get("IFLA_LINK")
    if attrs.get("IFLA_LINK_NETNSID") is not None or parent == message["index"] or parent == 0:
        parent = None
    stats = attrs.get("IFLA_STATS64") or attrs.get("IFLA_STATS") or {}
    link = Link(
        index=message["index"],
        name=attrs.get("IFLA_IFNAME"),
        kind=kind,
        mtu=attrs.get("IFLA_MTU") or 0,
        mac=attrs.get("IFLA_ADDRESS"),
        oper_state=str(attrs.get("IFLA_OPERSTATE") or "unknown").lower(),
        master=attrs.get("IFLA_MASTER") or None,
        parent=parent,
        rx_bytes=int(stats.get("rx_bytes", 0)),
        tx_bytes=int(stats.get("tx_bytes", 0)),
        alias=attrs.get("IFLA_IFALIAS") or None,
    )
    if kind == "vlan" and data is not None:
        return replace(link, vlan_id=data.get("IFLA_VLAN_ID"))
    if kind == "vxlan" and data is not None:
        local = data.get("IFLA_VXLAN_LOCAL") or data.get("IFLA_VXLAN_LOCAL6")
        return replace(
            link,
            vxlan_vni=data.get("IFLA_VXLAN_ID"),
            vxlan_underlay=data.get("IFLA_VXLAN_LINK") or None,
            vxlan_local=local if local not in ("0.0.0.0", "::") else None,
        )
    return link


def parse_address(message: Any) -> Address | None:
    """An :class:`Address` from an ``RTM_NEWADDR`` message (None if it has no address)."""
    # For IPv4 point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    value = message.get("IFA_LOCAL") or message.get("IFA_ADDRESS")
    if value is None:
        return None
    return Address(
        index=message["index"],
        address=ipaddress.ip_interface(f"{value}/{message['prefixlen']}"),
        scope=message["scope"],
    )


def parse_snapshot(links: Iterable[Any], addresses: Iterable[Any], taken_at: float) -> Snapshot:
    parsed_addresses = tuple(a for a in map(parse_address, addresses) if a is not None)
    return Snapshot(tuple(parse_link(m) for m in links), parsed_addresses, taken_at)


class NamespaceNotFound(FileNotFoundError):
    """The configured network namespace is not there (a typo, or it was deleted)."""


class NetlinkSource:
    """Netlink sockets into one network namespace (None: the reporter's own).

    The sockets stay open across cycles (opening one into a namespace costs a
    fork in pyroute2) and are reopened after an error.
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._route: IPRoute | None = None
        self._ethtool: NlEthtool | None = None
        self._ethtool_broken = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in (self._route, self._ethtool):
            if sock is not None:
                try:
                    sock.close()
                except OSError:  # already gone; nothing left to release
                    pass
        self._route = self._ethtool = None

    def _open_route(self) -> IPRoute:
        if self._route is None:
            # flags=0: never create the namespace (pyroute2's default would).
            try:
                self._route = IPRoute(netns=self.netns, flags=0) if self.netns else IPRoute()
            except FileNotFoundError as error:
                raise NamespaceNotFound(
                    f"network namespace {self.netns!r} does not exist"
                ) from error
        return self._route

    def snapshot(self) -> Snapshot:
        """Dump links (with counters) and addresses; one retry on a fresh socket."""
        try:
            return self._dump()
        except (NetlinkError, OSError) as error:
            # A dump interrupted by a concurrent change (NLM_F_DUMP_INTR) or a
            # socket that went stale: start over once on a new socket.
            log.warning("netlink dump failed, retrying on a new socket: %s", error)
            self.close()
            return self._dump()

    def _dump(self) -> Snapshot:
        route = self._open_route()
        links = route.get_links()
        taken_at = time.monotonic()
        addresses = route.get_addr()
        return parse_snapshot(links, addresses, taken_at)

    def speed_mbps(self, link: Link) -> int | None:
        """The link's speed in Mbit/s from ethtool, else ``/sys/class/net`` (only when
        inspecting our own namespace: sysfs shows the namespace it was mounted in).
        None when the driver does not know (virtio, veth peers down, tunnels) or the
        link vanished meanwhile."""
        speed = self._ethtool_speed(link)
        if speed is None and self.netns is None:
            speed = _sysfs_speed(link.name)
        return speed

    def _ethtool_speed(self, link: Link) -> int | None:
        if self._ethtool_broken:
            return None
        try:
            if self._ethtool is None:
                self._ethtool = NlEthtool(netns=self.netns, flags=0) if self.netns else NlEthtool()
            replies = self._ethtool.get_linkmode(ifindex=link.index)
        except NetlinkError as error:
            if error.code in (errno.ENODEV, errno.EOPNOTSUPP, errno.ENOENT):
                return None  # vanished, or no link modes for this driver
            log.warning("ethtool netlink failed for %s: %s", link.name, error)
            self._reset_ethtool()
            return None
        except FileNotFoundError:
            self._reset_ethtool()  # the namespace went away; the next dump will say so
            return None
        except (OSError, ValueError) as error:
            # No ethtool generic-netlink family (kernels before 5.6): use sysfs from now on.
            log.warning("ethtool over netlink unavailable (%s); using /sys/class/net", error)
            self._ethtool_broken = True
            self._reset_ethtool()
            return None
        for reply in replies:
            speed = reply.get("ETHTOOL_A_LINKMODES_SPEED")
            if speed is not None:
                return speed if 0 < speed < SPEED_UNKNOWN else None
        return None

    def _reset_ethtool(self) -> None:
        if self._ethtool is not None:
            try:
                self._ethtool.close()
            except OSError:
                pass
            self._ethtool = None


def _sysfs_speed(name: str, root: Path = Path("/sys/class/net")) -> int | None:
    try:
        value = int((root / name / "speed").read_text().strip())
    except (OSError, ValueError):  # absent, or EINVAL for links without a speed
        return None
    return value if 0 < value < SPEED_UNKNOWN and value != -1 else None
