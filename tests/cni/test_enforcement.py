"""Reserved rates hold on a real kernel: iperf3 (TCP) between two pods on one node.

Pod ``server`` is unshaped; pod ``shaped`` has the rate in one direction. Goodput must
be at least 0.95 of the reserved rate (TCP over Ethernet at MTU 1500 carries at most
1448/1514 = 0.956 of the wire rate) and never above 1.02 of it (see
``Lab.goodput_ratios`` for the one retry a run below 0.95 gets).
"""

from __future__ import annotations

import pytest

from tests.cni.lab import Lab, ipv4_of
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

    # egress: the shaped pod sends; ingress: the unshaped server sends to it (-R)
    ratios = lab.goodput_ratios(server, ipv4_of(server, "eth0"), shaped, rate,
                                reverse=direction == "ingress", low=0.95)
    assert ratios[-1] >= 0.95, f"{direction} at {rate // MBIT} Mbit/s: goodput ratios {ratios}"
