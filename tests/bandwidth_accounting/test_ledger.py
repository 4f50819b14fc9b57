"""The ledger's promise: never past capacity, whatever the sequence of reserve, release and rebuild."""

import ipaddress
import logging

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from bandwidth_accounting.ledger import Holding, Ledger, ReservationRefused, Shortfall, node_headroom, usable_bps
from contract import annotations
from contract.objects import Node
from contract.reservation import AttachmentReservation, Rates, Reservation
from tests.interleaving import Schedule

NODES = ("n1", "n2")
INTERFACES = ("eth0", "eth1")
USABLE = {("n1", "eth0"): (900, 900), ("n1", "eth1"): (2250, 450), ("n2", "eth0"): (90, 9000), ("n2", "eth1"): (0, 0)}

rates = st.builds(Rates, ingress=st.integers(0, 1000), egress=st.integers(0, 1000))
reservations = st.builds(
    lambda node, charges, address: Reservation(
        node=node,
        interfaces=charges,
        attachments=[] if address is None else [AttachmentReservation(
            network="storage", interface="net1", mode="macvlan", parent="eth1",
            ip=f"10.0.0.{address}/24", mac="02:00:00:00:00:01")],
    ),
    st.sampled_from(NODES),
    st.dictionaries(st.sampled_from(INTERFACES), rates, min_size=1, max_size=2),
    st.none() | st.integers(1, 4),
)


class LedgerMachine(RuleBasedStateMachine):
    held = Bundle("held")

    def __init__(self):
        super().__init__()
        self.ledger = Ledger()
        self.ledger.set_usable(USABLE)
        self.model: dict[str, Reservation] = {}
        self.counter = 0

    @rule(target=held, reservation=reservations)
    def reserve(self, reservation):
        self.counter += 1
        uid = f"pod-{self.counter}"
        try:
            self.ledger.reserve(uid, uid, 0, reservation)
        except ReservationRefused as refused:
            assert refused.reasons
            return uid  # not held; releasing it later must be harmless
        self.model[uid] = reservation
        return uid

    @rule(uid=consumes(held))
    def release(self, uid):
        released = self.ledger.release(uid)
        assert (released is not None) == (uid in self.model)
        self.model.pop(uid, None)

    @rule()
    def rebuild_from_the_cluster(self):
        warnings = self.ledger.rebuild(Holding(uid, uid, 0, r) for uid, r in self.model.items())
        assert warnings == []

    @rule(uid=held)
    def reserve_again_is_idempotent(self, uid):
        if uid in self.model:
            self.ledger.reserve(uid, uid, 0, self.model[uid])

    @invariant()
    def never_past_capacity_and_sums_match(self):
        for key, usable in USABLE.items():
            expected = [0, 0]
            for reservation in self.model.values():
                if reservation.node == key[0] and key[1] in reservation.interfaces:
                    expected[0] += reservation.interfaces[key[1]].ingress
                    expected[1] += reservation.interfaces[key[1]].egress
            reserved = self.ledger.reserved(*key)
            assert list(reserved) == expected
            assert reserved[0] <= usable[0] and reserved[1] <= usable[1]

    @invariant()
    def an_address_is_held_at_most_once(self):
        addresses = [a.ip for r in self.model.values() for a in r.attachments]
        assert len(addresses) == len(set(addresses))
        assert {h.uid for h in self.ledger.holdings()} == set(self.model)

    @invariant()
    def addresses_in_use_are_those_held_in_ascending_order(self):
        """What allocation bisects (``ipam.first_free``) follows every reserve, release and rebuild."""
        held: dict[str, list[int]] = {}
        for reservation in self.model.values():
            for attachment in reservation.attachments:
                held.setdefault(attachment.network, []).append(int(ipaddress.ip_interface(attachment.ip).ip))
        for network in {"storage", *held}:
            assert list(self.ledger.addresses_in_use(network)) == sorted(held.get(network, []))


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


def test_a_reservation_checked_while_another_waits_to_record_cannot_overcommit():
    """A is stopped after its capacity check, before it records; B then reserves.

    Two 600 fits 1000 each alone: if B could check while A sits between check and
    record, both would see 0 reserved and 1200 would be promised on a 1000 link.
    """
    schedule = Schedule()
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    ledger._lock = schedule.lock()
    check = ledger.shortfalls

    def shortfalls_then_pause(node, charges):
        found = check(node, charges)
        schedule.point("checked")
        return found

    ledger.shortfalls = shortfalls_then_pause
    ask = Reservation(node="n", interfaces={"eth0": Rates(ingress=600, egress=0)})
    schedule.stop("A", at="checked")
    schedule.start("A", ledger.reserve, "a", "a", 0, ask)
    assert schedule.next_event("A") == "paused"
    schedule.start("B", ledger.reserve, "b", "b", 0, ask)
    b_did = schedule.next_event("B")
    schedule.finish()

    assert ledger.reserved("n", "eth0") == (600, 0)
    assert set(schedule.results) == {"A"}
    assert isinstance(schedule.errors["B"], ReservationRefused)
    assert b_did == "blocked"  # B waited for A's check and record to finish


def test_refusal_says_what_is_reserved_usable_and_asked():
    ledger = Ledger()
    ledger.set_usable({("n", "eth1"): (9_000_000_000, 9_000_000_000)})
    ledger.reserve("a", "a", 0, Reservation(node="n", interfaces={"eth1": Rates(egress=9_200_000_000 - 200_000_000)}))
    with pytest.raises(ReservationRefused) as refused:
        ledger.reserve("b", "b", 0, Reservation(node="n", interfaces={"eth1": Rates(egress=500_000_000)}))
    assert refused.value.reasons == ["eth1 egress: 9G reserved of 9G usable, asks 500M"]


def test_recorded_facts_are_kept_even_past_a_shrunken_link():
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (100, 100)})
    warnings = ledger.rebuild([Holding("a", "a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=150)}))])
    assert ledger.reserved("n", "eth0") == (150, 0)
    assert warnings and "exceeds usable" in warnings[0]


def test_a_node_view_keeps_the_traffic_nobody_reserved_and_only_that_node_s():
    """Preemption asks "what if these pods left?": their reservations go, what the link
    carries beyond all reservations (unreserved traffic) stays."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000), ("n", "eth1"): (1000, 1000), ("m", "eth0"): (1000, 1000)})
    both = {"eth0": Rates(ingress=200, egress=100), "eth1": Rates(ingress=200, egress=100)}
    ledger.reserve("a", "a", 0, Reservation(node="n", interfaces=both))
    ledger.reserve("b", "b", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=300, egress=50)}))
    # eth0: 200 in and 100 out beyond the 500 / 150 reserved; eth1: less than its reservation
    ledger.set_observed("n", 100.0, {"eth0": (700, 250), "eth1": (150, 20)})
    ledger.set_observed("m", 100.0, {"eth0": (900, 900)})

    view = ledger.node_view("n", excluding=["a"])
    assert view.reserved("n", "eth0") == (300, 50)
    assert view.observed("n", "eth0", since=0.0) == (200 + 300, 100 + 50)
    assert view.observed("n", "eth1", since=0.0) == (0, 0)
    assert view.observed_at("n", "eth0") == 100.0
    assert view.observed("m", "eth0", since=0.0) == (0, 0)
    assert view.usable("m", "eth0") == (0, 0)
    assert ledger.observed("n", "eth0", since=0.0) == (700, 250)  # the ledger itself is unchanged


# The tests below pin what mutation testing (`make mutate`) found unasserted.


def test_a_refusal_over_both_directions_gives_both_reasons_and_joins_them_in_its_message():
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    with pytest.raises(ReservationRefused) as refused:
        ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=1001, egress=1001)}))
    assert len(refused.value.reasons) == 2
    assert str(refused.value) == "; ".join(refused.value.reasons)  # what the bind's error carries


def test_free_is_per_direction_and_nothing_on_an_unknown_interface():
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 400)})
    ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=100, egress=50)}))
    assert ledger.free("n", "eth0") == (900, 350)
    assert ledger.free("n", "eth9") == (0, 0)
    assert ledger.slot("n", "eth0") == 0
    assert ledger.slot("n", "eth9") == -1  # batch_fit masks -1 as "no such interface"


def test_releasing_frees_every_charged_interface_and_the_namespace_total():
    """A reservation naming an interface with nothing on it (skipped) before one with rates:
    the release must still return the later one's bandwidth, and the namespace's total
    (what a BandwidthPolicy quota compares) must drop to what its other pods hold."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000), ("n", "eth1"): (1000, 1000)})
    skipped_then_charged = {"eth0": Rates(ingress=0, egress=0), "eth1": Rates(ingress=100, egress=40)}
    ledger.reserve("a", "team/a", 0, Reservation(node="n", interfaces=skipped_then_charged))
    ledger.reserve("b", "team/b", 0, Reservation(node="n", interfaces={"eth1": Rates(ingress=7, egress=3)}))
    ledger.reserve("c", "other/c", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=1, egress=1)}))
    assert ledger.namespace_reserved("team") == (107, 43)

    ledger.release("a")
    assert ledger.reserved("n", "eth1") == (7, 3)
    assert ledger.namespace_reserved("team") == (7, 3)
    ledger.release("b")
    assert ledger.reserved("n", "eth1") == (0, 0)
    assert ledger.namespace_reserved("team") == (0, 0)
    assert ledger.namespace_reserved("other") == (1, 1)


def test_an_address_s_holder_is_the_pod_that_reserved_it_until_it_releases():
    ledger = Ledger()
    ledger.set_usable({("n", "eth1"): (1000, 1000)})
    attachment = AttachmentReservation(network="storage", interface="net1", mode="macvlan", parent="eth1",
                                       ip="10.0.0.7/24", mac="02:00:00:00:00:07")
    ledger.reserve("a", "default/a", 0, Reservation(node="n", attachments=[attachment]))
    assert ledger.address_holder("storage", "10.0.0.7") == "a"
    assert ledger.address_holder("storage", "10.0.0.8") is None
    assert ledger.address_holder("other", "10.0.0.7") is None
    ledger.release("a")
    assert ledger.address_holder("storage", "10.0.0.7") is None


def test_update_usable_changes_known_interfaces_in_place_and_refuses_a_new_one():
    """One node's headroom changed: its capacities change in place (the batch check's
    arrays too, without new slots); an interface the ledger lacks needs set_usable."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000), ("m", "eth0"): (500, 500)})
    rows_before, version = ledger.budget_rows()[0], ledger.version

    assert ledger.update_usable({("n", "eth0"): (800, 700)}) is True
    assert ledger.usable("n", "eth0") == (800, 700)
    assert ledger.budget_rows()[0] is rows_before
    assert rows_before[ledger.slot("n", "eth0")].tolist() == [800, 700]
    assert rows_before[ledger.slot("m", "eth0")].tolist() == [500, 500]
    assert ledger.version > version

    version = ledger.version
    assert ledger.update_usable({("n", "eth0"): (1, 1), ("n", "eth9"): (5, 5)}) is False
    assert ledger.usable("n", "eth0") == (800, 700)
    assert ledger.usable("n", "eth9") == (0, 0)
    assert ledger.version == version


def test_a_changed_reservation_for_a_held_uid_replaces_it_or_keeps_the_old_one_when_refused():
    """A pod re-reserved with other rates (a retried bind after its plan changed): the new
    reservation replaces the old, checked as if the old were gone; if the new one does not
    fit, the pod keeps what it held."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=600)}))

    ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=900)}))
    assert ledger.reserved("n", "eth0") == (900, 0)
    assert ledger.holding("a").reservation.interfaces["eth0"].ingress == 900

    with pytest.raises(ReservationRefused):
        ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=1100)}))
    assert ledger.reserved("n", "eth0") == (900, 0)
    assert ledger.holding("a").reservation.interfaces["eth0"].ingress == 900


def test_an_attachment_without_an_address_does_not_hide_a_taken_address_after_it():
    """A pod's first attachment has no address (a definition's own IPAM), its second asks one
    another pod holds: the second must still be refused."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth1"): (1000, 1000)})

    def attachment(interface: str, ip: str | None) -> AttachmentReservation:
        return AttachmentReservation(network="storage", interface=interface, mode="macvlan", parent="eth1",
                                     ip=ip, mac="02:00:00:00:00:07")

    ledger.reserve("a", "default/a", 0, Reservation(node="n", attachments=[attachment("net1", "10.0.0.7/24")]))
    asks = Reservation(node="n", attachments=[attachment("net1", None), attachment("net2", "10.0.0.7/24")])
    with pytest.raises(ReservationRefused) as refused:
        ledger.reserve("b", "default/b", 0, asks)
    assert refused.value.reasons == ["storage: address 10.0.0.7 is already taken"]
    assert ledger.holding("b") is None


def test_a_node_s_new_observations_replace_only_its_own_and_clear_the_batch_rows_of_what_it_dropped():
    """A report lists the interfaces it measured: one it no longer lists has no observed load
    any more (in the dicts and in the arrays the batch fit reads), and other nodes' stay."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000), ("n", "eth1"): (1000, 1000), ("m", "eth1"): (1000, 1000)})
    ledger.set_observed("n", 100.0, {"eth0": (10, 20), "eth1": (30, 40)})
    ledger.set_observed("m", 100.0, {"eth1": (50, 60)})

    ledger.set_observed("n", 110.0, {"eth0": (11, 21)})
    observed, observed_at = ledger.observed_rows()
    assert ledger.observed("n", "eth0", since=0.0) == (11, 21)
    assert ledger.observed("n", "eth1", since=0.0) == (0, 0)
    assert ledger.observed("m", "eth1", since=0.0) == (50, 60)
    assert observed[ledger.slot("n", "eth0")].tolist() == [11, 21] and observed_at[ledger.slot("n", "eth0")] == 110.0
    assert observed[ledger.slot("n", "eth1")].tolist() == [0, 0] and np.isnan(observed_at[ledger.slot("n", "eth1")])
    assert observed[ledger.slot("m", "eth1")].tolist() == [50, 60] and observed_at[ledger.slot("m", "eth1")] == 100.0


def test_usable_capacity_is_the_link_speed_in_bits_less_the_headroom():
    assert usable_bps(10_000, 0.1) == 9_000_000_000  # a 10G link, 10 % kept free
    assert usable_bps(1, 0.0) == 1_000_000


def headroom_node(value: str) -> Node:
    return Node.model_validate({"metadata": {"name": "n1", "annotations": {annotations.HEADROOM: value}}})


@pytest.mark.parametrize(("value", "headroom"), [("0", 0.0), ("0%", 0.0), ("0.25", 0.25), ("99%", 0.99)])
def test_a_node_s_headroom_from_zero_up_to_below_all_of_the_link(value, headroom):
    assert node_headroom(headroom_node(value), default=0.1) == pytest.approx(headroom)


@pytest.mark.parametrize(("value", "why"), [
    ("1", "outside 0-100%"), ("100%", "outside 0-100%"), ("150%", "outside 0-100%"), ("-5%", "outside 0-100%"),
    ("lots", "not a number"),
])
def test_an_unusable_headroom_falls_back_to_the_default_and_says_which_node_and_value(value, why, caplog):
    """100 % headroom would promise nothing on any link of the node: refused like a typo."""
    with caplog.at_level(logging.WARNING, logger="bandwidth_accounting.ledger"):
        assert node_headroom(headroom_node(value), default=0.1) == 0.1
    assert caplog.messages == [f"node n1: ignoring {annotations.HEADROOM}={value!r} ({why})"]


def test_an_interface_without_capacity_on_record_refuses_whatever_is_asked_of_it():
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    with pytest.raises(ReservationRefused) as refused:
        ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth9": Rates(ingress=1)}))
    assert refused.value.reasons == ["eth9 ingress: 0 reserved of 0 usable, asks 1"]


def test_a_shortfall_names_the_part_other_schedulers_pods_hold_on_that_interface():
    """A pod another scheduler placed holds 300 on eth0 of node n (its annotations, a fact);
    nothing foreign on eth1 or on node m."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000), ("n", "eth1"): (1000, 1000), ("m", "eth0"): (1000, 1000)})
    ledger.record(Holding("f", "other/f", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=300)}),
                          foreign=True))
    ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=600)}))
    ledger.reserve("b", "default/b", 0, Reservation(node="n", interfaces={"eth1": Rates(ingress=900)}))
    ledger.reserve("c", "default/c", 0, Reservation(node="m", interfaces={"eth0": Rates(ingress=900)}))

    assert ledger.shortfalls("n", {"eth0": (200, 0), "eth1": (200, 0)}) == [
        Shortfall("n", "eth0", "ingress", 900, 1000, 200, foreign_bps=300),
        Shortfall("n", "eth1", "ingress", 900, 1000, 200),
    ]
    assert ledger.shortfalls("m", {"eth0": (200, 0)}) == [Shortfall("m", "eth0", "ingress", 900, 1000, 200)]


def test_recording_a_changed_holding_for_a_uid_replaces_the_old_one():
    """The pod's annotation changed (a resize, or another scheduler's pod re-read): the
    ledger holds what the cluster records now, not what it recorded first."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    ledger.record(Holding("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=100)})))
    changed = Holding("a", "default/a", 5, Reservation(node="n", interfaces={"eth0": Rates(egress=40)}))
    ledger.record(changed)
    assert ledger.holding("a") == changed
    assert ledger.reserved("n", "eth0") == (0, 40)
    ledger.record(changed)  # a replayed event
    assert ledger.reserved("n", "eth0") == (0, 40)


def test_a_rebuild_resets_the_batch_rows_and_warns_only_past_usable_naming_both():
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (100, 100), ("n", "eth1"): (100, 100)})
    ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth1": Rates(ingress=50, egress=50)}))

    exactly_usable = Holding("b", "default/b", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=100)}))
    assert ledger.rebuild([exactly_usable]) == []
    usable, reserved = ledger.budget_rows()
    assert reserved[ledger.slot("n", "eth0")].tolist() == [100, 0]
    assert reserved[ledger.slot("n", "eth1")].tolist() == [0, 0]  # a's holding is gone from the arrays too

    past = Holding("c", "default/c", 0, Reservation(node="n", interfaces={"eth1": Rates(egress=150)}))
    assert ledger.rebuild([past]) == ["n/eth1: reserved [0, 150] exceeds usable (100, 100)"]


def test_every_change_to_the_reservations_or_capacities_moves_the_version_forward():
    """Caches are keyed on ``version``: a value that came back (or stood still) would serve a
    plan made against other reservations."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    versions = [ledger.version]
    for change in (
        lambda: ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=1)})),
        lambda: ledger.reserve("b", "default/b", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=1)})),
        lambda: ledger.release("a"),
        lambda: ledger.release("b"),
        lambda: ledger.set_usable({("n", "eth0"): (900, 900)}),
    ):
        change()
        versions.append(ledger.version)
    assert versions == sorted(set(versions))


def test_a_release_clears_the_batch_rows_and_forgets_an_interface_nothing_is_on_any_more():
    """The batch fit reads the arrays, not the dicts; ``interfaces()`` lists what has capacity
    or reservations (a recorded fact can sit on an interface without capacity)."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=10, egress=5)}))
    ledger.record(Holding("f", "other/f", 0, Reservation(node="n", interfaces={"eth7": Rates(ingress=3)}),
                          foreign=True))
    assert set(ledger.interfaces()) == {("n", "eth0"), ("n", "eth7")}

    ledger.release("a")
    ledger.release("f")
    assert ledger.budget_rows()[1][ledger.slot("n", "eth0")].tolist() == [0, 0]
    assert set(ledger.interfaces()) == {("n", "eth0")}


def test_new_capacities_keep_the_reservations_in_the_batch_rows():
    """The topology changed (a node joined): every slot is laid out again, and the rows of
    interfaces that hold reservations must carry them into the new layout."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000)})
    ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=10, egress=5)}))
    ledger.set_observed("n", 100.0, {"eth0": (30, 20)})

    ledger.set_usable({("m", "eth0"): (500, 500), ("n", "eth0"): (1000, 1000)})
    usable, reserved = ledger.budget_rows()
    observed, observed_at = ledger.observed_rows()
    row = ledger.slot("n", "eth0")
    assert (usable[row].tolist(), reserved[row].tolist(), observed[row].tolist(), observed_at[row]) == (
        [1000, 1000], [10, 5], [30, 20], 100.0)
    other = ledger.slot("m", "eth0")
    assert (usable[other].tolist(), reserved[other].tolist(), observed[other].tolist()) == ([500, 500], [0, 0], [0, 0])
    assert np.isnan(observed_at[other])


def test_a_new_ledger_has_nothing_and_empty_batch_rows_of_the_right_shape():
    """What a node view (``node_view`` builds a fresh ledger) and a ledger before its first
    topology answer: nothing usable, nothing held, arrays with no slots."""
    ledger = Ledger()
    assert ledger.usable("n", "eth0") == ledger.free("n", "eth0") == (0, 0)
    assert set(ledger.interfaces()) == set() and ledger.holdings_on("n") == []
    assert ledger.namespace_reserved("default") == (0, 0) and ledger.version == 0
    (usable, reserved), (observed, observed_at) = ledger.budget_rows(), ledger.observed_rows()
    assert usable.shape == reserved.shape == observed.shape == (0, 2)
    assert usable.dtype == reserved.dtype == observed.dtype == np.int64
    assert observed_at.shape == (0,) and observed_at.dtype == np.float64


def test_holdings_with_equal_rates_share_one_object_and_read_as_before():
    """Replicas ask the same rates, and a reservation repeats its primary's for the primary's
    interface: the ledger keeps one ``Rates`` for each distinct pair, whoever holds it. What
    each reservation says (its annotation, the budgets) is unchanged, and releasing one pod
    leaves the others' rates alone."""
    ledger = Ledger()
    ledger.set_usable({("n", "eth0"): (1000, 1000), ("n", "eth1"): (1000, 1000)})
    asked = {name: Reservation(node="n", primary=Rates(ingress=10, egress=20), primary_parent="eth0",
                               interfaces={"eth0": Rates(ingress=10, egress=20), "eth1": Rates(ingress=5, egress=5)})
             for name in ("a", "b")}
    written = {name: reservation.annotation() for name, reservation in asked.items()}
    for name, reservation in asked.items():
        ledger.reserve(name, f"team/{name}", 0, reservation)
    a, b = ledger.holding("a").reservation, ledger.holding("b").reservation
    assert a.primary is a.interfaces["eth0"] is b.primary is b.interfaces["eth0"]
    assert a.interfaces["eth1"] is b.interfaces["eth1"]
    assert {name: ledger.holding(name).reservation.annotation() for name in asked} == written
    assert ledger.reserved("n", "eth0") == (20, 40)
    with pytest.raises(ValueError, match="frozen"):
        a.primary.egress = 1  # shared by b: no edit in place
    ledger.release("a")
    assert (b.primary.ingress, b.primary.egress, ledger.reserved("n", "eth0")) == (10, 20, (10, 20))
