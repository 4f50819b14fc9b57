"""The dashboard's HTTP surface: the page, its script and style, and the document it draws.

``netsched serve`` and ``netsched demo`` put it beside the extender's read-only API
(``scheduler_extender.read_api``); it reads the extender's state and changes nothing.
The page and its script and style are package files, so the dashboard works on an
offline cluster.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from dashboard.data import DashboardView, dashboard_version, dashboard_view

if TYPE_CHECKING:
    from scheduler_extender.extender import Extender

GZIP_LEVEL = 5
"""A 5,000-node document is about 4 MB of JSON and a tenth of that gzipped."""
STATIC_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".html": "text/html",
}


def static_files() -> dict[str, tuple[bytes, str]]:
    """The dashboard's files by name, read once from the package."""
    files = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return files


class _LatestPayload:
    """The last dashboard document, serialised (and gzipped once), with its version.

    Every open dashboard polls; they share one build per version instead of one each.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = ""
        self._body = b""
        self._gzipped: bytes | None = None

    def get(self, version: str, build: Callable[[], bytes], gzipped: bool) -> bytes:
        with self._lock:
            if version != self._version:
                self._body, self._gzipped, self._version = build(), None, version
            if not gzipped:
                return self._body
            if self._gzipped is None:
                self._gzipped = gzip.compress(self._body, compresslevel=GZIP_LEVEL)
            return self._gzipped


def dashboard_router(extender: Extender) -> APIRouter:
    """``/dashboard``, its static files and ``/api/v1/dashboard``, over ``extender``'s state."""
    router = APIRouter()
    files = static_files()
    latest = _LatestPayload()
    scheduler, state = extender.scheduler, extender.state

    def report_ttl() -> float | None:
        ttl = scheduler.settings.fit.report_ttl
        return ttl.total_seconds() if ttl is not None else None

    @router.get(
        "/dashboard", response_class=HTMLResponse, tags=["dashboard"], include_in_schema=False
    )
    def dashboard_page() -> Response:
        body, media_type = files["index.html"]
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})

    @router.get("/dashboard/static/{name}", tags=["dashboard"], include_in_schema=False)
    def dashboard_file(name: str) -> Response:
        found = files.get(name)
        if found is None:
            raise HTTPException(404, f"no dashboard file {name!r}")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "no-cache"})

    @router.get(
        "/api/v1/dashboard",
        response_model=DashboardView,
        tags=["api"],
        responses={304: {"description": "Unchanged since the ETag given in If-None-Match."}},
    )
    def dashboard_data(request: Request) -> Response:
        """Everything the dashboard draws, in one document; send ``If-None-Match`` to poll cheaply."""
        decisions = list(scheduler.decisions)
        version = dashboard_version(state, decisions)
        etag = f'"{version}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        gzipped = "gzip" in request.headers.get("accept-encoding", "")
        body = latest.get(
            version,
            lambda: dashboard_view(state, decisions, report_ttl()).model_dump_json().encode(),
            gzipped,
        )
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/json", headers=headers)

    return router
