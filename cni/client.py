"""The thin client: ``netsched-cni`` handing one invocation to the node daemon.

A runtime starts the plugin executable afresh for every ADD, DEL and CHECK. Started cold,
Python with pydantic and pyroute2 spends about 250 ms importing before its first netlink
message, while the netlink work itself takes a few milliseconds. So, as Multus's "thick"
plugin does, the executable can be a thin client: when its config names a ``socket``, it
sends the ``CNI_*`` variables and the config over that Unix socket to ``netsched-cni
daemon`` (``cni.daemon``, the CNI DaemonSet on the node) and prints the answer.

The wire format is one JSON request, ``{"env": {CNI_*: ...}, "config": "<stdin>"}``, sent
before a half-close, and one JSON reply, ``{"exitCode": n, "stdout": "..."}``. This module
imports only the standard library, and little of it: every ADD pays for its imports, on
a host's python3 that may be older than the daemon's.
"""

from __future__ import annotations

import json
import socket

from cni.errors import CNIError, ErrorCode

# typing's own import costs every ADD ~4 ms; type checkers read this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SOCKET = "/run/netsched/cni.sock"
# A config with a prevResult is a few KiB; anything near this bound is not a CNI message.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# The runtime has its own deadline; this one only keeps a wedged daemon from hanging ADD.
CLIENT_TIMEOUT_S = 120.0


def forward(socket_path: str, environ: Mapping[str, str], config: bytes) -> tuple[int, str]:
    """Have the daemon at ``socket_path`` run one invocation: (exit code, stdout).

    Raises :class:`CNIError` ``TRY_AGAIN_LATER`` when no daemon answers there (it may be
    restarting: the runtime retries), ``IO_FAILURE`` when the answer is not one.
    """
    try:
        text = config.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CNIError(ErrorCode.DECODE_FAILURE, "config is not UTF-8 JSON", str(exc)) from exc
    request = json.dumps({
        "env": {key: value for key, value in environ.items() if key.startswith("CNI_")},
        "config": text,
    }).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CLIENT_TIMEOUT_S)
            conn.connect(socket_path)
            conn.sendall(request)
            conn.shutdown(socket.SHUT_WR)
            reply = _read_to_end(conn, MAX_MESSAGE_BYTES)
        if not reply:  # the daemon went away (stopped, restarted) before answering
            raise ConnectionAbortedError("closed without an answer")
    except OSError as exc:
        raise CNIError(ErrorCode.TRY_AGAIN_LATER,
                       f"socket: no netsched-cni daemon answers at {socket_path!r}",
                       f"{type(exc).__name__}: {exc}") from exc
    try:
        body = json.loads(reply)
        return int(body["exitCode"]), str(body["stdout"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CNIError(ErrorCode.IO_FAILURE,
                       f"socket: the daemon at {socket_path!r} sent no valid reply",
                       repr(reply[:200])) from exc


def _read_to_end(conn: socket.socket, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise OSError(f"more than {limit} bytes")
        chunks.append(chunk)
