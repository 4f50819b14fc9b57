"""What a pod's netsched claims ask (``claim_asks``), whether a node has room for them
(``claim_shortfalls``) and what recording an allocation would over-commit (``overcommits``):
pure functions over a ledger, checked to the bit and field by field."""

from __future__ import annotations

from bandwidth_accounting.claims import ClaimAsk, claim_asks, claim_shortfalls, is_netsched_claim, overcommits
from bandwidth_accounting.ledger import ClaimShare, Holding, Ledger, Shortfall
from contract.dra import DEVICE_CLASS, ResourceClaim
from contract.reservation import Rates, Reservation

NODE = "node-a"


def ledger_with(usable: dict[str, tuple[int, int]]) -> Ledger:
    ledger = Ledger()
    ledger.set_usable({(NODE, interface): rates for interface, rates in usable.items()})
    return ledger


def asks(*rates: tuple[int, int]) -> list[ClaimAsk]:
    return [ClaimAsk("default/c", f"r{index}", ingress, egress) for index, (ingress, egress) in enumerate(rates)]


def shortfall(interface: str, asked: int, usable: int, direction: str = "ingress", **more: int) -> Shortfall:
    return Shortfall(NODE, interface, direction, more.pop("reserved", 0), usable, asked, **more)


def test_every_netsched_request_is_asked_once_per_device_and_others_are_skipped():
    claim = ResourceClaim.model_validate({
        "metadata": {"name": "mixed", "namespace": "team"},
        "spec": {"devices": {"requests": [
            {"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com", "count": 2}},
            {"name": "fast", "exactly": {"deviceClassName": DEVICE_CLASS, "count": 3,
                                         "capacity": {"requests": {"egress": "2G", "ingress": "1M"}}}},
            {"name": "any", "exactly": {"deviceClassName": DEVICE_CLASS}},
            {"name": "alternatives"},
            {"name": "one", "exactly": {"deviceClassName": DEVICE_CLASS, "count": 1,
                                        "capacity": {"requests": {"ingress": "5k"}}}},
        ]}},
    })
    assert claim_asks(claim) == [ClaimAsk("team/mixed", "fast", 1_000_000, 2_000_000_000)] * 3 + [
        ClaimAsk("team/mixed", "any", 0, 0), ClaimAsk("team/mixed", "one", 5_000, 0)]
    assert is_netsched_claim(claim)


def test_a_claim_is_netsched_s_only_when_a_request_asks_netsched_s_device_class():
    def claim(*requests: dict) -> ResourceClaim:
        return ResourceClaim.model_validate({"metadata": {"name": "c"}, "spec": {"devices": {"requests": list(requests)}}})

    gpu = {"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}
    assert not is_netsched_claim(claim(gpu))
    assert not is_netsched_claim(claim({"name": "alternatives"}, gpu))
    assert is_netsched_claim(claim({"name": "alternatives"}, gpu, {"name": "bw", "exactly": {"deviceClassName": DEVICE_CLASS}}))


def test_asks_fit_to_the_bit_and_each_is_charged_on_top_of_those_before_it():
    ledger = ledger_with({"eth0": (1_000, 1_000)})
    assert claim_shortfalls(asks((1_000, 1_000)), NODE, ["eth0"], ledger, None) == []
    assert claim_shortfalls(asks((0, 1_000), (1_000, 0)), NODE, ["eth0"], ledger, None) == []
    three = asks((400, 0), (400, 0), (400, 0))
    assert claim_shortfalls(three, NODE, ["eth0"], ledger, None) == [(three[2], [shortfall("eth0", 1_200, 1_000)])]
    egress = asks((0, 600), (0, 600))
    assert claim_shortfalls(egress, NODE, ["eth0"], ledger, None) == [
        (egress[1], [shortfall("eth0", 1_200, 1_000, "egress")])]


def test_each_ask_goes_where_most_room_is_left_and_a_later_one_may_then_not_fit():
    """Greedy by room left: the small ask takes eth0, so the big one fits nowhere. Every
    failed ask is reported, each with every interface's shortfall counting what is
    planned there already."""
    ledger = ledger_with({"eth0": (1_000, 10_000), "eth1": (400, 10_000)})
    small, big, bigger = asks((300, 0), (900, 0), (1_100, 0))
    assert claim_shortfalls([small, big, bigger], NODE, ["eth0", "eth1"], ledger, None) == [
        (big, [shortfall("eth0", 1_200, 1_000), shortfall("eth1", 900, 400)]),
        (bigger, [shortfall("eth0", 1_400, 1_000), shortfall("eth1", 1_100, 400)]),
    ]
    # An interface without room first does not stop the search.
    assert claim_shortfalls(asks((500, 0)), NODE, ["eth1", "eth0"], ledger, None) == []


def test_room_is_the_least_left_in_either_direction_after_what_is_planned():
    # eth0 is roomier for the first ask, eth1 for the second (eth0 then has 300 planned);
    # with that spread the third fits nowhere. Once by ingress, once by egress.
    for tight in (0, 1):
        def rates(value: int, roomy: int) -> tuple[int, int]:
            return (value, roomy) if tight == 0 else (roomy, value)

        ledger = ledger_with({"eth0": rates(1_000, 10_000), "eth1": rates(800, 20_000)})
        first, second, third = asks(rates(300, 0), rates(300, 0), rates(750, 0))
        direction = ("ingress", "egress")[tight]
        assert claim_shortfalls([first, second, third], NODE, ["eth0", "eth1"], ledger, None) == [
            (third, [shortfall("eth0", 1_050, 1_000, direction), shortfall("eth1", 1_050, 800, direction)])]


def test_observed_load_counts_from_the_time_given():
    ledger = ledger_with({"eth0": (1_000, 1_000)})
    ledger.set_observed(NODE, 100.0, {"eth0": (900, 0)})
    [ask] = asks((200, 0))
    assert claim_shortfalls([ask], NODE, ["eth0"], ledger, None) == []
    assert claim_shortfalls([ask], NODE, ["eth0"], ledger, 50.0) == [
        (ask, [shortfall("eth0", 200, 1_000, observed_bps=900)])]
    assert claim_shortfalls([ask], NODE, ["eth0"], ledger, 150.0) == []


def share(uid: str, interface: str, ingress: int, egress: int = 0) -> Holding:
    rates = Rates(ingress=ingress, egress=egress)
    return Holding(f"resourceclaim:{uid}", "default/c", 0,
                   Reservation(node=NODE, primary=rates, primary_parent=interface, interfaces={interface: rates}),
                   claim=ClaimShare("default", "c", "bandwidth", interface, uid))


def test_an_allocation_over_commits_by_the_sum_of_its_shares_to_the_bit():
    ledger = ledger_with({"eth0": (1_000, 1_000)})
    assert overcommits([share("a", "eth0", 600, 400), share("b", "eth0", 400, 600)], ledger) == []
    assert overcommits([share("a", "eth0", 600, 400), share("b", "eth0", 401, 601)], ledger) == [
        shortfall("eth0", 1_001, 1_000), shortfall("eth0", 1_001, 1_000, "egress")]
    assert overcommits([share("a", "eth0", 1_001)], ledger) == [shortfall("eth0", 1_001, 1_000)]


def test_a_share_recorded_already_is_replaced_and_the_others_are_named_by_who_holds_them():
    ledger = ledger_with({"eth0": (1_000, 1_000)})
    ledger.record(share("a", "eth0", 600))
    foreign = Rates(ingress=100, egress=0)
    ledger.record(Holding("pod-uid", "default/other", 0, Reservation(
        node=NODE, primary=foreign, primary_parent="eth0", interfaces={"eth0": foreign}), foreign=True))
    ledger.record(share("b", "eth0", 200))
    # "a" grows from 600 to 700: beside b's 200 and the foreign 100 that fits exactly.
    assert overcommits([share("a", "eth0", 700)], ledger) == []
    assert overcommits([share("a", "eth0", 701)], ledger) == [
        shortfall("eth0", 701, 1_000, reserved=300, foreign_bps=100, claimed_bps=200)]
