"""The extender beside DRA, in-process: filter of a pod with a netsched claim beside an
annotation pod's, and the ledger's ingestion of allocated claims.

No HTTP: ``Scheduler.filter`` called directly on the sample cluster's shape (as in
``extender_inprocess.py``), every node a candidate. *annotations* asks 1G egress by
``kubernetes.io/egress-bandwidth`` (the batch fit); *claim* uses a ResourceClaim of
DeviceClass bandwidth.netsched.io asking 1G egress, not yet allocated (checked per node,
every interface carrying pod traffic); *nothing* asks nothing. *ingest* applies that many
allocated claims to the state one by one, as watch events (each recorded in the ledger),
and *re-ingest* applies them again unchanged (each replaced, not added).

    .venv/bin/python benchmarks/dra_ledger.py [--sizes 500 5000] [--claims 1000] [--repeat 20]

Prints one table and the machine; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

from extender_inprocess import machine, timed
from extender_latency import bench_cluster

from contract.dra import DEVICE_CLASS, DRIVER, ResourceClaim
from contract.group import SCHEDULER_NAME
from contract.objects import Pod
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource


def claim(name: str, node: str | None = None) -> ResourceClaim:
    body: dict = {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {"devices": {"requests": [{"name": "bandwidth", "exactly": {
            "deviceClassName": DEVICE_CLASS, "capacity": {"requests": {"egress": "1M"}},
        }}]}},
    }
    if node is not None:
        body["status"] = {"allocation": {"devices": {"results": [{
            "request": "bandwidth", "driver": DRIVER, "pool": node, "device": "eth0",
            "shareID": f"share-{name}", "consumedCapacity": {"egress": "1M"},
        }]}}}
    return ResourceClaim.model_validate(body)


def pod(name: str, annotations: dict[str, str] | None = None, claim_name: str | None = None) -> Pod:
    spec: dict = {"schedulerName": SCHEDULER_NAME}
    if claim_name is not None:
        spec["resourceClaims"] = [{"name": "bandwidth", "resourceClaimName": claim_name}]
    return Pod.model_validate({"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                                            "annotations": annotations or {}}, "spec": spec})


def measure(nodes: int, claims: int, repeat: int) -> list[tuple[str, float, float]]:
    source = FileClusterSource(bench_cluster(nodes))
    extender = Extender.build(source)
    source.start(extender.state)
    scheduler, state = extender.scheduler, extender.state
    names = state.node_names()
    state.upsert(claim("asked"))
    annotated = pod("annotated", {"kubernetes.io/egress-bandwidth": "1G"})
    claimed = pod("claimed", claim_name="asked")
    plain = pod("plain")
    assert len(scheduler.filter(claimed, names).passed) == len(names)
    rows = [
        ("filter: nothing", *timed(lambda: scheduler.filter(plain, names), repeat)),
        ("filter: annotations", *timed(lambda: scheduler.filter(annotated, names), repeat)),
        ("filter: claim", *timed(lambda: scheduler.filter(claimed, names), repeat)),
    ]
    allocated = [claim(f"c{i}", names[i % len(names)]) for i in range(claims)]
    for label in (f"ingest {claims}", f"re-ingest {claims}"):
        started = time.perf_counter()
        for one in allocated:
            state.upsert(one)
        elapsed = (time.perf_counter() - started) * 1000
        rows.append((label, elapsed, elapsed))
    held = sum(1 for h in state.ledger.holdings() if h.claim is not None)
    assert held == claims, held
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'nodes':>6} {'call':<22} {'median ms':>10} {'max ms':>8}")
    for nodes in args.sizes:
        for call, median, worst in measure(nodes, args.claims, args.repeat):
            print(f"{nodes:>6} {call:<22} {median:>10.2f} {worst:>8.2f}")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
