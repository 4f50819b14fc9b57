"""Without the admission policy, the ledger still counts only reservations netsched could have
made: readable, within their size cap, naming the pod's own node. Others are set aside,
logged, counted in a metric and listed in the topology API, never counted.

The pods are written into the in-test API server (as a tenant's kubectl would, which the
real server allows when no admission policy stops it) and the extender follows them
through its watch, over the real client.
"""

from __future__ import annotations

import json
import logging

import httpx

from contract import annotations as ann
from netsched.commands.explain import render
from scheduler_extender.state import Rejection
from scheduler_extender.views import ExplainView
from tests.kube_api.server import MERGE_PATCH
from tests.kubernetes.conftest import PODS, pod_object, seed_nodes, wait_until

GIGA = 10**9


def bound_pod(name: str, node: str, reservation: dict | str | None) -> dict:
    pod = pod_object(name, egress=None)
    pod["spec"]["nodeName"] = node
    pod["status"]["phase"] = "Running"
    if reservation is not None:
        text = reservation if isinstance(reservation, str) else json.dumps(reservation)
        pod["metadata"]["annotations"][ann.RESERVATION] = text
    return pod


def reservation(node: str, egress: int) -> dict:
    return {"node": node, "primary": {"egress": egress}, "primary_parent": "eth0",
            "interfaces": {"eth0": {"ingress": 0, "egress": egress}}}


def rejected_metric(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if line.startswith("netsched_rejected_reservations{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('reason="')[1].split('"')[0]] = float(value)
    return found


def test_forged_reservations_are_reported_and_never_counted(kube_api, serve, caplog):
    seed_nodes(kube_api, 2)
    kube_api.seed(PODS, bound_pod("honest", "node-00", reservation("node-00", 2 * GIGA)))
    # a reservation naming a node the pod is not on (another node's uplink)
    # the review's case: a 10T reservation on a pod another scheduler bound
    other = bound_pod("other-scheduler", "node-00", reservation("node-00", 10**13))
    other["spec"]["schedulerName"] = "default-scheduler"
    kube_api.seed(PODS, other)
    kube_api.seed(PODS, bound_pod("elsewhere", "node-00", reservation("node-01", GIGA)))
    kube_api.seed(PODS, bound_pod("garbled", "node-00", "{not json"))
    kube_api.seed(PODS, bound_pod("huge", "node-00", "x" * (ann.MAX_LENGTH[ann.RESERVATION] + 1)))
    # a pending pod carrying one is neither counted nor reported: it is not bound
    kube_api.seed(PODS, bound_pod("pending", "", reservation("node-00", GIGA)))
    with caplog.at_level(logging.WARNING, logger="scheduler_extender.state"):
        served = serve()
        state = served.extender.state
        wait_until(lambda: len(state.pods()) == 6, what="the pods")
    assert state.ledger.reserved("node-00", "eth0") == (0, 2 * GIGA)
    assert state.ledger.reserved("node-01", "eth0") == (0, 0)
    assert [h.pod for h in state.ledger.holdings()] == ["default/honest"]
    rejected = {r.pod: r.reason for r in state.rejected_reservations()}
    assert rejected == {
        "default/other-scheduler": Rejection.NOT_NETSCHED,
        "default/elsewhere": Rejection.OTHER_NODE,
        "default/garbled": Rejection.UNREADABLE,
        "default/huge": Rejection.TOO_LARGE,
    }
    assert rejected_metric(served.url) == {
        "unreadable": 1, "too_large": 1, "other_node": 1, "not_netsched_pod": 1,
    }
    listed = httpx.get(f"{served.url}/api/v1/topology", timeout=10).json()["rejected_reservations"]
    assert {r["pod"]: r["detail"] for r in listed}["default/elsewhere"] == (
        "names node 'node-01', the pod is on node-00")
    warnings = [r.getMessage() for r in caplog.records if "not counting" in r.getMessage()]
    assert len(warnings) == 4 and not any("x" * 200 in w for w in warnings), "logs quote no large value"


def test_a_counted_reservation_changed_by_hand_is_dropped_not_kept(kube_api, serve):
    seed_nodes(kube_api, 2)
    kube_api.seed(PODS, bound_pod("web", "node-00", reservation("node-00", 800_000_000)))
    served = serve()
    state = served.extender.state
    wait_until(state.ledger.holdings, what="the reservation")
    assert state.ledger.reserved("node-00", "eth0") == (0, 800_000_000)
    # rewritten to name another node (a tenant's patch, no admission policy)
    kube_api.handle("PATCH", f"{PODS}/web", MERGE_PATCH,
                    {"metadata": {"annotations": {ann.RESERVATION: json.dumps(reservation("node-01", 1))}}})
    wait_until(lambda: state.rejected_reservations(), what="the rejection")
    assert state.ledger.reserved("node-00", "eth0") == (0, 0)
    assert state.ledger.reserved("node-01", "eth0") == (0, 0)
    # the pod deleted: nothing left to report
    kube_api.delete(f"{PODS}/web")
    wait_until(lambda: not state.rejected_reservations(), what="the report to go")


def test_explain_says_why_a_reservation_is_not_counted(kube_api, serve):
    seed_nodes(kube_api, 2)
    kube_api.seed(PODS, bound_pod("elsewhere", "node-00", reservation("node-01", GIGA)))
    served = serve()
    wait_until(served.extender.state.rejected_reservations, what="the rejection")
    explained = httpx.get(f"{served.url}/api/v1/explain", params={"namespace": "default", "name": "elsewhere"},
                          timeout=10).json()
    assert explained["rejected_reservation"] == "names node 'node-01', the pod is on node-00"
    assert "its netsched.io/reservation is not counted: names node 'node-01'" in render(
        ExplainView.model_validate(explained))
