"""The simulator's books: every pod accounted for, netsched's promises kept, runs repeatable."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import ClusterShape, PolicyName
from simulator.arrivals import draw_arrivals
from simulator.policies import WithNetsched
from simulator.run import PolicyRun, SimulationConfig, run_simulation

TIMING_FIELDS = {"schedule_ms_mean", "schedule_ms_p99", "seconds"}


def comparable(report) -> list[dict]:
    return [result.model_dump(exclude=TIMING_FIELDS) for result in report.policies]


@pytest.fixture(scope="module")
def report():
    from simulator.workload import Workload
    from tests.simulator.conftest import HOT

    config = SimulationConfig(
        Workload.model_validate(HOT), nodes=24, pods=600, seed=7, shape=ClusterShape(zones=2, nodes_per_switch=4)
    )
    return run_simulation(config, list(PolicyName))


def test_every_arrival_is_placed_or_refused(report) -> None:
    for result in report.policies:
        assert result.arrived == 600
        assert result.placed + result.refused == result.arrived
        assert result.refused == (
            result.refused_by_kube + result.refused_by_netsched + result.refused_by_allocator + result.bind_conflicts
        )
        # arrivals plus the departures of placed pods that left before the last arrival
        assert result.arrived <= result.events <= result.arrived + result.placed


def test_netsched_never_takes_a_link_past_its_capacity(report) -> None:
    by_policy = {result.policy: result for result in report.policies}
    for name in (PolicyName.RESERVED_ONLY, PolicyName.SPREAD, PolicyName.PACK):
        result = by_policy[name]
        assert result.links_over_capacity_peak == 0
        assert result.worst_utilisation <= 0.9  # usable capacity: link speed less 10 % headroom
        assert sum(result.utilisation_histogram[101:]) == 0
    # The workload asks more than fits: netsched refused some of it somewhere, blind overfilled links.
    assert sum(by_policy[name].refused_by_netsched for name in PolicyName if name is not PolicyName.BLIND) > 0
    blind = by_policy[PolicyName.BLIND]
    assert blind.links_over_capacity_peak > 0 and blind.worst_utilisation > 1.0
    assert blind.refused_by_netsched == 0


def test_same_seed_same_results(report, small_config: SimulationConfig) -> None:
    again = run_simulation(small_config, list(PolicyName))
    assert comparable(again) == comparable(report)
    other = run_simulation(
        SimulationConfig(small_config.workload, 24, 600, seed=8, shape=small_config.shape), list(PolicyName)
    )
    assert comparable(other) != comparable(report)


def test_parallel_policies_give_the_same_results(report, small_config: SimulationConfig) -> None:
    parallel = run_simulation(small_config, list(PolicyName), jobs=2)
    assert comparable(parallel) == comparable(report)


def test_simulated_traffic_matches_netsched_ledger(small_config: SimulationConfig) -> None:
    """The traffic the simulator books per link is exactly what netsched's ledger holds:
    the pods went through the extender's own bind, and every departure released them."""
    arrivals = draw_arrivals(small_config.workload, small_config.nodes, small_config.pods, small_config.seed)
    run = PolicyRun(small_config, PolicyName.SPREAD, arrivals)
    run.run()
    policy = run.policy
    assert isinstance(policy, WithNetsched)
    ledger = policy.extender.state.ledger
    assert ledger.holdings(), "pods are still running at the end of the run"
    for (node, interface), link in run.links.index.items():
        assert tuple(run.links.traffic[link]) == pytest.approx(ledger.reserved(node, interface))
    live = {placed.arrival.uid for _, _, placed in run.departures}
    assert {holding.uid for holding in ledger.holdings()} <= live
    assert len(policy.extender.state.pods()) == len(live)


def test_kube_bookkeeping_returns_to_zero_when_all_pods_leave(small_config: SimulationConfig) -> None:
    arrivals = draw_arrivals(small_config.workload, small_config.nodes, 200, small_config.seed)
    run = PolicyRun(small_config, PolicyName.PACK, arrivals)
    run.run()
    run.drain()
    assert not run.departures
    assert np.allclose(run.kube.cpu_used, 0) and np.allclose(run.kube.memory_used, 0)
    assert not run.links.traffic.any() and run.links.over_now == 0
    assert not run.policy.extender.state.ledger.holdings()
    assert all(not counts.any() for counts in run.kube.app_pods.values())
