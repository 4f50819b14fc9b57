"""/metrics, scraped over a real socket, against what the ledger holds and what the webhook said."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contract import annotations
from contract.reservation import Reservation
from demo.sample_cluster import sample_cluster
from tests.dashboard.cluster import KubeScheduler, served_cluster

GBIT = 1_000_000_000


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """Samples by name, then by sorted label items."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**items: str) -> tuple:
    return tuple(sorted(items.items()))


@pytest.fixture(scope="module")
def scenario():
    """Pods of every kind scheduled through the webhook; the metrics are read after."""
    with served_cluster() as cluster, KubeScheduler(cluster) as kube:
        outcomes = {
            "web": kube.schedule(
                "web", {annotations.INGRESS_BANDWIDTH: "200M", annotations.EGRESS_BANDWIDTH: "500M"}
            ),
            "db": kube.schedule(
                "db",
                {
                    annotations.EGRESS_BANDWIDTH: "1G",
                    annotations.NETWORKS: json.dumps(
                        [{"name": "storage", "ingress": "2G", "egress": "1G"}]
                    ),
                },
            ),
            "typo": kube.schedule("typo", {annotations.INGRESS_BANDWIDTH: "fast"}),
            "ghost": kube.schedule("ghost", {annotations.NETWORKS: "no-such-network"}),
            "plain": kube.schedule("plain", {}),
        }
        # A bind that no longer fits: two 8G pods pass filter on the same 10G node (9G usable),
        # the first takes the link, the second's bind must be refused as a conflict.
        node_10g = next(
            n.metadata.name
            for n in cluster.source.snapshot().node_networks
            if n.status.interfaces[0].speed_mbps == 10_000
        )
        first = kube.create("stream-1", {annotations.EGRESS_BANDWIDTH: "8G"})
        second = kube.create("stream-2", {annotations.EGRESS_BANDWIDTH: "8G"})
        for pod in (first, second):
            assert node_10g in kube.filter(pod)["NodeNames"]
        conflict = {"first": kube.bind(first, node_10g), "second": kube.bind(second, node_10g)}
        yield cluster, outcomes, node_10g, conflict, scrape(cluster.url)


def test_interface_gauges_equal_the_ledger(scenario):
    cluster, _outcomes, _node, _conflict, metrics = scenario
    state = cluster.extender.state
    topology, ledger = state.topology, state.ledger
    expected_series = 0
    for node, report in topology.node_networks.items():
        for iface in report.status.interfaces:
            usable, reserved = ledger.usable(node, iface.name), ledger.reserved(node, iface.name)
            for index, direction in enumerate(("ingress", "egress")):
                key = labels(node=node, interface=iface.name, direction=direction)
                assert metrics["netsched_interface_capacity_bps"][key] == usable[index]
                assert metrics["netsched_interface_reserved_bps"][key] == reserved[index]
                assert (
                    metrics["netsched_interface_observed_bps"][key]
                    == (iface.rx_bps, iface.tx_bps)[index]
                )
                expected_series += 1
    assert len(metrics["netsched_interface_reserved_bps"]) == expected_series == 12 * 3 * 2
    # capacity is link speed less the default 10 % headroom
    eth1 = labels(node="node-a-1", interface="eth1", direction="ingress")
    assert metrics["netsched_interface_capacity_bps"][eth1] == 25 * GBIT * 0.9


def test_reserved_gauges_add_up_to_the_recorded_reservations(scenario):
    """Independently of the ledger: the sum of the reservation annotations the binds wrote."""
    cluster, outcomes, node_10g, _conflict, metrics = scenario
    totals: Counter = Counter()
    for pod in cluster.source.snapshot().pods:
        raw = pod.metadata.annotations.get(annotations.RESERVATION)
        if raw and pod.spec.node_name:
            reservation = Reservation.model_validate_json(raw)
            for iface, rates in reservation.interfaces.items():
                totals[(reservation.node, iface, "ingress")] += rates.ingress
                totals[(reservation.node, iface, "egress")] += rates.egress
    reserved = metrics["netsched_interface_reserved_bps"]
    assert {k for k, v in totals.items() if v} == {
        (dict(key)["node"], dict(key)["interface"], dict(key)["direction"])
        for key, v in reserved.items()
        if v
    }
    for (node, iface, direction), value in totals.items():
        assert reserved[labels(node=node, interface=iface, direction=direction)] == value
    web, db = outcomes["web"], outcomes["db"]
    assert reserved[labels(node=web.node, interface="eth0", direction="egress")] >= 500_000_000
    assert reserved[labels(node=db.node, interface="eth1", direction="ingress")] >= 2 * GBIT
    assert reserved[labels(node=node_10g, interface="eth0", direction="egress")] >= 8 * GBIT


def test_rejections_per_reason_match_the_filter_answers(scenario):
    _cluster, outcomes, _node, _conflict, metrics = scenario
    rejections = metrics["netsched_filter_rejections_total"]
    typo, ghost = outcomes["typo"], outcomes["ghost"]
    assert len(typo.refused) == 12 and all("'fast'" in reason for reason in typo.refused.values())
    assert len(ghost.refused) == 12 and all(
        "no-such-network" in reason for reason in ghost.refused.values()
    )
    assert rejections[labels(reason="invalid_annotation")] == 12
    assert rejections[labels(reason="unknown_network")] == 12
    # every other pod fitted everywhere, so no other reason was counted
    assert sum(rejections.values()) == 24


def test_verb_latency_counts_and_bind_conflicts(scenario):
    _cluster, outcomes, _node, conflict, metrics = scenario
    count = metrics["netsched_extender_request_duration_seconds_count"]
    binds_made = sum(1 for o in outcomes.values() if o.node) + 2
    filters_made = len(outcomes) + 2
    prioritized = sum(1 for o in outcomes.values() if len(o.filtered["NodeNames"] or []) > 1)
    assert count[labels(verb="filter")] == filters_made
    assert count[labels(verb="prioritize")] == prioritized
    assert count[labels(verb="bind")] == binds_made
    assert metrics["netsched_extender_request_duration_seconds_sum"][labels(verb="filter")] > 0
    assert conflict["first"] == "" and "no longer fits" in conflict["second"]
    assert metrics["netsched_bind_conflicts_total"][()] == 1
    assert metrics["netsched_binds_total"][()] == binds_made - 1


def test_node_gauges(scenario):
    cluster, _outcomes, _node, _conflict, metrics = scenario
    ledger = cluster.extender.state.ledger
    per_node = Counter(h.node for h in ledger.holdings())
    reserving = metrics["netsched_node_reserving_pods"]
    assert len(reserving) == 12
    for node in cluster.extender.state.node_names():
        assert reserving[labels(node=node)] == per_node[node]
    assert sum(reserving.values()) == 3  # web, db and stream-1; plain pods hold nothing
    info = metrics["netsched_node_info"]
    expected = {
        labels(node=n.name, region=n.region, zone=n.zone, switch=n.switch)
        for n in sample_cluster().nodes
    }
    assert set(info) == expected and set(info.values()) == {1.0}
    ages = metrics["netsched_node_report_age_seconds"]
    assert len(ages) == 12 and all(0 <= age < 60 for age in ages.values())
    reach = metrics["netsched_network_nodes"]
    assert reach[labels(network="storage", mode="vlan")] == 12
    assert reach[labels(network="replication", mode="vlan")] == 8  # two of three zones
    assert reach[labels(network="tenant", mode="vxlan")] == 12


# -- the Grafana dashboard in deploy/ ----------------------------------------------------------

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "netsched-dashboard.json"


def grafana_queries(dashboard: dict) -> list[str]:
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return queries


def test_grafana_dashboard_queries_only_metrics_the_extender_exposes(scenario):
    _cluster, _outcomes, _node, _conflict, metrics = scenario
    dashboard = json.loads(GRAFANA.read_text())
    queries = grafana_queries(dashboard)
    assert len(queries) >= 15
    used = {name for query in queries for name in re.findall(r"\bnetsched_[a-z_]+", query)}
    exposed = set(metrics)
    assert used <= exposed, (
        f"the dashboard queries metrics /metrics does not have: {used - exposed}"
    )
    # it covers what the design asks for: latency per verb, rejections per reason,
    # capacity / reserved / observed per interface and direction, bind conflicts
    for name in (
        "netsched_extender_request_duration_seconds_bucket",
        "netsched_filter_rejections_total",
        "netsched_interface_capacity_bps",
        "netsched_interface_reserved_bps",
        "netsched_interface_observed_bps",
        "netsched_bind_conflicts_total",
    ):
        assert name in used
    for query in queries:
        assert query.count("(") == query.count(")") and query.count("{") == query.count("}"), query
    # the labels it groups and joins on are labels those metrics carry
    label_names = {label for samples in metrics.values() for key in samples for label, _ in key}
    for query in queries:
        for group in re.findall(r"(?:by|on)\s*\(([^)]*)\)", query):
            for label in filter(None, (part.strip() for part in group.split(","))):
                assert label in label_names | {"le"}, (label, query)


def test_grafana_dashboard_is_well_formed():
    dashboard = json.loads(GRAFANA.read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        for reference in re.findall(r"\$\{?(\w+)", json.dumps(panel)):
            assert reference in variables, f"panel {panel['title']!r} uses undefined ${reference}"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"panel {panel['title']!r} overlaps another"
        cells |= covered
