"""The shaping path's netlink messages (cni.rtnl, cni.shaping) against pyroute2's own.

cni.rtnl packs the messages that pyroute2's IPRoute used to send for shaping; these
tests build the same requests with pyroute2's IPBatch (which encodes without sending) and
compare the bytes after the header, so the kernel gets what it got before. Needs no root:
IPBatch only opens a netlink socket.
"""

from __future__ import annotations

import struct

import pytest
from pyroute2.iproute.linux import IPBatch

from cni import rtnl, shaping
from cni.shaping import plan_bucket

HEADER = struct.Struct("=LHHLL")


def one_message(data: bytes) -> tuple[int, int, bytes]:
    """(type, flags, body) of the single message in ``data``."""
    length, kind, flags, _, _ = HEADER.unpack_from(data)
    assert length == len(data)
    return kind, flags, data[HEADER.size:]


@pytest.fixture
def batch():
    compiler = IPBatch()
    yield compiler
    compiler.close()


def compiled(batch: IPBatch, call) -> tuple[int, int, bytes]:
    batch.reset()
    call()
    return one_message(bytes(batch.asyncore.batch))


def test_link_messages_match_pyroute2(batch: IPBatch) -> None:
    ack = rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK
    assert compiled(batch, lambda: batch.link("get", ifname="eth0")) == (
        rtnl.RTM_GETLINK, ack, rtnl.ifinfo() + rtnl.string(rtnl.IFLA_IFNAME, "eth0"))
    assert compiled(batch, lambda: batch.link("add", ifname="nsb0123456789a", kind="ifb",
                                              mtu=9000)) == (
        rtnl.RTM_NEWLINK, ack | rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL,
        rtnl.ifinfo() + rtnl.string(rtnl.IFLA_IFNAME, "nsb0123456789a")
        + rtnl.u32(rtnl.IFLA_MTU, 9000)
        + rtnl.attr(rtnl.IFLA_LINKINFO, rtnl.string(rtnl.IFLA_INFO_KIND, "ifb")))
    assert compiled(batch, lambda: batch.link("set", index=7, ifalias="ctr1", state="up")) == (
        rtnl.RTM_NEWLINK, ack,
        rtnl.ifinfo(7, rtnl.IFF_UP, rtnl.IFF_UP) + rtnl.string(rtnl.IFLA_IFALIAS, "ctr1"))
    assert compiled(batch, lambda: batch.link("del", index=7)) == (
        rtnl.RTM_DELLINK, ack, rtnl.ifinfo(7))


def test_ingress_and_redirect_match_pyroute2(batch: IPBatch) -> None:
    ack = rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK
    assert compiled(batch, lambda: batch.tc("add", "ingress", 3, shaping.INGRESS_HANDLE)) == (
        rtnl.RTM_NEWQDISC, ack | rtnl.NLM_F_CREATE | rtnl.NLM_F_EXCL,
        shaping.ingress_request(3))
    assert compiled(batch, lambda: batch.tc("del", "ingress", 3, shaping.INGRESS_HANDLE)) == (
        rtnl.RTM_DELQDISC, ack, shaping.ingress_request(3))
    assert compiled(batch, lambda: batch.tc(
        "replace-filter", "u32", 3, parent=shaping.INGRESS_HANDLE, prio=1,
        protocol=shaping.ETH_P_ALL, target=0x10001, keys=["0x0/0x0+0"],
        action=[{"kind": "mirred", "direction": "egress", "action": "redirect",
                 "ifindex": 70000}])) == (
        rtnl.RTM_NEWTFILTER, ack | rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE,
        shaping.redirect_request(3, 70000))
    assert compiled(batch, lambda: batch.tc("del", index=3, handle=shaping.TBF_HANDLE,
                                            parent=shaping.TC_H_ROOT)) == (
        rtnl.RTM_DELQDISC, ack, rtnl.tcmsg(3, shaping.TBF_HANDLE, shaping.TC_H_ROOT))


@pytest.mark.parametrize(("rate_bits", "mtu"), [(8_000, 1500), (100_000_000, 1500),
                                                (5_000_000_000, 9000)])
def test_tbf_is_pyroute2s_with_the_64_bit_rate_and_burst_added(batch: IPBatch, rate_bits: int,
                                                                mtu: int) -> None:
    """pyroute2's tbf sends the 32-bit parameters and the rate table; cni.shaping sends
    the same and then the 64-bit rate and the burst in bytes, as tc does."""
    bucket = plan_bucket(rate_bits, 0, 25, mtu)
    theirs = compiled(batch, lambda: batch.tc("replace", "tbf", 3, shaping.TBF_HANDLE,
                                              rate=bucket.rate_bytes, burst=bucket.burst_bytes,
                                              limit=bucket.limit_bytes))
    ours = shaping.tbf_request(3, bucket)
    assert theirs[0] == rtnl.RTM_NEWQDISC
    header = len(rtnl.tcmsg(0, 0, 0))
    assert theirs[2][:header] == ours[:header]  # tcmsg: index, handle, root
    their_attrs, our_attrs = rtnl.attrs(theirs[2], header), rtnl.attrs(ours, header)
    assert their_attrs[shaping.TCA_KIND] == our_attrs[shaping.TCA_KIND] == b"tbf\0"
    their_options = rtnl.attrs(their_attrs[shaping.TCA_OPTIONS])
    our_options = rtnl.attrs(our_attrs[shaping.TCA_OPTIONS])
    assert our_options[shaping.TCA_TBF_PARMS] == their_options[shaping.TCA_TBF_PARMS]
    assert our_options[shaping.TCA_TBF_RTAB] == their_options[shaping.TCA_TBF_RTAB]
    assert our_options[shaping.TCA_TBF_RATE64] == struct.pack("=Q", bucket.rate_bytes)
    assert our_options[shaping.TCA_TBF_BURST] == struct.pack("=I", bucket.burst_bytes)
    assert set(our_options) == {shaping.TCA_TBF_PARMS, shaping.TCA_TBF_RTAB,
                                shaping.TCA_TBF_RATE64, shaping.TCA_TBF_BURST}


def test_attributes_round_trip() -> None:
    packed = rtnl.string(3, "eth0") + rtnl.u32(4, 1500) + rtnl.attr(18 | rtnl.NLA_F_NESTED,
                                                                    rtnl.string(1, "ifb"))
    found = rtnl.attrs(packed)
    assert found == {3: b"eth0\0", 4: struct.pack("=I", 1500), 18: rtnl.string(1, "ifb")}


def tbf_dump(bucket, rate64: bool) -> dict[int, bytes]:
    """A root tbf's attributes as the kernel dumps them (net/sched/sch_tbf.c, tbf_dump): the
    32-bit parameters, and the 64-bit rate only when the rate does not fit 32 bits."""
    ours = rtnl.attrs(shaping.tbf_options(bucket))
    options = rtnl.attr(shaping.TCA_TBF_PARMS, ours[shaping.TCA_TBF_PARMS])
    if rate64:
        options += rtnl.attr(shaping.TCA_TBF_RATE64, ours[shaping.TCA_TBF_RATE64])
    return {shaping.TCA_KIND: b"tbf\0", shaping.TCA_OPTIONS: options}


def test_the_root_tbf_is_read_back_from_a_dump_by_rate_and_queue() -> None:
    """What CHECK compares: (rate in bytes/s, limit in bytes) of the tbf at the root, the
    64-bit rate where the kernel sends it; other qdiscs (the ingress one, a tbf elsewhere)
    are not it."""
    slow, fast = plan_bucket(10_000_000, 0, 25, 1500), plan_bucket(40_000_000_000, 0, 25, 1500)
    ingress = (3, shaping.TC_H_INGRESS, {shaping.TCA_KIND: b"ingress\0"})
    elsewhere = (3, 0x10001, tbf_dump(fast, rate64=True))
    assert shaping._root_tbf([ingress, elsewhere, (3, shaping.TC_H_ROOT, tbf_dump(slow, rate64=False))]) == (
        1_250_000, 31_250)
    assert shaping._root_tbf([(3, shaping.TC_H_ROOT, tbf_dump(fast, rate64=True))]) == (
        5_000_000_000, 125_000_000)
    assert shaping._root_tbf([ingress, elsewhere]) is None
    not_tbf = (3, shaping.TC_H_ROOT, {shaping.TCA_KIND: b"fq_codel\0"})
    assert shaping._root_tbf([not_tbf]) is None
    assert shaping._has_ingress([not_tbf, ingress]) is True
    assert shaping._has_ingress([not_tbf]) is False
