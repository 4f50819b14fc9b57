"""Where the reference ``bandwidth`` plugin (1.1.1) breaks, netsched-cni holds.

- The reference refuses anything but a veth ("has no veth peer"): netsched-cni shapes
  macvlan and VXLAN attachments, both directions.
- With containerd's burst (2^32-1 bits) the reference lets ~512 MB through unshaped and
  queues minutes of traffic: netsched-cni clamps burst and queue to 25 ms at the rate.
- The reference's CHECK crashes when no limit is set: netsched-cni's CHECK works with
  or without limits.
"""

from __future__ import annotations

import os

import pytest

from cni.netns import open_netns, rtnl_in
from cni.shaping import root_bucket
from tests.cni.lab import MOST_GOODPUT, Lab, ifb_of, ipv4_of, tbf_rate
from tests.cni.topologies import MBIT, attachment, lone_node, switched_nodes

pytestmark = pytest.mark.kernel

CONTAINERD_BURST = 2**32 - 1


@pytest.mark.parametrize("mode", ["macvlan", "vxlan"])
@pytest.mark.parametrize("direction", ["egress", "ingress"])
def test_attachments_of_every_kind_are_shaped(lab: Lab, mode: str, direction: str) -> None:
    rate = 50 * MBIT
    node1, node2 = switched_nodes(lab)
    vni = 610 if mode == "vxlan" else None
    shaped_rt = node1.runtime(extra={"attachments": [attachment(
        node1, mode=mode, vni=vni, ip="10.61.0.1/24", mac="02:00:00:00:61:01",
        **{direction: rate})]})
    peer_rt = node2.runtime(extra={"attachments": [attachment(
        node2, mode=mode, vni=vni, ip="10.61.0.2/24", mac="02:00:00:00:61:02")]})
    shaped, _, result = node1.pod(shaped_rt)
    peer, _, _ = node2.pod(peer_rt)
    assert result["netsched"]["shaping"]["net1"][direction]["rate"] == rate
    shaper = (shaped, "net1" if direction == "egress" else ifb_of(shaped))
    assert tbf_rate(*shaper) == rate
    # VXLAN's MTU is 50 bytes smaller (1450): 1398/1464 = 0.955 of the rate at best.
    ratios = lab.goodput_ratios(peer, "10.61.0.2", shaped, rate,
                                reverse=direction == "ingress", low=0.94, shaper=shaper)
    assert ratios[-1] >= 0.94, f"{mode} {direction}: goodput ratios {ratios}"


def bucket_in(netns: str, dev: str) -> tuple[int, int]:
    netns_fd = open_netns(Lab.path(netns))
    try:
        with rtnl_in(netns_fd) as rtnl:
            link = rtnl.link(dev)
            assert link is not None, dev
            found = root_bucket(rtnl, link[0])
    finally:
        os.close(netns_fd)
    assert found is not None
    return found


@pytest.mark.parametrize("direction", ["egress", "ingress"])
def test_containerd_burst_is_clamped_to_25ms(lab: Lab, direction: str) -> None:
    rate = 10 * MBIT
    node = lone_node(lab)
    runtime = node.runtime()
    server, _, _ = node.pod(runtime)
    shaped, _, result = node.pod(runtime, runtime_config={"bandwidth": {
        f"{direction}Rate": rate, f"{direction}Burst": CONTAINERD_BURST}})
    said = result["netsched"]["shaping"]["eth0"][direction]
    assert said["burstClamped"] is True and said["queueMs"] <= 25.0
    assert said["burst"] <= rate * 0.025
    dev = "eth0" if direction == "egress" else ifb_of(shaped)
    rate_bytes, limit = bucket_in(shaped, dev)
    assert rate_bytes * 8 == rate and limit <= rate / 8 * 0.025

    # the very first bytes are shaped too: no unshaped 512 MB head start (no -O omit here)
    run = lab.iperf(server, ipv4_of(server, "eth0"), shaped,
                    reverse=direction == "ingress", seconds=2, omit=0)
    assert Lab.goodput(run) / rate <= MOST_GOODPUT


@pytest.mark.parametrize("bandwidth", [None, {}, {"ingressRate": 0, "egressRate": 0}],
                         ids=["no-capability", "empty", "zero-rates"])
def test_check_works_without_limits(lab: Lab, bandwidth: dict | None) -> None:
    node = lone_node(lab)
    runtime = node.runtime()
    config = None if bandwidth is None else {"bandwidth": bandwidth}
    pod, cid, result = node.pod(runtime, runtime_config=config)
    assert "netsched" not in result
    runtime.check(cid, lab.path(pod))
