"""The dashboard in real headless Chromium, against ``netsched demo`` and the demo's cluster.

Pods are scheduled through the extender's HTTP webhook exactly as kube-scheduler
would; the page must show them, grow the node's bar and explain refusals, all
without being reloaded.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from contract import annotations
from contract.objects import NodeNetwork
from demo.sample_cluster import sample_cluster
from tests.dashboard.browser import browser_available, chromium, console_errors
from tests.dashboard.cluster import KubeScheduler, served_cluster

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        browser_available() is not None, reason=f"browser tests: {browser_available()}"
    ),
]

TIMEOUT = 15.0


def wait_for(driver, script: str, timeout: float = TIMEOUT, *args):
    """Poll a JavaScript expression until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});", *args)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {script}")
        time.sleep(0.1)


def node_names(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.node')].map(n => n.dataset.node)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def open_tab(driver, name: str) -> None:
    driver.find_element("css selector", f'.tabs button[data-tab="{name}"]').click()


# -- against `netsched demo` ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    """``netsched demo`` in its own process; yields its URL and the lines it prints."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netsched.cli",
            "demo",
            "--port",
            str(port),
            "--interval",
            "0.5",
            "--initial-pods",
            "4",
            "--seed",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "dashboard" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(30), f"netsched demo did not start: {lines}"
        yield f"http://127.0.0.1:{port}", lines
    finally:
        process.terminate()
        process.wait(timeout=15)
        reader.join(timeout=5)


def test_demo_dashboard_shows_every_node_and_follows_the_demo_live(demo):
    url, lines = demo
    with chromium() as driver:
        driver.get(f"{url}/dashboard")
        wait_for(driver, "document.querySelectorAll('.node').length === 12")
        expected = sorted(node.name for node in sample_cluster().nodes)
        assert sorted(node_names(driver)) == expected
        zones = driver.execute_script(
            "return [...document.querySelectorAll('.zone')].map(z => z.dataset.zone)"
        )
        assert zones == ["eu-1a", "eu-1b", "eu-1c"]
        # interfaces and the networks they carry (replication is limited to two zones; the
        # Multus NAD demo/fast-storage rides every node's eth1, its master link)
        chips = driver.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('.node')].map(n => [n.dataset.node, "
            "[...n.querySelectorAll('.iface[data-iface=eth1] .chip')].map(c => c.textContent)]))"
        )
        assert chips["node-a-1"] == ["storage", "replication", "demo/fast-storage"]
        assert chips["node-c-1"] == ["storage", "demo/fast-storage"]
        # the network list shows the NADs, the one of unknown reach with why
        networks = driver.execute_script(
            "return [...document.querySelectorAll('#networks li')].map(li => li.textContent)"
        )
        assert any("demo/fast-storage" in n and "macvlan" in n and "Multus" in n for n in networks)
        assert any("demo/sriov-fabric" in n and "reach unknown: SR-IOV" in n for n in networks)
        # every resource came from the extender itself: nothing from a CDN
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(r => r.name)"
        )
        assert resources and all(r.startswith(url) for r in resources)

        # pods the demo schedules after the page loaded appear without a reload
        driver.execute_script("window.__sameDocument = true")
        seen = len(lines)
        bound = None
        deadline = time.monotonic() + 20
        while bound is None and time.monotonic() < deadline:
            for line in lines[seen:]:
                match = re.match(r"(demo/\S+) → (\S+) ", line)
                if match and not match.group(1).startswith("demo/batch"):
                    bound = match.groups()
            time.sleep(0.1)
        assert bound, f"the demo bound no pod with a reservation: {lines[-10:]}"
        pod, node = bound
        open_tab(driver, "pods")
        row = wait_for(
            driver, "document.querySelector(`#pods tr[data-pod='${arguments[0]}']`)", TIMEOUT, pod
        )
        assert row.get_attribute("data-node") == node
        assert driver.execute_script("return window.__sameDocument === true")
        assert "ok" in driver.find_element("id", "live").get_attribute("class")
        assert console_errors(driver) == []


# -- the demo's cluster, with pods the test chooses --------------------------------------


def bar(driver, node: str, direction: str) -> tuple[int, float]:
    """Reserved bits/s and drawn width (%) of a node's bar in the topology."""
    return tuple(
        driver.execute_script(
            "const b = document.querySelector(`.node[data-node='${arguments[0]}'] .node-bar[data-dir='${arguments[1]}']`);"
            "return [Number(b.dataset.reservedBps), parseFloat(b.querySelector('.res').style.width)];",
            node,
            direction,
        )
    )


def test_scheduled_pod_appears_with_its_reservation_and_its_node_bar_grows():
    with served_cluster() as cluster, KubeScheduler(cluster) as kube, chromium() as driver:
        driver.get(f"{cluster.url}/dashboard")
        wait_for(driver, "document.querySelectorAll('.node').length === 12")
        driver.execute_script("window.__sameDocument = true")
        before_bps, before_width = bar(driver, "node-a-1", "egress")
        assert before_bps == 0

        video = kube.schedule(
            "video",
            {annotations.INGRESS_BANDWIDTH: "1G", annotations.EGRESS_BANDWIDTH: "4G"},
            prefer="node-a-1",
        )
        assert video.node == "node-a-1" and video.bind_error == ""
        wait_for(
            driver,
            "Number(document.querySelector(`.node[data-node='node-a-1'] .node-bar[data-dir='egress']`)"
            ".dataset.reservedBps) === 4e9",
        )
        after_bps, after_width = bar(driver, "node-a-1", "egress")
        assert after_bps == 4_000_000_000 and after_width > before_width
        assert driver.execute_script("return window.__sameDocument === true")

        # the reservation, in the pods table and in the node's detail
        open_tab(driver, "pods")
        row = wait_for(driver, "document.querySelector(`#pods tr[data-pod='admin/video']`)")
        assert row.get_attribute("data-node") == "node-a-1"
        assert "eth0 ↓1G ↑4G" in row.text
        driver.find_element("css selector", ".node[data-node='node-a-1']").click()
        detail = wait_for(driver, "document.querySelector(`#node-detail [data-node='node-a-1']`)")
        assert "admin/video" in detail.text
        eth0 = detail.find_element(
            "css selector", ".iface-detail[data-iface='eth0'] .bar[data-dir='egress']"
        )
        assert eth0.get_attribute("data-reserved-bps") == "4000000000"
        assert eth0.get_attribute("data-capacity-bps") == str(int(25e9 * 0.9))

        # an attachment on the storage VLAN shows its network, segment and address
        db = kube.schedule(
            "db",
            {annotations.NETWORKS: json.dumps([{"name": "storage", "ingress": "2G"}])},
            prefer="node-a-1",
        )
        assert db.node == "node-a-1"
        row = wait_for(driver, "document.querySelector(`#pods tr[data-pod='admin/db']`)")
        assert "storage · VLAN 100 on eth1" in row.text and "10.20." in row.text
        assert console_errors(driver) == []


def test_refused_pods_show_each_node_reason():
    with served_cluster() as cluster, KubeScheduler(cluster) as kube, chromium() as driver:
        driver.get(f"{cluster.url}/dashboard")
        wait_for(driver, "document.querySelectorAll('.node').length === 12")

        typo = kube.schedule("typo", {annotations.INGRESS_BANDWIDTH: "fast"})
        assert typo.node is None and len(typo.refused) == 12
        item = wait_for(
            driver, "document.querySelector(`li.decision.refused[data-pod='admin/typo']`)"
        )
        assert "fits no node" in item.text
        assert "12 nodes refused" in item.text
        assert "annotation kubernetes.io/ingress-bandwidth='fast'" in item.text

        # different reasons on different nodes: each node is listed under its own reason
        kube.schedule(
            "fill", {annotations.EGRESS_BANDWIDTH: "80G"}, prefer="node-a-2"
        )  # a 100G node
        huge = kube.schedule("huge", {annotations.EGRESS_BANDWIDTH: "20G"})
        assert huge.node is not None and len(huge.refused) > 0
        item = wait_for(
            driver, "document.querySelector(`li.decision[data-pod='admin/huge'] details`)"
        )
        item.find_element("tag name", "summary").click()
        reasons = driver.execute_script(
            "return [...arguments[0].querySelectorAll('.reasons li')].map(li => li.innerText)", item
        )
        shown = "\n".join(reasons)
        for node, reason in huge.refused.items():
            assert reason in shown and node in shown
        assert "node-a-2" in huge.refused and "asks 20G" in huge.refused["node-a-2"]

        # the refused node's detail lists the refusal too
        driver.find_element("css selector", ".node[data-node='node-a-2']").click()
        detail = wait_for(driver, "document.querySelector(`#node-detail [data-node='node-a-2']`)")
        assert "admin/huge" in detail.text and "asks 20G" in detail.text
        assert console_errors(driver) == []


def test_five_hundred_nodes_stay_usable():
    with (
        served_cluster(zones=5, switches_per_zone=2, nodes_per_switch=50) as cluster,
        KubeScheduler(cluster) as kube,
        chromium() as driver,
    ):
        driver.get(f"{cluster.url}/dashboard")
        wait_for(driver, "document.querySelectorAll('.node').length === 500", timeout=30)
        assert driver.find_element("id", "topology").get_attribute("data-zoom") == "dense"
        visible = "[...document.querySelectorAll('.node')].filter(n => n.offsetParent !== null)"

        search = driver.find_element("id", "search")
        search.send_keys("node-c-4")
        wait_for(driver, f"{visible}.length === 11")
        names = driver.execute_script(f"return {visible}.map(n => n.dataset.node)")
        assert sorted(names) == sorted(["node-c-4", *(f"node-c-{n}" for n in range(40, 50))])
        hidden_zones = driver.execute_script(
            "return [...document.querySelectorAll('.zone.hidden')].map(z => z.dataset.zone)"
        )
        assert hidden_zones == ["eu-1a", "eu-1b", "eu-1d", "eu-1e"]

        search.send_keys("\ue00c")  # Escape clears the search
        wait_for(driver, f"{visible}.length === 500")
        driver.find_element("css selector", "#zoom button[data-zoom='detail']").click()
        assert driver.find_element("id", "topology").get_attribute("data-zoom") == "detail"
        driver.find_element("css selector", ".zone[data-zone='eu-1a'] .zone-head").click()
        wait_for(driver, f"{visible}.length === 400")

        # the busiest interface is listed first; clicking it opens its node, unfolding its zone
        busy = kube.schedule(
            "busy", {annotations.EGRESS_BANDWIDTH: "60G"}, prefer="node-a-17"
        )  # 100G link
        assert busy.node == "node-a-17"
        hot = wait_for(driver, "document.querySelector(`.hot li[data-node='node-a-17']`)")
        assert (
            driver.execute_script("return document.querySelector('.hot li').dataset.node")
            == "node-a-17"
        )
        assert "reserved 67%" in hot.text  # 60G of 90G usable
        hot.click()
        wait_for(driver, "document.querySelector(`#node-detail [data-node='node-a-17']`)")
        wait_for(driver, f"{visible}.length === 500")  # eu-1a unfolded
        assert "selected" in driver.find_element(
            "css selector", ".node[data-node='node-a-17']"
        ).get_attribute("class")
        assert console_errors(driver) == []


def test_stale_reports_and_a_lost_extender_are_shown():
    with chromium() as driver:
        with served_cluster() as cluster:
            driver.get(f"{cluster.url}/dashboard")
            wait_for(driver, "document.querySelectorAll('.node').length === 12")
            assert driver.find_elements("css selector", ".node.stale") == []

            # node-b-1's reporter last reported five minutes ago (the TTL is 60 s)
            report = cluster.source.get(NodeNetwork, "node-b-1").model_copy(deep=True)
            report.status.heartbeat_time = datetime.now(UTC) - timedelta(minutes=5)
            cluster.source.apply(report)
            wait_for(driver, "document.querySelectorAll('.node.stale').length === 1")
            assert (
                driver.find_element("css selector", ".node.stale").get_attribute("data-node")
                == "node-b-1"
            )
            assert "1\nSTALE REPORTS" in driver.find_element("id", "summary").text.upper()
        # the extender is gone: the page says so instead of showing old figures as live
        live = wait_for(driver, "document.querySelector('#live.down')", timeout=10)
        assert "offline" in live.text
        errors = console_errors(driver)  # only the refused connections themselves
        assert all("ERR_CONNECTION_REFUSED" in error for error in errors), errors


def test_the_policies_tab_shows_a_namespace_default_and_its_usage():
    from contract.objects import BandwidthPolicy

    with served_cluster() as cluster, KubeScheduler(cluster) as kube, chromium() as driver:
        driver.get(f"{cluster.url}/dashboard")
        wait_for(driver, "document.querySelectorAll('.node').length === 12")
        open_tab(driver, "policies")
        assert "No BandwidthPolicy" in driver.find_element("id", "policies").text
        cluster.source.apply(BandwidthPolicy.model_validate({
            "metadata": {"name": "limits", "namespace": "admin"},
            "spec": {"default": {"egress": "100M"}, "hard": {"egress": "1G"}}}))
        quiet = kube.schedule("quiet", {})  # asks nothing: the namespace default is reserved
        assert quiet.node is not None and quiet.bind_error == ""
        item = wait_for(driver, "document.querySelector(`#policies li[data-policy='admin/limits']`)")
        wait_for(driver, "document.querySelector(`#policies li[data-policy='admin/limits']`).textContent"
                         ".includes('out 100M of 1G')")
        assert "default in - out 100M" in item.text
        assert driver.find_element("id", "policies-count").text == "1"
        assert console_errors(driver) == []
