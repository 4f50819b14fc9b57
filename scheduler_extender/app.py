"""The HTTP face of the extender: kube-scheduler's webhook verbs, health, metrics, read-only API.

Every webhook answers 200 with the extender/v1 JSON whenever it understood the
request, because kube-scheduler treats any other status as an error for the pod:
refusals travel in ``FailedNodes`` / ``FailedAndUnresolvableNodes`` / ``Error``.
A body that is not extender JSON gets FastAPI's 422 naming the bad field.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from fastapi import FastAPI, Response

from scheduler_extender.cluster import ClusterSource
from scheduler_extender.metrics import ExtenderMetrics
from scheduler_extender.read_api import health_router, read_only_router
from scheduler_extender.scheduler import BindError, FilterResult, Scheduler
from scheduler_extender.state import ClusterState
from scheduler_extender.wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    ExtenderPreemptionArgs,
    ExtenderPreemptionResult,
    HostPriority,
    MetaPod,
    MetaVictims,
    NodeList,
)
from topology.models import Pod

log = logging.getLogger(__name__)


class RefusalListener(Protocol):
    def refused(self, pod: Pod, result: FilterResult) -> None:
        """``result`` refused some nodes for ``pod``; called on the event loop: do no I/O."""


@dataclass(slots=True)
class Extender:
    """Everything one extender process holds; built once, passed to the app."""

    state: ClusterState
    source: ClusterSource
    scheduler: Scheduler
    metrics: ExtenderMetrics
    is_ready: Callable[[], bool] | None = None
    """Extra readiness condition (e.g. holding the leader Lease)."""
    refusal_listeners: list[RefusalListener] = field(default_factory=list)
    """Told of every filter outcome that refused nodes (preemption, retries)."""

    @classmethod
    def build(cls, source: ClusterSource, state: ClusterState | None = None, **scheduler_args) -> Extender:
        state = state or ClusterState()
        return cls(
            state=state,
            source=source,
            scheduler=Scheduler(state, source, **scheduler_args),
            metrics=ExtenderMetrics(state),
        )


def json_response(body: bytes | str) -> Response:
    """An already-serialised JSON body: the hot verbs skip FastAPI's response re-validation."""
    return Response(body, media_type="application/json")


def create_app(extender: Extender, *, start_source: bool = True, read_only: bool = True) -> FastAPI:
    """The ASGI app; with ``start_source`` the lifespan starts and stops the cluster source.

    Without ``read_only`` it serves the webhook verbs and health only; the read-only
    endpoints then go on their own listener (``read_api.create_read_only_app``).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_source:
            extender.source.start(extender.state)
        # The cluster picture is large and long-lived; keeping it out of the cyclic
        # collector's generations spares every later request a full-heap scan.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if start_source:
                extender.source.stop()

    app = FastAPI(
        title="netsched scheduler extender",
        summary="Network-aware filter, prioritize, bind and preempt for kube-scheduler.",
        version="v1alpha1",
        lifespan=lifespan,
    )
    app.state.extender = extender
    scheduler, metrics = extender.scheduler, extender.metrics

    # filter, prioritize and preempt only compute (no I/O), so they run on the event loop
    # and skip the threadpool hop; bind talks to the API server and runs in the threadpool.
    @app.post("/filter", response_model=ExtenderFilterResult, tags=["webhook"])
    async def filter_nodes(args: ExtenderArgs) -> Response:
        """Nodes where the pod's bandwidth and networks fit; a reason for each other node."""
        with metrics.request_seconds.labels("filter").time():
            outcome = scheduler.filter(args.Pod, args.node_names())
            if outcome.refusals:
                for listener in extender.refusal_listeners:
                    listener.refused(args.Pod, outcome)
            for reasons in outcome.refusals.values():
                for cause in {reason.cause for reason in reasons}:
                    metrics.filter_rejections.labels(cause.value).inc()
            result = ExtenderFilterResult(
                FailedNodes=outcome.failed, FailedAndUnresolvableNodes=outcome.unresolvable
            )
            if args.NodeNames is not None:
                result.NodeNames = outcome.passed
            else:
                passed = set(outcome.passed)
                items = args.Nodes.items if args.Nodes is not None else []
                result.Nodes = NodeList(
                    metadata=args.Nodes.metadata if args.Nodes is not None else {},
                    items=[item for item in items if item.get("metadata", {}).get("name") in passed],
                )
            return json_response(result.model_dump_json())

    @app.post("/prioritize", response_model=list[HostPriority], tags=["webhook"])
    async def prioritize(args: ExtenderArgs) -> Response:
        """Scores 0-10 per node (kube-scheduler multiplies by weight and by 10)."""
        with metrics.request_seconds.labels("prioritize").time():
            scores = scheduler.prioritize(args.Pod, args.node_names())
            # Thousands of {"Host", "Score"} pairs: plain dicts through orjson, not model objects.
            return json_response(orjson.dumps([{"Host": host, "Score": score} for host, score in scores.items()]))

    @app.post("/bind", response_model=ExtenderBindingResult, tags=["webhook"])
    def bind(args: ExtenderBindingArgs) -> ExtenderBindingResult:
        """Reserve bandwidth, record it on the pod, then create the Binding."""
        with metrics.request_seconds.labels("bind").time():
            if extender.is_ready is not None and not extender.is_ready():
                return ExtenderBindingResult(Error="this extender replica is not the leader")
            try:
                scheduler.bind(args.PodNamespace, args.PodName, args.PodUID, args.Node)
            except BindError as error:
                if error.conflict:
                    metrics.bind_conflicts.inc()
                return ExtenderBindingResult(Error=str(error))
            metrics.binds.inc()
            return ExtenderBindingResult()

    @app.post("/preempt", response_model=ExtenderPreemptionResult, tags=["webhook"])
    async def preempt(args: ExtenderPreemptionArgs) -> ExtenderPreemptionResult:
        """Which victims free enough bandwidth on each candidate node."""
        with metrics.request_seconds.labels("preempt").time():
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
    return app
