"""Both thin clients, the package's Python one and the native one, answer alike.

The kernel tests (test_daemon.py) run every forwarded invocation through both against
the real daemon. These tests cover what a real daemon never does on purpose: the stand-in
daemons below answer late, answer garbage, answer too much, or hang up, as a daemon that
is being killed, restarted or is wedged would. Each case runs the two executables on the
same input and compares exit code and stdout (error details are free text and differ:
each names its own system error).
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cni.versions import version_report
from tests.cni.runner import REPO, THIN_CLIENTS, client_dir

BASE = {"cniVersion": "1.0.0", "name": "net", "type": "netsched-cni"}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x",
       "CNI_IFNAME": "eth0", "CNI_ARGS": "K8S_POD_NAME=web", "CNI_PATH": "/opt/cni/bin"}


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def call(argv: list[str], stdin: bytes, env: dict[str, str]) -> Done:
    started = time.monotonic()
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=60,
                          check=False)
    return Done(done.returncode, done.stdout.decode(), done.stderr.decode(),
                time.monotonic() - started)


def both(stdin: bytes, env: dict[str, str], argv: dict[str, list[str]] | None = None
         ) -> dict[str, Done]:
    """Each client's answer to the same invocation."""
    argv = argv or {client: [str(client_dir(client) / "netsched-cni")] for client in THIN_CLIENTS}
    return {client: call(argv[client], stdin, env) for client in THIN_CLIENTS}


def config(**fields: Any) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


@dataclass
class StandIn:
    """A Unix socket server that answers every connection with ``answer(request)``."""

    path: Path
    answer: Callable[[bytes, socket.socket], None]
    requests: list[bytes] = field(default_factory=list)


@contextmanager
def stand_in_daemon(path: Path, answer: Callable[[bytes, socket.socket], None],
                    backlog: int = 16, busy_s: float = 0.0) -> Iterator[StandIn]:
    """Serves one connection at a time; ``busy_s`` passes before the first accept."""
    served = StandIn(path, answer)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(backlog)
    stop = threading.Event()

    def serve() -> None:
        time.sleep(busy_s)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                raw = b"".join(iter(lambda: conn.recv(65536), b""))
                served.requests.append(raw)
                answer(raw, conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(10)


def sends(data: bytes) -> Callable[[bytes, socket.socket], None]:
    return lambda _request, conn: conn.sendall(data)


@pytest.fixture(autouse=True)
def _built(native_client: Path) -> None:
    """Every test here runs the native client."""


def test_the_request_carries_only_cni_variables_and_stdin_and_the_answer_is_relayed(tmp_path):
    path = tmp_path / "d.sock"
    stdin = config(socket=str(path), note="ünïcode stays as sent")
    env = {**ENV, "PATH": "/usr/bin:/bin", "HOME": "/root", "CNI_EXTRA": "x=y=z"}
    reply = json.dumps({"exitCode": 3, "stdout": '{"cniVersion": "1.0.0", "code": 100}'})
    with stand_in_daemon(path, sends(reply.encode())) as daemon:
        answers = both(stdin, env)
    for done in answers.values():
        assert (done.code, done.stdout) == (3, '{"cniVersion": "1.0.0", "code": 100}\n')
    requests = [json.loads(raw) for raw in daemon.requests]
    assert len(requests) == 2 and requests[0] == requests[1]
    assert requests[0] == {"env": {k: v for k, v in env.items() if k.startswith("CNI_")},
                           "config": stdin.decode()}


def test_an_empty_stdout_is_relayed_as_nothing(tmp_path):
    path = tmp_path / "d.sock"
    with stand_in_daemon(path, sends(b'{"exitCode": 0, "stdout": ""}')):
        answers = both(config(socket=str(path)), {**ENV, "CNI_COMMAND": "DEL"})
    assert {(d.code, d.stdout) for d in answers.values()} == {(0, "")}


@pytest.mark.parametrize("requested", ["0.4.0", "1.1.0", "9.9.9", None])
def test_version_is_answered_by_the_client_byte_for_byte_alike(tmp_path, requested):
    fields = {"socket": str(tmp_path / "never-asked.sock")}
    stdin = config(**fields, cniVersion=requested) if requested else b""
    answers = both(stdin, {"CNI_COMMAND": "VERSION"})
    assert answers["python"].stdout == answers["native"].stdout
    assert answers["native"].code == 0
    assert json.loads(answers["native"].stdout) == version_report(requested)


def errors(answers: dict[str, Done]) -> dict[str, tuple[int, Any]]:
    """(exit code, error without details) of each client."""
    return {client: (done.code, {k: v for k, v in done.error.items() if k != "details"})
            for client, done in answers.items()}


def assert_same_error(answers: dict[str, Done], code: int, msg: str) -> None:
    seen = errors(answers)
    assert seen["python"] == seen["native"], seen
    assert seen["native"] == (1, {"cniVersion": "1.0.0", "code": code, "msg": msg}), seen
    assert all(done.error.get("details") for done in answers.values()), answers


def test_without_a_socket_the_native_client_says_it_only_forwards(native_client: Path):
    """The package's executable runs the plugin in-process then; the native one cannot."""
    done = call([str(native_client)], config(), ENV)
    assert done.code == 1
    assert done.error == {"cniVersion": "1.0.0", "code": 7,
                          "msg": "socket: not set, and this netsched-cni only forwards to the "
                                 "daemon", "details": done.error["details"]}


def test_no_daemon_is_try_again_later(tmp_path):
    path = tmp_path / "nobody.sock"
    assert_same_error(both(config(socket=str(path)), ENV), 11,
                      f"socket: no netsched-cni daemon answers at '{path}'")


def test_a_daemon_that_hangs_up_without_answering_is_try_again_later(tmp_path):
    path = tmp_path / "d.sock"
    with stand_in_daemon(path, lambda _request, _conn: None):  # closes: a daemon being killed
        answers = both(config(socket=str(path)), ENV)
    assert_same_error(answers, 11, f"socket: no netsched-cni daemon answers at '{path}'")
    assert "closed without an answer" in answers["native"].error["details"]


@pytest.mark.parametrize("client", THIN_CLIENTS)
def test_a_full_listen_backlog_makes_clients_wait_not_fail(tmp_path, client):
    """Many pods at once on a busy daemon: connects beyond the backlog wait for a place
    (a blocking connect, docs/cni.md step 3) instead of failing at once with EAGAIN."""
    path = tmp_path / "d.sock"
    argv = [str(client_dir(client) / "netsched-cni")]
    with stand_in_daemon(path, sends(b'{"exitCode": 0, "stdout": "{}"}'), backlog=1,
                         busy_s=1.0):
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: call(argv, config(socket=str(path)), ENV),
                                    range(8)))
    assert [(d.code, d.stdout) for d in answers] == [(0, "{}\n")] * 8, answers


@pytest.mark.parametrize("client", THIN_CLIENTS)
def test_a_del_no_daemon_answers_is_handed_off_and_succeeds(tmp_path, client):
    """docs/cni.md, "The thin client's protocol", step 5; test_daemon.py shows the daemon
    running what each client leaves."""
    path = tmp_path / "run" / "cni.sock"
    stdin = config(socket=str(path))
    env = {**ENV, "CNI_COMMAND": "DEL", "PATH": "/usr/bin"}
    argv = [str(client_dir(client) / "netsched-cni")]
    for _ in range(2):  # a runtime repeating the DEL leaves the same one file
        done = call(argv, stdin, env)
        assert (done.code, done.stdout) == (0, ""), done
    pending = path.parent / "pending-del"
    (written,) = pending.iterdir()
    assert written.suffix == ".json" and oct(written.stat().st_mode & 0o777) == oct(0o600)
    assert oct(pending.stat().st_mode & 0o777) == oct(0o700)
    assert json.loads(written.read_bytes()) == {
        "env": {k: v for k, v in env.items() if k.startswith("CNI_")}, "config": stdin.decode()}
    assert written.name == hashlib.sha256(written.read_bytes()).hexdigest() + ".json"

    add = call(argv, stdin, ENV)
    assert (add.code, add.error["code"]) == (1, 11), "only DEL is handed off"
    assert len(list(pending.iterdir())) == 1


def test_a_del_that_cannot_be_handed_off_is_try_again_later(tmp_path):
    blocker = tmp_path / "run"
    blocker.write_text("a file where the socket's directory should be")
    path = blocker / "cni.sock"
    answers = both(config(socket=str(path)), {**ENV, "CNI_COMMAND": "DEL"})
    assert_same_error(answers, 11, f"socket: no netsched-cni daemon answers at '{path}'")
    assert all("directory" in d.error["details"].lower() for d in answers.values()), answers


@pytest.mark.parametrize("reply", [b"not json", b'{"exitCode": 0}', b'{"stdout": ""}', b"[1]",
                                   b'{"exitCode": null, "stdout": "x"}',
                                   b'{"exitCode": "1", "stdout": "x"}',
                                   b'{"exitCode": 1.5, "stdout": "x"}',
                                   b'{"exitCode": true, "stdout": "x"}',
                                   b'{"exitCode": 0, "stdout": 5}',
                                   b'{"ExitCode": 0, "Stdout": "x"}',
                                   b'{"exitCode": 0, "stdout": null}'])
def test_a_malformed_answer_is_an_io_failure(tmp_path, reply):
    path = tmp_path / "d.sock"
    with stand_in_daemon(path, sends(reply)):
        answers = both(config(socket=str(path)), ENV)
    assert_same_error(answers, 5, f"socket: the daemon at '{path}' sent no valid reply")


def test_an_oversized_answer_is_refused(tmp_path):
    path = tmp_path / "d.sock"
    huge = json.dumps({"exitCode": 0, "stdout": "x" * (4 * 1024 * 1024)}).encode()
    with stand_in_daemon(path, sends(huge)):
        answers = both(config(socket=str(path)), ENV)
    assert_same_error(answers, 11, f"socket: no netsched-cni daemon answers at '{path}'")
    assert all("more than 4194304 bytes" in d.error["details"] for d in answers.values())


def test_a_config_that_is_not_utf8_is_a_decode_failure(tmp_path):
    path = tmp_path / "d.sock"
    stdin = config(socket=str(path), name="x").replace(b'"x"', b'"\xff"')
    with stand_in_daemon(path, sends(b'{"exitCode": 0, "stdout": ""}')) as daemon:
        answers = both(stdin, ENV)
    # Python reads no "socket" from it and parses it in-process; both refuse it as JSON
    seen = {client: (d.code, d.error["code"], d.error["cniVersion"]) for client, d in answers.items()}
    assert seen == {client: (1, 6, "1.1.0") for client in THIN_CLIENTS}, answers
    assert daemon.requests == [], "nothing is sent"


def test_version_of_a_config_that_is_not_utf8_is_still_answered(tmp_path):
    """VERSION is always the client's own answer: the config counts as having no
    cniVersion then (Python's json refuses it), not as an error."""
    stdin = config(socket=str(tmp_path / "never-asked.sock"), cniVersion="0.4.0",
                   name="x").replace(b'"x"', b'"\xff"')
    answers = both(stdin, {"CNI_COMMAND": "VERSION"})
    assert {(d.code, d.stdout) for d in answers.values()} == {
        (0, json.dumps(version_report(None)) + "\n")}, answers


def test_a_wedged_daemon_times_out_as_try_again_later(tmp_path):
    """Both clients with a 1 s timeout instead of 120 s: the same code paths."""
    native = tmp_path / "netsched-cni"
    build = subprocess.run([str(REPO / "cni/thin_client/build.sh"), str(native),
                            "-DREPLY_TIMEOUT_S=1"], capture_output=True, text=True, timeout=300,
                           check=False)
    assert build.returncode == 0, build.stderr
    python = [sys.executable, "-c", "import sys, cni.client, cni.main; "
              "cni.client.CLIENT_TIMEOUT_S = 1.0; sys.exit(cni.main.main())"]
    path = tmp_path / "d.sock"
    release = threading.Event()
    with stand_in_daemon(path, lambda _request, _conn: release.wait(30)):
        try:
            answers = both(config(socket=str(path)), {**ENV, "PYTHONPATH": str(REPO)},
                           argv={"python": python, "native": [str(native)]})
        finally:
            release.set()
    assert_same_error(answers, 11, f"socket: no netsched-cni daemon answers at '{path}'")
    for done in answers.values():
        assert 1.0 <= done.seconds < 20, done
    assert "timeout" in answers["native"].error["details"]


@pytest.mark.parametrize(("argv", "code", "stream"), [(["--help"], 0, "stdout"),
                                                       (["add"], 2, "stderr")])
def test_a_person_gets_the_usage_without_the_client_waiting_on_stdin(
        native_client: Path, argv: list[str], code: int, stream: str) -> None:
    with subprocess.Popen([str(native_client), *argv], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as plugin:
        assert plugin.wait(timeout=20) == code  # stdin stays open: it must not be read
        output = getattr(plugin, stream).read()
    assert output.startswith("usage: netsched-cni") and "netsched-cni daemon" in output
