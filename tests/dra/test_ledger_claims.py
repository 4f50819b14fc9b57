"""A ResourceClaim's allocation read as ledger holdings (bandwidth_accounting.claims), pure."""

from __future__ import annotations

from bandwidth_accounting.claims import ClaimProblem, ClaimProblemKind, claim_holdings
from bandwidth_accounting.ledger import Ledger
from contract.dra import ResourceClaim, device_name
from contract.reservation import Rates
from tests.dra.ledger_objects import allocated_claim

INTERFACES = {"node-a": (["eth0", "eth0.100", "eth1"], "eth0")}


def read(claim: dict):
    return claim_holdings(ResourceClaim.model_validate(claim), INTERFACES.get)


def test_each_netsched_result_is_a_holding_on_the_interface_its_device_names():
    claim = allocated_claim("fast", "node-a", device=device_name("eth0.100"), egress="4G", ingress="1500M")
    other = dict(claim["status"]["allocation"]["devices"]["results"][0], driver="gpu.example.com", device="gpu0")
    claim["status"]["allocation"]["devices"]["results"].append(other)
    reading = read(claim)
    assert reading.problems == []
    [holding] = reading.holdings
    assert holding.node == "node-a"
    assert holding.reservation.interfaces["eth0.100"].egress == 4_000_000_000
    assert holding.reservation.interfaces["eth0.100"].ingress == 1_500_000_000
    share = claim["status"]["allocation"]["devices"]["results"][0]["shareID"]
    assert holding.claim is not None and holding.claim.share_id == share
    assert holding.claim.key == "default/fast"
    assert holding.uid.endswith(f"{claim['metadata']['uid']}/{share}")


def test_reading_twice_gives_the_same_keys_so_recording_again_never_double_counts():
    claim = allocated_claim("fast", "node-a")
    ledger = Ledger()
    ledger.set_usable({("node-a", "eth0"): (9_000_000_000, 9_000_000_000)})
    for _ in range(3):
        for holding in read(claim).holdings:
            ledger.record(holding)
    assert ledger.reserved("node-a", "eth0") == (1_000_000_000, 4_000_000_000)
    assert ledger.claimed("node-a", "eth0") == (1_000_000_000, 4_000_000_000)


def test_unknown_node_is_not_counted_and_says_which_field():
    reading = read(allocated_claim("fast", "node-gone"))
    assert reading.holdings == []
    [problem] = reading.problems
    assert problem.kind is ClaimProblemKind.UNKNOWN_NODE
    assert problem.field == "status.allocation.devices.results[0].pool"
    assert "node-gone" in problem.message and "not counted" in problem.message


def test_unknown_device_is_charged_to_the_pod_interface_and_said():
    reading = read(allocated_claim("fast", "node-a", device="ens9"))
    [holding] = reading.holdings
    assert holding.reservation.interfaces["eth0"].egress == 4_000_000_000
    [problem] = reading.problems
    assert problem.kind is ClaimProblemKind.UNKNOWN_DEVICE
    assert "'ens9'" in problem.message and "charged to its pod interface eth0" in problem.message


def test_an_unreadable_quantity_counts_nothing_in_that_direction_and_names_the_value():
    reading = read(allocated_claim("fast", "node-a", egress="500", ingress="1G"))
    [holding] = reading.holdings
    assert (holding.reservation.interfaces["eth0"].ingress, holding.reservation.interfaces["eth0"].egress) == (
        1_000_000_000, 0,
    )
    [problem] = reading.problems
    assert problem.kind is ClaimProblemKind.BAD_QUANTITY
    assert problem.field == "status.allocation.devices.results[0].consumedCapacity.egress"
    assert problem.value == "500" and "egress not counted" in problem.message


def test_an_unallocated_claim_holds_nothing():
    claim = allocated_claim("fast", "node-a")
    del claim["status"]
    assert read(claim).holdings == [] and read(claim).problems == []


def test_a_direction_consumed_as_zero_counts_nothing_and_is_no_problem():
    # deploy's request policy consumes "0" of a direction a claim does not name
    reading = read(allocated_claim("fast", "node-a", egress="2G", ingress="0"))
    [holding] = reading.holdings
    assert holding.reservation.interfaces["eth0"].ingress == 0
    assert reading.problems == []


def test_a_cluster_file_may_hold_claims_and_the_state_counts_them():
    """``netsched serve --cluster`` and the demo read ResourceClaims like any object."""
    from scheduler_extender.file_source import FileClusterSource, parse_objects
    from scheduler_extender.state import ClusterState
    from tests.dra.ledger_objects import small_cluster

    source = FileClusterSource(parse_objects([
        *small_cluster(("node-x",)),
        {"kind": "List", "items": [allocated_claim("fast", "node-x", egress="2G", ingress="1G")]},
    ]))
    state = ClusterState()
    source.start(state)
    assert state.ledger.claimed("node-x", "eth0") == (1_000_000_000, 2_000_000_000)
    assert source.read_claim("default", "fast") is not None


def test_every_result_is_read_past_the_ones_that_cannot_be_counted_each_problem_field_by_field():
    """One claim, five results: a node without a report, another driver's device, a device
    on a node with neither that interface nor a pod interface, one charged to the pod
    interface, one with an unreadable quantity; the readable ones are all held."""
    claim = allocated_claim("many", "node-a", device="eth1", egress="2G", ingress="1G")
    results = claim["status"]["allocation"]["devices"]["results"]
    good = results[0]
    results[:] = [
        dict(good, pool="node-gone", shareID="s0"), dict(good, driver="gpu.example.com", shareID="s1"),
        dict(good, pool="node-b", device="ens9", shareID="s2"), dict(good, device="ens9", shareID="s3"),
        dict(good, consumedCapacity={"egress": "lots", "ingress": "3G"}, shareID="s4"), dict(good, shareID="s5"),
    ]
    reading = claim_holdings(ResourceClaim.model_validate(claim), {**INTERFACES, "node-b": (["eth1"], None)}.get)
    where = "status.allocation.devices.results"
    assert reading.problems == [
        ClaimProblem("default/many", ClaimProblemKind.UNKNOWN_NODE, f"{where}[0].pool", "node-gone",
                     "no NodeNetwork report for that node: not counted until one arrives"),
        ClaimProblem("default/many", ClaimProblemKind.UNKNOWN_DEVICE, f"{where}[2].device", "ens9",
                     "no interface of node node-b is that device, and it has no pod interface: not counted"),
        ClaimProblem("default/many", ClaimProblemKind.UNKNOWN_DEVICE, f"{where}[3].device", "ens9",
                     "no interface of node node-a is that device: charged to its pod interface eth0"),
        ClaimProblem("default/many", ClaimProblemKind.BAD_QUANTITY, f"{where}[4].consumedCapacity.egress", "lots",
                     "'lots' is not a Kubernetes quantity (examples: 100M, 1G, 1500k, 1Gi): egress not counted"),
    ]
    assert [(h.uid.rsplit("/", 1)[1], h.reservation.primary_parent, h.reservation.primary) for h in reading.holdings] == [
        ("s3", "eth0", Rates(ingress=1_000_000_000, egress=2_000_000_000)),
        ("s4", "eth1", Rates(ingress=3_000_000_000, egress=0)),
        ("s5", "eth1", Rates(ingress=1_000_000_000, egress=2_000_000_000)),
    ]
    for holding in reading.holdings:
        assert holding.reservation.interfaces == {holding.reservation.primary_parent: holding.reservation.primary}
        assert (holding.priority, holding.pod, holding.reservation.node) == (0, "default/many", "node-a")


def test_a_holding_names_the_pods_the_claim_is_reserved_for_in_the_claim_s_namespace():
    consumers = [{"resource": "pods", "name": "web-1", "uid": "u1"}, {"resource": "pods", "name": "web-2", "uid": "u2"},
                 {"resource": "deployments", "apiGroup": "apps", "name": "web", "uid": "u3"}]
    claim = allocated_claim("shared", "node-a", consumers=consumers)
    del claim["metadata"]["namespace"]
    [holding] = read(claim).holdings
    assert holding.pod == "default/web-1,web-2"
    assert (holding.claim.namespace, holding.claim.key) == ("default", "default/shared")
