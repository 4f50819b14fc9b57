"""The extender's memory and its collector's pauses as the cluster grows: what to size it by.

Each configuration is built in a fresh process, as the extender holds it after following
the cluster for a while:

- the sample cluster's shape at ``--nodes`` nodes (``extender_latency.bench_cluster``),
  loaded at start, then frozen out of the cyclic collector as ``collector_tuned`` does;
- ``--pods-per-node`` bound pods on each node, arriving after the start (30 a node at 5,000
  nodes is Kubernetes' documented limit of 150,000 pods), each the pod a real kube-scheduler v1.36
  sent (``tests/fixtures/extender/kube-scheduler-v1.36``: full metadata with kubectl's
  last-applied configuration, spec and status), in one of two kinds:

  * ``plain``: an ordinary workload's pod, no netsched annotation, bound by another
    scheduler: the state keeps it (peers, preemption, the views) and the ledger nothing;
  * ``netsched``: the pod asking 50M out, bound through ``Scheduler.bind`` (the fit check,
    check-and-reserve), then applied as the pod watch brings it back, with the reservation
    annotation bind wrote: what a pod scheduled through netsched costs.

Pods are validated as the Kubernetes source validates a watch event (``Pod``'s adapter over
the parsed JSON) and applied with ``ClusterState.upsert``. Reported per configuration: the
process's resident memory after a full collection, what each pod adds to it (against the
same cluster without pods, built in the same run), the objects the cyclic collector tracks
per pod, and how long a full collection stops the process (median of three).

    .venv/bin/python benchmarks/extender_memory.py [--nodes 500 5000] [--pods-per-node 10 30]

Prints one table and the machine; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.extender_inprocess import machine  # noqa: E402
from benchmarks.extender_latency import bench_cluster  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "extender" / "kube-scheduler-v1.36" / "nodecache-filter.json"
KINDS = ("plain", "netsched")


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def pod_raw(template: dict[str, Any], index: int, node: str) -> dict[str, Any]:
    raw = json.loads(json.dumps(template))
    raw["metadata"].update(name=f"pod-{index:06d}", uid=f"00000000-0000-4000-8000-{index:012d}",
                           resourceVersion=str(1000 + index))
    raw["spec"]["nodeName"] = node
    return raw


def build(nodes: int, pods: int, kind: str, results: Any) -> None:
    """One configuration in this (fresh) process; puts its row on ``results``."""
    from contract import annotations
    from contract.group import SCHEDULER_NAME
    from contract.objects import Pod
    from scheduler_extender.extender import Extender
    from scheduler_extender.file_source import FileClusterSource

    source = FileClusterSource(bench_cluster(nodes))
    extender = Extender.build(source)
    source.start(extender.state)
    state, scheduler = extender.state, extender.scheduler
    names = state.node_names()
    template = json.loads(FIXTURE.read_text())["Pod"]
    if kind == "netsched":
        template["metadata"]["annotations"][annotations.EGRESS_BANDWIDTH] = "50M"
        template["spec"]["schedulerName"] = SCHEDULER_NAME
    written: dict[str, str] = {}
    source.bind = lambda _pod, _node, recorded: written.update(recorded)  # the API's part: the watch below
    gc.collect()
    gc.freeze()  # the cluster as loaded at start (``collector_tuned``)
    tracked_before = len(gc.get_objects())
    for index in range(pods):
        node = names[index % len(names)]
        raw = pod_raw(template, index, node)
        if kind == "netsched":
            del raw["spec"]["nodeName"]
            state.upsert(Pod.model_validate(raw))  # pending, as listed
            scheduler.bind(raw["metadata"]["namespace"], raw["metadata"]["name"], raw["metadata"]["uid"], node)
            raw["spec"]["nodeName"] = node
            raw["metadata"]["annotations"].update(written)
        state.upsert(Pod.model_validate(raw))  # bound, as the watch brings it back
    gc.collect()
    tracked = len(gc.get_objects()) - tracked_before
    pauses = []
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        pauses.append((time.perf_counter() - started) * 1000)
    held = sum(1 for pod in state.pods() if pod.spec.node_name)
    results.put({"nodes": nodes, "pods": pods, "kind": kind, "held": held, "rss": resident_mb(),
                 "tracked": tracked, "pause": statistics.median(pauses)})


def measure(nodes: int, pods: int, kind: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=build, args=(nodes, pods, kind, results))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"building {pods} {kind} pods at {nodes} nodes failed (exit code {process.exitcode})")
    row = results.get(timeout=10)
    if row["held"] != pods:
        raise RuntimeError(f"{row['held']} of {pods} pods held")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--pods-per-node", type=int, nargs="+", default=[10, 30])
    args = parser.parse_args()

    header = f"{'nodes':>6} {'pods':>7} {'kind':9} {'RSS MB':>7} {'KB/pod':>7} {'tracked/pod':>11}"
    print(f"{header} {'full collection ms':>18}")
    for nodes in args.nodes:
        empty = measure(nodes, 0, "plain")
        for pods in (0, *(nodes * per_node for per_node in args.pods_per_node)):
            for kind in KINDS if pods else ("-",):
                row = measure(nodes, pods, kind) if pods else empty
                per_pod = (row["rss"] - empty["rss"]) * 1024 / pods if pods else 0.0
                tracked = row["tracked"] / pods if pods else 0.0
                print(f"{nodes:>6} {pods:>7} {kind:9} {row['rss']:>7.0f} {per_pod:>7.2f} {tracked:>11.1f} "
                      f"{row['pause']:>18.1f}", flush=True)
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
