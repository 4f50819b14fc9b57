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
message is built here, with the attributes the kernel defines (include/uapi/linux/pkt_sched.h).
"""

from __future__ import annotations

import errno
import hashlib
from dataclasses import dataclass

from pyroute2.iproute.linux import IPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_NEWQDISC
from pyroute2.netlink.rtnl.tcmsg import sched_tbf, tcmsg
from pyroute2.netlink.rtnl.tcmsg.common import calc_xmittime

from cni.errors import CNIError, ErrorCode

ETH_P_ALL = 0x0003
TC_H_ROOT = 0xFFFFFFFF
INGRESS_HANDLE = 0xFFFF0000  # the ingress qdisc's handle, parent of its filters
TC_H_INGRESS = 0xFFFFFFF1
TBF_HANDLE = 0x10000
FRAME_OVERHEAD = 14  # Ethernet header: tc counts it, the MTU does not
U32_MAX = 2**32 - 1  # tbf's queue limit, burst and legacy rate fields are 32-bit


class _TbfOptions(sched_tbf.options):
    """tbf's options with the attributes pyroute2 leaves out (64-bit rate, burst in bytes)."""

    # pyroute2 compiles a class's nla_map once and marks that on the class; a subclass
    # would inherit the parent's mark and decode with the parent's table.
    _nlmsg_base__compiled_nla = False

    nla_map = (
        ("TCA_TBF_UNSPEC", "none"),
        ("TCA_TBF_PARMS", "tbf_parms"),
        ("TCA_TBF_RTAB", "rtab"),
        ("TCA_TBF_PTAB", "ptab"),
        ("TCA_TBF_RATE64", "uint64"),
        ("TCA_TBF_PRATE64", "uint64"),
        ("TCA_TBF_BURST", "uint32"),
        ("TCA_TBF_PBURST", "uint32"),
        ("TCA_TBF_PAD", "hex"),
    )


class _TbfMessage(tcmsg):
    """A qdisc message whose options are always read and written as :class:`_TbfOptions`."""

    nla_map = tuple((name, "tbf_options" if name == "TCA_OPTIONS" else kind)
                    for name, kind in tcmsg.nla_map)
    tbf_options = _TbfOptions
    _nlmsg_base__compiled_nla = False  # as in _TbfOptions


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
    :mod:`bandwidth_accounting.rates`, checked where it is read.
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


def _tbf(ipr: IPRoute, index: int, bucket: TokenBucket) -> None:
    """Create or replace the tbf at the root of ``index``, as ``tc qdisc replace … tbf`` does."""
    rate = bucket.rate_bytes
    msg = _TbfMessage()
    msg["index"] = index
    msg["handle"] = TBF_HANDLE
    msg["parent"] = TC_H_ROOT
    parms = {"rate": min(rate, U32_MAX), "limit": bucket.limit_bytes, "mtu": 0,
             "buffer": min(calc_xmittime(rate, bucket.burst_bytes), U32_MAX)}
    msg["attrs"] = [("TCA_KIND", "tbf"), ("TCA_OPTIONS", {"attrs": [
        ("TCA_TBF_PARMS", parms), ("TCA_TBF_RTAB", True),
        ("TCA_TBF_RATE64", rate), ("TCA_TBF_BURST", bucket.burst_bytes)]})]
    msg["header"]["type"] = RTM_NEWQDISC
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    ipr.nlm_request_batch([msg])


def shape_egress(ipr: IPRoute, index: int, bucket: TokenBucket) -> None:
    """Traffic leaving the pod through ``index``: tbf as the interface's root qdisc."""
    _tbf(ipr, index, bucket)


def shape_ingress(ipr: IPRoute, index: int, ifb: str, mtu: int, bucket: TokenBucket,
                  alias: str) -> None:
    """Traffic entering the pod through ``index``: redirected to ``ifb`` and shaped there."""
    existing = ipr.link_lookup(ifname=ifb)
    if not existing:
        ipr.link("add", ifname=ifb, kind="ifb", mtu=mtu)
        existing = ipr.link_lookup(ifname=ifb)
    ifb_index = existing[0]
    ipr.link("set", index=ifb_index, ifalias=alias, state="up")
    _tbf(ipr, ifb_index, bucket)
    try:
        ipr.tc("add", "ingress", index, INGRESS_HANDLE)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise
    ipr.tc("replace-filter", "u32", index, parent=INGRESS_HANDLE, prio=1, protocol=ETH_P_ALL,
           target=0x10001, keys=["0x0/0x0+0"], action=[{"kind": "mirred", "direction": "egress",
                                         "action": "redirect", "ifindex": ifb_index}])


def _ignore_missing(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.ENODEV):
            raise


def unshape(ipr: IPRoute, ifname: str, ifb: str) -> None:
    """Remove what ``shape_*`` made on ``ifname``; anything already gone is fine."""
    found = ipr.link_lookup(ifname=ifname)
    if found:
        index = found[0]
        if root_bucket(ipr, index) is not None:
            # without a kind, pyroute2 deletes the root qdisc by handle (a kind would
            # make it build tbf parameters for the request)
            _ignore_missing(ipr.tc, "del", index=index, handle=TBF_HANDLE, parent=TC_H_ROOT)
        if has_ingress(ipr, index):
            _ignore_missing(ipr.tc, "del", "ingress", index, INGRESS_HANDLE)
    for ifb_index in ipr.link_lookup(ifname=ifb):
        _ignore_missing(ipr.link, "del", index=ifb_index)


def root_bucket(ipr: IPRoute, index: int) -> tuple[int, int] | None:
    """(rate in bytes/s, limit in bytes) of the tbf at the root of ``index``, if there is one.

    The kernel sends the 64-bit rate only when it exceeds the 32-bit field, so the dump is
    decoded again with the attributes pyroute2 does not know.
    """
    for qdisc in ipr.get_qdiscs(index=index):
        if qdisc["parent"] == TC_H_ROOT and qdisc.get_attr("TCA_KIND") == "tbf":
            full = _TbfMessage(qdisc.data, offset=qdisc.offset)
            full.decode()
            options = full.get_attr("TCA_OPTIONS")
            parms = options.get_attr("TCA_TBF_PARMS")
            return options.get_attr("TCA_TBF_RATE64") or parms["rate"], parms["limit"]
    return None


def has_ingress(ipr: IPRoute, index: int) -> bool:
    return any(q["parent"] == TC_H_INGRESS for q in ipr.get_qdiscs(index=index))


def check_bucket(ipr: IPRoute, index: int, where: str, bucket: TokenBucket | None) -> None:
    """Fail unless the root qdisc of ``index`` is exactly ``bucket`` (or no tbf when None)."""
    found = root_bucket(ipr, index)
    expected = None if bucket is None else (bucket.rate_bytes, bucket.limit_bytes)
    if found != expected:
        raise CNIError(ErrorCode.CHECK_MISMATCH, f"{where}: tbf is {found}, expected {expected}",
                       "(rate bytes/s, queue bytes)")
