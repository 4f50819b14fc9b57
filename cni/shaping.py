"""Token-bucket shaping of one pod interface, both directions, inside the pod's namespace.

Traffic *out of* the pod: a ``tbf`` root qdisc on the pod-side interface. The sender's
TCP stack sits right above it, so TCP small queues throttle the socket instead of
filling the queue: the latency under load stays near the link's own.
Traffic *into* the pod: an ``ingress`` qdisc on the same interface redirects every
packet (``u32`` match-all + ``mirred``) to an ``ifb`` device in the pod's namespace,
whose ``tbf`` root shapes it.

Doing both inside the pod's namespace works for every interface kind — the veth of
the main plugin and the macvlan of an attachment alike — where the reference plugin
needs a host-side veth peer. The ifb dies with the namespace, and its name is derived
from the container id and interface, so DEL finds it while the namespace still exists.

The bucket is bounded: the queue holds at most ``max_queue_ms`` of traffic at the
reserved rate, and the burst never exceeds that either, whatever the runtime passes
(containerd passes 2^32-1 bits, which the reference plugin turns into 512 MB of
unshaped traffic and a queue of minutes).

Rates go to the kernel as 64-bit (``TCA_TBF_RATE64``) and the burst in bytes
(``TCA_TBF_BURST``), as ``tc`` itself sends them: pyroute2's tbf knows only the 32-bit
fields, which stop at 34 Gbit/s and, below about 6 kbit/s, cap the bucket at the few
hundred bytes 4.29 s of rate carry (smaller than a frame: nothing passes). So the tbf
message is built here, with the attributes the kernel defines (include/uapi/linux/pkt_sched.h),
and so are the others: every request goes out on a :class:`cni.rtnl.Rtnl` (it says why).
"""

from __future__ import annotations

import errno
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.tcmsg import common as tc_common
from pyroute2.netlink.rtnl.tcmsg.common import calc_xmittime

from cni import rtnl
from cni.errors import CNIError, ErrorCode
from cni.rtnl import Rtnl, attr, string, tcmsg, u32

ETH_P_ALL = 0x0003
TC_H_ROOT = 0xFFFFFFFF
INGRESS_HANDLE = 0xFFFF0000  # the ingress qdisc's handle, parent of its filters
TC_H_INGRESS = 0xFFFFFFF1
TBF_HANDLE = 0x10000
FRAME_OVERHEAD = 14  # Ethernet header: tc counts it, the MTU does not
U32_MAX = 2**32 - 1  # tbf's queue limit, burst and legacy rate fields are 32-bit

# Attribute numbers (include/uapi/linux/pkt_sched.h, pkt_cls.h, tc_act/tc_mirred.h)
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_TBF_PARMS, TCA_TBF_RTAB, TCA_TBF_RATE64, TCA_TBF_BURST = 1, 2, 4, 6
TCA_U32_CLASSID, TCA_U32_SEL, TCA_U32_ACT = 1, 5, 7
TCA_ACT_KIND, TCA_ACT_OPTIONS = 1, 2
TCA_MIRRED_PARMS = 2
TC_ACT_STOLEN = 4
TCA_EGRESS_REDIR = 1
TC_U32_TERMINAL = 1
REDIRECT_CLASS = 0x10001  # the filter's classid, as the reference's `tc filter … flowid 1:1`
# tc_tbf_qopt: rate and peak tc_ratespec (cell_log, reserved, overhead, cell_align, mpu,
# rate), then limit, buffer, mtu
_TBF_QOPT = struct.Struct("=BBHhHI BBHhHI III".replace(" ", ""))
_RTAB_MTU = 1600  # what tc assumes for the rate table when no MTU is given
_TC_GEN_MIRRED = struct.Struct("=IIiiiiI")  # tc_mirred: index, capab, action, refcnt,
# bindcnt, eaction, ifindex
_U32_SEL = struct.Struct("=BBBxHhhhI")  # flags, offshift, nkeys, offmask, off, offoff,
# hoff, hmask
_U32_KEY = struct.Struct("=IIii")  # mask, val, off, offmask


@dataclass(frozen=True)
class TokenBucket:
    """The parameters given to the kernel for one direction, with what was asked."""

    rate_bits: int
    burst_bytes: int
    limit_bytes: int
    requested_burst_bits: int
    burst_clamped: bool

    @property
    def rate_bytes(self) -> int:
        return self.rate_bits // 8

    def describe(self) -> dict[str, object]:
        """What the result and the docs call the applied shaping."""
        return {
            "rate": self.rate_bits,
            "burst": self.burst_bytes * 8,
            "queueBytes": self.limit_bytes,
            "queueMs": round(self.limit_bytes * 8000 / self.rate_bits, 2),
            "burstClamped": self.burst_clamped,
        }


def plan_bucket(rate_bits: int, burst_bits: int, max_queue_ms: float, mtu: int) -> TokenBucket:
    """Bucket for ``rate_bits``: queue and burst both hold ``max_queue_ms`` at the rate.

    The queue bound is the latency promise. The burst is set to the same bound whatever
    was asked: a larger one is an unshaped head start (containerd asks for 2^32-1 bits),
    and a smaller one cannot make up for a sender descheduled for a few milliseconds, so
    the pod gets less than it reserved (measured on a loaded 2-core machine, as wire
    ratio: 0.90-0.97 at 5 Gbit/s with a 2 ms burst, 0.97 at 10 Mbit/s with 10 ms,
    0.99-1.00 with 25 ms). Both are at least two full frames, or tbf could not pass a
    frame at all, and at most the kernel's 32-bit byte counts (from 1.37 Tbit/s on, the
    queue holds less than ``max_queue_ms``). The rate is in the range of
    :mod:`contract.rates`, checked where it is read.
    """
    frame = mtu + FRAME_OVERHEAD
    limit = min(max(int(rate_bits / 8000 * max_queue_ms), 2 * frame), U32_MAX)
    burst = limit
    return TokenBucket(rate_bits, burst, limit, burst_bits,
                       bool(burst_bits) and burst != burst_bits // 8)


def ifb_name(container_id: str, ifname: str) -> str:
    """The ifb that shapes traffic into ``ifname`` of ``container_id`` (deterministic)."""
    digest = hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()
    return f"nsb{digest[:11]}"


def tbf_options(bucket: TokenBucket) -> bytes:
    """tbf's options as ``tc qdisc replace … tbf`` sends them: the legacy 32-bit fields with
    their rate table (cell size 8 bytes, as tc computes it for an unknown MTU), the 64-bit
    rate and the burst in bytes."""
    rate = bucket.rate_bytes
    legacy_rate = min(rate, U32_MAX)
    cell_log = 0
    while (_RTAB_MTU >> cell_log) > 255:
        cell_log += 1
    # calc_xmittime(legacy_rate, (i + 1) << cell_log) for each cell, its arithmetic inlined
    # (the same float operations, so the same table): 256 calls cost a millisecond an ADD
    tick = tc_common.tick_in_usec
    rtab = struct.pack("=256I", *[
        int(int(tc_common.TIME_UNITS_PER_SEC * (float((i + 1) << cell_log) / legacy_rate)) * tick)
        for i in range(256)])
    parms = _TBF_QOPT.pack(cell_log, 0, 0, -1, 0, legacy_rate, 0, 0, 0, 0, 0, 0,
                           bucket.limit_bytes,
                           min(calc_xmittime(rate, bucket.burst_bytes), U32_MAX), 0)
    return (attr(TCA_TBF_PARMS, parms) + attr(TCA_TBF_RTAB, rtab)
            + attr(TCA_TBF_RATE64, struct.pack("=Q", rate)) + u32(TCA_TBF_BURST, bucket.burst_bytes))


def tbf_request(index: int, bucket: TokenBucket) -> bytes:
    """The tbf at the root of ``index``: a RTM_NEWQDISC body (create or replace)."""
    return (tcmsg(index, TBF_HANDLE, TC_H_ROOT) + string(TCA_KIND, "tbf")
            + attr(TCA_OPTIONS, tbf_options(bucket)))


def redirect_request(index: int, ifb_index: int) -> bytes:
    """The ingress filter of ``index`` that hands every packet to ``ifb_index``: u32
    match-all with a mirred egress redirect, priority 1, every protocol (RTM_NEWTFILTER)."""
    mirred = _TC_GEN_MIRRED.pack(0, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, ifb_index)
    action = string(TCA_ACT_KIND, "mirred") + attr(
        TCA_ACT_OPTIONS | rtnl.NLA_F_NESTED, attr(TCA_MIRRED_PARMS, mirred))
    selector = _U32_SEL.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0) + _U32_KEY.pack(0, 0, 0, 0)
    options = (attr(TCA_U32_ACT, attr(1, action)) + u32(TCA_U32_CLASSID, REDIRECT_CLASS)
               + attr(TCA_U32_SEL, selector))
    info = (1 << 16) | struct.unpack("<H", struct.pack(">H", ETH_P_ALL))[0]  # prio, htons(proto)
    return (tcmsg(index, 0, INGRESS_HANDLE, info) + string(TCA_KIND, "u32")
            + attr(TCA_OPTIONS, options))


def ingress_request(index: int) -> bytes:
    """The ingress qdisc of ``index`` (RTM_NEWQDISC to create, RTM_DELQDISC to remove)."""
    return tcmsg(index, INGRESS_HANDLE, TC_H_INGRESS) + string(TCA_KIND, "ingress")


def _tbf(ipr: Rtnl, index: int, bucket: TokenBucket) -> None:
    """Create or replace the tbf at the root of ``index``, as ``tc qdisc replace … tbf`` does."""
    ipr.request(rtnl.RTM_NEWQDISC, rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE,
                tbf_request(index, bucket))


def shape_egress(ipr: Rtnl, index: int, bucket: TokenBucket) -> None:
    """Traffic leaving the pod through ``index``: tbf as the interface's root qdisc."""
    _tbf(ipr, index, bucket)


def shape_ingress(ipr: Rtnl, index: int, ifb: str, mtu: int, bucket: TokenBucket,
                  alias: str) -> None:
    """Traffic entering the pod through ``index``: redirected to ``ifb`` and shaped there."""
    existing = ipr.link(ifb)
    if existing is None:
        ipr.add_link(ifb, "ifb", mtu)
        existing = ipr.link(ifb)
        assert existing is not None, f"{ifb} vanished as it was made"
    ifb_index = existing[0]
    ipr.set_up(ifb_index, alias)
    _tbf(ipr, ifb_index, bucket)
    try:
        ipr.request(rtnl.RTM_NEWQDISC, rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL,
                    ingress_request(index))
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise
    ipr.request(rtnl.RTM_NEWTFILTER, rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE,
                redirect_request(index, ifb_index))


def _ignore_missing(call: Callable[..., object], *args: object) -> None:
    try:
        call(*args)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.ENODEV):
            raise


def unshape(ipr: Rtnl, ifname: str, ifb: str) -> None:
    """Remove what ``shape_*`` made on ``ifname``; anything already gone is fine."""
    found = ipr.link(ifname)
    if found is not None:
        index = found[0]
        qdiscs = ipr.qdiscs(index)
        if _root_tbf(qdiscs) is not None:
            # by handle alone, as `tc qdisc del dev X root` sends it
            _ignore_missing(ipr.request, rtnl.RTM_DELQDISC, 0,
                            tcmsg(index, TBF_HANDLE, TC_H_ROOT))
        if _has_ingress(qdiscs):
            _ignore_missing(ipr.request, rtnl.RTM_DELQDISC, 0, ingress_request(index))
    ifb_found = ipr.link(ifb)
    if ifb_found is not None:
        _ignore_missing(ipr.delete_link, ifb_found[0])


Qdiscs = list[tuple[int, int, dict[int, bytes]]]


def _root_tbf(qdiscs: Qdiscs) -> tuple[int, int] | None:
    for _, parent, attributes in qdiscs:
        if parent == TC_H_ROOT and attributes.get(TCA_KIND) == b"tbf\0":
            options = rtnl.attrs(attributes.get(TCA_OPTIONS, b""))
            parms = _TBF_QOPT.unpack_from(options[TCA_TBF_PARMS])
            rate64 = options.get(TCA_TBF_RATE64)
            rate = struct.unpack("=Q", rate64)[0] if rate64 else 0
            return rate or parms[5], parms[12]
    return None


def _has_ingress(qdiscs: Qdiscs) -> bool:
    return any(parent == TC_H_INGRESS for _, parent, _ in qdiscs)


def root_bucket(ipr: Rtnl, index: int) -> tuple[int, int] | None:
    """(rate in bytes/s, limit in bytes) of the tbf at the root of ``index``, if there is one.

    The kernel sends the 64-bit rate only when it exceeds the 32-bit field.
    """
    return _root_tbf(ipr.qdiscs(index))


def has_ingress(ipr: Rtnl, index: int) -> bool:
    return _has_ingress(ipr.qdiscs(index))


def check_bucket(ipr: Rtnl, index: int, where: str, bucket: TokenBucket | None) -> None:
    """Fail unless the root qdisc of ``index`` is exactly ``bucket`` (or no tbf when None)."""
    found = root_bucket(ipr, index)
    expected = None if bucket is None else (bucket.rate_bytes, bucket.limit_bytes)
    if found != expected:
        raise CNIError(ErrorCode.CHECK_MISMATCH, f"{where}: tbf is {found}, expected {expected}",
                       "(rate bytes/s, queue bytes)")
