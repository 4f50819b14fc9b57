"""The node daemon and its thin client, on a real kernel.

With ``socket`` in the config the executable only forwards; the daemon, running in the
node's namespace as the CNI DaemonSet would, does the work. Results, errors and clean-up
must be exactly those of the in-process plugin, whatever clients do to the socket. Every
test that forwards runs twice (``thin_client``): through the package's Python executable
and through the native client that nodes install.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cni.errors import CNIError
from tests.cni.lab import Lab, ipv4_of, link_names, qdiscs, sh
from tests.cni.runner import (Daemon, PluginError, client_dir, netsched_cni_binary,
                              running_daemon)
from tests.cni.test_lifecycle import RATES, assert_nothing_of_ours
from tests.cni.topologies import MBIT, Node, attachment, lone_node, switched_nodes

pytestmark = pytest.mark.kernel


@pytest.fixture
def daemon(lab: Lab) -> Iterator[tuple[Node, Daemon]]:
    node = switched_nodes(lab)[0]
    with running_daemon(node.netns, lab.workdir / node.netns / "run" / "cni.sock") as running:
        yield node, running
    log = running.process.stderr.read()
    assert running.process.returncode == 0, log
    assert not running.socket_path.exists(), "the daemon removes its socket on SIGTERM"
    assert re.search(r"ADD \S+ eth0: exit 0 in [\d.]+ ms", log), "every invocation is logged"


def ask(socket_path: Path, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(socket_path))
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        return json.loads(b"".join(iter(lambda: conn.recv(65536), b"")))


def test_add_check_del_through_the_daemon_match_in_process(lab: Lab, daemon,
                                                           thin_client: str) -> None:
    node, running = daemon

    def net1(index: int) -> dict:
        return attachment(node, mode="vxlan", vni=760, ip=f"10.76.0.{index}/24",
                          mac=f"02:00:00:00:76:0{index}", ingress=30 * MBIT, egress=20 * MBIT)

    local = node.runtime(extra={"attachments": [net1(4)]})
    remote = node.runtime(extra={"attachments": [net1(5)], "socket": str(running.socket_path)},
                          client=thin_client)
    local_pod, local_cid, in_process = node.pod(local, runtime_config=RATES)
    pod, cid, through_daemon = node.pod(remote, runtime_config=RATES)

    def shape(result: dict) -> list:
        """Interfaces in order: the pod's by name, the node's (random veth names) as such."""
        return [(i["name"] if "sandbox" in i else "node side", "sandbox" in i)
                for i in result["interfaces"]]

    assert shape(through_daemon) == shape(in_process)
    index = shape(through_daemon).index(("net1", True))
    assert through_daemon["interfaces"][index]["mac"] == "02:00:00:00:76:05"
    assert ipv4_of(pod, "net1") == "10.76.0.5"
    assert {q["kind"] for q in qdiscs(pod, "eth0")} >= {"tbf", "ingress"}
    assert "net1" in link_names(pod)
    remote.check(cid, lab.path(pod))
    remote.delete(cid, lab.path(pod))
    local.delete(local_cid, lab.path(local_pod))
    for gone in (pod, local_pod):
        assert_nothing_of_ours(node, gone, eth0_expected=False)


def test_errors_are_the_plugins_own_and_the_daemon_keeps_serving(lab: Lab, daemon,
                                                                 thin_client: str) -> None:
    node, running = daemon
    bad = {**attachment(node, mode="vxlan", vni=770, ip="10.77.0.5/24", mac="02:00:00:00:77:05"),
           "vni": 0}
    errors = []
    ways = (({}, "python"), ({"socket": str(running.socket_path)}, thin_client))
    for attempt, (extra, client) in enumerate(ways):
        runtime = node.runtime(extra={"attachments": [bad], **extra}, client=client)
        pod = lab.netns("pd")
        with pytest.raises(PluginError) as failure:
            runtime.add(f"ctr-bad{attempt}", lab.path(pod), runtime_config=RATES)
        errors.append(failure.value.error)
        assert_nothing_of_ours(node, pod, eth0_expected=True)
    assert errors[0] == errors[1]
    assert errors[1]["code"] == 7 and errors[1]["msg"].startswith("attachments[0].vni: 0")

    fine = node.runtime(extra={"socket": str(running.socket_path)}, client=thin_client)
    pod, cid, _ = node.pod(fine, runtime_config=RATES)
    fine.delete(cid, lab.path(pod))


def test_no_daemon_means_try_again_later_and_nothing_done(lab: Lab, thin_client: str) -> None:
    node = lone_node(lab)
    missing = lab.workdir / "no-daemon.sock"
    runtime = node.runtime(extra={"socket": str(missing)}, client=thin_client)
    pod = lab.netns("pd")
    with pytest.raises(PluginError) as failure:
        runtime.add("ctr-nodaemon", lab.path(pod), runtime_config=RATES)
    assert failure.value.code == 11, failure.value.error
    assert str(missing) in failure.value.error["msg"]
    assert_nothing_of_ours(node, pod, eth0_expected=True)


def open_fds(process: subprocess.Popen) -> int:
    return len(list(Path(f"/proc/{process.pid}/fd").iterdir()))


def test_concurrent_adds_and_dels_leak_nothing(lab: Lab, daemon, thin_client: str) -> None:
    node, running = daemon
    runtime = node.runtime(extra={"socket": str(running.socket_path)}, client=thin_client)
    warm = node.runtime(extra={"socket": str(running.socket_path)}, client=thin_client)
    pod, cid, _ = node.pod(warm, runtime_config=RATES)  # first use opens what stays open
    warm.delete(cid, lab.path(pod))
    fds_before = open_fds(running.process)
    pods = [lab.netns("pd") for _ in range(6)]
    failures: list[BaseException] = []

    def each(action) -> None:
        def one(index: int) -> None:
            try:
                action(index)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(pods))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures

    each(lambda i: runtime.add(f"ctr-par{i}", lab.path(pods[i]), runtime_config=RATES))
    for pod in pods:
        assert {q["kind"] for q in qdiscs(pod, "eth0")} >= {"tbf", "ingress"}
    each(lambda i: runtime.delete(f"ctr-par{i}", lab.path(pods[i])))
    for pod in pods:
        assert_nothing_of_ours(node, pod, eth0_expected=False)
    assert open_fds(running.process) == fds_before, "the daemon keeps no socket or namespace fd"


def test_malformed_stalled_and_oversized_requests(lab: Lab, daemon, thin_client: str) -> None:
    node, running = daemon
    path = running.socket_path
    garbage = ask(path, b"not json")
    assert garbage["exitCode"] == 1 and json.loads(garbage["stdout"])["code"] == 6
    smuggled = ask(path, json.dumps({"env": {"PATH": "/tmp"}, "config": "{}"}).encode())
    assert json.loads(smuggled["stdout"])["code"] == 6, "only CNI_* variables are taken"
    oversized = ask(path, b"x" * (4 * 1024 * 1024 + 10))
    assert "larger than" in json.loads(oversized["stdout"])["msg"]
    # A client that connects and says nothing does not hold up the next ADD.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.connect(str(path))
        runtime = node.runtime(extra={"socket": str(path)}, client=thin_client)
        pod, cid, _ = node.pod(runtime, runtime_config=RATES)
        runtime.delete(cid, lab.path(pod))
    assert running.process.poll() is None


def test_stale_socket_is_replaced_and_a_live_one_is_refused(lab: Lab) -> None:
    node = lone_node(lab)
    path = lab.workdir / "run" / "cni.sock"
    first = Daemon(node.netns, path)
    first.stop(signal.SIGKILL)
    assert path.exists(), "a killed daemon leaves its socket"
    with running_daemon(node.netns, path) as second:
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)
        refused = subprocess.run([str(netsched_cni_binary()), "daemon", "--socket", str(path)],
                                 capture_output=True, text=True, timeout=30, check=False)
        assert refused.returncode == 1
        assert f"a daemon already listens at '{path}'" in refused.stderr
        assert second.process.poll() is None


SLOW_DAEMON = """
import sys, time
from pathlib import Path
from cni.daemon import serve

def slow(env, config):
    time.sleep(2)  # well past the server's 0.5 s shutdown poll
    with open(sys.argv[2], "a") as done:
        done.write("x")
    return 0, '{"cniVersion": "1.0.0"}'

serve(sys.argv[1], slow, ready=lambda: print("ready", flush=True))
"""


def test_sigterm_finishes_the_running_invocation_and_starts_no_other(tmp_path: Path) -> None:
    """Stopping never cuts an ADD in half: the one running completes and answers; one
    still waiting either runs to the end too or is told to try again, never half done."""
    from cni.client import forward

    path, finished = tmp_path / "cni.sock", tmp_path / "finished"
    daemon = subprocess.Popen([sys.executable, "-c", SLOW_DAEMON, str(path), str(finished)],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    assert daemon.stdout is not None and daemon.stdout.readline().strip() == "ready"
    answers: dict[str, object] = {}

    def call(name: str) -> None:
        try:
            answers[name] = forward(str(path), {"CNI_COMMAND": "ADD"}, b"{}")
        except Exception as exc:  # noqa: BLE001 - inspected below
            answers[name] = exc

    running = threading.Thread(target=call, args=("running",))
    running.start()
    time.sleep(0.2)
    waiting = threading.Thread(target=call, args=("waiting",))
    waiting.start()
    time.sleep(0.2)
    daemon.send_signal(signal.SIGTERM)
    running.join(10)
    waiting.join(10)
    assert daemon.wait(10) == 0
    assert answers["running"] == (0, '{"cniVersion": "1.0.0"}')
    outcome = answers["waiting"]
    if outcome == (0, '{"cniVersion": "1.0.0"}'):
        assert finished.read_text() == "xx"
    else:
        code = outcome.code if isinstance(outcome, CNIError) else json.loads(outcome[1])["code"]
        assert code == 11, outcome
        assert finished.read_text() == "x"
    assert not path.exists()


def host_local_leases(node: Node, runtime) -> set[str]:
    """Addresses host-local holds: one file per address in ``dataDir/<network>/``."""
    directory = Path(runtime.conflist["plugins"][0]["ipam"]["dataDir"]) / runtime.conflist["name"]
    if not directory.is_dir():
        return set()
    return {p.name for p in directory.iterdir() if p.name[0].isdigit()}


def test_del_while_the_daemon_is_away_leaves_nothing_once_it_returns(lab: Lab,
                                                                     thin_client: str) -> None:
    """The CNI DaemonSet crashes (kill -9) and pods stop meanwhile. containerd runs DEL
    through the chain in reverse — netsched-cni, then bridge with host-local — and removes
    the namespace once DEL succeeded; a DEL that fails would stop it there, keeping the
    address, veth and namespace. One pod's namespace outlives the restart, the other's
    is removed before it. ADD meanwhile answers "try again" (code 11), and containerd
    DELs the failed ADD as it does any failed ADD."""
    node = switched_nodes(lab)[0]
    path = lab.workdir / node.netns / "run" / "cni.sock"
    first = Daemon(node.netns, path)

    def runtime_for(vni: int, host: int):
        return node.runtime(extra={"socket": str(path), "attachments": [attachment(
            node, mode="vxlan", vni=vni, ip=f"10.{vni % 250}.0.{host}/24",
            mac=f"02:00:00:00:{vni % 250:02x}:{host:02x}", ingress=30 * MBIT)]},
            client=thin_client)

    kept_runtime, gone_runtime = runtime_for(781, 5), runtime_for(782, 6)
    kept, kept_cid, _ = node.pod(kept_runtime, runtime_config=RATES)
    gone, gone_cid, _ = node.pod(gone_runtime, runtime_config=RATES)
    assert host_local_leases(node, kept_runtime) and host_local_leases(node, gone_runtime)
    first.stop(signal.SIGKILL)

    late = lab.netns("pd")
    with pytest.raises(PluginError) as refused:
        kept_runtime.add("ctr-late", lab.path(late), runtime_config=RATES)
    assert refused.value.code == 11, refused.value.error
    assert "no netsched-cni daemon answers" in refused.value.error["msg"]
    for runtime, cid, pod in ((kept_runtime, "ctr-late", late), (kept_runtime, kept_cid, kept),
                              (gone_runtime, gone_cid, gone)):
        runtime.delete(cid, lab.path(pod))  # exits 0 for netsched-cni and bridge alike
    sh("ip", "netns", "del", gone)
    assert not host_local_leases(node, kept_runtime) and not host_local_leases(node, gone_runtime)
    pending = path.parent / "pending-del"
    assert len(list(pending.glob("*.json"))) == 3
    ifbs = [n for n in link_names(kept) if n.startswith("nsb")]
    assert len(ifbs) == 2, "nothing ran the DEL yet: the ifbs of eth0 and net1 are still there"

    with running_daemon(node.netns, path) as second:
        assert_nothing_of_ours(node, kept, eth0_expected=False)
        assert not {"nsx781", "nsx782"} & link_names(node.netns)
        assert not list(pending.iterdir())
    log = second.process.stderr.read()
    assert len(re.findall(r"DEL \S+ eth0: exit 0", log)) == 3, log


def test_a_del_handed_off_while_the_daemon_serves_runs_too(lab: Lab, daemon) -> None:
    """A client that found no daemon an instant before it started leaves its DEL after
    the start-up pass: the serving daemon picks it up within its poll interval."""
    from cni.client import hand_off

    node, running = daemon
    runtime = node.runtime(extra={"socket": str(running.socket_path)})
    pod, cid, _ = node.pod(runtime, runtime_config=RATES)
    conf = runtime._plugin_conf(runtime.conflist["plugins"][-1], RATES, None)
    request = json.dumps({"env": {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": cid,
                                  "CNI_NETNS": lab.path(pod), "CNI_IFNAME": "eth0"},
                          "config": json.dumps(conf)}).encode()
    written = Path(hand_off(str(running.socket_path), request))
    deadline = time.monotonic() + 10
    while written.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not written.exists()
    assert not {q["kind"] for q in qdiscs(pod, "eth0")} & {"tbf", "ingress"}
    assert not [n for n in link_names(pod) if n.startswith("nsb")]


@pytest.mark.parametrize("calls", [40, 200])
def test_simultaneous_thin_client_calls_all_get_the_daemons_answer(lab: Lab, thin_client: str,
                                                                   calls: int) -> None:
    """A node starting many pods at once: every thin-client process started together gets
    the real daemon's answer, none a spurious "no daemon answers" (error 11). STATUS is
    the verb: the daemon answers it, and unlike DEL no client can hand it off."""
    node = lone_node(lab)
    with running_daemon(node.netns, lab.workdir / "run" / "cni.sock") as daemon:
        config = json.dumps({"cniVersion": "1.1.0", "name": "burst", "type": "netsched-cni",
                             "stateDir": str(lab.workdir / "state"),
                             "socket": str(daemon.socket_path)}).encode()
        stdin = lab.workdir / "status.json"
        stdin.write_bytes(config)  # a file: each client reads it at once, none waits on us
        argv = [str(client_dir(thin_client) / "netsched-cni")]
        processes = []
        for _ in range(calls):
            with stdin.open("rb") as source:
                processes.append(subprocess.Popen(argv, stdin=source, stdout=subprocess.PIPE,
                                                  stderr=subprocess.DEVNULL,
                                                  env={"CNI_COMMAND": "STATUS"}))
        outcomes = [(process.wait(120), process.stdout.read()) for process in processes]
    failures = [o for o in outcomes if o != (0, b"")]
    assert not failures, f"{len(failures)} of {calls} failed, e.g. {failures[0]}"
    log = daemon.process.stderr.read()
    assert len(re.findall(r"STATUS - -: exit 0", log)) == calls
