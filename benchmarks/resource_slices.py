"""Cost of the leader's ResourceSlice sync (``--publish-resource-slices``) by cluster size.

The sample cluster at each size is loaded into a ``ClusterState``; a ``SlicePublisher``
then syncs against the in-test API server (``tests/kube_api``, loopback HTTP through the
official client), three ways:

- *first*: every node's slice is created;
- *unchanged*: something changed in the state (its generation moved), nothing in the
  slices: every node's inputs compared, nothing rebuilt, nothing written;
- *one node*: one node's link speed changed: the topology rebuilt, that node's slice
  rebuilt and replaced;
- *relist*: the periodic list (pages of 500, each slice read and compared), nothing written.

``build`` is the time to build every node's slice alone (``bandwidth_accounting.devices``).

    .venv/bin/python benchmarks/resource_slices.py [--sizes 100 1000 5000]

Prints one table; figures and the machine go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402

from bandwidth_accounting.devices import node_devices  # noqa: E402
from demo.sample_cluster import sample_cluster  # noqa: E402
from scheduler_extender.slices import RELIST_SECONDS, SlicePublisher  # noqa: E402
from scheduler_extender.state import ClusterState  # noqa: E402
from tests.kube_api import FakeKubeAPI  # noqa: E402


def shape(nodes: int) -> tuple[int, int, int]:
    """(zones, switches per zone, nodes per switch) of about ``nodes`` nodes."""
    return 5, 10, max(1, round(nodes / 50))


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def measure(size: int) -> dict[str, float]:
    snapshot = sample_cluster(*shape(size))
    for index, node in enumerate(snapshot.nodes):
        node.metadata.uid = f"uid-{index}"
    state = ClusterState()
    state.reset(snapshot)
    topology = state.topology
    build, _ = timed(lambda: [node_devices(topology, name, state.capacity) for name in topology.nodes])
    with FakeKubeAPI() as api:
        configuration = client.Configuration(host=api.url)
        configuration.retries = 0
        with client.ApiClient(configuration) as api_client:
            now = [0.0]
            publisher = SlicePublisher(state, api_client, clock=lambda: now[0])
            first, created = timed(publisher.sync)
            state.generation += 1
            unchanged, same = timed(publisher.sync)
            report = snapshot.node_networks[0]
            changed = report.model_copy(deep=True)
            changed.status.interfaces[0].speed_mbps *= 2
            state.upsert(changed)
            one, updated = timed(publisher.sync)
            now[0] += RELIST_SECONDS
            relist, listed = timed(publisher.sync)
    assert created.created == len(topology.nodes) and same.updated == 0 and updated.updated == 1
    assert listed.created == listed.updated == 0
    return {"nodes": len(topology.nodes), "build": build, "first": first, "unchanged": unchanged,
            "one node": one, "relist": relist}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| nodes | build all slices | first sync (create all) | sync, nothing to write | sync, one node changed "
          "| relist, nothing to write |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        row = measure(size)
        print(f"| {row['nodes']} | {row['build'] * 1000:.0f} ms | {row['first']:.2f} s | "
              f"{row['unchanged'] * 1000:.0f} ms | {row['one node'] * 1000:.0f} ms | {row['relist']:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
