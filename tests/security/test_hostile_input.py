"""Annotations written to hurt: each is refused with a short message naming the field,
over a real socket, and none costs the extender more than a moment.

The cases are the ones a tenant with ordinary pod rights tried: a quadratic quantity,
megabyte values, deep JSON, duplicate networks, values Kubernetes itself refuses.
"""

from __future__ import annotations

import json

import httpx
import pytest

from contract import annotations as ann
from tests.conftest import make_pod
from tests.kubernetes.conftest import PODS, bind_body, pod_object, seed_nodes, wait_until

KUBE_SCHEDULER_TIMEOUT = 5.0
"""kube-scheduler's default extender httpTimeout: an answer later than this fails the pod."""


def filter_body(pod, names):
    return {"Pod": pod.model_dump(mode="json"), "Nodes": None, "NodeNames": names}


def refusal(served, extender, annotations: dict[str, str]) -> str:
    """The one message every node gets for a pod with ``annotations``."""
    names = extender.state.node_names()
    reply = served.post("/filter", json=filter_body(make_pod("hostile", annotations), names),
                        timeout=KUBE_SCHEDULER_TIMEOUT)
    assert reply.status_code == 200
    result = reply.json()
    assert result["NodeNames"] == [] and result["FailedNodes"] == {}
    messages = set(result["FailedAndUnresolvableNodes"].values())
    assert set(result["FailedAndUnresolvableNodes"]) == set(names) and len(messages) == 1
    return messages.pop()


def test_the_quadratic_quantity_is_refused_at_once_and_healthz_keeps_answering(served, extender):
    # The review's case: 40,000 digits and an 'x' blocked the event loop for 36 s.
    value = "1" * 40_000 + "x"
    message = refusal(served, extender, {ann.EGRESS_BANDWIDTH: value})
    assert message.startswith(f"annotation {ann.EGRESS_BANDWIDTH}='{'1' * ann.QUOTED_CHARACTERS}'… ")
    assert "40001 characters long; the limit is 64" in message
    assert served.get("/healthz", timeout=KUBE_SCHEDULER_TIMEOUT).text == "ok"


@pytest.mark.parametrize("name", [ann.INGRESS_BANDWIDTH, ann.NETWORKS, ann.PEERS, ann.PLACEMENT])
def test_a_megabyte_value_makes_a_short_answer_naming_the_cap(served, extender, name):
    value = "a" * 1_000_000
    message = refusal(served, extender, {name: value})
    assert f"the limit is {ann.MAX_LENGTH[name]}" in message
    assert len(message) < 400, "the refusal repeats only a prefix of the value"


@pytest.mark.parametrize("digits", ["１００M", "١٠٠M", "1e٣"])
def test_non_ascii_digits_are_not_a_quantity(served, extender, digits):
    # Kubernetes' quantity grammar is ASCII digits only; Python's \\d would take these.
    assert "is not a Kubernetes quantity" in refusal(served, extender, {ann.INGRESS_BANDWIDTH: digits})


def test_brackets_past_the_size_cap_and_deep_json_under_it_are_refusals_not_500s(served, extender):
    # "[" x 50,000 raised RecursionError (a 500 with a traceback).
    assert "the limit is 16384" in refusal(served, extender, {ann.NETWORKS: "[" * 50_000})
    deep = refusal(served, extender, {ann.NETWORKS: "[" * 16_000})
    assert "not valid JSON (depth limit exceeded" in deep


def test_the_same_network_twice_is_refused(served, extender):
    # Two attachments to one network would get the same IP and MAC, and the pod never starts.
    message = refusal(served, extender, {ann.NETWORKS: "storage,storage"})
    assert message.endswith("network 'storage' is listed twice")
    message = refusal(served, extender, {ann.NETWORKS: json.dumps(
        [{"name": "tenant"}, {"name": "storage", "interface": "st0"}, {"name": "tenant"}])})
    assert message.endswith("network 'tenant' is listed twice")


def test_attachments_past_the_cap_are_refused_with_the_cap(served, extender):
    names = ",".join(f"net-{index}" for index in range(ann.MAX_ATTACHMENTS + 1))
    message = refusal(served, extender, {ann.NETWORKS: names})
    assert message.endswith(f"{ann.MAX_ATTACHMENTS + 1} networks; the limit is {ann.MAX_ATTACHMENTS} per pod")


@pytest.mark.parametrize(
    ("ip", "role"),
    [("10.20.0.0/16", "network"), ("10.20.255.255/16", "broadcast"), ("10.20.0.1/16", "gateway")],
)
def test_static_addresses_the_network_keeps_are_refused(served, extender, ip, role):
    # storage is 10.20.0.0/16 with gateway 10.20.0.1 in the sample cluster.
    message = refusal(served, extender, {ann.NETWORKS: json.dumps([{"name": "storage", "ip": ip}])})
    address = ip.split("/")[0]
    assert message == (
        f"annotation {ann.NETWORKS}: ip '{address}' is the {role} address of network 'storage' (10.20.0.0/16)"
    )


def test_the_first_and_last_host_addresses_are_still_allowed(served, extender):
    for ip in ("10.20.0.2/16", "10.20.255.254/16"):
        pod = make_pod("edge", {ann.NETWORKS: json.dumps([{"name": "storage", "ip": ip}])})
        assert served.post("/filter", json=filter_body(pod, ["node-a-1"])).json()["NodeNames"] == ["node-a-1"]


@pytest.mark.parametrize(
    ("selector", "says"),
    [
        ("a" * 64 + "=x", "is not a label key: the name must be 1-63 characters"),
        ("app=" + "v" * 64, "is not a label value: it must be 1-63 characters"),
        ("a" * 254 + "/app=x", "is not a label key: the prefix must be 1-253 characters"),
        ("Example.com/app=x", "the prefix must be a lowercase DNS subdomain"),
        ("app=-x", "is not a label value: it must be letters, digits"),
    ],
)
def test_peer_labels_past_kubernetes_limits_are_refused(served, extender, selector, says):
    assert says in refusal(served, extender, {ann.PEERS: selector})


def test_peer_labels_at_kubernetes_limits_are_accepted(served, extender):
    selector = f"{'p' * 253}/{'k' * 63}={'v' * 63}"
    pod = make_pod("limits", {ann.PEERS: selector})
    assert served.post("/filter", json=filter_body(pod, ["node-a-1"])).json()["NodeNames"] == ["node-a-1"]


def test_prioritize_for_an_unknown_network_scores_instead_of_failing(served, extender):
    # It raised KeyError (a 500); filter already refuses such a pod naming the annotation.
    pod = make_pod("lost", {ann.NETWORKS: "no-such-network", ann.EGRESS_BANDWIDTH: "1M"})
    body = filter_body(pod, ["node-a-1", "node-b-1"])
    reply = served.post("/prioritize", json=body)
    assert reply.status_code == 200
    assert reply.json() == [{"Host": "node-a-1", "Score": 0}, {"Host": "node-b-1", "Score": 0}]
    assert "unknown network 'no-such-network'" in served.post("/filter", json=body).json()[
        "FailedAndUnresolvableNodes"]["node-a-1"]


def test_a_hostile_pod_in_the_api_server_is_refused_and_never_bound(kube_api, serve):
    """The same annotations arriving the way they do in a cluster: a pod created in the API
    server (the in-test one), followed by the extender's watch, then filtered and bound."""
    seed_nodes(kube_api, 2)
    pod = pod_object("hostile", egress="1" * 40_000 + "x")
    pod["metadata"]["annotations"][ann.NETWORKS] = "[" * 50_000
    pod = kube_api.seed(PODS, pod)
    served = serve()
    wait_until(lambda: served.extender.state.pod(pod["metadata"]["uid"]), what="the pod")
    with httpx.Client(base_url=served.url, timeout=KUBE_SCHEDULER_TIMEOUT) as client:
        result = client.post("/filter", json={"Pod": pod, "Nodes": None, "NodeNames": ["node-00", "node-01"]})
        assert result.status_code == 200
        messages = set(result.json()["FailedAndUnresolvableNodes"].values())
        (message,) = messages
        # both annotations are over their caps; the refusal names the first one read
        limits = {name: ann.MAX_LENGTH[name] for name in (ann.EGRESS_BANDWIDTH, ann.NETWORKS)}
        (named,) = [name for name in limits if message.startswith(f"annotation {name}=")]
        assert f"the limit is {limits[named]}" in message and len(message) < 400
        error = client.post("/bind", json=bind_body(pod, "node-00")).json()["Error"]
        assert named in error and len(error) < 400
        assert client.get("/healthz").text == "ok"
    assert kube_api.get(f"{PODS}/hostile")["spec"].get("nodeName") is None
    assert not [r for r in kube_api.requests if r.path.endswith("/binding")]
    assert served.extender.state.ledger.holdings() == []
