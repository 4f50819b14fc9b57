"""Take ``docs/dashboard.png``: the dashboard on the demo cluster after some traffic.

    .venv/bin/python -m tests.dashboard.screenshot [docs/dashboard.png]

The demo's own traffic driver places pods through the webhook and reports observed
load; then a pod too big for most links and one with a typo arrive, so the picture
shows hot interfaces and refusals with their reasons.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from contract import annotations
from demo.traffic import DemoTraffic
from tests.dashboard.browser import chromium
from tests.dashboard.cluster import KubeScheduler, served_cluster

WIDTH, HEIGHT = 1440, 900
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def main(output: Path = DEFAULT_OUTPUT) -> None:
    with served_cluster() as cluster, KubeScheduler(cluster) as kube:
        traffic = DemoTraffic(cluster.source, cluster.extender.state, cluster.url, seed=5)
        try:
            for _ in range(70):
                traffic.schedule_one(0.0)
            kube.schedule("stream-hd", {annotations.EGRESS_BANDWIDTH: "7G"}, prefer="node-a-3")
            traffic.report(10.0)
            kube.schedule(
                "video-4k",
                {annotations.EGRESS_BANDWIDTH: "30G", annotations.INGRESS_BANDWIDTH: "2G"},
            )
            kube.schedule("typo", {annotations.INGRESS_BANDWIDTH: "fast"})
        finally:
            traffic.close()
        with chromium(WIDTH, HEIGHT) as driver:
            driver.get(f"{cluster.url}/dashboard#node-a-3")
            deadline = time.monotonic() + 20
            while not driver.execute_script(
                "return document.querySelectorAll('.node').length === 12"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the dashboard did not render")
                time.sleep(0.1)
            driver.find_element(
                "css selector", "li.decision[data-pod='admin/video-4k'] summary"
            ).click()
            time.sleep(1.0)  # let the bars' transitions finish
            driver.save_screenshot(str(output))
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
