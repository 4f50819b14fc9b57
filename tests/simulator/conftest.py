"""Small workloads and clusters that exercise the simulator in seconds."""

from __future__ import annotations

import pytest

from simulator import ClusterShape
from simulator.run import SimulationConfig
from simulator.workload import Workload

HOT = {
    "name": "hot",
    "description": "More egress than the pod links carry, storage writers, peer groups.",
    "pods_per_node": 8,
    "node": {"cpu": 16, "memory": "64Gi"},
    "templates": [
        {"name": "stream", "weight": 3, "cpu": 1, "egress": {"uniform": ["2G", "6G"]},
         "lifetime": {"exponential": 600}},
        {"name": "writer", "weight": 2, "cpu": 2, "ingress": "200M",
         "networks": [{"network": "storage", "egress": {"lognormal": {"median": "6G", "sigma": 0.4}}}],
         "lifetime": {"uniform": [300, 900]}},
        {"name": "worker", "weight": 2, "cpu": 2, "ingress": "1G", "egress": "1G", "peer_group_size": 4,
         "lifetime": {"exponential": 900}},
        {"name": "batch", "weight": 1, "cpu": 4, "lifetime": {"exponential": 300}},
    ],
}


@pytest.fixture
def hot_workload() -> Workload:
    return Workload.model_validate(HOT)


@pytest.fixture
def small_config(hot_workload: Workload) -> SimulationConfig:
    """24 nodes: 2 zones × 3 switches × 4 nodes."""
    return SimulationConfig(hot_workload, nodes=24, pods=600, seed=7, shape=ClusterShape(zones=2, nodes_per_switch=4))
