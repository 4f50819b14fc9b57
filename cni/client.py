"""The thin client: ``netsched-cni`` handing one invocation to the node daemon.

A runtime starts the plugin executable afresh for every ADD, DEL and CHECK. Started cold,
Python with pydantic and pyroute2 spends about 250 ms importing before its first netlink
message, while the netlink work itself takes a few milliseconds. So, as Multus's "thick"
plugin does, the executable can be a thin client: when its config names a ``socket``, it
sends the ``CNI_*`` variables and the config over that Unix socket to ``netsched-cni
daemon`` (``cni.daemon``, the CNI DaemonSet on the node) and prints the answer.

The wire format is one JSON request, ``{"env": {CNI_*: ...}, "config": "<stdin>"}``, sent
before a half-close, and one JSON reply, ``{"exitCode": n, "stdout": "..."}``. This module
imports only the standard library, and little of it: every ADD pays for its imports.
Nodes run the native client (``cni/thin_client``), which speaks the same wire format and
answers with the same errors (``tests/cni/test_thin_clients.py`` holds them to it).

A DEL that gets no answer (no daemon, a killed one, one stopping) is handed off instead of
failing: the request is written to ``pending-del/`` beside the socket and the plugin
exits 0, so the runtime goes on to free the pod's address and namespace; the daemon runs
every handed-off DEL when it starts, before it answers anything else. docs/cni.md,
"The thin client's protocol", is the contract a client in another language follows.
"""

from __future__ import annotations

import json
import os
import socket
import struct

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
# A connect waits this long for a place in a full listen backlog (many pods at once).
CONNECT_TIMEOUT_S = 10.0
PENDING_DEL_DIR = "pending-del"


def pending_dir(socket_path: str) -> str:
    """Where DELs wait for the daemon: ``pending-del/`` in the socket's directory."""
    return os.path.join(os.path.dirname(socket_path) or ".", PENDING_DEL_DIR)


def hand_off(socket_path: str, request: bytes) -> str:
    """Leave one DEL ``request`` for the daemon's next start; returns the file written.

    Named by the request's SHA-256 (a runtime repeating a DEL writes the same file) and
    written under a temporary name first, so the daemon never reads half a request.
    """
    import hashlib  # only here: every ADD pays for top-level imports

    directory = pending_dir(socket_path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, hashlib.sha256(request).hexdigest() + ".json")
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, request)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def forward(socket_path: str, environ: Mapping[str, str], config: bytes) -> tuple[int, str]:
    """Have the daemon at ``socket_path`` run one invocation: (exit code, stdout).

    Raises :class:`CNIError` ``TRY_AGAIN_LATER`` when no daemon answers there (it may be
    restarting: the runtime retries), ``IO_FAILURE`` when the answer is not one. A DEL
    nobody answers is handed off (:func:`hand_off`) and succeeds.
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
        reply = exchange(socket_path, request)
    except OSError as exc:
        if environ.get("CNI_COMMAND") == "DEL":
            try:
                hand_off(socket_path, request)
                return 0, ""
            except OSError as spool_error:
                exc = spool_error
        raise CNIError(ErrorCode.TRY_AGAIN_LATER,
                       f"socket: no netsched-cni daemon answers at {socket_path!r}",
                       f"{type(exc).__name__}: {exc}") from exc
    try:
        body = json.loads(reply)
        code, stdout = body["exitCode"], body["stdout"]
        if type(code) is not int or not isinstance(stdout, str):
            raise TypeError("exitCode must be an integer, stdout a string")
        return code, stdout
    except (ValueError, KeyError, TypeError) as exc:
        raise CNIError(ErrorCode.IO_FAILURE,
                       f"socket: the daemon at {socket_path!r} sent no valid reply",
                       repr(reply[:200])) from exc


def exchange(socket_path: str, request: bytes) -> bytes:
    """Send ``request``, half-close, read the reply; OSError when no daemon answers.

    The connect blocks (with ``SO_SNDTIMEO`` as its deadline): a non-blocking connect to a
    Unix socket whose backlog is full fails at once with EAGAIN, which turned a burst of
    pods into spurious "no daemon" errors.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        seconds = int(CONNECT_TIMEOUT_S)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                        struct.pack("ll", seconds, int((CONNECT_TIMEOUT_S - seconds) * 1e6)))
        conn.connect(socket_path)
        conn.settimeout(CLIENT_TIMEOUT_S)
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        reply = _read_to_end(conn, MAX_MESSAGE_BYTES)
    if not reply:  # the daemon went away (stopped, restarted) before answering
        raise ConnectionAbortedError("closed without an answer")
    return reply


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
