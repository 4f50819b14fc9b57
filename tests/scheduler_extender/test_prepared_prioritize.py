"""The prioritize answer prepared after a filter where every candidate passed (``prepared``).

What it reproduces: kube-scheduler v1.36 sends prioritize the same Pod object as filter and
the nodes the extender passed, in the order it answered them (``findNodesThatPassExtenders``
keeps the extender's order; the fixtures ``kube-scheduler-v1.36/nodecache-{filter,prioritize}.json``
carry equal Pods), and Go's ``encoding/json`` writes a struct's fields in their declared
order with no spaces. So when every candidate passed, the prioritize body is the filter's
bytes again. The tests send the fixture's ``ExtenderArgs`` as Go encodes it (compact, its
keys in the fixture's order), to the extender behind uvicorn on a real socket.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from contract import annotations as ann
from scheduler_extender import app as app_module
from scheduler_extender.prepared import PreparedPrioritize
from tests.conftest import load_fixture
from tests.scheduler_extender.fit_checks import counting_evaluations

PREPARED = "netsched_prioritize_prepared_total"


def cycle_bodies(names: list[str], annotations: dict[str, str]) -> dict:
    """The ExtenderArgs of a netsched pod's cycle, in Go's field order."""
    body = load_fixture("filter-nodenames.json")
    body["Pod"]["metadata"]["annotations"] = annotations
    body["NodeNames"] = names
    return body


def filter_then_prioritize(served, body: dict) -> tuple[list[str], bytes, list[dict]]:
    """One cycle as kube-scheduler sends it: filter, then prioritize with what passed."""
    sent = orjson.dumps(body)
    passed = served.post("/filter", content=sent, headers={"Content-Type": "application/json"}).json()["NodeNames"]
    again = orjson.dumps({**body, "NodeNames": passed})
    answer = served.post("/prioritize", content=again, headers={"Content-Type": "application/json"}).json()
    return passed, again, answer


def prepared_count(served) -> float:
    for line in served.get("/metrics").text.splitlines():
        if line.startswith(PREPARED + " "):
            return float(line.split()[1])
    raise AssertionError(f"{PREPARED} not exported")


def computed(served, body: dict) -> list[dict]:
    """The same prioritize sent with other bytes (indented): computed, not taken."""
    return served.post("/prioritize", content=orjson.dumps(body, option=orjson.OPT_INDENT_2),
                       headers={"Content-Type": "application/json"}).json()


def counting_prioritizes(scheduler, monkeypatch) -> list[dict]:
    """The keyword arguments of each ``Scheduler.prioritize`` call (``keep_cycle`` marks a preparation)."""
    calls: list[dict] = []
    prioritize = scheduler.prioritize
    monkeypatch.setattr(scheduler, "prioritize",
                        lambda pod, node_names, **kw: calls.append(kw) or prioritize(pod, node_names, **kw))
    return calls


@pytest.fixture
def read_bodies(monkeypatch) -> list[str]:
    """The model of each body the verbs read."""
    read = []
    original = app_module.read_body

    def counted(model, raw):
        read.append(model.__name__)
        return original(model, raw)

    monkeypatch.setattr(app_module, "read_body", counted)
    return read


def test_a_cycle_where_every_node_passed_takes_the_prepared_scores(served, extender, read_bodies):
    names = extender.state.node_names()
    body = cycle_bodies(names, {ann.EGRESS_BANDWIDTH: "2G", ann.INGRESS_BANDWIDTH: "100M"})
    passed, sent, answer = filter_then_prioritize(served, body)
    assert passed == names  # every candidate passed: the two bodies are the same bytes
    assert sent == orjson.dumps(body)  # (what prioritize sent is what filter sent)
    assert read_bodies == ["ExtenderArgs"]  # the filter's; prioritize did not read its body
    assert prepared_count(served) == 1
    assert [entry["Host"] for entry in answer] == names
    assert len({entry["Score"] for entry in answer}) > 1  # 10G, 25G and 100G links: scores apart
    assert computed(served, body) == answer  # what prioritize computes from the same request
    assert prepared_count(served) == 1


def test_fewer_nodes_than_passed_read_the_filter_evaluation(served, extender, monkeypatch):
    """Another extender after netsched refused some nodes: prioritize brings other bytes,
    and reads the filter's evaluation, which the prepared answer left in place."""
    names = extender.state.node_names()
    body = cycle_bodies(names, {ann.EGRESS_BANDWIDTH: "2G"})
    sent = orjson.dumps(body)
    assert served.post("/filter", content=sent).json()["NodeNames"] == names
    fewer = {**body, "NodeNames": names[::2]}
    evaluations = counting_evaluations(extender.scheduler, monkeypatch)
    answer = served.post("/prioritize", content=orjson.dumps(fewer)).json()
    assert evaluations == []  # the cycle's evaluation, kept by the preparation
    assert [entry["Host"] for entry in answer] == names[::2]
    assert prepared_count(served) == 0
    assert computed(served, fewer) == answer


def test_a_new_topology_between_filter_and_prioritize_scores_again(served, extender, source):
    names = extender.state.node_names()
    body = cycle_bodies(names, {ann.EGRESS_BANDWIDTH: "2G"})
    _, sent, first = filter_then_prioritize(served, body)
    before = {entry["Host"]: entry["Score"] for entry in first}
    served.post("/filter", content=sent)  # the next cycle: its scores are prepared
    report = min(source.snapshot().node_networks, key=lambda r: r.status.interfaces[0].speed_mbps)
    report = report.model_copy(deep=True)
    report.status.interfaces[0].speed_mbps *= 10  # 10G to 100G: more headroom, a better score
    source.apply(report)
    answer = served.post("/prioritize", content=sent).json()
    assert prepared_count(served) == 1  # the first cycle's
    after = {entry["Host"]: entry["Score"] for entry in answer}
    assert after[report.metadata.name] > before[report.metadata.name]
    assert answer == computed(served, body)


def test_refusals_or_a_single_node_prepare_nothing(served, extender, monkeypatch):
    names = extender.state.node_names()
    calls = counting_prioritizes(extender.scheduler, monkeypatch)
    too_much = cycle_bodies(names, {ann.EGRESS_BANDWIDTH: "15G"})  # the 10G nodes refuse it
    result = served.post("/filter", content=orjson.dumps(too_much)).json()
    assert result["FailedNodes"] or result["FailedAndUnresolvableNodes"]
    assert len(result["NodeNames"]) > 1
    one = cycle_bodies(names[:1], {ann.EGRESS_BANDWIDTH: "100M"})
    assert served.post("/filter", content=orjson.dumps(one)).json()["NodeNames"] == names[:1]
    assert calls == []


def test_without_prioritize_calls_no_answer_is_prepared_again(served, extender, monkeypatch):
    """kube-scheduler configured without a prioritizeVerb sends filters alone: one answer is
    prepared (a prioritize came before it, or none yet), and none after it until one comes."""
    names = extender.state.node_names()
    calls = counting_prioritizes(extender.scheduler, monkeypatch)
    body = cycle_bodies(names, {ann.EGRESS_BANDWIDTH: "100M"})
    for _ in range(3):
        served.post("/filter", content=orjson.dumps(body))
    assert calls == [{"keep_cycle": True}]
    filter_then_prioritize(served, body)  # prioritize comes again (it takes nothing: not prepared)
    assert calls == [{"keep_cycle": True}, {}]
    filter_then_prioritize(served, body)
    assert calls == [{"keep_cycle": True}, {}, {"keep_cycle": True}]
    assert prepared_count(served) == 1


def test_a_preparation_that_fails_leaves_prioritize_to_answer(served, extender, monkeypatch, caplog):
    names = extender.state.node_names()
    prioritize = extender.scheduler.prioritize

    def failing_ahead(pod, node_names, *, keep_cycle=False):
        if keep_cycle:
            raise RuntimeError("broken on purpose")
        return prioritize(pod, node_names)

    monkeypatch.setattr(extender.scheduler, "prioritize", failing_ahead)
    body = cycle_bodies(names, {ann.EGRESS_BANDWIDTH: "100M"})
    with caplog.at_level(logging.ERROR, logger="scheduler_extender.app"):
        passed, _, answer = filter_then_prioritize(served, body)
    assert passed == names
    assert [entry["Host"] for entry in answer] == names
    assert prepared_count(served) == 0
    assert any("preparing the scores of default/" in r.getMessage() for r in caplog.records)


def test_an_answer_is_taken_once_for_the_same_bytes_and_topology():
    prepared = PreparedPrioritize()
    assert prepared.wanted()
    prepared.prepare(b"cycle", 7, lambda: b"[scores]")
    assert not prepared.wanted()  # until a prioritize comes
    assert prepared.take(b"cycle", 7) == b"[scores]"
    assert prepared.wanted()
    assert prepared.take(b"cycle", 7) is None  # once
    prepared.prepare(b"cycle", 7, lambda: b"[scores]")
    assert prepared.take(b"cycle", 8) is None  # a new generation
    prepared.prepare(b"cycle", 7, lambda: b"[scores]")
    assert prepared.take(b"cycle ", 7) is None  # other bytes
    assert prepared.take(b"cycle", 7) is None  # and a miss drops it
