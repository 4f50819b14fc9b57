"""Prioritize of a pod with ``netsched.io/peers``, by placed pods in its namespace.

In-process on the sample cluster's shape (``extender_latency.bench_cluster``), with
kube-scheduler's default number of candidates. The namespace holds N bound pods on
random nodes, half of them matching the pod's selector (``app=web``). Per size, medians:

- *peer opinion*: the peers' score over the candidates as the extender computes it
  (``Scheduler._peer_rows``, the selector's placed pods counted per node, kept up to
  date as pods come and go; ``scoring.peer_scores``, one count per region, zone, switch
  and node);
- *before*: the same opinion as it was computed before 2026-12-03, kept in this script as
  the baseline: every placed pod of the namespace matched against the selector, then a
  pass over the candidates for each node that runs a peer;
- *prioritize*: the whole ``Scheduler.prioritize`` (bandwidth headroom too).

    .venv/bin/python benchmarks/peer_scores.py [--nodes 2000] [--placed 100 1000 10000 30000]

Prints one table and the machine; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

import numpy as np
from extender_inprocess import machine, microseconds
from extender_latency import bench_cluster, kube_scheduler_candidates

from bandwidth_accounting.requirements import parse_requirements
from contract import annotations
from contract.group import SCHEDULER_NAME
from contract.objects import Pod
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.scoring import MAX_SCORE, peer_scores
from topology.rows import MAX_HOPS, NodeRows


def pod(index: int, labels: dict[str, str], node: str | None, peers: str | None = None) -> Pod:
    asks = {annotations.EGRESS_BANDWIDTH: "10M"}
    if peers is not None:
        asks[annotations.PEERS] = peers
    spec: dict = {"schedulerName": SCHEDULER_NAME}
    if node is not None:
        spec["nodeName"] = node
    return Pod.model_validate({"metadata": {"name": f"p{index}", "namespace": "default", "uid": f"u{index}",
                                            "labels": labels, "annotations": asks}, "spec": spec})


def before(candidates: np.ndarray, placed: list[Pod], me: Pod, rows: NodeRows) -> np.ndarray:
    """The peer opinion as computed before: a scan of the placed pods, a pass per peer node."""
    selector = parse_requirements(me.metadata.annotations, "default").peers
    assert selector is not None
    peers = [rows.position[other.spec.node_name] for other in placed
             if other.spec.node_name in rows.position and other.metadata.uid != me.metadata.uid
             and selector.matches(other.metadata.labels)]
    at = np.where(candidates >= 0, candidates, 0)
    total_hops = np.zeros(len(candidates))
    for peer, count in Counter(peers).items():
        total_hops += count * rows.hops_between(at, peer)
    return np.where(candidates >= 0, MAX_SCORE * (1.0 - total_hops / len(peers) / MAX_HOPS), np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--placed", type=int, nargs="+", default=[100, 1000, 10000, 30000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    source = FileClusterSource(bench_cluster(args.nodes))
    extender = Extender.build(source)
    source.start(extender.state)
    scheduler, state = extender.scheduler, extender.state
    names = state.node_names()
    rows = state.topology.rows
    sent = kube_scheduler_candidates(args.nodes)
    generator = random.Random(1)
    placed: list[Pod] = []
    print(f"{args.nodes:,} nodes, {sent} candidates; µs, medians of {args.repeat}\n")
    print("| placed pods in the namespace | peer opinion (µs) | before (µs) | prioritize (µs) |")
    print("| ---: | ---: | ---: | ---: |")
    for size in args.placed:
        while len(placed) < size:
            placed.append(pod(len(placed), {"app": "web" if len(placed) % 2 else "db"}, generator.choice(names)))
            state.upsert(placed[-1])
        me = pod(10**9 + size, {"app": "client"}, None, peers="app=web")
        requirements, _ = scheduler.requirements_of(me)
        candidates = names[:sent]
        at = rows.rows_of(candidates)
        now = peer_scores(at, scheduler._peer_rows(me, requirements, rows), rows)
        assert np.allclose(now, before(at, placed, me, rows), equal_nan=True)
        opinion = microseconds(lambda: peer_scores(at, scheduler._peer_rows(me, requirements, rows), rows), args.repeat)
        baseline = microseconds(lambda: before(at, placed, me, rows), max(args.repeat // 3, 5))
        whole = microseconds(lambda: scheduler.prioritize(me, candidates), args.repeat)
        print(f"| {size:,} | {opinion:.0f} | {baseline:.0f} | {whole:.0f} |")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
