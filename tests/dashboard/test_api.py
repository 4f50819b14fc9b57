"""The dashboard's document and the read-only admin API, over a real socket (no browser)."""

from __future__ import annotations

import gzip

import httpx
import pytest

from contract import annotations
from dashboard.data import LISTED_REFUSALS, DashboardView
from tests.dashboard.cluster import KubeScheduler, served_cluster


@pytest.fixture(scope="module")
def cluster():
    with served_cluster() as served, KubeScheduler(served) as kube:
        yield served, kube


def test_document_follows_the_schema_and_the_ledger(cluster):
    served, kube = cluster
    outcome = kube.schedule("web", {annotations.EGRESS_BANDWIDTH: "3G"}, prefer="node-b-3")
    assert outcome.node == "node-b-3"
    document = DashboardView.model_validate(httpx.get(f"{served.url}/api/v1/dashboard").json())
    ledger = served.extender.state.ledger
    nodes = [node for zone in document.zones for switch in zone.switches for node in switch.nodes]
    assert [zone.name for zone in document.zones] == ["eu-1a", "eu-1b", "eu-1c"]
    assert len(nodes) == 12
    for node in nodes:
        for iface in node["interfaces"]:
            assert tuple(iface["reserved"]) == ledger.reserved(node["name"], iface["name"])
            assert tuple(iface["capacity"]) == ledger.usable(node["name"], iface["name"])
    held = next(r for r in document.reservations if r.pod == "admin/web")
    assert held.node == "node-b-3" and held.interfaces == {"eth0": (0, 3_000_000_000)}
    assert next(n for n in nodes if n["name"] == "node-b-3")["pods"] == 1
    latest = document.decisions[0]
    assert (latest.verb, latest.pod, latest.node) == ("bind", "admin/web", "node-b-3")


def test_etag_gzip_and_not_modified(cluster):
    served, kube = cluster
    first = httpx.get(f"{served.url}/api/v1/dashboard")
    etag = first.headers["etag"]
    unchanged = httpx.get(f"{served.url}/api/v1/dashboard", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    raw = httpx.get(f"{served.url}/api/v1/dashboard", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip" and raw.json() == first.json()
    with httpx.stream(
        "GET", f"{served.url}/api/v1/dashboard", headers={"Accept-Encoding": "gzip"}
    ) as response:
        compressed = b"".join(response.iter_raw())
    assert len(compressed) < len(first.content) and gzip.decompress(compressed) == first.content
    kube.schedule("another", {annotations.INGRESS_BANDWIDTH: "100M"})
    changed = httpx.get(f"{served.url}/api/v1/dashboard", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_refusals_are_grouped_by_reason_and_capped(cluster):
    served, kube = cluster
    kube.schedule("typo", {annotations.EGRESS_BANDWIDTH: "-5M"})
    document = httpx.get(f"{served.url}/api/v1/dashboard").json()
    typo = next(d for d in document["decisions"] if d["pod"] == "admin/typo")
    assert typo["passed"] == 0 and typo["refused"] == 12
    assert len(typo["reasons"]) == 1 and typo["reasons"][0]["count"] == 12
    assert "kubernetes.io/egress-bandwidth" in typo["reasons"][0]["reason"]
    assert len(typo["reasons"][0]["nodes"]) == min(12, LISTED_REFUSALS)


def test_static_files_and_page(cluster):
    served, _ = cluster
    page = httpx.get(f"{served.url}/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert httpx.get(f"{served.url}/dashboard/", follow_redirects=True).text == page.text
    for path in ("/dashboard/static/dashboard.js", "/dashboard/static/dashboard.css"):
        assert path in page.text
        assert httpx.get(f"{served.url}{path}").status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    for name in ("nothing.js", "..%2Fapp.py", "%2e%2e%2fviews.py"):
        assert httpx.get(f"{served.url}/dashboard/static/{name}").status_code == 404


def test_explain_and_reservations_api(cluster):
    served, kube = cluster
    pod = kube.create("pending", {annotations.EGRESS_BANDWIDTH: "500M"})
    decisions = httpx.get(f"{served.url}/api/v1/decisions").json()
    explained = httpx.get(
        f"{served.url}/api/v1/explain", params={"namespace": "admin", "name": "pending"}
    ).json()
    assert explained["pod"] == "admin/pending" and explained["fits"] == 12
    posted = httpx.post(f"{served.url}/api/v1/explain", json=pod.model_dump(mode="json")).json()
    assert posted == explained
    assert httpx.get(f"{served.url}/api/v1/decisions").json() == decisions  # nothing recorded

    missing = httpx.get(f"{served.url}/api/v1/explain", params={"name": "ghost"})
    assert missing.status_code == 404 and "default/ghost" in missing.json()["detail"]
    no_name = httpx.get(f"{served.url}/api/v1/explain")
    assert no_name.status_code == 422 and "name" in no_name.text
    bad_body = httpx.post(f"{served.url}/api/v1/explain", json={"metadata": {}})
    assert bad_body.status_code == 422 and "name" in bad_body.text

    everywhere = httpx.get(f"{served.url}/api/v1/reservations").json()
    on_b3 = httpx.get(f"{served.url}/api/v1/reservations", params={"node": "node-b-3"}).json()
    assert [r["pod"] for r in on_b3] == [
        r["pod"] for r in everywhere if r["reservation"]["node"] == "node-b-3"
    ]
    assert (
        httpx.get(f"{served.url}/api/v1/reservations", params={"node": "no-such-node"}).json() == []
    )
