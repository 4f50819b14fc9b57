"""Traffic nobody reserved in the simulator: reporters that see it late, and what netsched does with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from demo.sample_cluster import sample_cluster
from simulator import SHIPPED_EXTENDER_WEIGHT, ClusterShape, PolicyName
from simulator.arrivals import draw_arrivals
from simulator.links import LinkLoad
from simulator.run import PolicyRun, SimulationConfig, run_simulation
from simulator.workload import Workload, load_workload
from topology.graph import Topology

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NOISY = {
    "name": "noisy",
    "pods_per_node": 8,
    "node": {"cpu": 16, "memory": "64Gi"},
    "templates": [
        {"name": "web", "weight": 3, "cpu": 1, "ingress": "300M", "egress": {"uniform": ["1G", "3G"]},
         "lifetime": {"exponential": 600}},
        {"name": "shipper", "weight": 1, "cpu": 1, "annotated": False, "egress": {"uniform": ["3G", "6G"]},
         "lifetime": {"exponential": 900}},
    ],
}


@pytest.fixture(scope="module")
def config() -> SimulationConfig:
    return SimulationConfig(Workload.model_validate(NOISY), nodes=24, pods=600, seed=3,
                            shape=ClusterShape(zones=2, nodes_per_switch=4))


def extender_weights(node: object) -> list[int]:
    """Every kube-scheduler extender weight in a YAML tree, including configurations
    held as strings (a ConfigMap's ``config.yaml``, a kustomize patch)."""
    if isinstance(node, str) and "extenders" in node:
        return extender_weights(yaml.safe_load(node))
    if isinstance(node, list):
        return [w for item in node for w in extender_weights(item)]
    if not isinstance(node, dict):
        return []
    found = [e["weight"] for e in node.get("extenders") or [] if isinstance(e, dict) and "weight" in e]
    return found + [w for key, value in node.items() if key != "extenders" for w in extender_weights(value)]


def test_the_simulators_extender_weight_is_the_one_deploy_ships():
    weights = [w for path in DEPLOY.rglob("*.yaml") for doc in yaml.safe_load_all(path.read_text())
               for w in extender_weights(doc)]
    assert len(weights) >= 2 and set(weights) == {SHIPPED_EXTENDER_WEIGHT}  # plain and TLS variants
    assert SimulationConfig(Workload.model_validate(NOISY), nodes=1, pods=1).extender_weight == SHIPPED_EXTENDER_WEIGHT


def test_a_reporter_publishes_the_mean_rate_over_its_interval():
    topology = Topology(*(lambda s: (s.nodes, s.node_networks, s.networks))(sample_cluster(1, 1, 1)))
    links = LinkLoad(topology, [])
    [(interface, link)] = links.by_node["node-a-1"]
    start = links.carried.copy()
    links.add([(link, 1, 4e9)], noisy=True)
    links.advance(5.0)
    links.add([(link, 1, 2e9)])
    links.advance(10.0)
    # 4G for 10 s and 2G for the last 5: what byte counters read twice would say.
    assert links.reports(start, 10.0) == {"node-a-1": {interface: (0, 5_000_000_000)}}


def test_unannotated_pods_send_and_a_namespace_default_shapes_them(config):
    arrivals = draw_arrivals(config.workload, config.nodes, config.pods, config.seed)
    shippers = [a for a in arrivals if a.template == "shipper"]
    assert shippers and all(a.noisy and a.egress_bps >= 3e9 and not a.annotations for a in shippers)
    assert not any(a.noisy for a in arrivals if a.template == "web")

    report = run_simulation(config, [PolicyName.BLIND, PolicyName.SPREAD])
    blind, spread = report.policies
    assert blind.noisy_episodes > 0  # their traffic counts, whoever placed them
    assert spread.episodes == spread.noisy_episodes  # netsched itself never tipped a link over

    shaped = SimulationConfig(config.workload, config.nodes, config.pods, config.seed, shape=config.shape,
                              namespace_default="1G")
    run = PolicyRun(shaped, PolicyName.SPREAD, arrivals)
    result = run.run()
    assert result.links_over_capacity_peak == 0 and result.episodes == 0
    ledger = run.policy.extender.state.ledger
    running = [placed for _, _, placed in run.departures if placed.arrival.template == "shipper"]
    assert running
    for placed in running:
        # Reserved at the default and sending no more than it (the CNI shapes to it).
        assert ledger.holding(placed.arrival.uid).reservation.primary.egress == 1_000_000_000
        assert sum(rate for _, direction, rate in placed.charges if direction == 1) == 1e9


def test_observed_load_keeps_reservations_off_noisy_links(config):
    report = run_simulation(config, [PolicyName.RESERVED_ONLY, PolicyName.SPREAD])
    blind_to_traffic, seeing = report.policies
    started_by_netsched = lambda r: r.episodes - r.noisy_episodes  # noqa: E731
    assert started_by_netsched(blind_to_traffic) > 0
    assert started_by_netsched(seeing) == 0
    assert seeing.links_over_capacity_mean < blind_to_traffic.links_over_capacity_mean


def test_the_bundled_noisy_workload_has_unannotated_talkers():
    workload = load_workload("noisy-neighbours")
    quiet = [t for t in workload.templates if not t.annotated]
    assert quiet and max(t.egress.mean for t in quiet if t.egress) > 1e9


def test_dras_allocator_does_not_see_traffic_nobody_claimed(config):
    """The allocator counts claims only: like netsched counting reservations alone, it puts
    claims on links that unclaimed traffic already fills, so episodes start with its own
    placements, with or without netsched's scores (which read only a DRA pod's peers);
    netsched with observed load starts none and keeps fewer links over capacity."""
    results = run_simulation(config, [PolicyName.DRA, PolicyName.DRA_SCORED, PolicyName.SPREAD]).policies
    alone, scored, seeing = results
    for dra in (alone, scored):
        assert dra.episodes - dra.noisy_episodes > 0
        assert seeing.links_over_capacity_mean < dra.links_over_capacity_mean / 1.5
    assert seeing.episodes == seeing.noisy_episodes
