"""Traffic nobody reserved, as the node reporter publishes it, through the webhook on a real socket.

The reports are applied as a reporter writes them (``NodeNetwork`` status with
``rxBps``/``txBps`` and a heartbeat); the extender sees them through its cluster source.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract import annotations as ann
from contract.objects import NodeNetwork
from scheduler_extender.file_source import FileClusterSource
from tests.conftest import make_pod


def filter_body(pod, names):
    return {"Pod": pod.model_dump(mode="json"), "Nodes": None, "NodeNames": names}


def report(source: FileClusterSource, node: str, *, tx_bps: int = 0, rx_bps: int = 0, age: float = 0,
           only: bool = False) -> None:
    """Publish ``node``'s report with eth0 carrying these rates, made ``age`` seconds ago;
    ``only``: as the node's only report (a report older than one already seen is a replay
    and changes nothing, so the earlier one is deleted first)."""
    current = source.get(NodeNetwork, node)
    assert isinstance(current, NodeNetwork)
    updated = current.model_copy(deep=True)
    updated.status.heartbeat_time = datetime.now(UTC) - timedelta(seconds=age)
    eth0 = next(i for i in updated.status.interfaces if i.name == "eth0")
    eth0.tx_bps, eth0.rx_bps = tx_bps, rx_bps
    if only:
        source.remove(current)
    source.apply(updated)


def bind(served, pod, node):
    return served.post("/bind", json={"PodName": pod.metadata.name, "PodNamespace": "default",
                                      "PodUID": pod.metadata.uid, "Node": node}).json()


def test_traffic_nobody_reserved_refuses_a_pod_that_reservations_alone_would_admit(served, source):
    # node-a-1: eth0 25G (22.5G usable at the default 10 % headroom); node-a-3: 10G (9G).
    held = source.apply(make_pod("held", {ann.EGRESS_BANDWIDTH: "2G"}))
    assert served.post("/filter", json=filter_body(held, ["node-a-1"])).json()["NodeNames"] == ["node-a-1"]
    assert bind(served, held, "node-a-1") == {"Error": ""}
    # The reporter sees 20G leaving: 2G of it the held pod's, 18G nobody reserved.
    report(source, "node-a-1", tx_bps=20_000_000_000)
    pod = make_pod("web", {ann.EGRESS_BANDWIDTH: "3G"})
    result = served.post("/filter", json=filter_body(pod, ["node-a-1", "node-a-3"])).json()
    assert result["NodeNames"] == ["node-a-3"]
    assert result["FailedAndUnresolvableNodes"] == {
        "node-a-1": "eth0 egress: 2G reserved, 18G observed of 22.5G usable, asks 3G"}
    # The other direction is quiet: a pod asking ingress only still fits.
    reader = make_pod("reader", {ann.INGRESS_BANDWIDTH: "3G"})
    assert served.post("/filter", json=filter_body(reader, ["node-a-1"])).json()["NodeNames"] == ["node-a-1"]


def test_observed_load_lowers_the_score(served, source):
    report(source, "node-a-1", tx_bps=15_000_000_000)
    pod = make_pod("web", {ann.EGRESS_BANDWIDTH: "1G"})
    body = filter_body(pod, ["node-a-1", "node-a-3"])
    assert served.post("/filter", json=body).json()["NodeNames"] == ["node-a-1", "node-a-3"]
    scores = {s["Host"]: s["Score"] for s in served.post("/prioritize", json=body).json()}
    # spread: share of usable left after the pod, × 10: (22.5 - 15 - 1) / 22.5 and (9 - 1) / 9.
    assert scores == {"node-a-1": 3, "node-a-3": 9}


def test_a_stale_report_neither_blocks_nor_invites(served, source):
    # The node's last report is 45 s old: the node is still schedulable (report TTL 60 s),
    # its rates no longer count (30 s).
    report(source, "node-a-1", tx_bps=22_000_000_000, age=45, only=True)
    pod = make_pod("web", {ann.EGRESS_BANDWIDTH: "3G"})
    body = filter_body(pod, ["node-a-1", "node-a-3"])
    assert served.post("/filter", json=body).json()["NodeNames"] == ["node-a-1", "node-a-3"]
    scores = {s["Host"]: s["Score"] for s in served.post("/prioritize", json=body).json()}
    assert scores["node-a-1"] == 0 < scores["node-a-3"]
    # A fresh report: the 22G burst of 45 s ago is within the 60 s window, so it counts again.
    report(source, "node-a-1", tx_bps=0)
    result = served.post("/filter", json=body).json()
    assert result["FailedAndUnresolvableNodes"] == {
        "node-a-1": "eth0 egress: 0 reserved, 22G observed of 22.5G usable, asks 3G"}


def test_bind_rechecks_against_traffic_seen_since_filter(served, source):
    pod = source.apply(make_pod("late", {ann.EGRESS_BANDWIDTH: "5G"}))
    assert served.post("/filter", json=filter_body(pod, ["node-a-1"])).json()["NodeNames"] == ["node-a-1"]
    report(source, "node-a-1", tx_bps=20_000_000_000)
    error = bind(served, pod, "node-a-1")["Error"]
    assert "no longer fits node-a-1: eth0 egress: 0 reserved, 20G observed of 22.5G usable, asks 5G" in error
