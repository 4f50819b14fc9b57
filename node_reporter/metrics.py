"""The reporter's ``/metrics`` (Prometheus) and ``/healthz``, served by wsgiref.

Each reporter owns its registry (no process-global state), so tests can run
several in one process. ``/healthz`` answers whether discovery keeps cycling; an
unreachable API server does not make the node unhealthy (the reporter is retrying,
and restarting it would not bring the API back).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from contract.objects import NetworkInterface


class ReporterMetrics:
    """Every ``netsched_reporter_*`` series, plus the timestamps ``/healthz`` reads."""

    def __init__(self, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stale_after = stale_after
        self._clock = clock
        self._started = clock()
        self._last_cycle: float | None = None
        self._last_publish: float | None = None
        self._lock = threading.Lock()
        self._interfaces: set[str] = set()
        r = self.registry
        self.observed_bps = Gauge(
            "netsched_reporter_interface_observed_bps",
            "Observed bits per second on the interface over the last sampling window.",
            ["interface", "direction"],
            registry=r,
        )
        self.speed_bps = Gauge(
            "netsched_reporter_interface_speed_bps",
            "Link speed in bits per second (0: unknown and not configured).",
            ["interface"],
            registry=r,
        )
        self.interfaces = Gauge(
            "netsched_reporter_interfaces", "Interfaces in the last report.", registry=r
        )
        self.cycles = Counter(
            "netsched_reporter_cycles", "Discovery cycles by result.", ["result"], registry=r
        )
        self.cycle_seconds = Histogram(
            "netsched_reporter_cycle_seconds",
            "Wall time of one discovery cycle.",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.publishes = Counter(
            "netsched_reporter_publishes",
            "NodeNetwork publish attempts by result.",
            ["result"],
            registry=r,
        )
        self.last_publish = Gauge(
            "netsched_reporter_last_publish_timestamp_seconds",
            "Unix time of the last successful publish (the report's heartbeat).",
            registry=r,
        )

    def record_cycle(self, interfaces: Iterable[NetworkInterface], seconds: float) -> None:
        names = set()
        for interface in interfaces:
            names.add(interface.name)
            self.observed_bps.labels(interface.name, "rx").set(interface.rx_bps)
            self.observed_bps.labels(interface.name, "tx").set(interface.tx_bps)
            self.speed_bps.labels(interface.name).set(interface.speed_mbps * 1_000_000)
        with self._lock:
            for gone in self._interfaces - names:  # renamed or deleted: drop its series
                self.observed_bps.remove(gone, "rx")
                self.observed_bps.remove(gone, "tx")
                self.speed_bps.remove(gone)
            self._interfaces = names
            self._last_cycle = self._clock()
        self.interfaces.set(len(names))
        self.cycles.labels("ok").inc()
        self.cycle_seconds.observe(seconds)

    def record_cycle_error(self) -> None:
        self.cycles.labels("error").inc()

    def record_publish(self, ok: bool) -> None:
        self.publishes.labels("ok" if ok else "error").inc()
        if ok:
            self.last_publish.set_to_current_time()
            with self._lock:
                self._last_publish = self._clock()

    def health(self) -> tuple[bool, dict[str, object]]:
        now = self._clock()
        with self._lock:
            last_cycle, last_publish = self._last_cycle, self._last_publish
        reference = last_cycle if last_cycle is not None else self._started
        healthy = now - reference <= self.stale_after
        return healthy, {
            "status": "ok" if healthy else "stale",
            "lastCycleSecondsAgo": None if last_cycle is None else round(now - last_cycle, 3),
            "lastPublishSecondsAgo": None if last_publish is None else round(now - last_publish, 3),
        }


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes and probes every few seconds would flood the node's log."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a background thread; port 0 picks a free one."""

    def __init__(self, metrics: ReporterMetrics, address: str, port: int) -> None:
        prometheus_app = make_wsgi_app(metrics.registry)

        def app(environ, start_response):  # type: ignore[no-untyped-def]
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                healthy, body = metrics.health()
                start_response(
                    "200 OK" if healthy else "503 Service Unavailable",
                    [("Content-Type", "application/json")],
                )
                return [json.dumps(body).encode()]
            if path == "/metrics":
                return prometheus_app(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics or /healthz\n"]

        try:
            self._server = make_server(address, port, app, _ThreadingServer, _QuietHandler)
        except OSError as error:
            raise OSError(
                error.errno,
                f"metrics.address:port {address}:{port}: cannot listen ({error.strerror})",
            ) from error
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="reporter-metrics", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
