"""DRA holdings in every view: reservations (API and CLI), topology, dashboard, metrics, explain."""

from __future__ import annotations

import pytest

from contract import annotations as ann
from contract.dra import ResourceClaim
from dashboard.data import dashboard_view
from netsched.commands.reservations import render_table
from scheduler_extender.metrics import ExtenderMetrics
from scheduler_extender.views import explain_view, reservation_views, topology_view
from tests.dra.ledger_objects import allocated_claim, claim_object, bound_annotation_pod, extender, pod, source  # noqa: F401

G = 1_000_000_000


@pytest.fixture
def held(extender, source):  # noqa: F811
    obj = allocated_claim("fast", "node-x", egress="6G", ingress="1G")
    obj["status"]["reservedFor"] = [{"resource": "pods", "name": "dra", "uid": "uid-dra"}]
    source.apply(ResourceClaim.model_validate(obj))
    bound_annotation_pod(extender, source, "annotated", "node-x", "2G")
    return obj["status"]["allocation"]["devices"]["results"][0]["shareID"]


def test_reservations_mark_the_claim_and_its_share(extender, held):  # noqa: F811
    views = reservation_views(extender.state, "node-x")
    assert [(v.pod, v.claim.name if v.claim else None) for v in views] == [
        ("default/annotated", None), ("default/dra", "fast"),
    ]
    claimed = views[1]
    assert claimed.claim.share_id == held and claimed.claim.device == "eth0"
    assert claimed.reservation.interfaces["eth0"].egress == 6 * G
    table = render_table(views)
    assert f"(DRA claim default/fast, share {held})" in table


def test_topology_and_dashboard_show_the_claimed_part(extender, held):  # noqa: F811
    [node] = [n for n in topology_view(extender.state).nodes if n.name == "node-x"]
    [eth0] = node.interfaces
    assert (eth0.reserved.ingress, eth0.reserved.egress) == (1 * G, 8 * G)
    assert (eth0.claimed.ingress, eth0.claimed.egress) == (1 * G, 6 * G)
    document = dashboard_view(extender.state, [], None)
    [claimed] = [r for r in document.reservations if r.claim is not None]
    assert (claimed.claim, claimed.share_id, claimed.interfaces["eth0"]) == ("default/fast", held, (1 * G, 6 * G))


def test_metrics_count_dra_in_reserved_and_apart(extender, held):  # noqa: F811
    registry = ExtenderMetrics(extender.state).registry
    labels = {"node": "node-x", "interface": "eth0", "direction": "egress"}
    assert registry.get_sample_value("netsched_interface_reserved_bps", labels) == 8 * G
    assert registry.get_sample_value("netsched_interface_claimed_bps", labels) == 6 * G
    assert registry.get_sample_value("netsched_node_reserving_pods", {"node": "node-x"}) == 1


def test_explain_shows_dra_held_bandwidth_in_a_refusal(extender, held):  # noqa: F811
    asking = pod("big", annotations={ann.EGRESS_BANDWIDTH: "2G"})
    verdicts = {v.node: v for v in explain_view(extender.scheduler, asking).nodes}
    assert [r.message for r in verdicts["node-x"].reasons] == [
        "eth0 egress: 8G reserved (6G of it by DRA claims) of 9G usable, asks 2G"
    ]
    assert verdicts["node-y"].fits


def test_explain_names_the_pod_s_claim_and_its_refusals(extender, source, held):  # noqa: F811
    from netsched.commands.explain import render

    source.apply(ResourceClaim.model_validate(claim_object("more", egress="2G")))
    view = explain_view(extender.scheduler, pod("dra-2", claim="more"))
    assert view.claims == ["default/more"]
    text = render(view)
    assert "ResourceClaim default/more (DeviceClass bandwidth.netsched.io)" in text
    assert "claim default/more request bandwidth: eth0 egress: 8G reserved (6G of it by DRA claims) of 9G usable" in text


def test_uncounted_allocations_are_listed_and_counted_per_reason(extender, source):  # noqa: F811
    source.apply(ResourceClaim.model_validate(allocated_claim("lost", "node-gone")))
    [problem] = topology_view(extender.state).claim_problems
    assert (problem.claim, problem.reason, problem.value) == ("default/lost", "unknown_node", "node-gone")
    registry = ExtenderMetrics(extender.state).registry
    assert registry.get_sample_value("netsched_claim_allocation_problems", {"reason": "unknown_node"}) == 1
