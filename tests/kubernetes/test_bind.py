"""Bind through the Kubernetes source: one Binding that carries the reservation under the pod's
uid and resourceVersion preconditions; only the pod kube-scheduler named, for a served scheduler;
the reservation released and an ``Error`` on every failure; stale reports refuse pods that need
bandwidth. The in-test API server merges a Binding's annotations as kube-apiserver does
(tests/kube_api/test_binding.py replays the captured exchanges)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import httpx

from contract import annotations as ann
from tests.kube_api import ApiError
from tests.kubernetes.conftest import (
    NODE_NETWORKS,
    PODS,
    bind_body,
    node_network_object,
    pod_object,
    seed_nodes,
    wait_until,
)


def post(url: str, verb: str, body: dict) -> dict:
    return httpx.post(f"{url}/{verb}", json=body, timeout=20).json()


def writes_to_pods(kube_api) -> list:
    return [r for r in kube_api.requests if r.method in ("PATCH", "POST", "PUT") and "/pods" in r.path]


def test_bind_is_one_binding_carrying_the_reservation(kube_api, serve):
    seed_nodes(kube_api, 2)
    pod = kube_api.seed(PODS, pod_object("web", egress="2G"))
    served = serve()
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    assert post(served.url, "bind", bind_body(pod, "node-01")) == {"Error": ""}

    stored = kube_api.get(f"{PODS}/web")
    assert stored["spec"]["nodeName"] == "node-01"
    reservation = json.loads(stored["metadata"]["annotations"][ann.RESERVATION])
    assert reservation["node"] == "node-01"
    assert reservation["interfaces"]["eth0"] == {"ingress": 0, "egress": 2_000_000_000}
    # one write: the pod went from unbound and unreserved to both in one revision
    assert stored["metadata"]["resourceVersion"] == str(int(pod["metadata"]["resourceVersion"]) + 1)
    (binding,) = writes_to_pods(kube_api)
    assert (binding.method, binding.path.split("?")[0]) == ("POST", f"{PODS}/web/binding")
    assert binding.body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "node-01"}
    assert binding.body["metadata"]["uid"] == pod["metadata"]["uid"]
    assert binding.body["metadata"]["resourceVersion"] == pod["metadata"]["resourceVersion"]
    assert json.loads(binding.body["metadata"]["annotations"][ann.RESERVATION]) == reservation
    # the watch brings the bound pod back: the ledger holds it once
    wait_until(
        lambda: served.extender.state.pod(pod["metadata"]["uid"]).spec.node_name, what="bound pod"
    )
    assert served.extender.state.ledger.reserved("node-01", "eth0") == (0, 2_000_000_000)


def test_a_pod_without_annotations_is_bound_without_any(kube_api, serve):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("plain", egress=None))
    served = serve()
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    assert post(served.url, "bind", bind_body(pod, "node-00")) == {"Error": ""}
    (binding,) = writes_to_pods(kube_api)
    assert "annotations" not in binding.body["metadata"]
    stored = kube_api.get(f"{PODS}/plain")
    assert stored["spec"]["nodeName"] == "node-00" and ann.RESERVATION not in stored["metadata"]["annotations"]


def test_stale_resource_version_is_an_error_and_releases_the_reservation(kube_api, serve):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("stale", egress="1G"))
    served = serve()
    uid = pod["metadata"]["uid"]
    wait_until(lambda: served.extender.state.pod(uid), what="the pod")
    # The extender stops hearing about pods while someone else changes this one.
    kube_api.fault = lambda method, path: (
        ApiError(500, "InternalError", "watch cache unavailable") if "watch=true" in path else None
    )
    kube_api.drop_watches()
    kube_api.handle(
        "PATCH",
        f"{PODS}/stale",
        "application/merge-patch+json",
        {"metadata": {"labels": {"team": "a"}}},
    )
    answer = post(served.url, "bind", bind_body(pod, "node-00"))
    assert answer["Error"].startswith('binding failed: pod default/stale: Operation cannot be fulfilled on pods "stale"')
    assert "Precondition failed: ResourceVersion in precondition" in answer["Error"]
    assert served.extender.state.ledger.holding(uid) is None
    assert served.extender.state.ledger.reserved("node-00", "eth0") == (0, 0)
    stored = kube_api.get(f"{PODS}/stale")
    assert (
        "nodeName" not in stored["spec"]
        and ann.RESERVATION not in stored["metadata"]["annotations"]
    )
    # kube-scheduler retries once the extender has caught up: now it binds.
    kube_api.fault = None
    wait_until(
        lambda: served.extender.state.pod(uid).metadata.labels.get("team") == "a",
        what="the changed pod",
    )
    assert post(served.url, "bind", bind_body(pod, "node-00")) == {"Error": ""}
    assert kube_api.get(f"{PODS}/stale")["spec"]["nodeName"] == "node-00"


def test_a_pod_the_watch_has_not_delivered_is_read_from_the_api(kube_api, serve):
    seed_nodes(kube_api, 1)
    served = serve()
    served.source.stop()  # the watch lags: the extender never hears of the new pod
    pod = kube_api.seed(PODS, pod_object("fresh", egress="1G"))
    assert served.extender.state.pod(pod["metadata"]["uid"]) is None
    assert post(served.url, "bind", bind_body(pod, "node-00")) == {"Error": ""}
    assert kube_api.get(f"{PODS}/fresh")["spec"]["nodeName"] == "node-00"
    assert served.extender.state.ledger.reserved("node-00", "eth0") == (0, 1_000_000_000)


def refused_without_change(kube_api, served, body: dict, error: str) -> None:
    """The bind answers ``error`` and neither the API nor the ledger changed."""
    revision = kube_api.revision
    assert post(served.url, "bind", body) == {"Error": error}
    assert kube_api.revision == revision
    assert not [r for r in writes_to_pods(kube_api) if r.path.endswith("/binding")]
    assert served.extender.state.ledger.holdings() == []


def test_bind_names_the_pod_by_namespace_name_and_uid(kube_api, serve):
    """A bind for another pod than the one kube-scheduler chose changes nothing."""
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("web", egress="1G"))
    other = kube_api.seed(PODS, pod_object("other", egress="1G"))
    served = serve()
    wait_until(lambda: served.extender.state.pod(other["metadata"]["uid"]), what="the pods")
    uid = pod["metadata"]["uid"]
    body = bind_body(pod, "node-00")
    refused_without_change(kube_api, served, {**body, "PodUID": "default/web"},
                           "pod default/web has uid " + uid + ", not PodUID default/web")
    refused_without_change(kube_api, served, {**body, "PodUID": ""}, "bind of default/web: PodUID is empty")
    refused_without_change(kube_api, served, {**body, "PodName": "other"},
                           f"pod default/other has uid {other['metadata']['uid']}, not PodUID {uid}")
    refused_without_change(kube_api, served, {**body, "PodNamespace": "team-b"}, "pod team-b/web does not exist")


def test_bind_refuses_pods_of_other_schedulers_whatever_a_filter_body_said(kube_api, serve):
    """The API's pod decides, not a filter body: a forged copy naming netsched does not help."""
    seed_nodes(kube_api, 1)
    foreign = pod_object("victim", egress="800M")
    foreign["spec"]["schedulerName"] = "default-scheduler"
    pod = kube_api.seed(PODS, foreign)
    served = serve()
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    refusal = (
        "pod default/victim names schedulerName default-scheduler; this extender binds only pods of "
        "netsched-scheduler"
    )
    refused_without_change(kube_api, served, bind_body(pod, "node-00"), refusal)
    forged = json.loads(json.dumps(pod))
    forged["spec"]["schedulerName"] = "netsched-scheduler"
    forged["metadata"]["annotations"]["kubernetes.io/egress-bandwidth"] = "1"
    post(served.url, "filter", {"Pod": forged, "Nodes": None, "NodeNames": ["node-00"]})
    refused_without_change(kube_api, served, bind_body(pod, "node-00"), refusal)
    served.source.stop()  # nor does a lagging watch open a window: the API is asked
    served.extender.state.delete(served.extender.state.pod(pod["metadata"]["uid"]))
    refused_without_change(kube_api, served, bind_body(pod, "node-00"), refusal)


def test_failed_binding_releases_the_reservation_and_says_why(kube_api, serve):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("unlucky", egress="1G"))
    served = serve()
    uid = pod["metadata"]["uid"]
    wait_until(lambda: served.extender.state.pod(uid), what="the pod")
    kube_api.fault = lambda method, path: (
        ApiError(500, "InternalError", "etcdserver: leader changed")
        if path.endswith("/binding")
        else None
    )
    answer = post(served.url, "bind", bind_body(pod, "node-00"))
    assert answer["Error"] == (
        "binding failed: binding default/unlucky: API server answered 500 Internal Server Error: "
        "etcdserver: leader changed"
    )
    assert served.extender.state.ledger.holdings() == []


def test_unreachable_api_during_bind_is_an_error(kube_api, serve):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("offline", egress="1G"))
    served = serve()
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    kube_api.pause()
    try:
        answer = post(served.url, "bind", bind_body(pod, "node-00"))
    finally:
        kube_api.resume()
    assert answer["Error"].startswith("binding failed: binding default/offline: API server unreachable")
    assert served.extender.state.ledger.holdings() == []


def test_a_deleted_pod_cannot_be_bound(kube_api, serve):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("gone", egress="1G"))
    served = serve()
    uid = pod["metadata"]["uid"]
    wait_until(lambda: served.extender.state.pod(uid), what="the pod")
    served.source.stop()  # the extender does not hear of the deletion
    kube_api.delete(f"{PODS}/gone")
    answer = post(served.url, "bind", bind_body(pod, "node-00"))
    assert answer["Error"] == "binding failed: pod default/gone no longer exists"
    assert served.extender.state.ledger.holdings() == []


def test_stale_heartbeat_refuses_pods_that_need_bandwidth(kube_api, serve):
    seed_nodes(kube_api, 2)
    old = datetime.now(UTC) - timedelta(minutes=5)
    kube_api.handle(
        "PATCH",
        f"{NODE_NETWORKS}/node-01/status",
        "application/merge-patch+json",
        node_network_object("node-01", heartbeat=old),
    )
    needs = kube_api.seed(PODS, pod_object("needs", egress="1G"))
    plain = kube_api.seed(PODS, pod_object("plain", egress=None))
    served = serve()
    wait_until(lambda: served.extender.state.pod(plain["metadata"]["uid"]), what="the pods")
    body = {"Pod": needs, "Nodes": None, "NodeNames": ["node-00", "node-01"]}
    result = post(served.url, "filter", body)
    assert result["NodeNames"] == ["node-00"]
    reason = {**result["FailedNodes"], **result["FailedAndUnresolvableNodes"]}["node-01"]
    assert re.search(r"NodeNetwork report is stale \(last heartbeat 30\ds ago, TTL 60s\)", reason)
    bind = post(served.url, "bind", bind_body(needs, "node-01"))
    assert "no longer fits node-01" in bind["Error"] and "stale" in bind["Error"]
    # pods without annotations are not netsched's business: they pass and bind anywhere
    assert post(served.url, "filter", {**body, "Pod": plain})["NodeNames"] == ["node-00", "node-01"]
    assert post(served.url, "bind", bind_body(plain, "node-01")) == {"Error": ""}
    assert kube_api.get(f"{PODS}/plain")["spec"]["nodeName"] == "node-01"


def test_a_replica_that_lost_the_lease_mid_bind_does_not_write(kube_api, serve):
    seed_nodes(kube_api, 1)
    pod = kube_api.seed(PODS, pod_object("late", egress="1G"))
    served = serve()
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    served.source.may_write = lambda: False  # the Lease went elsewhere after /bind was accepted
    answer = post(served.url, "bind", bind_body(pod, "node-00"))
    assert answer["Error"] == "binding failed: binding default/late: this replica is no longer the leader"
    assert served.extender.state.ledger.holdings() == []
    assert not writes_to_pods(kube_api)


def test_a_bound_pod_keeps_its_recorded_reservation(kube_api, serve):
    seed_nodes(kube_api, 2)
    pod = kube_api.seed(PODS, pod_object("once", egress="1G"))
    served = serve()
    uid = pod["metadata"]["uid"]
    wait_until(lambda: served.extender.state.pod(uid), what="the pod")
    assert post(served.url, "bind", bind_body(pod, "node-00")) == {"Error": ""}
    wait_until(lambda: served.extender.state.pod(uid).spec.node_name, what="the bound pod")
    recorded = kube_api.get(f"{PODS}/once")["metadata"]["annotations"][ann.RESERVATION]
    answer = post(served.url, "bind", bind_body(pod, "node-01"))
    assert "pod default/once is already bound to node-00" in answer["Error"]
    stored = kube_api.get(f"{PODS}/once")
    assert stored["spec"]["nodeName"] == "node-00"
    assert stored["metadata"]["annotations"][ann.RESERVATION] == recorded
    ledger = served.extender.state.ledger
    assert ledger.reserved("node-00", "eth0") == (0, 1_000_000_000)
    assert ledger.reserved("node-01", "eth0") == (0, 0)
