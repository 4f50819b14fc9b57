"""Malformed HTTP bodies get a 4xx naming the field, never a 500 or a crash."""

import pytest


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


def test_the_service_is_healthy_ready_and_documents_itself(served):
    assert served.get("/healthz").text == "ok"
    assert served.get("/readyz").text == "ok"
    schema = served.get("/openapi.json").json()
    assert {"/filter", "/prioritize", "/bind", "/preempt"} <= set(schema["paths"])
    assert "ExtenderFilterResult" in schema["components"]["schemas"]
