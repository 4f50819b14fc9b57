"""Filter and prioritize of one scheduling cycle share one batch check (kube-scheduler calls
prioritize right after filter, with the nodes that passed)."""

from __future__ import annotations

import json

from contract import annotations as ann
from tests.conftest import make_pod
from tests.scheduler_extender.fit_checks import counting_checks, counting_evaluations


def test_prioritize_reuses_the_filter_of_its_cycle(extender, source, monkeypatch):
    scheduler = extender.scheduler
    names = extender.state.node_names()
    pod = source.apply(make_pod("web", {ann.EGRESS_BANDWIDTH: "15G",
                                        ann.NETWORKS: json.dumps([{"name": "storage", "ingress": "1G"}])}))
    fresh = dict(zip(names, scheduler.prioritize(pod, names), strict=True))  # no filter before it: computed
    calls = counting_checks(monkeypatch, plans=False)
    passed = scheduler.filter(pod, names).passed
    assert passed and len(passed) < len(names)  # 15G does not fit the 10G nodes
    evaluations = counting_evaluations(scheduler, monkeypatch)
    scores = scheduler.prioritize(pod, passed)
    assert calls == [len(names)]  # one batch check for the cycle
    assert evaluations == []  # prioritize read the filter's evaluation
    assert scores == [fresh[name] for name in passed]
    # Another extender after netsched may drop nodes: a subset, in any order, is still this cycle's.
    passed = scheduler.filter(pod, names).passed  # the pod's next cycle
    fewer = passed[::-2]
    assert scheduler.prioritize(pod, fewer) == [fresh[name] for name in fewer]
    assert evaluations == [len(names)]  # the filter's, from the shape's table
    assert calls == [len(names)]


def test_prioritize_takes_its_cycle(extender, source, monkeypatch):
    """kube-scheduler calls prioritize once per cycle: the cycle goes with that call, and a
    second call (none comes from kube-scheduler) computes its answer again, the same."""
    scheduler = extender.scheduler
    names = extender.state.node_names()
    pod = source.apply(make_pod("api", {ann.EGRESS_BANDWIDTH: "2G"}))
    passed = scheduler.filter(pod, names).passed
    evaluations = counting_evaluations(scheduler, monkeypatch)
    first = scheduler.prioritize(pod, passed)
    assert evaluations == []
    assert scheduler.prioritize(pod, passed) == first
    assert evaluations == [len(passed)]


def test_a_new_topology_or_an_unknown_candidate_computes_again(extender, source, monkeypatch):
    scheduler = extender.scheduler
    names = extender.state.node_names()
    pod = source.apply(make_pod("db", {ann.EGRESS_BANDWIDTH: "1G"}))
    calls = counting_checks(monkeypatch, plans=False)
    scheduler.filter(pod, names[:4])
    scheduler.prioritize(pod, names[:6])  # two it did not filter: the shape's second sight builds its table
    assert calls == [4, len(names)]
    report = source.snapshot().node_networks[0].model_copy(deep=True)
    report.status.interfaces[0].speed_mbps *= 2
    source.apply(report)  # the topology changes between filter and prioritize
    scheduler.filter(pod, names)
    source.apply(report.model_copy(update={"status": report.status.model_copy(update={"zone": "eu-1z"})}))
    scheduler.prioritize(pod, names)
    assert calls == [4, len(names), len(names), len(names)]  # each topology gets a table of its own
