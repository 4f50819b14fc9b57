"""Observed load: traffic nobody reserved bounds what is free, held over a window, ignored when stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bandwidth_accounting.fit import Cause, Plan, plan_on_node
from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.observed import ObservedLoad
from bandwidth_accounting.requirements import PodRequirements
from bandwidth_accounting.settings import FitSettings
from contract.objects import (
    InterfaceRole,
    NetworkInterface,
    Node,
    NodeNetwork,
    NodeNetworkStatus,
    ObjectMeta,
)
from contract.reservation import Rates, Reservation
from scheduler_extender.scoring import headroom_left
from topology.graph import Topology

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
G = 1_000_000_000
M = 1_000_000


def at(seconds_ago: float) -> float:
    return (NOW - timedelta(seconds=seconds_ago)).timestamp()


def one_node(tx_bps: int = 0, rx_bps: int = 0, beat: datetime = NOW) -> NodeNetwork:
    """node-1 with a 10G pod interface eth0 (9G usable at 10 % headroom)."""
    return NodeNetwork(
        metadata=ObjectMeta(name="node-1"),
        status=NodeNetworkStatus(
            interfaces=[NetworkInterface(name="eth0", role=InterfaceRole.POD, speed_mbps=10_000,
                                         rx_bps=rx_bps, tx_bps=tx_bps)],
            heartbeat_time=beat,
        ),
    )


@pytest.fixture
def ledger() -> Ledger:
    ledger = Ledger()
    ledger.set_usable({("node-1", "eth0"): (9 * G, 9 * G)})
    return ledger


def reserve(ledger: Ledger, uid: str, egress: int) -> None:
    ledger.reserve(uid, uid, 0, Reservation(node="node-1", interfaces={"eth0": Rates(ingress=0, egress=egress)}))


def test_load_is_reservations_or_observed_traffic_where_higher(ledger):
    reserve(ledger, "a", 1_200 * M)
    ledger.set_observed("node-1", at(5), {"eth0": (300 * M, 7_900 * M)})
    # Ingress: 300M observed, nothing reserved; egress: reserved pods send part of the 7.9G.
    assert ledger.load("node-1", "eth0", since=at(30)) == (300 * M, 7_900 * M)
    assert ledger.free("node-1", "eth0", since=at(30)) == (8_700 * M, 1_100 * M)
    # Observed before ``since``: stale, counts for nothing.
    assert ledger.load("node-1", "eth0", since=at(1)) == (0, 1_200 * M)
    assert ledger.load("node-1", "eth0", since=None) == (0, 1_200 * M)


def test_refusal_says_reserved_and_observed_beyond_them(ledger):
    reserve(ledger, "a", 1_200 * M)
    ledger.set_observed("node-1", at(5), {"eth0": (0, 9_100 * M)})  # 7.9G beyond the reservations
    [shortfall] = ledger.shortfalls("node-1", {"eth0": (0, 500 * M)}, observed_since=at(30))
    assert shortfall.message == "eth0 egress: 1.2G reserved, 7.9G observed of 9G usable, asks 500M"
    # Traffic below the reservations says nothing about unreserved load.
    ledger.set_observed("node-1", at(4), {"eth0": (0, 800 * M)})
    assert ledger.shortfalls("node-1", {"eth0": (0, 7_900 * M)}, observed_since=at(30))[0].message == (
        "eth0 egress: 1.2G reserved of 9G usable, asks 7.9G")


def test_reserve_keeps_its_promise_on_reservations_alone(ledger):
    """The hard invariant (never reserve past usable) is about reservations; observed load
    is weighed by the fit check before, under the same lock."""
    ledger.set_observed("node-1", at(1), {"eth0": (0, 9 * G)})
    reserve(ledger, "a", 8 * G)
    assert ledger.reserved("node-1", "eth0") == (0, 8 * G)


def test_window_holds_the_highest_report_then_lets_go(ledger):
    observed = ObservedLoad(ledger, window=timedelta(seconds=60))
    since = at(1_000)
    observed.record("node-1", at(100), {"eth0": (0, 6 * G)})
    observed.record("node-1", at(90), {"eth0": (0, 1 * G)})
    observed.record("node-1", at(50), {"eth0": (0, 2 * G)})
    assert ledger.observed("node-1", "eth0", since) == (0, 6 * G)  # 6G was 50 s before the last report
    observed.record("node-1", at(39), {"eth0": (0, 1 * G)})
    assert ledger.observed("node-1", "eth0", since) == (0, 2 * G)  # 6G is now 61 s old
    # New traffic shows at once.
    observed.record("node-1", at(30), {"eth0": (0, 8 * G)})
    assert ledger.observed("node-1", "eth0", since) == (0, 8 * G)
    assert ledger.observed_at("node-1", "eth0") == at(30)
    # A replayed or older report changes nothing.
    observed.record("node-1", at(30), {"eth0": (0, 0)})
    observed.record("node-1", at(35), {"eth0": (0, 0)})
    assert ledger.observed("node-1", "eth0", since) == (0, 8 * G)
    observed.forget("node-1")
    assert ledger.observed("node-1", "eth0", since) == (0, 0)


def test_a_configured_window_holds_a_report_exactly_that_long(ledger):
    """Not the default 60 s: a report exactly a window old still counts, a second older not."""
    observed = ObservedLoad(ledger, window=timedelta(seconds=20))
    since = at(1_000)
    observed.record("node-1", at(100), {"eth0": (0, 6 * G)})
    observed.record("node-1", at(80), {"eth0": (0, 1 * G)})
    assert ledger.observed("node-1", "eth0", since) == (0, 6 * G)
    observed.record("node-1", at(79), {"eth0": (0, 1 * G)})
    assert ledger.observed("node-1", "eth0", since) == (0, 1 * G)


def test_a_report_no_newer_than_the_last_is_ignored_even_when_it_says_more(ledger):
    observed = ObservedLoad(ledger)
    since = at(1_000)
    observed.record("node-1", at(30), {"eth0": (0, 1 * G)})
    observed.record("node-1", at(30), {"eth0": (0, 8 * G)})  # the same report time, replayed
    observed.record("node-1", at(40), {"eth0": (0, 8 * G)})  # an older object from a relist
    assert ledger.observed("node-1", "eth0", since) == (0, 1 * G)
    assert observed.nodes() == {"node-1"}


def test_each_node_has_its_own_history(ledger):
    ledger.set_usable({("node-1", "eth0"): (9 * G, 9 * G), ("node-2", "eth0"): (9 * G, 9 * G)})
    observed = ObservedLoad(ledger)
    since = at(1_000)
    observed.record("node-1", at(30), {"eth0": (0, 8 * G)})
    observed.record("node-2", at(40), {"eth0": (0, 1 * G)})  # older than node-1's report: still node-2's first
    assert ledger.observed("node-2", "eth0", since) == (0, 1 * G)
    assert ledger.observed("node-1", "eth0", since) == (0, 8 * G)


def test_a_forgotten_node_starts_a_new_history(ledger):
    """A node deleted and recreated: its old reports neither hold its load nor make newer
    reports look old."""
    observed = ObservedLoad(ledger)
    since = at(1_000)
    observed.record("node-1", at(30), {"eth0": (0, 8 * G)})
    observed.forget("node-1")
    observed.forget("node-2")  # never reported: nothing to forget, no error
    assert observed.nodes() == set()
    observed.record("node-1", at(35), {"eth0": (0, 2 * G)})
    assert ledger.observed("node-1", "eth0", since) == (0, 2 * G)


def test_report_rates_map_received_to_ingress_and_sent_to_egress(ledger):
    ObservedLoad(ledger).record_report(one_node(rx_bps=2 * G, tx_bps=3 * G, beat=NOW - timedelta(seconds=7)))
    assert ledger.observed("node-1", "eth0", since=at(30)) == (2 * G, 3 * G)
    assert ledger.observed_at("node-1", "eth0") == at(7)
    # A report without a heartbeat cannot be aged: it is not taken.
    ObservedLoad(ledger).record_report(one_node(tx_bps=9 * G, beat=None))  # type: ignore[arg-type]
    assert ledger.observed("node-1", "eth0", since=at(30)) == (2 * G, 3 * G)


def plan(ledger: Ledger, egress: int, settings: FitSettings, beat: datetime = NOW):
    topology = Topology([Node(metadata=ObjectMeta(name="node-1"))], [one_node(beat=beat)], [])
    return plan_on_node(PodRequirements(egress_bps=egress), "node-1", topology, ledger, NOW, settings)


def test_fit_refuses_beside_fresh_traffic_and_ignores_stale_traffic(ledger):
    reserve(ledger, "a", 1_200 * M)
    ledger.set_observed("node-1", at(10), {"eth0": (0, 9_100 * M)})
    [refusal] = plan(ledger, 500 * M, FitSettings())
    assert refusal.cause is Cause.BANDWIDTH
    assert refusal.message == "eth0 egress: 1.2G reserved, 7.9G observed of 9G usable, asks 500M"
    # Reservations alone would have let it in.
    assert isinstance(plan(ledger, 500 * M, FitSettings(observed_max_age=None)), Plan)
    # Stale (observed 40 s ago, counted for 30 s): neither blocks...
    ledger.set_observed("node-1", at(40), {"eth0": (0, 8_900 * M)})
    outcome = plan(ledger, 500 * M, FitSettings())
    assert isinstance(outcome, Plan)
    # ...nor invites: no headroom to score by.
    assert headroom_left(outcome, ledger, FitSettings().observed_since(NOW)) != headroom_left(outcome, ledger, None)
    assert headroom_left(outcome, ledger, None) == pytest.approx((9_000 - 1_200 - 500) / 9_000)
    assert str(headroom_left(outcome, ledger, FitSettings().observed_since(NOW))) == "nan"


def test_preemption_can_cure_only_what_reservations_hold(ledger):
    ledger.reserve("low", "low", 0, Reservation(node="node-1", interfaces={"eth0": Rates(ingress=0, egress=3 * G)}))
    ledger.set_observed("node-1", at(5), {"eth0": (0, 8 * G)})  # 3G reserved traffic + 5G nobody reserved
    high = FitSettings()
    topology = Topology([Node(metadata=ObjectMeta(name="node-1"))], [one_node()], [])
    [refusal] = plan_on_node(PodRequirements(egress_bps=3 * G), "node-1", topology, ledger, NOW, high, priority=10)
    assert refusal.resolvable  # 9G - 8G + 3G evictable >= 3G
    [refusal] = plan_on_node(PodRequirements(egress_bps=5 * G), "node-1", topology, ledger, NOW, high, priority=10)
    assert not refusal.resolvable  # 4G at most can be freed
    # What preempt checks: the node without the low pod still carries the 5G nobody reserved.
    view = ledger.node_view("node-1", excluding=["low"])
    assert view.load("node-1", "eth0", since=at(30)) == (0, 5 * G)
    assert isinstance(plan_on_node(PodRequirements(egress_bps=3 * G), "node-1", topology, view, NOW, high), Plan)


def test_only_lower_priority_holdings_count_as_curable_and_all_of_them(ledger):
    """9G usable, 6G reserved: 4G by two pods below the asking pod's priority, 2G by one at
    it. Evicting the two frees 4G, so 3G free + 4G is the most a refusal can be cured by."""
    for uid, priority, egress in (("low-a", 0, 3 * G), ("low-b", 5, 1 * G), ("peer", 10, 2 * G)):
        ledger.reserve(uid, uid, priority, Reservation(node="node-1", interfaces={"eth0": Rates(ingress=0, egress=egress)}))
    topology = Topology([Node(metadata=ObjectMeta(name="node-1"))], [one_node()], [])

    def refusal(egress: int):
        [refused] = plan_on_node(PodRequirements(egress_bps=egress), "node-1", topology, ledger, NOW, FitSettings(),
                                 priority=10)
        return refused

    assert refusal(7 * G).resolvable
    assert not refusal(7 * G + 1).resolvable


def test_observations_survive_a_capacity_change(ledger):
    ledger.set_observed("node-1", at(5), {"eth0": (1 * G, 2 * G)})
    ledger.set_usable({("node-1", "eth0"): (18 * G, 18 * G)})
    observed, observed_at = ledger.observed_rows()
    row = ledger.slot("node-1", "eth0")
    assert observed[row].tolist() == [1 * G, 2 * G] and observed_at[row] == at(5)
