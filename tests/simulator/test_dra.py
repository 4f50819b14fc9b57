"""The DRA policies: kube-scheduler allocating bandwidth as consumable capacity, alone and
with netsched's scores.

The allocator model reproduces the structured allocator of kube-scheduler v1.36
(k8s.io/dynamic-resource-allocation, ``internal/incubating``): devices tried in slice order,
the first that matches and has room taken, a request's capacity added to what earlier
claims and this claim's earlier requests consumed of the device and compared with its
capacity, backtracking when a later request finds nothing, the first full solution kept.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import pytest

from bandwidth_accounting.ledger import usable_bps
from bandwidth_accounting.requirements import parse_requirements
from bandwidth_accounting.settings import CapacitySettings
from contract import annotations
from demo.sample_cluster import sample_cluster
from simulator import ClusterShape, PolicyName
from simulator.arrivals import Arrival, draw_arrivals
from simulator.dra import CapacityRequest, DeviceAllocator, claim_requests
from simulator.policies import WithDra
from simulator.run import PolicyRun, SimulationConfig, run_simulation
from simulator.workload import Workload
from topology.graph import Topology

G = 1_000_000_000
DRA_POLICIES = (PolicyName.DRA, PolicyName.DRA_SCORED)


def one_node(vlans: dict[str, list[int]], headroom: str | None = None) -> Topology:
    """``node-a-1`` of the sample cluster (eth0 25G pod, eth1 25G storage trunk, eth2 1G
    control) with the VLANs each interface carries replaced by ``vlans`` (storage is VLAN
    100, replication 200)."""
    snapshot = sample_cluster(1, 1, 1)
    for interface in snapshot.node_networks[0].status.interfaces:
        interface.vlans = vlans.get(interface.name, [])
    if headroom is not None:
        snapshot.nodes[0].metadata.annotations[annotations.HEADROOM] = headroom
    return Topology(snapshot.nodes, snapshot.node_networks, snapshot.networks)


def storage(asks_egress: float, network: str = "storage") -> CapacityRequest:
    return CapacityRequest(network, network, (0, int(asks_egress * G)))


def devices_of(topology: Topology) -> list:
    return DeviceAllocator(topology, ["node-a-1"], CapacitySettings()).devices[0]


def test_devices_are_the_published_slice_with_usable_capacity() -> None:
    devices = devices_of(one_node({"eth1": [100, 200]}))
    assert [d.name for d in devices] == ["eth0", "eth1"]  # the control link carries no pod traffic
    assert [d.role for d in devices] == ["pod", "storage"]
    assert devices[1].networks == {"storage", "replication"}
    assert devices[0].capacity == (usable_bps(25_000, 0.1),) * 2 == (int(22.5 * G),) * 2
    assert devices_of(one_node({"eth1": [100]}, headroom="20%"))[1].capacity == (20 * G, 20 * G)


def test_the_request_policy_rounds_up_and_caps_what_a_request_consumes() -> None:
    """netsched's devices take requests in 1k steps up to their capacity; the allocator
    rounds a request up to the step and skips a device whose maximum it exceeds."""
    allocator = DeviceAllocator(one_node({"eth1": [100]}), ["node-a-1"], CapacitySettings())
    odd = allocator.allocate(0, [CapacityRequest("primary", None, (1_500, 0))])
    assert odd is not None and odd.consumed == ((2_000, 0),)
    assert allocator.allocate(0, [CapacityRequest("primary", None, (0, int(22.5 * G)))]) is not None
    assert allocator.allocate(0, [CapacityRequest("primary", None, (0, int(22.5 * G) + 1))]) is None
    # A maximum below the capacity (a link past the 10T the CNI shapes) refuses larger requests.
    capped = replace(allocator.devices[0][0], largest=(5 * G, 5 * G))
    assert capped.consumes((5 * G, 0)) == (5 * G, 0) and capped.consumes((5 * G + 1, 0)) is None


def test_first_device_in_slice_order_with_room_then_the_next_then_none() -> None:
    """Two devices carry storage: eth1 (22.5G usable) and eth2, the 1G control link made a
    storage link (0.9G usable). Each request takes the first device with room."""
    allocator = DeviceAllocator(one_node({"eth1": [100], "eth2": [100]}), ["node-a-1"], CapacitySettings())
    assert [d.interface for d in allocator.devices[0]] == ["eth0", "eth1", "eth2"]
    taken = []
    for asked in (10, 10, 0.5, 2, 0.5):
        allocation = allocator.allocate(0, [storage(asked)])
        assert allocation is not None, asked
        allocator.commit(allocation)
        taken.append(allocator.interfaces(allocation)[0][1])
    # eth1 first while it has room (the fourth fills it to exactly 22.5G), then eth2.
    assert taken == ["eth1", "eth1", "eth1", "eth1", "eth2"]
    assert allocator.allocate(0, [storage(0.5)]) is None  # eth1 full, eth2 has 0.4G left
    assert allocator.allocate(0, [storage(0.4)]) is not None


def test_a_claims_earlier_requests_count_and_the_search_backtracks() -> None:
    """eth0 carries storage and replication, eth1 storage only. Storage first takes eth0;
    replication then finds eth0 too full with storage's share of the same claim, so the
    allocator goes back and gives storage eth1."""
    allocator = DeviceAllocator(one_node({"eth0": [100, 200], "eth1": [100]}), ["node-a-1"], CapacitySettings())
    claim = [storage(15), storage(15, "replication")]
    allocation = allocator.allocate(0, claim)
    assert allocation is not None
    assert [interface for _, interface in allocator.interfaces(allocation)] == ["eth1", "eth0"]
    small = allocator.allocate(0, [storage(5), storage(5, "replication")])
    assert small is not None and [i for _, i in allocator.interfaces(small)] == ["eth0", "eth0"]


def brute_force(allocator: DeviceAllocator, node: int, requests: list[CapacityRequest]) -> tuple[int, ...] | None:
    """The first assignment, in slice order request by request, that keeps every device
    within its capacity: what the allocator's depth-first search must return."""
    devices, consumed = allocator.devices[node], allocator.consumed[node]
    choices = [[p for p, d in enumerate(devices) if r.selects(d)] for r in requests]
    for assignment in itertools.product(*choices):
        totals = {p: list(consumed[p]) for p in assignment}
        for request, position in zip(requests, assignment, strict=True):
            totals[position][0] += -(-request.asks[0] // 1000) * 1000  # the 1k step
            totals[position][1] += -(-request.asks[1] // 1000) * 1000
        if all(totals[p][d] <= devices[p].capacity[d] for p in totals for d in (0, 1)):
            return assignment
    return None


def test_random_claims_never_exceed_a_device_and_match_an_exhaustive_search() -> None:
    """Random claims come and go on a node where networks ride several devices: every
    allocation is the first feasible one, a refusal means none exists, and no device ever
    holds more than its capacity (counting DRA allocations, the only thing it counts)."""
    topology = one_node({"eth0": [200], "eth1": [100, 200], "eth2": [100]})
    allocator = DeviceAllocator(topology, ["node-a-1"], CapacitySettings())
    rng = random.Random(5)
    live, refused = [], 0
    for _ in range(600):
        if live and rng.random() < 0.4:
            allocator.release(live.pop(rng.randrange(len(live))))
        requests = []
        if rng.random() < 0.7:
            requests.append(CapacityRequest("primary", None, (rng.randrange(0, 8 * G), rng.randrange(0, 8 * G))))
        for network in rng.sample(["storage", "replication"], rng.randrange(0, 3)):
            requests.append(CapacityRequest(network, network, (rng.randrange(0, 6 * G), rng.randrange(0, 6 * G))))
        expected = brute_force(allocator, 0, requests)
        allocation = allocator.allocate(0, requests)
        assert (allocation.devices if allocation else None) == expected
        if allocation is None:
            refused += 1
            continue
        allocator.commit(allocation)
        live.append(allocation)
        for position, device in enumerate(allocator.devices[0]):
            held = [sum(c[d] for a in live for c, p in zip(a.consumed, a.devices, strict=True) if p == position)
                    for d in (0, 1)]
            assert allocator.consumed[0][position] == held
            assert held[0] <= device.capacity[0] and held[1] <= device.capacity[1]
    assert refused > 50 and len(live) > 5  # both outcomes were exercised


def test_claims_follow_the_pods_annotations() -> None:
    requirements = parse_requirements({
        annotations.EGRESS_BANDWIDTH: "2G",
        annotations.NETWORKS: '[{"name": "storage", "ingress": "1G"}, {"name": "tenant"}]',
    })
    requests = claim_requests(requirements)
    assert [(r.network, r.asks) for r in requests] == [(None, (0, 2 * G)), ("storage", (G, 0)), ("tenant", (0, 0))]
    assert claim_requests(parse_requirements({})) == ()


@pytest.fixture(scope="module")
def hot_report():
    from tests.simulator.conftest import HOT

    config = SimulationConfig(
        Workload.model_validate(HOT), nodes=24, pods=600, seed=7, shape=ClusterShape(zones=2, nodes_per_switch=4)
    )
    return run_simulation(config, [PolicyName.BLIND, *DRA_POLICIES])


def test_dra_keeps_every_link_within_its_usable_capacity(hot_report) -> None:
    """The hot workload (every pod annotated) asks more than fits: DRA leaves pods pending
    and never fills a link past its usable 90 %, where the blind scheduler overfills."""
    by_policy = {result.policy: result for result in hot_report.policies}
    for name in DRA_POLICIES:
        result = by_policy[name]
        assert result.links_over_capacity_peak == 0
        assert result.worst_utilisation <= 0.9
        assert result.refused_by_netsched == 0 and result.bind_conflicts == 0
        assert result.placed + result.refused == result.arrived
    assert sum(by_policy[name].refused_by_allocator for name in DRA_POLICIES) > 0
    assert by_policy[PolicyName.BLIND].worst_utilisation > 1.0
    assert by_policy[PolicyName.BLIND].refused_by_allocator == 0


@pytest.mark.parametrize("name", DRA_POLICIES)
def test_traffic_equals_the_claims_and_the_ledger_and_drains_to_zero(small_config, name) -> None:
    arrivals = draw_arrivals(small_config.workload, small_config.nodes, 300, small_config.seed)
    run = PolicyRun(small_config, name, arrivals)
    run.run()
    policy = run.policy
    assert isinstance(policy, WithDra)
    allocator = policy.allocator
    consumed = {
        (allocator.names[node], device.interface): tuple(allocator.consumed[node][position])
        for node, devices in enumerate(allocator.devices) for position, device in enumerate(devices)
    }
    assert any(any(rates) for rates in consumed.values()), "pods are still running at the end of the run"
    for (node, interface), link in run.links.index.items():
        assert tuple(run.links.traffic[link]) == pytest.approx(consumed[(node, interface)])
        if policy.extender is not None:  # netsched's ledger holds the same allocations
            assert policy.extender.state.ledger.reserved(node, interface) == consumed[(node, interface)]
    run.drain()
    assert all(rates == [0, 0] for per_node in allocator.consumed for rates in per_node)
    assert not run.links.traffic.any()
    if policy.extender is not None:
        assert not policy.extender.state.ledger.holdings() and not policy.extender.state.pods()


def test_pods_stay_pending_when_capacity_is_short() -> None:
    """One node, eth0 25G (22.5G usable); six long-lived pods each ask 6G egress: three
    are allocated, three stay pending ("cannot allocate all claims"). The blind scheduler
    places all six and oversubscribes the link; netsched refuses the same three."""
    workload = Workload.model_validate({
        "name": "short", "pods_per_node": 100, "node": {"cpu": 64, "memory": "256Gi"},
        "templates": [{"name": "sender", "weight": 1, "cpu": 1, "egress": "6G", "lifetime": 1_000_000}],
    })
    config = SimulationConfig(workload, nodes=1, pods=6, seed=3, shape=ClusterShape(zones=1, nodes_per_switch=1))
    results = {r.policy: r for r in run_simulation(config, [PolicyName.BLIND, PolicyName.SPREAD, *DRA_POLICIES]).policies}
    for name in DRA_POLICIES:
        assert (results[name].placed, results[name].refused_by_allocator, results[name].refused_by_kube) == (3, 3, 0)
        assert results[name].worst_utilisation == pytest.approx(18 / 25)
    assert (results[PolicyName.SPREAD].placed, results[PolicyName.SPREAD].refused_by_netsched) == (3, 3)
    assert results[PolicyName.BLIND].placed == 6 and results[PolicyName.BLIND].worst_utilisation == pytest.approx(36 / 25)


def arrival(index: int, template: str, pod_annotations: dict[str, str], labels: dict[str, str]) -> Arrival:
    return Arrival(index=index, time=float(index), template=template, cpu=1, memory=2**30, lifetime=1e6,
                   labels=labels, annotations=pod_annotations, egress_bps=G)


def place(policy, pod: Arrival, candidates: list[int]):
    """One scheduling cycle on these candidates: the policy's filter plugin passes them all."""
    requirements = parse_requirements(pod.annotations)
    plugin = policy.filter_plugin(requirements)
    assert plugin is None or all(plugin(node) for node in candidates)
    return policy.place(pod, requirements, np.array(candidates))


def peers_and_two_nodes(config: SimulationConfig, name: PolicyName):
    """A run whose trainer runs on node-a-1, a worker naming it as peer, and two empty
    nodes with node-a-1's link speed: one on its switch, one in the other zone."""
    run = PolicyRun(config, name, [])
    kube, snapshot = run.kube, config.cluster()
    topology = Topology(snapshot.nodes, snapshot.node_networks, snapshot.networks)
    home = kube.names.index("node-a-1")
    speed = topology.pod_interface("node-a-1").speed_mbps
    same_speed = [i for i, n in enumerate(kube.names) if i != home and topology.pod_interface(n).speed_mbps == speed]
    near = next(i for i in same_speed if topology.location(kube.names[i]).switch == topology.location("node-a-1").switch)
    far = next(i for i in same_speed if topology.zone_of(kube.names[i]) != topology.zone_of("node-a-1"))
    rates = {annotations.EGRESS_BANDWIDTH: "1G"}
    assert place(run.policy, arrival(0, "trainer", rates, {"app": "trainer"}), [home]).node == home
    worker = arrival(1, "worker", {**rates, annotations.PEERS: "app=trainer"}, {"app": "worker"})
    return run.policy, worker, near, far


@pytest.mark.parametrize("name", [PolicyName.SPREAD, PolicyName.DRA_SCORED])
def test_with_netsched_scoring_the_node_near_the_peers_wins(small_config, name) -> None:
    """Both nodes are empty with the same link speed, so kube-scheduler's scores tie:
    netsched's score decides, the same way under DRA as under netsched's own filter and bind."""
    policy, worker, near, far = peers_and_two_nodes(small_config, name)
    for candidates in ([near, far], [far, near]):
        chosen = place(policy, worker, candidates)
        assert chosen.node == near
        policy.release(chosen)


def test_dra_alone_does_not_see_the_peers(small_config) -> None:
    """Without netsched's score the same two nodes tie: kube-scheduler picks at random."""
    policy, worker, near, far = peers_and_two_nodes(small_config, PolicyName.DRA)
    chosen = set()
    for _ in range(40):
        placed = place(policy, worker, [near, far])
        chosen.add(placed.node)
        policy.release(placed)
    assert chosen == {near, far}
