"""Filter and prioritize in-process: the fit table, the batch check and the per-node check.

No HTTP: ``Scheduler.filter`` and ``Scheduler.prioritize`` called directly on the
sample cluster's shape (as in ``extender_latency.py``), for the annotated fixture pod
(100M in, 200M out on eth0, 2G in, 1G out on the storage network), every node a
candidate. Three ways one run answers the same pod:

- *new shape*: a pod whose asks no pod before it had (its egress differs by a kilobit
  each call): the batch check over every candidate, ``plan_on_node`` where it cannot
  decide (``scheduler_extender/evaluation.py``, ``evaluate``);
- *replica*: the next pod of a workload after another pod's bind changed one node (a
  reservation taken or released on it between calls): the shape's fit table, brought
  up to date on that node (``FitTables``);
- *per node*: what both verbs did before the batch check, ``plan_on_node`` for every
  candidate (and, for prioritize, the headroom of each plan); it is still the exact
  check bind uses.

    .venv/bin/python benchmarks/extender_inprocess.py [--sizes 500 5000] [--repeat 30]

Prints one table and the machine; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from extender_latency import FIXTURES, bench_cluster

from bandwidth_accounting.fit import Plan, plan_on_node
from bandwidth_accounting.ledger import Holding
from bandwidth_accounting.requirements import parse_requirements
from bandwidth_accounting.settings import FitSettings
from contract.annotations import EGRESS_BANDWIDTH
from contract.objects import Pod
from contract.reservation import Rates, Reservation
from scheduler_extender import scoring
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, max) milliseconds of ``repeat`` calls after one warm-up call."""
    call()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def microseconds(call: Callable[[], object], repeat: int) -> float:
    """Median microseconds of ``repeat`` calls (``timed``)."""
    return timed(call, repeat)[0] * 1000


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, load average {load}")


def measure(nodes: int, repeat: int) -> list[tuple[str, float, float]]:
    source = FileClusterSource(bench_cluster(nodes))
    extender = Extender.build(source)
    source.start(extender.state)
    scheduler, state = extender.scheduler, extender.state
    template = json.loads((FIXTURES / "filter-nodenames.json").read_text())["Pod"]
    names = state.node_names()
    counter = iter(range(10**9))

    def fresh_pod(*, new_shape: bool = False) -> Pod:
        """A new UID each call; with ``new_shape`` also asks a kilobit more than any pod before."""
        pod = Pod.model_validate(template)
        number = next(counter)
        pod.metadata.uid = f"bench-{number}"
        if new_shape:
            pod.metadata.annotations[EGRESS_BANDWIDTH] = f"{200_000 + number}k"
        return pod

    requirements = parse_requirements(fresh_pod().metadata.annotations)
    fit = FitSettings()
    neighbour = Holding("bench-neighbour", "default/neighbour", 0,
                        Reservation(node=names[0], interfaces={"eth0": Rates(ingress=1_000_000, egress=1_000_000)}))

    def another_bind() -> None:
        """Another pod's reservation on one node, taken or released: what the replica's table catches up on."""
        if state.ledger.release(neighbour.uid) is None:
            state.ledger.record(neighbour)

    def replica(verb: Callable[[Pod, list[str]], object]) -> Callable[[], object]:
        def call() -> object:
            another_bind()
            return verb(fresh_pod(), names)
        return call

    def per_node_filter() -> list[str]:
        now, topology, ledger = datetime.now(UTC), state.topology, state.ledger
        return [name for name in names
                if isinstance(plan_on_node(requirements, name, topology, ledger, now, fit), Plan)]

    def per_node_prioritize() -> list[float]:
        now, topology, ledger = datetime.now(UTC), state.topology, state.ledger
        plans = (plan_on_node(requirements, name, topology, ledger, now, fit) for name in names)
        return [scoring.headroom_left(plan, ledger) for plan in plans if isinstance(plan, Plan)]

    assert len(scheduler.filter(fresh_pod(), names).passed) == len(per_node_filter()) == len(names)
    return [
        ("filter new shape", *timed(lambda: scheduler.filter(fresh_pod(new_shape=True), names), repeat)),
        ("filter replica", *timed(replica(scheduler.filter), repeat)),
        ("filter per node", *timed(per_node_filter, repeat)),
        ("prioritize new shape", *timed(lambda: scheduler.prioritize(fresh_pod(new_shape=True), names), repeat)),
        ("prioritize replica", *timed(replica(scheduler.prioritize), repeat)),
        ("prioritize per node", *timed(per_node_prioritize, repeat)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"{'nodes':>6} {'call':<22} {'median ms':>10} {'max ms':>8}")
    for nodes in args.sizes:
        for call, median, worst in measure(nodes, args.repeat):
            print(f"{nodes:>6} {call:<22} {median:>10.2f} {worst:>8.2f}")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
