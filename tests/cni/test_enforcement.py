"""Reserved rates hold on a real kernel: iperf3 (TCP) between two pods on one node.

Pod ``server`` is unshaped; pod ``shaped`` has the rate in one direction. The kernel's
tbf carries exactly the reserved rate (read back with ``tc``), and what it passes is
bounded from both sides: goodput at least 0.95 of the rate (TCP over Ethernet at MTU
1500 carries at most 1448/1514 = 0.956 of the wire rate; ``Lab.goodput_ratios`` gives a
run below one more try), and the shaper's own byte counter at most rate × time + its
25 ms bucket over 5 s (``Lab.shaper_excess``, 0.2 % slack). A rate given to the kernel
wrong by any amount fails the read-back; a kernel shaping 3 % above the rate it was
given failed the counter check in every case at load average 16-48 (1 %: in some).
"""

from __future__ import annotations

import pytest

from tests.cni.lab import MOST_GOODPUT, Lab, ifb_of, ipv4_of, tbf_rate
from tests.cni.topologies import MBIT, lone_node

pytestmark = pytest.mark.kernel

RATES = [10 * MBIT, 100 * MBIT, 1000 * MBIT]


@pytest.mark.parametrize("direction", ["egress", "ingress"])
@pytest.mark.parametrize("rate", RATES, ids=lambda r: f"{r // MBIT}Mbit")
def test_reserved_rate_is_enforced(lab: Lab, rate: int, direction: str) -> None:
    node = lone_node(lab)
    runtime = node.runtime()
    server, _, _ = node.pod(runtime)
    shaped, _, result = node.pod(runtime, runtime_config={
        "bandwidth": {f"{direction}Rate": rate, f"{direction}Burst": 0}})
    assert result["netsched"]["shaping"]["eth0"][direction]["rate"] == rate
    shaper = (shaped, "eth0" if direction == "egress" else ifb_of(shaped))
    assert tbf_rate(*shaper) == rate

    # egress: the shaped pod sends; ingress: the unshaped server sends to it (-R)
    ratios = lab.goodput_ratios(server, ipv4_of(server, "eth0"), shaped, rate,
                                reverse=direction == "ingress", low=0.95, shaper=shaper)
    assert 0.95 <= ratios[-1] <= MOST_GOODPUT, f"{direction} at {rate // MBIT} Mbit/s: {ratios}"
