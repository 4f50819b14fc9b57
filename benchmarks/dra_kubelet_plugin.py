"""The DRA kubelet plugin's answer times, as the kubelet sees them.

The plugin (``cni.kubelet_plugin``) serves on real unix sockets in this process; the
calls come over gRPC as the kubelet makes them (``tests/cni/dra_objects.Kubelet``), and
each claim is read over HTTP from the in-test API server (``tests/kube_api``), so a
Prepare's time is mostly that GET. Per call size (claims per NodePrepareResources):
p50 and p90 of the whole call, and per claim, over ``--rounds`` rounds; Unprepare alike
(no API read).

Run: ``.venv/bin/python benchmarks/dra_kubelet_plugin.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cni import kubelet_plugin  # noqa: E402
from cni.kube import fetch_claim  # noqa: E402
from cni.state import StateDir  # noqa: E402
from kubernetes_access import api_client  # noqa: E402
from tests.cni.dra_objects import CLAIMS, Kubelet, allocated_claim  # noqa: E402
from tests.kube_api.server import FakeKubeAPI  # noqa: E402

NODE = "node-a-1"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="dra-bench-") as tmp, FakeKubeAPI() as api:
        root = Path(tmp)
        plugin = kubelet_plugin.KubeletPlugin(
            node=NODE, state=StateDir(str(root / "state")),
            read_claim=partial(fetch_claim, api_client(api.write_kubeconfig(root / "kc"))),
            local_interfaces=lambda: ["lo", "eth0"])
        serving = kubelet_plugin.serve(plugin, str(root / "registry"), str(root / "plugin"))
        try:
            kubelet = Kubelet(root / "registry")
            kubelet.register()
            print(f"{'claims/call':>11} {'verb':>10} {'p50 ms':>8} {'p90 ms':>8} "
                  f"{'p50 ms/claim':>13}")
            for size in (1, 10):
                claims = [api.seed(CLAIMS.format(namespace="shop"), allocated_claim(
                    "shop", f"c{size}-{i}", node=NODE, device="eth0",
                    consumed={"egress": "1G", "ingress": "100M"})) for i in range(size)]
                for verb, call in (("prepare", kubelet.prepare), ("unprepare", kubelet.unprepare)):
                    took = []
                    for _ in range(rounds):
                        started = time.perf_counter()
                        call(*claims)
                        took.append((time.perf_counter() - started) * 1000)
                    print(f"{size:>11} {verb:>10} {statistics.median(took):>8.2f} "
                          f"{percentile(took, 0.9):>8.2f} {statistics.median(took) / size:>13.2f}")
        finally:
            serving.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
