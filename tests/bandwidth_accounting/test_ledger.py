"""The ledger's promise: never past capacity, whatever the sequence of reserve, release and rebuild."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from bandwidth_accounting.ledger import Holding, Ledger, ReservationRefused
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
    try:
        ledger.reserve("b", "b", 0, Reservation(node="n", interfaces={"eth1": Rates(egress=500_000_000)}))
    except ReservationRefused as refused:
        assert refused.reasons == ["eth1 egress: 9G reserved of 9G usable, asks 500M"]
    else:
        raise AssertionError("must refuse")


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
    try:
        ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=1001, egress=1001)}))
    except ReservationRefused as refused:
        assert len(refused.reasons) == 2
        assert str(refused) == "; ".join(refused.reasons)  # what the bind's error carries
    else:
        raise AssertionError("must refuse")


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

    try:
        ledger.reserve("a", "default/a", 0, Reservation(node="n", interfaces={"eth0": Rates(ingress=1100)}))
    except ReservationRefused:
        pass
    else:
        raise AssertionError("must refuse")
    assert ledger.reserved("n", "eth0") == (900, 0)
    assert ledger.holding("a").reservation.interfaces["eth0"].ingress == 900
