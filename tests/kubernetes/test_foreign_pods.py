"""Pods other schedulers placed count for the bandwidth their annotations ask.

A pod with ``kubernetes.io/egress-bandwidth: 5G`` bound by another scheduler is shaped to 5G by
the runtime's bandwidth plugin all the same; netsched counts it on its node's pod interface
(no attachments, no addresses), shows it as such, and refuses new pods on a node such pods
have over-committed, saying so.
"""

from __future__ import annotations

from typing import Any

import httpx

from netsched.commands.explain import render
from netsched.commands.reservations import render_table
from scheduler_extender.views import ExplainView, reservation_views
from tests.kubernetes.conftest import PODS, pod_object, seed_nodes, wait_until


def foreign_pod(name: str, egress: str, node: str = "node-00", **annotations: str) -> dict[str, Any]:
    pod = pod_object(name, egress)
    pod["metadata"]["annotations"].update(annotations)
    pod["spec"].update(schedulerName="default-scheduler", nodeName=node)
    pod["status"] = {"phase": "Running"}
    return pod


def refusal(url: str, pod: dict[str, Any]) -> str:
    body = {"Pod": pod, "Nodes": None, "NodeNames": ["node-00"]}
    result = httpx.post(f"{url}/filter", json=body, timeout=20).json()
    assert result["NodeNames"] == []
    return {**result["FailedNodes"], **result["FailedAndUnresolvableNodes"]}["node-00"]


def test_another_schedulers_pod_holds_what_its_annotations_ask(kube_api, serve):
    seed_nodes(kube_api, 1)  # 10G: 9G usable
    other = kube_api.seed(PODS, foreign_pod("other", "5G"))
    served = serve()
    ledger = served.extender.state.ledger
    wait_until(lambda: ledger.holding(other["metadata"]["uid"]), what="the foreign pod counted")
    holding = ledger.holding(other["metadata"]["uid"])
    assert holding.foreign and holding.reservation.attachments == []
    assert ledger.reserved("node-00", "eth0") == (0, 5_000_000_000)

    mine = kube_api.seed(PODS, pod_object("mine", egress="5G"))
    reason = refusal(served.url, mine)
    assert reason == (
        "eth0 egress: 5G reserved (5G of it by pods of other schedulers) of 9G usable, asks 5G"
    )
    # shown as such: the reservations API, netsched reservations and the dashboard data
    (view,) = reservation_views(served.extender.state)
    assert view.foreign and view.pod == "default/other"
    dashboard = httpx.get(f"{served.url}/api/v1/dashboard", timeout=20).json()
    (shown,) = [r for r in dashboard["reservations"] if r["pod"] == "default/other"]
    assert shown["foreign"] is True and shown["interfaces"] == {"eth0": [0, 5_000_000_000]}
    assert "(another scheduler's pod: its annotations)" in render_table([view])

    # it finishes: its bandwidth is free again
    kube_api.handle("PATCH", f"{PODS}/other/status", "application/merge-patch+json",
                    {"status": {"phase": "Succeeded"}})
    wait_until(lambda: ledger.holding(other["metadata"]["uid"]) is None, what="the release")
    assert ledger.reserved("node-00", "eth0") == (0, 0)


def test_a_node_other_schedulers_over_committed_refuses_new_pods_and_says_so(kube_api, serve):
    seed_nodes(kube_api, 1)
    for index, rate in enumerate(("5G", "5G", "4G")):
        kube_api.seed(PODS, foreign_pod(f"other-{index}", rate))
    served = serve()
    ledger = served.extender.state.ledger
    wait_until(lambda: len(ledger.holdings_on("node-00")) == 3, what="the foreign pods")
    assert ledger.reserved("node-00", "eth0") == (0, 14_000_000_000)  # of 9G usable

    mine = kube_api.seed(PODS, pod_object("mine", egress="100M"))
    reason = refusal(served.url, mine)
    assert "over-committed by them" in reason and "14G of it by pods of other schedulers" in reason
    # netsched explain says the same
    explained = ExplainView.model_validate(
        httpx.get(f"{served.url}/api/v1/explain", params={"name": "mine"}, timeout=20).json()
    )
    (verdict,) = explained.nodes
    assert not verdict.fits and [r.message for r in verdict.reasons] == [reason]
    assert "over-committed by them" in render(explained)


def test_a_foreign_pod_with_a_bad_annotation_counts_nothing_and_breaks_nothing(kube_api, serve):
    seed_nodes(kube_api, 1)
    kube_api.seed(PODS, foreign_pod("odd", "fast"))
    kube_api.seed(PODS, foreign_pod("fine", "1G"))
    served = serve()
    ledger = served.extender.state.ledger
    wait_until(lambda: len(served.extender.state.pods()) == 2, what="the pods")
    assert [h.pod for h in ledger.holdings()] == ["default/fine"]
    assert ledger.reserved("node-00", "eth0") == (0, 1_000_000_000)
