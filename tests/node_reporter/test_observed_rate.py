"""The observed rate matches what iperf3 measured through the uplink, within 10 %.

iperf3 paces TCP at a fixed rate for 3 s between the node's namespace and the
"switch" namespace behind its uplink veth. The reporter's window (primed 0.8 s in,
reported 1.8 s later) lies inside the run, where the paced rate is steady.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from node_reporter.config import ReporterConfig
from node_reporter.netlink import NetlinkSource
from node_reporter.report import Reporter
from tests.node_reporter.conftest import Namespaces, ip, suffix, wait_operstate

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_reported_rate_is_within_10_percent_of_iperf3(
    namespaces: Namespaces, direction: str
) -> None:
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 is not installed")
    node, switch = namespaces.create("ns"), namespaces.create("sw")
    s = suffix()
    uplink = f"up{s}"
    ip("-n", node, "link", "add", uplink, "type", "veth", "peer", "name", f"sw{s}", "netns", switch)
    ip("-n", node, "addr", "add", "10.41.0.1/24", "dev", uplink)
    ip("-n", switch, "addr", "add", "10.41.0.2/24", "dev", f"sw{s}")
    ip("-n", node, "link", "set", uplink, "up")
    ip("-n", switch, "link", "set", f"sw{s}", "up")
    wait_operstate(node, uplink, "up")

    server = namespaces.spawn(switch, "iperf3", "-s", "-1", "-B", "10.41.0.2", "--forceflush")
    assert server.stdout is not None
    while "Server listening" not in server.stdout.readline():
        assert server.poll() is None, server.stderr.read() if server.stderr else "iperf3 -s exited"
    reverse = ["-R"] if direction == "rx" else []
    client = namespaces.spawn(
        node, "iperf3", "-c", "10.41.0.2", "-t", "3", "-b", "300M", "-J", *reverse
    )

    with NetlinkSource(node) as source:
        reporter = Reporter(ReporterConfig(netns=node), source)
        time.sleep(0.8)
        reporter.prime()
        time.sleep(1.8)
        report = reporter.cycle()
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0, err or out
    measured = json.loads(out)["end"]["sum_received"]["bits_per_second"]

    interface = next(i for i in report.status.interfaces if i.name == uplink)
    observed = interface.tx_bps if direction == "tx" else interface.rx_bps
    other = interface.rx_bps if direction == "tx" else interface.tx_bps
    print(f"{direction}: reporter {observed / 1e6:.1f} Mbit/s, iperf3 {measured / 1e6:.1f} Mbit/s")
    assert measured > 100e6, f"iperf3 moved only {measured / 1e6:.0f} Mbit/s"
    assert abs(observed - measured) <= 0.10 * measured, (
        f"reporter saw {observed / 1e6:.1f} Mbit/s {direction}, iperf3 measured {measured / 1e6:.1f} Mbit/s"
    )
    assert other < 0.10 * observed, "the reverse direction carries only ACKs"
