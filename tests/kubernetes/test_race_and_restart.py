"""The two promises that make the API the store: concurrent binds never overcommit, and a
restarted extender rebuilds the same ledger, reservation for reservation."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx

from contract import annotations as ann
from tests.kubernetes.conftest import (
    NETWORKS,
    PODS,
    STORAGE_NETWORK,
    bind_body,
    ledger_of,
    pod_object,
    seed_nodes,
    seed_pods,
    wait_until,
)

USABLE_EGRESS = 9_000_000_000  # 10G eth0 less 10 % headroom
POD_EGRESS = 300_000_000  # so each node fits exactly 30 pods


def bind_all(url: str, jobs: list[tuple[dict, str]], clients: int = 8) -> list[str]:
    """POST /bind for each (pod, node) from ``clients`` threads; returns each ``Error``."""

    def run(share: list[tuple[int, dict, str]]) -> list[tuple[int, str]]:
        with httpx.Client(base_url=url, timeout=30) as client:
            return [
                (i, client.post("/bind", json=bind_body(pod, node)).json()["Error"])
                for i, pod, node in share
            ]

    indexed = [(i, pod, node) for i, (pod, node) in enumerate(jobs)]
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = [
            r for part in pool.map(run, [indexed[k::clients] for k in range(clients)]) for r in part
        ]
    return [error for _, error in sorted(results)]


def test_eight_clients_binding_500_pods_into_room_for_300(kube_api, serve):
    nodes = seed_nodes(kube_api, 10)
    pods = seed_pods(kube_api, 500, egress="300M")
    served = serve()
    wait_until(lambda: len(served.extender.state.pods()) == 500, what="500 pods")
    jobs = [(pod, nodes[i % len(nodes)]) for i, pod in enumerate(pods)]  # 50 per node

    errors = bind_all(served.url, jobs)

    won = [job for job, error in zip(jobs, errors, strict=True) if not error]
    assert len(won) == 300
    for node in nodes:
        assert sum(1 for _, n in won if n == node) == 30
    refusals = [error for error in errors if error]
    assert len(refusals) == 200
    for error in refusals:
        assert "no longer fits node-" in error and "eth0 egress" in error, error
    ledger = served.extender.state.ledger
    for node in nodes:
        assert ledger.reserved(node, "eth0") == (0, 30 * POD_EGRESS)
        assert ledger.reserved(node, "eth0")[1] <= ledger.usable(node, "eth0")[1] == USABLE_EGRESS
    # The API agrees: exactly the winners are bound, each with its reservation, nothing else.
    stored = {o["metadata"]["uid"]: o for o in kube_api.list_objects("/api/v1/pods")}
    bound = {uid: o for uid, o in stored.items() if o["spec"].get("nodeName")}
    assert set(bound) == {pod["metadata"]["uid"] for pod, _ in won}
    for pod, node in won:
        obj = bound[pod["metadata"]["uid"]]
        assert obj["spec"]["nodeName"] == node
        assert json.loads(obj["metadata"]["annotations"][ann.RESERVATION])["node"] == node
    assert not any(
        ann.RESERVATION in o["metadata"]["annotations"]
        for uid, o in stored.items()
        if uid not in bound
    )
    # and once the watch has caught up, the ledger still holds exactly those 300
    wait_until(
        lambda: sum(1 for p in served.extender.state.pods() if p.spec.node_name) == 300,
        what="the watch to deliver every binding",
    )
    assert {h.uid for h in ledger.holdings()} == set(bound)


def test_a_restarted_extender_rebuilds_the_same_ledger(kube_api, serve):
    nodes = seed_nodes(kube_api, 8)
    kube_api.seed(NETWORKS, STORAGE_NETWORK)
    pods = []
    for i in range(200):
        pod = pod_object(f"app-{i:03d}", egress=f"{100 + i}M")
        if i % 2:  # half also attach to the storage VLAN and get an address from its subnet
            pod["metadata"]["annotations"][ann.NETWORKS] = json.dumps(
                [{"name": "storage", "ingress": "50M", "egress": "20M"}]
            )
        pods.append(kube_api.seed(PODS, pod))
    first = serve()
    wait_until(lambda: len(first.extender.state.pods()) == 200, what="200 pods")
    errors = bind_all(first.url, [(pod, nodes[i % len(nodes)]) for i, pod in enumerate(pods)])
    assert errors == [""] * 200
    before = ledger_of(first.extender)
    assert len(before) == 200
    attachments = [a for _, r in before.values() for a in json.loads(r)["attachments"]]
    addresses = {a["ip"] for a in attachments}
    assert len(addresses) == 100, "every attachment has its own address"

    first.stop()  # the extender dies; its memory with it
    second = serve()

    assert ledger_of(second.extender) == before
    for node in nodes:
        for interface in ("eth0", "eth1"):
            assert second.extender.state.ledger.reserved(
                node, interface
            ) == first.extender.state.ledger.reserved(node, interface)
    # and the new one goes on from there: the next pod gets a fresh address
    extra = kube_api.seed(
        PODS,
        {
            **pod_object("late", egress="1M"),
            "metadata": {
                "name": "late",
                "namespace": "default",
                "annotations": {ann.NETWORKS: json.dumps([{"name": "storage"}])},
            },
        },
    )
    wait_until(lambda: second.extender.state.pod(extra["metadata"]["uid"]), what="the late pod")
    assert httpx.post(f"{second.url}/bind", json=bind_body(extra, nodes[0])).json() == {"Error": ""}
    late = json.loads(kube_api.get(f"{PODS}/late")["metadata"]["annotations"][ann.RESERVATION])
    assert late["attachments"][0]["ip"] not in addresses
