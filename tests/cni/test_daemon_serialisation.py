"""The node daemon runs one invocation at a time and stops only between invocations.

Both promises are check-then-act on ``_Server.one_at_a_time``: "is anything running?"
then run, "is anything running?" then stop. The tests put a second request (or the
stop) exactly where an invocation is running, with a schedule rather than sleeps, so
they fail on every run when the lock is gone. No kernel needed: the invocation is a
stand-in that records when it starts and ends.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cni.daemon import _Server
from tests.interleaving import Schedule


class Recorder:
    """An ``invoke`` that parks where the schedule says and keeps the order of events."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.events: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, env, _config: bytes) -> tuple[int, str]:
        who = env["CNI_CONTAINERID"]
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.events.append(f"{who} starts")
        self.schedule.point("invoked", who=who)
        with self._lock:
            self.running -= 1
            self.events.append(f"{who} ends")
        return 0, json.dumps({"cniVersion": "1.1.0", "container": who})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[_Server, Recorder, Schedule, Path]]:
    schedule = Schedule()
    recorder = Recorder(schedule)
    path = tmp_path / "cni.sock"
    server = _Server(str(path), recorder)
    server.one_at_a_time = schedule.lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, recorder, schedule, path
    schedule.finish()
    server.shutdown()
    server.server_close()
    thread.join(10)


def request(path: Path, container: str) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(path))
        body = {"env": {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": container}, "config": "{}"}
        conn.sendall(json.dumps(body).encode())
        conn.shutdown(socket.SHUT_WR)
        return json.loads(b"".join(iter(lambda: conn.recv(65536), b"")))


def test_a_request_arriving_during_an_invocation_waits_for_it(served) -> None:
    _, recorder, schedule, path = served
    schedule.stop("a", at="invoked")
    schedule.start("client-a", request, path, "a")
    assert schedule.any_event() == ("a", "paused")
    schedule.start("client-b", request, path, "b")
    _, b_did = schedule.any_event()  # from the daemon's handler thread for b
    schedule.release("a")
    assert schedule.next_event("client-a") == "done"
    schedule.finish()

    assert recorder.most_at_once == 1
    assert recorder.events == ["a starts", "a ends", "b starts", "b ends"]
    assert json.loads(schedule.results["client-b"]["stdout"])["container"] == "b"
    assert b_did == "blocked"


@pytest.mark.parametrize("paused_at", ["invoked", "answered"])
def test_stopping_waits_for_the_running_invocation_and_its_reply(served, paused_at) -> None:
    """A stop waits for the invocation in progress and refuses the next. It also waits for
    the reply: the daemon's process exits as soon as it has stopped, taking the handler
    threads with it, so a stop between an invocation's end and its reply would leave the
    client with no answer, which it reports as "try again" (code 11) for an ADD that was
    done. The handler is stopped in its invocation, or after it before the reply."""
    server, recorder, schedule, path = served
    answer = server.answer

    def answer_then_pause(raw: bytes) -> tuple[int, str]:
        code, output = answer(raw)
        schedule.point("answered", who=json.loads(raw)["env"]["CNI_CONTAINERID"])
        return code, output

    server.answer = answer_then_pause
    schedule.stop("a", at=paused_at)
    schedule.start("client-a", request, path, "a")
    assert schedule.any_event() == ("a", "paused")

    def stop() -> None:
        server.finish_running()
        recorder.events.append("stopped")

    schedule.start("stopper", stop)
    stopper_did = schedule.next_event("stopper")
    schedule.release("a")
    schedule.finish()

    assert stopper_did == "blocked"
    assert recorder.events == ["a starts", "a ends", "stopped"]
    assert json.loads(schedule.results["client-a"]["stdout"])["container"] == "a"
    late = request(path, "late")
    assert late["exitCode"] == 1 and json.loads(late["stdout"])["code"] == 11  # try again later
    assert recorder.events == ["a starts", "a ends", "stopped"]
