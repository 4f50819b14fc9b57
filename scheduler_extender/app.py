"""The HTTP face of the extender: kube-scheduler's webhook verbs, health, metrics, read-only API.

Every webhook answers 200 with the extender/v1 JSON whenever it understood the
request, because kube-scheduler treats any other status as an error for the pod:
refusals travel in ``FailedNodes`` / ``FailedAndUnresolvableNodes`` / ``Error``.
A body that is not extender JSON gets a 422 naming the bad field (``wire.read_body``).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.background import BackgroundTask

from contract.group import VERSION
from scheduler_extender.cluster import CONCURRENT_BINDS
from scheduler_extender.extender import Extender
from scheduler_extender.prepared import PreparedPrioritize
from scheduler_extender.read_api import health_router, read_only_router
from scheduler_extender.scheduler import BindError
from scheduler_extender.webhook_app import WebhookApp
from scheduler_extender.wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    ExtenderPreemptionArgs,
    ExtenderPreemptionResult,
    HostPriority,
    M,
    MetaPod,
    MetaVictims,
    host_priorities,
    read_body,
)

log = logging.getLogger(__name__)


REQUEST_BODIES: tuple[type[BaseModel], ...] = (ExtenderArgs, ExtenderBindingArgs, ExtenderPreemptionArgs)

YOUNG_COLLECTION_ALLOCATIONS = 10_000
"""Allocations between two young collections of the cyclic collector (Python's default: 700).

A pod's filter, prioritize, bind and watch event keep thousands of objects alive for a
moment (bodies, candidate lists, client responses). At 700 a young collection comes
every few dozen pods and promotes whatever is alive at that moment; the older
generations fill up with it, and then a full collection, which scans every pod the
state holds, stops the extender. At 10,000 most of those objects are gone before a
collection comes. In ``benchmarks/extender_throughput.py`` at 2,000 nodes, the
collector's pauses fell from 0.043-0.054 to 0.013-0.014 ms a pod, and the longest from
35-55 to 10-12 ms; the extender's peak memory stayed at 163 MB. The verbs leave no
reference cycles behind (``tests/scheduler_extender/test_collector.py``): what they
make is freed when they are done, not at the next collection."""


async def body(request: Request, model: type[M]) -> M:
    """The request body as ``model`` (``read_body``). The verbs call it themselves rather
    than through a FastAPI dependency: resolving one costs about 10 µs a request, three
    requests per pod (``benchmarks/extender_bodies.py``)."""
    return read_body(model, await request.body())


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI requestBody of a verb whose body ``body`` reads (FastAPI does not see it)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _with_request_schemas(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that also documents the request bodies named by ``request_body``."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _, definitions = models_json_schema(
                [(model, "validation") for model in REQUEST_BODIES], ref_template="#/components/schemas/{model}"
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
        return app.openapi_schema

    return openapi


def json_response(body: bytes | str) -> Response:
    """An already-serialised JSON body: the hot verbs skip FastAPI's response re-validation."""
    return Response(body, media_type="application/json")


def binding_result(error: str) -> Response:
    """``ExtenderBindingResult`` as JSON, without FastAPI's validation of a returned model."""
    return json_response(orjson.dumps({"Error": error}))


@contextmanager
def collector_tuned() -> Iterator[None]:
    """The cyclic collector set for a long-lived extender: what is in memory now (the
    cluster picture, once loaded) frozen out of its generations, which spares every later
    collection a scan of it; young collections ``YOUNG_COLLECTION_ALLOCATIONS`` apart.
    Python's own thresholds come back on the way out."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def create_app(
    extender: Extender,
    *,
    start_source: bool = True,
    read_only: bool = True,
    read_only_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The ASGI app; with ``start_source`` the lifespan starts and stops the cluster source.

    With ``read_only`` it also serves the read-only endpoints and ``read_only_routers``
    (what ``netsched serve`` puts beside them: the dashboard); without, the webhook verbs
    and health only, the rest going on a listener of its own
    (``read_api.create_read_only_app``).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_source:
            extender.source.start(extender.state)
        try:
            with collector_tuned():
                yield
        finally:
            if start_source:
                extender.source.stop()

    app = WebhookApp(
        title="netsched scheduler extender",
        summary="Network-aware filter, prioritize, bind and preempt for kube-scheduler.",
        version=VERSION,
        lifespan=lifespan,
    )
    app.state.extender = extender
    scheduler, metrics = extender.scheduler, extender.metrics

    # Bodies are read by ``read_body`` (orjson, then only the declared fields validated);
    # filter, prioritize and preempt only compute, so they run on the event loop; bind
    # talks to the API server and runs in threads of its own, CONCURRENT_BINDS at most.
    binding_threads: list[anyio.CapacityLimiter] = []
    prepared = PreparedPrioritize()

    @app.per_pod_verb("/filter", response_model=ExtenderFilterResult, tags=["webhook"], openapi_extra=request_body(ExtenderArgs))
    async def filter_nodes(request: Request) -> Response:
        """Nodes where the pod's bandwidth and networks fit; a reason for each other node."""
        raw = await request.body()
        args = read_body(ExtenderArgs, raw)
        prepared.drop()
        with metrics.verb_seconds["filter"].time():
            outcome = scheduler.filter(args.Pod, args.node_names())
            if outcome.refusals:
                for listener in extender.refusal_listeners:
                    listener.refused(args.Pod, outcome)
                causes = Counter(
                    cause for reasons in outcome.refusals.values() for cause in {reason.cause for reason in reasons}
                )
                for cause, count in causes.items():
                    metrics.filter_rejections.labels(cause.value).inc(count)
            result: dict[str, Any] = {
                "Nodes": None,
                "NodeNames": None,
                "FailedNodes": outcome.failed,
                "FailedAndUnresolvableNodes": outcome.unresolvable,
                "Error": "",
            }
            if args.NodeNames is not None:
                result["NodeNames"] = outcome.passed
            elif args.Nodes is not None:
                passed = set(outcome.passed)
                result["Nodes"] = {
                    "metadata": args.Nodes.metadata,
                    "items": [item for item in args.Nodes.items if item["metadata"]["name"] in passed],
                }
            response = json_response(orjson.dumps(result))
        if not outcome.refusals and len(outcome.passed) > 1 and prepared.wanted():
            # kube-scheduler's prioritize will send these very bytes (``prepared``).
            response.background = BackgroundTask(prepare_prioritize, raw, args)
        return response

    async def prepare_prioritize(raw: bytes, args: ExtenderArgs) -> None:
        """The scores of a filter's cycle, once its answer is out (on the event loop)."""
        names = args.node_names()
        try:
            prepared.prepare(
                raw, scheduler.state.generation,
                lambda: host_priorities(names, scheduler.prioritize(args.Pod, names, keep_cycle=True)),
            )
        except Exception:  # the prioritize call computes again, and answers for itself
            log.exception("preparing the scores of %s", args.Pod.key)

    @app.per_pod_verb("/prioritize", response_model=list[HostPriority], tags=["webhook"], openapi_extra=request_body(ExtenderArgs))
    async def prioritize(request: Request) -> Response:
        """Scores 0-10 per node (kube-scheduler multiplies by weight and by 10)."""
        raw = await request.body()
        started = time.perf_counter()
        answer = prepared.take(raw, scheduler.state.generation)
        if answer is not None:
            metrics.verb_seconds["prioritize"].observe(time.perf_counter() - started)
            metrics.prepared_prioritizes.inc()
            return json_response(answer)
        args = read_body(ExtenderArgs, raw)
        with metrics.verb_seconds["prioritize"].time():
            names = args.node_names()
            return json_response(host_priorities(names, scheduler.prioritize(args.Pod, names)))

    @app.per_pod_verb(
        "/bind", response_model=ExtenderBindingResult, tags=["webhook"], openapi_extra=request_body(ExtenderBindingArgs)
    )
    async def bind(request: Request) -> Response:
        """Reserve bandwidth, then bind with the reservation in the Binding (one API call)."""
        args = await body(request, ExtenderBindingArgs)
        if not binding_threads:
            binding_threads.append(anyio.CapacityLimiter(CONCURRENT_BINDS))
        with metrics.verb_seconds["bind"].time():
            if extender.is_ready is not None and not extender.is_ready():
                return binding_result("this extender replica is not the leader")
            try:
                await anyio.to_thread.run_sync(
                    scheduler.bind, args.PodNamespace, args.PodName, args.PodUID, args.Node,
                    limiter=binding_threads[0],
                )
            except BindError as error:
                if error.conflict:
                    metrics.bind_conflicts.inc()
                return binding_result(str(error))
            metrics.binds.inc()
            return binding_result("")

    @app.post(
        "/preempt", response_model=ExtenderPreemptionResult, tags=["webhook"],
        openapi_extra=request_body(ExtenderPreemptionArgs),
    )
    async def preempt(request: Request) -> ExtenderPreemptionResult:
        """Which victims free enough bandwidth on each candidate node."""
        args = await body(request, ExtenderPreemptionArgs)
        with metrics.verb_seconds["preempt"].time():
            chosen = scheduler.preempt(args.Pod, args.candidates())
            return ExtenderPreemptionResult(
                NodeNameToMetaVictims={
                    node: MetaVictims(
                        Pods=[MetaPod(UID=uid) for uid in uids],
                        NumPDBViolations=args.pdb_violations(node),
                    )
                    for node, uids in chosen.items()
                }
            )

    app.include_router(health_router(extender))
    if read_only:
        app.include_router(read_only_router(extender))
        for router in read_only_routers:
            app.include_router(router)
    app.openapi = _with_request_schemas(app)  # type: ignore[method-assign]
    return app
