"""A blocking rtnetlink socket for shaping: the requests every ADD, DEL and CHECK sends.

pyroute2 0.9's ``IPRoute`` runs each request through an asyncio event loop it makes for
the socket, joins the namespace's link, address and route groups (so every change the
plugin makes comes back as an event to read and decode) and decodes every attribute of
every reply. Measured in the daemon, that was about 1 ms of CPU a request and most of an
ADD, where the kernel's own work is tens of microseconds (docs/benchmarks.md). Here the
few messages shaping needs are packed with ``struct`` — byte for byte what pyroute2 sent
for the same calls (tests/cni/test_units.py compares them) — on a plain socket that joins
no group, and only the fields shaping reads are unpacked. Attachments (macvlan, VXLAN,
VLAN devices, addresses) keep pyroute2: they are rare, and its link kinds are worth it.

Layouts are the kernel's (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

from pyroute2.netlink.exceptions import NetlinkError

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLA_F_NESTED = 0x8000

NLMSG_ERROR = 2
NLMSG_DONE = 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTFILTER = 44

IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO, IFLA_IFALIAS = 3, 4, 18, 20
IFLA_INFO_KIND = 1
IFF_UP = 0x1

_HEADER = struct.Struct("=LHHLL")  # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_TCMSG = struct.Struct("=BxxxiIII")  # tcmsg: family, ifindex, handle, parent, info
_ATTR = struct.Struct("=HH")  # nlattr: length, type
_ERROR = struct.Struct("=i")  # nlmsgerr's error, before the echoed request
_RECEIVE_BYTES = 1 << 16  # a dump part is at most 32 KiB (netlink_dump's allocation)


def message(kind: int, flags: int, sequence: int, body: bytes) -> bytes:
    """One netlink message; port 0: the kernel fills in the sender."""
    return _HEADER.pack(_HEADER.size + len(body), kind, flags, sequence, 0) + body


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to 4 bytes as the next one must start aligned."""
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes from ``offset`` on, by type (the nested flag cleared); the first wins."""
    found: dict[int, bytes] = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        found.setdefault(kind & ~NLA_F_NESTED, data[offset + _ATTR.size:offset + length])
        offset += (length + 3) & ~3
    return found


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(0, 0, index, flags, change)


def tcmsg(index: int, handle: int, parent: int, info: int = 0) -> bytes:
    return _TCMSG.pack(0, index, handle, parent, info)


def unpack_tcmsg(body: bytes) -> tuple[int, int, int, dict[int, bytes]]:
    """(ifindex, handle, parent, attributes) of a qdisc or filter message."""
    _, index, handle, parent, _ = _TCMSG.unpack_from(body)
    return index, handle, parent, attrs(body, _TCMSG.size)


class Rtnl:
    """A NETLINK_ROUTE socket in the namespace it was opened in; one request at a time."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                    socket.NETLINK_ROUTE)
        self.socket.bind((0, 0))
        self.sequence = 0

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes) -> list[bytes]:
        """Send one request and read to its acknowledgement; the bodies of its replies.

        A refusal raises pyroute2's NetlinkError with the kernel's errno, as IPRoute did,
        so callers tell EEXIST, ENOENT and ENODEV apart the same way.
        """
        dump = flags & NLM_F_DUMP == NLM_F_DUMP
        self.sequence += 1
        sequence = self.sequence
        self.socket.send(message(kind, flags | NLM_F_REQUEST | (0 if dump else NLM_F_ACK),
                                 sequence, body))
        replies = []
        while True:
            data, _, received_flags, _ = self.socket.recvmsg(_RECEIVE_BYTES)
            if received_flags & socket.MSG_TRUNC:
                raise NetlinkError(errno.EMSGSIZE, "netlink reply larger than the buffer")
            for reply_type, reply_sequence, reply in _messages(data):
                if reply_sequence != sequence:
                    continue  # an answer to nothing this socket is still waiting for
                if reply_type in (NLMSG_ERROR, NLMSG_DONE):
                    code = -_ERROR.unpack_from(reply)[0] if len(reply) >= 4 else 0
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return replies
                replies.append(reply)

    def link(self, name: str) -> tuple[int, int] | None:
        """(ifindex, MTU) of the interface ``name``, or None when there is none."""
        try:
            (reply,) = self.request(RTM_GETLINK, 0, ifinfo() + string(IFLA_IFNAME, name))
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        index = _IFINFO.unpack_from(reply)[2]
        (mtu,) = struct.unpack("=I", attrs(reply, _IFINFO.size)[IFLA_MTU])
        return index, mtu

    def add_link(self, name: str, kind: str, mtu: int) -> None:
        """Create ``name`` of ``kind`` (``ip link add NAME mtu MTU type KIND``)."""
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfo() + string(IFLA_IFNAME, name)
                     + u32(IFLA_MTU, mtu) + attr(IFLA_LINKINFO, string(IFLA_INFO_KIND, kind)))

    def set_up(self, index: int, alias: str) -> None:
        """Give ``index`` its alias and bring it up."""
        self.request(RTM_NEWLINK, 0, ifinfo(index, IFF_UP, IFF_UP) + string(IFLA_IFALIAS, alias))

    def delete_link(self, index: int) -> None:
        self.request(RTM_DELLINK, 0, ifinfo(index))

    def qdiscs(self, index: int) -> list[tuple[int, int, dict[int, bytes]]]:
        """(handle, parent, attributes) of each qdisc on ``index``."""
        found = []
        for body in self.request(RTM_GETQDISC, NLM_F_DUMP, tcmsg(0, 0, 0)):
            qdisc_index, handle, parent, attributes = unpack_tcmsg(body)
            if qdisc_index == index:
                found.append((handle, parent, attributes))
        return found


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, sequence, body) of each message in one datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, sequence, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        yield kind, sequence, data[offset + _HEADER.size:offset + length]
        offset += (length + 3) & ~3
