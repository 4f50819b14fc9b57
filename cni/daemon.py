"""``netsched-cni daemon``: the node daemon that runs invocations for the thin client.

It runs the very same ``cni.main.run`` as the executable, with pydantic and pyroute2
imported once (see ``cni.client`` for why, and for the wire format). Requests are read
concurrently (a client that connects and stalls holds up nobody) and run one at a time,
each with its reply, like separate plugin processes taking the state directory's lock. The socket is created
mode 0600 (and its directory 0700 when the daemon makes it): only root may call it.

DELs that found no daemon wait in ``pending-del/`` beside the socket (``cni.client.hand_off``).
The daemon runs them once it listens and before it answers anyone (a client arriving
meanwhile waits in the backlog), and again whenever one appears while it serves (a client
that found no daemon an instant before it started); a stopping daemon hands off the DELs
it can no longer run. So a DEL is never lost, and never overtaken by a later ADD.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import socketserver
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cni.client import MAX_MESSAGE_BYTES, hand_off, pending_dir
from cni.errors import CNIError, ErrorCode
from cni.versions import SPEC_VERSION

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    Invoke = Callable[[Mapping[str, str], bytes], tuple[int, str]]

log = logging.getLogger("netsched.cni.daemon")

READ_TIMEOUT_S = 10.0


def parse_request(raw: bytes) -> tuple[dict[str, str], bytes]:
    """(CNI_* environment, config) of one request; a malformed one is a DECODE_FAILURE."""
    try:
        body = json.loads(raw)
        env, config = body["env"], body["config"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise CNIError(ErrorCode.DECODE_FAILURE, "daemon request is not {env, config} JSON",
                       repr(raw[:200])) from exc
    if not isinstance(config, str) or not isinstance(env, dict) or not all(
        isinstance(k, str) and k.startswith("CNI_") and isinstance(v, str) for k, v in env.items()
    ):
        raise CNIError(ErrorCode.DECODE_FAILURE,
                       "daemon request: env must map CNI_* names to strings, config be a string")
    return env, config.encode()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    # Every pod of a node may start at once; the kernel caps this at net.core.somaxconn.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, path: str, invoke: Invoke) -> None:
        self.invoke = invoke
        self.socket_path = path
        self.pending = Path(pending_dir(path))
        # Re-entrant: a handler holds it from its invocation until its reply is written.
        self.one_at_a_time = threading.RLock()
        self.stopping = False
        super().__init__(path, _Handler)

    def answer(self, raw: bytes) -> tuple[int, str]:
        try:
            env, config = parse_request(raw)
        except CNIError as error:
            return 1, error.to_json(SPEC_VERSION)
        with self.one_at_a_time:
            if self.stopping:  # never start work the process exit would cut in half
                if env.get("CNI_COMMAND") == "DEL":
                    hand_off(self.socket_path, raw)  # the next daemon runs it
                    return 0, ""
                error = CNIError(ErrorCode.TRY_AGAIN_LATER, "the netsched-cni daemon is stopping")
                return 1, error.to_json(SPEC_VERSION)
            started = time.perf_counter()
            code, output = self.invoke(env, config)
        log.info("%s %s %s: exit %d in %.1f ms", env.get("CNI_COMMAND", "?"),
                 env.get("CNI_CONTAINERID", "-"), env.get("CNI_IFNAME", "-"), code,
                 (time.perf_counter() - started) * 1000)
        return code, output

    def run_pending(self) -> None:
        """Run every handed-off DEL; one that fails is kept as ``*.failed`` and logged."""
        try:
            waiting = sorted(self.pending.glob("*.json"), key=lambda p: p.stat().st_mtime)
        except OSError:  # no directory yet, or a file taken meanwhile
            return
        for path in waiting:
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                command = parse_request(raw)[0].get("CNI_COMMAND")
            except CNIError:
                command = None
            if command != "DEL":
                log.warning("pending %s is not a DEL request: removed", path.name)
                path.unlink(missing_ok=True)
                continue
            code, output = self.answer(raw)
            if code == 0:
                path.unlink(missing_ok=True)
            else:
                path.replace(path.with_suffix(".failed"))
                log.error("pending DEL %s failed, kept as %s: %s", path.name,
                          path.with_suffix(".failed").name, output)

    def service_actions(self) -> None:
        """Between requests (every poll interval): DELs handed off while the daemon started."""
        if any(self.pending.glob("*.json")):
            self.run_pending()

    def finish_running(self) -> None:
        """Wait for the invocation in progress and its reply; refuse those still waiting
        for their turn. The process exits right after, taking the handler threads with it:
        a reply still unwritten would turn an ADD that was done into "try again"."""
        with self.one_at_a_time:
            self.stopping = True


class _Handler(socketserver.StreamRequestHandler):
    timeout = READ_TIMEOUT_S
    server: _Server

    def handle(self) -> None:
        try:
            raw = self.rfile.read(MAX_MESSAGE_BYTES + 1)
        except OSError as exc:  # stalled or vanished client: nothing to answer
            log.warning("dropped a request: %s", exc)
            return
        if len(raw) > MAX_MESSAGE_BYTES:
            error = CNIError(ErrorCode.DECODE_FAILURE,
                             f"daemon request larger than {MAX_MESSAGE_BYTES} bytes")
            self._reply(1, error.to_json(SPEC_VERSION))
            return
        with self.server.one_at_a_time:  # the reply is part of the invocation: see finish_running
            self._reply(*self.server.answer(raw))

    def _reply(self, code: int, output: str) -> None:
        try:
            self.wfile.write(json.dumps({"exitCode": code, "stdout": output}).encode())
        except OSError as exc:  # the client gave up; the work is done and recorded
            log.warning("client left before the answer: %s", exc)


def _prepare_socket_path(path: str) -> None:
    """Create the 0700 directory; remove a socket left by a daemon that died."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise CNIError(ErrorCode.INVALID_CONFIG, f"socket: {path!r} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: stale
            return
    raise CNIError(ErrorCode.INVALID_CONFIG, f"socket: a daemon already listens at {path!r}")


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set from now on. The daemon calls this before its slow
    imports: as PID 1 in a container a signal that finds no handler is dropped, and the
    runtime would kill the daemon at the end of the grace period."""
    stop = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def serve(path: str, invoke: Invoke, ready: Callable[[], None] | None = None,
          stop: threading.Event | None = None) -> None:
    """Answer requests on ``path`` until ``stop`` is set (by default: SIGTERM or SIGINT);
    the socket is removed after. A stop that came before starts nothing."""
    stop = stop or stop_on_signals()
    if stop.is_set():
        return
    _prepare_socket_path(path)
    umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
    try:
        server = _Server(path, invoke)
    finally:
        os.umask(umask)

    def stop_when_asked() -> None:
        stop.wait()
        log.info("stopping")
        server.shutdown()  # also when serve_forever has not begun: it then returns at once

    threading.Thread(target=stop_when_asked, name="stop", daemon=True).start()
    try:
        server.run_pending()
        log.info("serving on %s", path)
        if ready is not None:
            ready()
        server.serve_forever()
    finally:
        server.finish_running()
        server.server_close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
