"""``netsched topology``, ``explain`` and ``reservations``, run as processes.

Each runs against a live extender (``--server``, over a real socket) and against a
cluster file written from the same cluster (``--cluster``); both must agree, and the
human output must say what the ledger and the webhook say.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from contract import annotations
from contract.objects import Node, Pod
from contract.quantity import format_bandwidth
from tests.dashboard.cluster import KubeScheduler, refresh_heartbeats, served_cluster

GIGA = 1_000_000_000


def netsched(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NETSCHED_SERVER"}
    result = subprocess.run(
        [sys.executable, "-m", "netsched.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def write_cluster_file(snapshot, path: Path) -> None:
    documents = []
    for obj in snapshot.objects():
        document = obj.model_dump(mode="json", exclude_none=True)
        if isinstance(obj, Node | Pod):
            document = {"apiVersion": "v1", "kind": type(obj).__name__, **document}
        documents.append(document)
    path.write_text(yaml.safe_dump_all(documents))


@pytest.fixture(scope="module")
def scheduled():
    """A served demo cluster with pods bound through the webhook and one pending."""
    with served_cluster() as served, KubeScheduler(served) as kube:
        bound = {
            "video": kube.schedule(
                "video",
                {annotations.INGRESS_BANDWIDTH: "1G", annotations.EGRESS_BANDWIDTH: "4G"},
                prefer="node-a-1",
            ),
            "db": kube.schedule(
                "db",
                {
                    annotations.EGRESS_BANDWIDTH: "500M",
                    annotations.NETWORKS: json.dumps([{"name": "storage", "ingress": "2G"}]),
                },
                prefer="node-b-2",
            ),
            "fill": kube.schedule(
                "fill", {annotations.EGRESS_BANDWIDTH: "8G"}, prefer="node-c-1"
            ),  # a 10G node
        }
        assert all(o.node and not o.bind_error for o in bound.values())
        pending = kube.create(
            "big", {annotations.EGRESS_BANDWIDTH: "8500M", annotations.NETWORKS: "replication"}
        )
        yield served, kube, bound, pending


@pytest.fixture
def cluster(scheduled, tmp_path):
    """The scheduled cluster as each test finds it: reports fresh, and its cluster file.

    Real node reporters re-publish every report interval, so a live cluster's reports
    never age past the report TTL (60 s) while its reporters run. The module's cluster
    outlives that on a slow machine; refreshing the heartbeats before each test is what
    the reporters would have done meanwhile, so no node reads as stale by accident.
    """
    served, kube, bound, pending = scheduled
    refresh_heartbeats(served.source)
    path = tmp_path / "cluster.yaml"
    write_cluster_file(served.source.snapshot(), path)
    return served, kube, bound, pending, path


def test_topology_tree_table_and_json(cluster):
    served, _kube, _bound, _pending, path = cluster
    tree = netsched("topology", "--server", served.url).stdout
    for node in served.extender.state.node_names():
        assert f"── {node} " in tree
    assert "── zone eu-1a" in tree and "── switch tor-eu-1a-0" in tree
    line = next(line for line in tree.splitlines() if "eth0 pod 25G" in line and "in 1G/" in line)
    assert re.search(r"in 1G/22\.5G \(4%\) +out 4G/22\.5G \(18%\) +observed in 0 +out 0$", line)
    # the demo's SR-IOV NAD has an unknown reach: the pod interface stands in for it
    assert "[tenant, demo/sriov-fabric]" in line
    assert "eth1 storage 25G  [storage, replication, demo/fast-storage]" in tree

    table = netsched("topology", "--server", served.url, "-o", "table").stdout.splitlines()
    assert table[0].split()[:4] == ["NODE", "ZONE", "SWITCH", "IFACE"]
    assert len(table) == 1 + 12 * 3
    row = next(r.split() for r in table if r.startswith("node-a-1") and " eth0 " in r)
    assert row[:6] == ["node-a-1", "eu-1a", "tor-eu-1a-0", "eth0", "pod", "25G"]

    from_api = json.loads(netsched("topology", "--server", served.url, "-o", "json").stdout)
    from_file = json.loads(netsched("topology", "--cluster", str(path), "-o", "json").stdout)
    assert from_api == from_file
    assert from_api == httpx.get(f"{served.url}/api/v1/topology").json()
    ledger = served.extender.state.ledger
    for node in from_api["nodes"]:
        for iface in node["interfaces"]:
            assert (iface["reserved"]["ingress"], iface["reserved"]["egress"]) == ledger.reserved(
                node["name"], iface["name"]
            )


def test_reservations(cluster):
    served, _kube, bound, _pending, path = cluster
    text = netsched("reservations", "--server", served.url).stdout.splitlines()
    assert text[0].split() == [
        "POD",
        "NODE",
        "PRIORITY",
        "IFACE",
        "INGRESS",
        "EGRESS",
        "ATTACHMENTS",
    ]
    assert text[1].split() == [
        "admin/db",
        "node-b-2",
        "0",
        "eth0",
        "0",
        "500M",
        text[1].split()[-1],
    ]
    assert text[1].split()[-1].startswith("net1:storage@10.20.")
    assert text[2].split() == ["eth1", "2G", "0"]
    assert ["admin/video", "node-a-1", "0", "eth0", "1G", "4G", "-"] in [
        line.split() for line in text
    ]

    from_api = json.loads(netsched("reservations", "--server", served.url, "-o", "json").stdout)
    from_file = json.loads(netsched("reservations", "--cluster", str(path), "-o", "json").stdout)
    assert from_api == from_file
    assert [r["pod"] for r in from_api] == ["admin/db", "admin/fill", "admin/video"]
    assert {r["reservation"]["node"] for r in from_api} == {o.node for o in bound.values()}

    only = json.loads(
        netsched("reservations", "--server", served.url, "--node", "node-a-1", "-o", "json").stdout
    )
    assert [r["pod"] for r in only] == ["admin/video"]
    assert netsched(
        "reservations", "--server", served.url, "--node", "node-c-4"
    ).stdout.strip() == ("No pod holds a reservation.")


def test_explain_agrees_with_the_webhook_and_records_nothing(cluster):
    served, kube, _bound, pending, path = cluster
    decisions_before = httpx.get(f"{served.url}/api/v1/decisions").json()

    text = netsched("explain", "admin/big", "--server", served.url).stdout
    explained = json.loads(
        netsched("explain", "admin/big", "--server", served.url, "-o", "json").stdout
    )
    assert httpx.get(f"{served.url}/api/v1/decisions").json() == decisions_before

    filtered = kube.filter(pending)  # what kube-scheduler would be told
    passed = set(filtered["NodeNames"])
    refused = {**filtered["FailedNodes"], **filtered["FailedAndUnresolvableNodes"]}
    assert {v["node"] for v in explained["nodes"] if v["fits"]} == passed
    assert explained["fits"] == len(passed)
    for verdict in explained["nodes"]:
        if not verdict["fits"]:
            assert "; ".join(r["message"] for r in verdict["reasons"]) == refused[verdict["node"]]
            assert verdict["score"] is None
    # nodes of zone c cannot reach the replication network; node-c-1's 10G link is also full
    causes = {v["node"]: {r["cause"] for r in v["reasons"]} for v in explained["nodes"]}
    assert causes["node-c-1"] == {"network_unreachable", "bandwidth"}
    assert causes["node-c-2"] == {"network_unreachable"}
    # best score first among the nodes that fit
    scores = [v["score"] for v in explained["nodes"] if v["fits"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 10 for s in scores)

    assert f"Fits {len(passed)} of 12 nodes." in text
    assert "kubernetes.io/egress-bandwidth: 8500M" in text
    for node, reason in refused.items():
        first = reason.split("; ")[0]
        assert any(line.startswith(node) and first in line for line in text.splitlines())
    from_file = json.loads(
        netsched("explain", "admin/big", "--cluster", str(path), "-o", "json").stdout
    )
    assert from_file == explained


def test_explain_a_manifest_and_clear_errors(cluster, tmp_path):
    served, _kube, _bound, _pending, path = cluster
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "new",
                    "namespace": "team",
                    "annotations": {annotations.INGRESS_BANDWIDTH: "fast"},
                },
            }
        )
    )
    explained = json.loads(
        netsched("explain", "-f", str(manifest), "--server", served.url, "-o", "json").stdout
    )
    assert explained["pod"] == "team/new" and explained["fits"] == 0
    assert {r["cause"] for v in explained["nodes"] for r in v["reasons"]} == {"invalid_annotation"}
    assert "'fast'" in explained["nodes"][0]["reasons"][0]["message"]

    missing = netsched("explain", "admin/nope", "--server", served.url, check=False)
    assert missing.returncode != 0 and "pod admin/nope is not in the cluster" in missing.stderr
    missing = netsched("explain", "nope", "--cluster", str(path), check=False)
    assert missing.returncode != 0 and "pod default/nope is not in the cluster" in missing.stderr
    unreachable = netsched("topology", "--server", "http://127.0.0.1:9", check=False)
    assert (
        unreachable.returncode != 0
        and "cannot reach the netsched extender at http://127.0.0.1:9" in unreachable.stderr
    )
    bad_url = netsched("topology", "--server", "ftp://x", check=False)
    assert bad_url.returncode != 0 and "--server 'ftp://x'" in bad_url.stderr
    no_file = netsched("reservations", "--cluster", str(tmp_path / "absent.yaml"), check=False)
    assert (
        no_file.returncode != 0
        and "absent.yaml" in no_file.stderr
        and "Traceback" not in no_file.stderr
    )
    both = netsched("explain", "x", "-f", str(manifest), "--server", served.url, check=False)
    assert both.returncode != 0 and "either POD or -f FILE" in both.stderr


def test_json_rates_are_the_ledger_numbers(cluster):
    """The human tables round rates; -o json carries exact bits/s."""
    served, *_ = cluster
    held = json.loads(netsched("reservations", "--server", served.url, "-o", "json").stdout)
    video = next(r for r in held if r["pod"] == "admin/video")
    assert video["reservation"]["interfaces"]["eth0"] == {"ingress": GIGA, "egress": 4 * GIGA}
    assert format_bandwidth(4 * GIGA) == "4G"


def test_a_reader_that_goes_away_is_not_an_error(cluster):
    """``netsched topology | head -1``: the closed pipe ends the command quietly."""
    served, *_ = cluster
    process = subprocess.Popen(
        [sys.executable, "-m", "netsched.cli", "topology", "--server", served.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # the reader is gone before the first line is written
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_server_from_the_environment(cluster):
    served, *_ = cluster
    result = subprocess.run(
        [sys.executable, "-m", "netsched.cli", "reservations", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NETSCHED_SERVER": served.url},
    )
    assert result.returncode == 0, result.stderr
    assert [r["pod"] for r in json.loads(result.stdout)] == ["admin/db", "admin/fill", "admin/video"]


def test_explain_shows_the_namespace_policy(tmp_path):
    from datetime import UTC, datetime, timedelta

    from contract.objects import BandwidthPolicy, ObjectMeta, PodSpec
    from demo.sample_cluster import sample_cluster

    snapshot = sample_cluster(heartbeat=datetime.now(UTC) + timedelta(hours=1))  # fresh while the test runs
    snapshot.bandwidth_policies.append(BandwidthPolicy.model_validate({
        "metadata": {"name": "limits", "namespace": "team-a"},
        "spec": {"default": {"egress": "100M"}, "max": {"egress": "1G"}, "hard": {"egress": "20G"}}}))
    snapshot.pods.append(Pod(metadata=ObjectMeta(name="quiet", namespace="team-a", uid="u-quiet"), spec=PodSpec()))
    path = tmp_path / "cluster.yaml"
    write_cluster_file(snapshot, path)
    text = netsched("explain", "team-a/quiet", "--cluster", str(path)).stdout
    assert "BandwidthPolicy team-a/limits: default in - out 100M; max per pod in - out 1G; out 0 used of 20G hard" in text
    assert "no netsched annotations" not in text  # the default gives it a reservation to place
    explained = json.loads(netsched("explain", "team-a/quiet", "--cluster", str(path), "-o", "json").stdout)
    assert explained["fits"] == 12
    assert explained["policies"] == [{
        "namespace": "team-a", "name": "limits",
        "spec": {"default": {"ingress": None, "egress": "100M"}, "max": {"ingress": None, "egress": "1G"},
                 "hard": {"ingress": None, "egress": "20G"}},
        "used": {"ingress": 0, "egress": 0}}]
    # The default makes it a bandwidth pod: scored by headroom (100M leaves ~all of every link),
    # not the neutral 0 of a pod that asks nothing.
    assert {v["score"] for v in explained["nodes"]} == {10}
