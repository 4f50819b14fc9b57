"""The kube-scheduler model: candidate sampling, node order, resource filter and scores."""

from __future__ import annotations

import random

import numpy as np
import pytest

from demo.sample_cluster import sample_cluster
from simulator.kube import (
    KubeScheduler,
    feasible_nodes_to_find,
    node_tree_order,
)
from simulator.peers import PeerIndex
from topology.graph import Topology


def topology(zones: int, switches: int, nodes: int) -> Topology:
    snapshot = sample_cluster(zones, switches, nodes)
    return Topology(snapshot.nodes, snapshot.node_networks, snapshot.networks)


@pytest.mark.parametrize(
    ("nodes", "expected"), [(50, 50), (100, 100), (200, 100), (500, 230), (1000, 420), (5000, 500), (10_000, 500)]
)
def test_feasible_nodes_to_find_follows_kube_scheduler(nodes: int, expected: int) -> None:
    assert feasible_nodes_to_find(nodes) == expected


def test_node_order_interleaves_zones() -> None:
    order = node_tree_order(topology(3, 1, 2))
    assert [name.split("-")[1] for name in order] == ["a", "b", "c", "a", "b", "c"]


def test_feasible_sampling_rotates_and_respects_resources() -> None:
    kube = KubeScheduler.build(topology(4, 10, 5), cpu=8, memory=32 * 2**30, rng=random.Random(1))
    assert len(kube.names) == 200
    first = kube.feasible(1, 2**30)
    assert len(first) == 100 and first.tolist() == list(range(100))
    second = kube.feasible(1, 2**30)
    assert second.tolist() == list(range(100, 200))  # the next cycle starts where this one stopped
    kube.cpu_used[:150] = 8  # full
    third = kube.feasible(1, 2**30)
    assert third.tolist() == list(range(150, 200))  # every node examined, only the free ones sent
    affinity = np.zeros(200, dtype=bool)
    affinity[160:170] = True
    assert kube.feasible(1, 2**30, affinity).tolist() == list(range(160, 170))
    assert len(kube.feasible(9, 2**30)) == 0


def test_a_filter_plugin_of_its_own_counts_toward_the_nodes_found() -> None:
    """DRA's ``DynamicResources`` is one of kube-scheduler's filters: the search stops after
    ``numFeasibleNodesToFind`` nodes that pass it too, examining more nodes when it fails some
    (an extender, called after the search, only ever sees the nodes found)."""
    kube = KubeScheduler.build(topology(4, 10, 5), cpu=8, memory=32 * 2**30, rng=random.Random(1))
    asked = []

    def odd_only(node: int) -> bool:
        asked.append(node)
        return node % 2 == 1

    found = kube.feasible(1, 2**30, plugin=odd_only)
    assert found.tolist() == list(range(1, 200, 2))  # 100 found among all 200 nodes
    assert asked == list(range(200))
    assert kube.next_start == 0  # every node was examined
    kube.cpu_used[:10] = 8
    asked.clear()
    assert kube.feasible(1, 2**30, plugin=lambda node: asked.append(node) or True).tolist() == list(range(10, 110))
    assert asked == list(range(10, 110))  # nodes failing CPU are never asked, the search stops at 100
    assert kube.next_start == 110
    assert len(kube.feasible(1, 2**30, plugin=lambda node: False)) == 0


def test_scores_prefer_free_nodes_and_spread_an_app_over_zones() -> None:
    kube = KubeScheduler.build(topology(2, 1, 2), cpu=8, memory=32 * 2**30, rng=random.Random(1))
    everyone = np.arange(4)
    kube.place(0, 4, 16 * 2**30, "web")  # node 0 is in zone a
    scores = kube.scores(everyone, 1, 2**30, "web")
    zone_a = kube.zone == kube.zone[0]
    assert scores[0] == scores.min()
    assert scores[~zone_a].min() > scores[zone_a].max()
    other_app = kube.scores(everyone, 1, 2**30, "db")
    assert other_app[0] < other_app[1:].min()  # still least-allocated
    kube.remove(0, 4, 16 * 2**30, "web")
    assert kube.cpu_used.sum() == 0 and kube.app_pods["web"].sum() == 0


def test_hops_between_nodes_match_the_topology() -> None:
    graph = topology(2, 2, 2)
    peers = PeerIndex(graph)
    names = sorted(graph.nodes)
    for first in names:
        row = peers.position[first]
        others = np.array([peers.position[n] for n in names])
        assert peers.rows.hops_between(others, row).tolist() == [graph.hops(first, n) for n in names]
