"""The extender's endpoints that change nothing: health, metrics, the JSON API, the dashboard.

They are routers apart from the webhook verbs so that ``netsched serve`` can put
them on a listener of their own (``--read-only-port``): that one can be exposed to
Prometheus, kubelet probes and people, while the verbs stay behind mutual TLS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard import admin_router
from scheduler_extender.views import DecisionView, TopologyView, decision_views, topology_view

if TYPE_CHECKING:
    from scheduler_extender.app import Extender


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
    """Metrics, the topology and decisions API and the dashboard."""
    router = APIRouter()

    @router.get("/metrics", tags=["observability"])
    def prometheus_metrics() -> Response:
        return Response(generate_latest(extender.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/api/v1/topology", response_model=TopologyView, tags=["api"])
    def get_topology() -> TopologyView:
        """Zones, switches, nodes and interfaces with capacity, reservations and observed load."""
        return topology_view(extender.state)

    @router.get("/api/v1/decisions", response_model=list[DecisionView], tags=["api"])
    def get_decisions() -> list[DecisionView]:
        """The most recent scheduling decisions, newest first, with each refused node's reason."""
        return decision_views(list(extender.scheduler.decisions))

    router.include_router(admin_router(extender))
    return router


def create_read_only_app(extender: Extender) -> FastAPI:
    """The read-only listener's app: nothing on it can bind, reserve or evict."""
    app = FastAPI(
        title="netsched (read-only)",
        summary="Health, metrics, topology and decisions of the netsched extender.",
        version="v1alpha1",
    )
    app.state.extender = extender
    app.include_router(health_router(extender))
    app.include_router(read_only_router(extender))
    return app
