"""The per-pod verbs' dispatch ahead of FastAPI (``scheduler_extender.webhook_app``), over a real socket."""

import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import Request, Response

from scheduler_extender.server import BackgroundServer, ServeOptions
from scheduler_extender.webhook_app import WebhookApp
from scheduler_extender.wire import ExtenderBindingArgs, read_body


@pytest.fixture
def app() -> WebhookApp:
    app = WebhookApp()
    app.state.through_middleware = []

    @app.middleware("http")
    async def record(request: Request, call_next):  # what FastAPI's stack serves
        app.state.through_middleware.append(f"{request.method} {request.url.path}")
        return await call_next(request)

    @app.per_pod_verb("/bind")
    async def bind(request: Request) -> Response:
        args = read_body(ExtenderBindingArgs, await request.body())
        if args.Node == "explode":
            raise RuntimeError("a bug in a verb")
        return Response(b'{"Error":""}', media_type="application/json")

    @app.post("/preempt")
    async def preempt(request: Request) -> Response:
        read_body(ExtenderBindingArgs, await request.body())
        return Response(b"{}", media_type="application/json")

    return app


@pytest.fixture
def client(app: WebhookApp) -> Iterator[httpx.Client]:
    with BackgroundServer(app, ServeOptions(port=0)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


BIND = {"PodName": "p", "PodNamespace": "default", "PodUID": "u", "Node": "node-a-1"}


def test_a_per_pod_verb_skips_fastapis_stack_and_the_rest_goes_through_it(app, client):
    assert client.post("/bind", json=BIND).json() == {"Error": ""}
    assert client.post("/preempt", json=BIND).status_code == 200
    assert client.get("/bind").status_code == 405  # another method: FastAPI's answer
    assert client.post("/unknown", json=BIND).status_code == 404
    assert app.state.through_middleware == ["POST /preempt", "GET /bind", "POST /unknown"]


def test_a_bad_body_gets_the_same_422_on_both_paths(client):
    dispatched = client.post("/bind", json={**BIND, "Node": 7})
    routed = client.post("/preempt", json={**BIND, "Node": 7})
    assert dispatched.status_code == routed.status_code == 422
    assert dispatched.json() == routed.json()
    (error,) = dispatched.json()["detail"]
    assert error["loc"] == ["body", "Node"] and error["input"] == 7


def test_an_error_in_a_verb_is_a_500_and_the_server_goes_on(client, caplog):
    """uvicorn logs what the app raised and answers 500, as FastAPI's error middleware does
    (which answers first and logs after: the log is waited for)."""
    assert client.post("/bind", json={**BIND, "Node": "explode"}).status_code == 500
    deadline = time.monotonic() + 5
    while "a bug in a verb" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "a bug in a verb" in caplog.text
    assert client.post("/bind", json=BIND).json() == {"Error": ""}


def test_the_dispatched_verb_is_documented(client):
    schema = client.get("/openapi.json").json()
    assert "post" in schema["paths"]["/bind"]
