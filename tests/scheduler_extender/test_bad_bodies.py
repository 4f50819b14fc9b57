"""Malformed HTTP bodies get a 4xx naming the field, never a 500 or a crash."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler_extender.wire import MAX_EXTENDER_PRIORITY, host_priorities


@pytest.mark.parametrize("verb", ["/filter", "/prioritize", "/preempt"])
def test_missing_pod_names_the_field(served, verb):
    reply = served.post(verb, json={"Nodes": None, "NodeNames": ["a"]})
    assert reply.status_code == 422
    assert ["body", "Pod"] in [error["loc"] for error in reply.json()["detail"]]


def test_not_json_is_refused(served):
    reply = served.post("/filter", content=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["type"] == "json_invalid"


def test_wrong_types_name_the_field_and_value(served):
    reply = served.post("/filter", json={"Pod": {"metadata": {"name": "p"}}, "NodeNames": "node-a-1"})
    assert reply.status_code == 422
    (error,) = reply.json()["detail"]
    assert error["loc"] == ["body", "NodeNames"] and error["input"] == "node-a-1"


def test_bind_without_node_is_refused(served):
    reply = served.post("/bind", json={"PodName": "p", "PodNamespace": "d", "PodUID": "u"})
    assert reply.status_code == 422
    assert ["body", "Node"] in [error["loc"] for error in reply.json()["detail"]]


def test_pod_with_null_labels_and_annotations_is_accepted(served):
    body = {"Pod": {"metadata": {"name": "p", "labels": None, "annotations": None}}, "Nodes": None,
            "NodeNames": ["node-a-1"]}
    assert served.post("/filter", json=body).json()["NodeNames"] == ["node-a-1"]


def test_prioritize_answers_every_name_as_sent_even_one_json_must_escape(served):
    """The reply is written piece by piece (``wire.host_priorities``), not by one encoder
    over a list: a name with a quote, a backslash, a control character or non-ASCII text
    must still come back as valid JSON, in order, one entry per name."""
    names = ["node-a-1", 'qu"ote', 'a","b', "back\\slash", "ends\\", "new\nline", "zoné-ü", "node-a-1"]
    body = {"Pod": {"metadata": {"name": "p"}}, "Nodes": None, "NodeNames": names}
    reply = served.post("/prioritize", json=body)
    assert reply.status_code == 200
    assert reply.json() == [{"Host": name, "Score": 0} for name in names]


@given(st.lists(st.tuples(st.text(), st.integers(0, MAX_EXTENDER_PRIORITY))))
def test_host_priorities_is_the_json_of_one_host_priority_per_name(pairs):
    names, scores = [name for name, _ in pairs], [score for _, score in pairs]
    assert orjson.loads(host_priorities(names, scores)) == [{"Host": n, "Score": s} for n, s in pairs]


def test_the_service_is_healthy_ready_and_documents_itself(served):
    assert served.get("/healthz").text == "ok"
    assert served.get("/readyz").text == "ok"
    schema = served.get("/openapi.json").json()
    assert {"/filter", "/prioritize", "/bind", "/preempt"} <= set(schema["paths"])
    schemas = schema["components"]["schemas"]
    assert "ExtenderFilterResult" in schemas
    for verb, model in [("/filter", "ExtenderArgs"), ("/bind", "ExtenderBindingArgs"), ("/preempt", "ExtenderPreemptionArgs")]:
        body = schema["paths"][verb]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}
        assert model in schemas
    assert {"Pod", "NodeNames"} <= set(schemas["ExtenderArgs"]["properties"])


@pytest.mark.parametrize(("raw", "where"), [
    (b'{"Pod": {"metadata": {"name": "p"}}, "Nodes": null, "NodeNames": NaN}', ["body", "NodeNames"]),
    (b'{"Pod": {"metadata": {"name": "p", "x": [1, -Infinity]}}, "NodeNames": ["a"]}',
     ["body", "Pod", "metadata", "x", 1]),
])
def test_nan_and_infinity_are_refused_at_their_field(served, raw, where):
    """Python's parser reads them (Go never sends them); the 422 names where they are."""
    reply = served.post("/filter", content=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code == 422
    (error,) = reply.json()["detail"]
    assert error["loc"] == where and error["type"] == "finite_number"


@pytest.mark.parametrize("metadata", ["node-a-1", None, 7, ["node-a-1"], {"uid": "no-name"}])
def test_node_items_without_object_metadata_are_refused_at_their_index(served, metadata):
    nodes = {"items": [{"metadata": {"name": "node-a-1"}}, {"metadata": metadata}]}
    for verb in ("/filter", "/prioritize"):
        reply = served.post(verb, json={"Pod": {"metadata": {"name": "p"}}, "Nodes": nodes, "NodeNames": None})
        assert reply.status_code == 422
        (error,) = reply.json()["detail"]
        assert error["loc"] == ["body", "Nodes", "items", 1]
        assert error["msg"].startswith("Value error, metadata must be an object with a string name")


def test_a_huge_bad_value_is_quoted_short(served):
    reply = served.post("/bind", json={"PodName": "p" * 1_000_000, "PodNamespace": 5, "PodUID": "u", "Node": "n"})
    assert reply.status_code == 422
    (error,) = reply.json()["detail"]
    assert error["loc"] == ["body", "PodNamespace"] and error["input"] == 5
    assert len(reply.content) < 1000


def test_deeply_nested_json_is_refused_not_crashed(served):
    reply = served.post("/filter", content=b"[" * 50_000, headers={"Content-Type": "application/json"})
    assert reply.status_code == 422 and reply.json()["detail"][0]["type"] == "json_invalid"


def test_host_priorities_refuses_scores_that_do_not_match_the_names():
    with pytest.raises(ValueError, match="size"):
        host_priorities(["node-a-1", "node-a-2"], [3])
