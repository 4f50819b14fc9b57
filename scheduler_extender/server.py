"""Running the extender app under uvicorn, in the foreground or in a background thread."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from typing import Self

import uvicorn
from fastapi import FastAPI


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    """With it, the TLS handshake requires a client certificate issued by this CA (PEM):
    what kube-scheduler's extender ``tlsConfig`` (certFile, keyFile, caFile) presents."""
    http2: bool = True
    """With TLS, offer HTTP/2 beside HTTP/1.1 (``uvicorn_server``); off, HTTP/1.1 only."""
    log_level: str = "warning"

    def problems(self) -> list[str]:
        problems = []
        if bool(self.tls_cert) != bool(self.tls_key):
            problems.append("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_cert:
            problems.append("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)")
        return problems

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def uvicorn_server(app: FastAPI, options: ServeOptions) -> uvicorn.Server:
    """uvicorn as netsched serves: with TLS it offers HTTP/2 beside HTTP/1.1 (ALPN).

    kube-scheduler's extender client is a Go ``http.Transport`` set up by
    ``utilnet.SetTransportDefaults``: over TLS it asks for HTTP/2 and then sends every
    request on one connection. Over HTTP/1.1 the same client keeps only two idle
    connections (Go's ``DefaultMaxIdleConnsPerHost``), so requests in flight beyond two
    open new ones, each a TLS handshake with a client certificate. With Go's own client
    sending filters in waves (``benchmarks/extender_connections.py``), the extender spent
    1.2-1.5 ms of CPU a request over TLS and HTTP/1.1, against 0.26-0.39 ms over HTTP/2,
    as much as over plain HTTP/1.1. Without TLS, Go speaks HTTP/1.1 only, and httptools
    parses it. uvicorn's HTTP/2 is zttp's, an alpha parser: ``tests/security`` sends it
    64 filters at once from Go's net/http, and a 1 MB filter and binds in flight together
    from httpx. ``ServeOptions.http2`` off (``netsched serve --no-http2``) serves TLS with
    httptools and HTTP/1.1 alone, as before HTTP/2 was offered: the way back should zttp
    misbehave, at the cost of the handshakes above."""
    http2 = {"http": "zttp", "http2": True} if options.tls_cert and options.http2 else {}
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        ssl_certfile=options.tls_cert,
        ssl_keyfile=options.tls_key,
        ssl_ca_certs=options.tls_client_ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED if options.tls_client_ca else ssl.CERT_NONE,
        log_level=options.log_level,
        access_log=False,
        **http2,
    )
    return uvicorn.Server(config)


class BackgroundServer:
    """uvicorn in a thread, for the demo's traffic driver and for tests over a real socket."""

    def __init__(self, app: FastAPI, options: ServeOptions) -> None:
        self.options = options
        self.server = uvicorn_server(app, options)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        """Where to reach the server from this machine (loopback when it listens on all addresses)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self.options.host, self.options.host)
        return f"{self.options.scheme}://{host}:{self.port}"

    @property
    def port(self) -> int:
        if self.options.port:
            return self.options.port
        return self.server.servers[0].sockets[0].getsockname()[1]

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.options.host}:{self.options.port}")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
