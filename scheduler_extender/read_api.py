"""The extender's endpoints that change nothing: health, metrics and the JSON API.

They are routers apart from the webhook verbs so that ``netsched serve`` can put
them on a listener of their own (``--read-only-port``): that one can be exposed to
Prometheus, kubelet probes and people, while the verbs stay behind mutual TLS.
What else goes beside them (the dashboard) is the caller's to add: this package
serves the webhook and its state, and imports nothing that draws them.
Nothing here changes the cluster or the scheduler: ``explain`` runs filter and
prioritize on a throwaway scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, HTTPException, Query, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contract.group import VERSION
from contract.objects import Pod
from scheduler_extender.views import (
    DecisionView,
    ExplainView,
    PodNotFound,
    ReservationView,
    TopologyView,
    decision_views,
    explain_view,
    find_pod,
    reservation_views,
    topology_view,
)

if TYPE_CHECKING:
    from scheduler_extender.extender import Extender


def health_router(extender: Extender) -> APIRouter:
    """``/healthz`` and ``/readyz``: on every listener, so each can be probed."""
    router = APIRouter()

    @router.get("/healthz", response_class=PlainTextResponse, tags=["health"])
    def healthz() -> str:
        return "ok"

    @router.get("/readyz", response_class=PlainTextResponse, tags=["health"])
    def readyz(response: Response) -> str:
        """Ready once the cluster state is loaded (and, with leader election, when leading)."""
        if not extender.state.ready.is_set():
            response.status_code = 503
            return "cluster state not loaded"
        if extender.is_ready is not None and not extender.is_ready():
            response.status_code = 503
            return "not the leader"
        return "ok"

    return router


def read_only_router(extender: Extender) -> APIRouter:
    """Metrics and the topology, decisions, reservations and explain API (the CLI reads it)."""
    router = APIRouter()
    scheduler, state = extender.scheduler, extender.state

    @router.get("/metrics", tags=["observability"])
    def prometheus_metrics() -> Response:
        return Response(generate_latest(extender.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/api/v1/topology", response_model=TopologyView, tags=["api"])
    def get_topology() -> TopologyView:
        """Zones, switches, nodes and interfaces with capacity, reservations and observed load."""
        return topology_view(state)

    @router.get("/api/v1/decisions", response_model=list[DecisionView], tags=["api"])
    def get_decisions() -> list[DecisionView]:
        """The most recent scheduling decisions, newest first, with each refused node's reason."""
        return decision_views(list(scheduler.decisions))

    @router.get("/api/v1/reservations", response_model=list[ReservationView], tags=["api"])
    def get_reservations(node: str | None = None) -> list[ReservationView]:
        """Pods holding reservations, all or on one node."""
        return reservation_views(state, node)

    @router.get("/api/v1/explain", response_model=ExplainView, tags=["api"])
    def explain_existing(
        name: str = Query(description="Pod name"), namespace: str = Query("default")
    ) -> ExplainView:
        """For each node: whether the pod fits, its score, or every reason it does not (no side effects)."""
        try:
            pod = find_pod(state, f"{namespace}/{name}")
        except PodNotFound as error:
            raise HTTPException(404, str(error)) from None
        return explain_view(scheduler, pod)

    @router.post("/api/v1/explain", response_model=ExplainView, tags=["api"])
    def explain_given(pod: Pod) -> ExplainView:
        """Like ``GET /api/v1/explain`` for a pod given in the body (need not exist yet)."""
        return explain_view(scheduler, pod)

    return router


def create_read_only_app(extender: Extender, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The read-only listener's app, with ``routers`` beside the read-only endpoints:
    nothing on it can bind, reserve or evict."""
    app = FastAPI(
        title="netsched (read-only)",
        summary="Health, metrics, topology and decisions of the netsched extender.",
        version=VERSION,
    )
    app.state.extender = extender
    app.include_router(health_router(extender))
    app.include_router(read_only_router(extender))
    for router in routers:
        app.include_router(router)
    return app
