"""A pod shape's fit table answers exactly as a fresh evaluation would, after any change, and
checks again only the nodes that changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bandwidth_accounting.batch import SlotMap
from bandwidth_accounting.fit import Cause
from bandwidth_accounting.ledger import Holding
from bandwidth_accounting.settings import FitSettings
from contract import annotations as ann
from contract.reservation import Rates, Reservation
from demo.sample_cluster import sample_cluster
from scheduler_extender.evaluation import Cluster, FitTables, Shape, evaluate
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource
from tests.bandwidth_accounting.random_clusters import NOW, build, nodes, observations, rates, requirements
from tests.conftest import make_pod
from tests.scheduler_extender.fit_checks import counting_checks

changes = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 7), st.integers(0, 3), rates, rates),
        st.tuples(st.just("release"), st.integers(0, 9)),
        st.tuples(st.just("observe"), st.integers(0, 7), st.sampled_from([0, 10, 29, 31]),
                  st.dictionaries(st.sampled_from(["eth0", "eth1", "eth2"]), st.tuples(rates, rates), max_size=2)),
        st.tuples(st.just("capacity"), st.integers(0, 7), st.integers(0, 3), rates),
        # past an observation's maximum age (30 s) and a report's TTL (60 s), one step or several
        st.tuples(st.just("wait"), st.sampled_from([0.5, 10, 29, 31, 61])),
    ),
    max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(nodes=nodes, requirements=requirements,
       held=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), rates, rates), max_size=6),
       observed=observations, observed_max_age=st.sampled_from([None, timedelta(seconds=30)]), changes=changes)
def test_a_table_answers_as_a_fresh_evaluation_after_any_change(
    nodes, requirements, held, observed, observed_max_age, changes
):
    topology, ledger = build(nodes, held, observed)
    if not requirements.needs_resources:
        return
    cluster = Cluster(topology, ledger, SlotMap(topology.rows, ledger),
                      FitSettings(report_ttl=timedelta(seconds=60), observed_max_age=observed_max_age))
    shape, tables = Shape(requirements, priority=0), FitTables()
    names = [f"n{i}" for i in range(len(nodes))] + ["ghost"]
    rows = topology.rows.rows_of(names)
    now = NOW

    def agree() -> None:
        kept = tables.evaluate(shape, names, rows, cluster, now)
        fresh = evaluate(shape, names, rows, cluster, now)
        assert kept.fits.tolist() == fresh.fits.tolist()
        np.testing.assert_allclose(kept.headroom, fresh.headroom)  # NaN where NaN
        assert kept.refusals == fresh.refusals

    agree()  # first sight: the candidates only
    agree()  # second: the table is built
    for number, change in enumerate(changes):
        match change:
            case ("reserve", node, interface, ingress, egress):
                reservation = Reservation(node=f"n{node}", interfaces={f"eth{interface}": Rates(ingress=ingress, egress=egress)})
                ledger.record(Holding(f"c{number}", f"c{number}", 0, reservation))
            case ("release", index):
                holdings = ledger.holdings()
                if holdings:
                    ledger.release(holdings[index % len(holdings)].uid)
            case ("observe", node, age, seen):
                ledger.set_observed(f"n{node}", (now - timedelta(seconds=age)).timestamp(), seen)
            case ("capacity", node, interface, usable):
                ledger.update_usable({(f"n{node}", f"eth{interface}"): (usable, usable)})
            case ("wait", seconds):
                now += timedelta(seconds=seconds)
        agree()


def test_a_bind_makes_the_next_replica_check_only_its_node(extender, source, monkeypatch):
    scheduler = extender.scheduler
    names = extender.state.node_names()
    asks = {ann.EGRESS_BANDWIDTH: "15G"}  # the 25G nodes hold one such pod, the 10G nodes none
    first, second, third = (source.apply(make_pod(f"web-{i}", asks)) for i in range(3))
    passed = scheduler.filter(first, names).passed  # the candidates
    assert scheduler.filter(second, names).passed == passed  # a table over every node
    scheduler.bind("default", second.metadata.name, second.metadata.uid, passed[0])
    calls = counting_checks(monkeypatch)
    result = scheduler.filter(third, names)
    assert calls == [passed[0]]  # only the node the bind reserved on; the others' refusals are kept
    assert result.passed == passed[1:]
    assert result.refusals[passed[0]][0].cause is Cause.BANDWIDTH


def test_a_report_brings_its_node_back_and_stale_ones_say_their_age_now(monkeypatch):
    start = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    clock = [start + timedelta(seconds=10)]
    source = FileClusterSource(sample_cluster(heartbeat=start))
    extender = Extender.build(source, clock=lambda: clock[0])
    source.start(extender.state)
    scheduler, names = extender.scheduler, extender.state.node_names()
    pod = source.apply(make_pod("db", {ann.EGRESS_BANDWIDTH: "1G",
                                       ann.NETWORKS: json.dumps([{"name": "storage", "ingress": "1G"}])}))
    before = scheduler.filter(pod, names).passed
    assert scheduler.filter(pod, names).passed == before  # the table, built
    clock[0] = start + timedelta(seconds=61)  # every report past the TTL: the table starts over
    calls = counting_checks(monkeypatch)
    assert scheduler.filter(pod, names).passed == []
    report = next(r for r in source.snapshot().node_networks if r.metadata.name == before[0])
    source.apply(report.model_copy(update={"status": report.status.model_copy(update={"heartbeat_time": clock[0]})}))
    clock[0] = start + timedelta(seconds=70)
    assert calls[0] == len(names)  # rebuilt at the TTL
    del calls[:]
    result = scheduler.filter(pod, names)
    # The node that reported, then the stale ones again: their refusals give the age now.
    assert calls == [before[0], *(name for name in names if name != before[0])]
    assert result.passed == [before[0]]
    stale = result.refusals[before[1]]
    assert [r.cause for r in stale] == [Cause.STALE_REPORT] and "70s ago" in stale[0].message
    # A report without a heartbeat says nothing of its node: the last one still counts, until its TTL.
    source.apply(report.model_copy(update={"status": report.status.model_copy(update={"heartbeat_time": None})}))
    assert scheduler.filter(pod, names).passed == [before[0]]
    clock[0] = start + timedelta(seconds=122)
    assert scheduler.filter(pod, names).passed == []
