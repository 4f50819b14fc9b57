"""The app class the extender serves: kube-scheduler's per-pod verbs answered ahead of FastAPI.

kube-scheduler sends filter, prioritize and bind for every pod it schedules, and waits for
the first two in its serial scheduling cycle. Through FastAPI, each request first passes its
middleware (error, telemetry, body limit and exception layers, an exit stack) and its router
(a regular expression per route until one matches). Dispatched here instead, straight to the
same endpoint, a request costs about 40 µs less at the ASGI boundary
(``benchmarks/extender_bodies.py``, 230 candidates, seven runs):

- the pass-through's filter: 70-86 µs as a FastAPI route, 36-42 µs dispatched, 34-44 µs
  less within each run;
- netsched's prepared prioritize: 59-66 µs before, 21-26 µs now (runs taking turns with
  the code before).

The verbs stay FastAPI routes too. The OpenAPI document describes them, and a request the
dispatch does not take (another method, a trailing slash) gets FastAPI's own answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from scheduler_extender.wire import BodyRejected

Endpoint = Callable[[Request], Awaitable[Response]]


def _rejected(error: BodyRejected) -> Response:
    """422 naming the fields a body got wrong (``wire.read_body``)."""
    return Response(error.detail(), status_code=422, media_type="application/json")


class WebhookApp(FastAPI):
    """FastAPI, with the verbs declared by ``per_pod_verb`` dispatched before its middleware.

    Such a verb takes the ``Request`` and returns a ``Response`` itself: no dependency,
    no response model to apply. What FastAPI's middleware would have done for it, the
    dispatch does: a ``BodyRejected`` becomes the 422 every route gets; any other error
    reaches the server, which logs it and answers 500, as FastAPI's error middleware does.
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._per_pod_verbs: dict[str, Endpoint] = {}
        self.add_exception_handler(BodyRejected, lambda _, error: _rejected(error))  # the routes' 422

    def per_pod_verb(self, path: str, **route: Any) -> Callable[[Endpoint], Endpoint]:
        """Declare a POST verb (``route`` as FastAPI's ``post`` takes it) and dispatch it first."""

        def declare(endpoint: Endpoint) -> Endpoint:
            self.post(path, **route)(endpoint)
            self._per_pod_verbs[path] = endpoint
            return endpoint

        return declare

    def build_middleware_stack(self) -> ASGIApp:
        return _PerPodDispatch(dict(self._per_pod_verbs), super().build_middleware_stack())


class _PerPodDispatch:
    """POST to a per-pod verb's path goes straight to its endpoint; the rest to ``app``."""

    def __init__(self, verbs: dict[str, Endpoint], app: ASGIApp) -> None:
        self.verbs = verbs
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.verbs.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await endpoint(Request(scope, receive))
        except BodyRejected as error:
            response = _rejected(error)
        await response(scope, receive, send)


__all__ = ["WebhookApp"]
