"""What real runtimes send, replayed through the real executable on a real kernel.

``tests/fixtures/cni/containerd-1.6/`` holds the exact environment and stdin containerd
1.6.20 gave netsched-cni for a pod annotated ``kubernetes.io/ingress-bandwidth: 50M`` and
``egress-bandwidth: 20M`` (capitalised keys, 2^32-1 bursts; its README). The replay feeds
them unchanged — paths included — to the thin client, with the daemon behind the socket
the config names. The world the fixture names is rebuilt around it, as containerd and the
bridge plugin left it: the namespace ``cni-0343811a-…`` with ``eth0`` 10.231.0.9/24 on a
bridge ``crih0`` in the node's namespace, and, in a private mount namespace shared by the
daemon and every plugin call, ``/run/netsched``, ``/var/lib/cni/netsched`` and
``/etc/cni/net.d`` (holding the kubeconfig, for a small API server that serves the pod).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cni.lab import Lab, link_names, qdiscs, sh
from tests.cni.pod_api import PodAPI, pod_json
from tests.cni.runner import _enter, netsched_cni_binary

pytestmark = pytest.mark.kernel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cni" / "containerd-1.6"
MBIT = 1_000_000
# The directories the fixture's config names, private to the replay's mount namespace.
PRIVATE_DIRS = ("/run/netsched", "/var/lib/cni/netsched", "/etc/cni/net.d")


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Replay:
    """The node namespace and the daemon whose mount namespace every plugin call enters."""

    node: str
    daemon: subprocess.Popen
    state_dir: Path

    def call(self, captured: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """Run the executable with the captured env and stdin, exactly as captured."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **captured["env"]}
        done = subprocess.run(
            ["nsenter", f"--mount=/proc/{self.daemon.pid}/ns/mnt", "--",
             str(netsched_cni_binary())],
            input=json.dumps(captured["stdin"]).encode(), capture_output=True, env=env,
            preexec_fn=_enter(self.node), timeout=60, check=False)  # noqa: PLW1509
        out = done.stdout.decode().strip()
        return done.returncode, json.loads(out) if out else None


@contextmanager
def created_dirs(paths: tuple[str, ...]) -> Iterator[None]:
    """Mount points for the private mounts; the ones made here are removed after."""
    made = [Path(p) for p in paths if not Path(p).exists()]
    for path in paths:
        Path(path).mkdir(parents=True, exist_ok=True)
    try:
        yield
    finally:
        for path in reversed(made):
            for parent in [path, *path.parents]:
                if parent in (Path("/run"), Path("/var/lib"), Path("/etc")):
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break


@contextmanager
def replay_world(lab: Lab, api: PodAPI, node: str) -> Iterator[Replay]:
    backing = {path: lab.workdir / "mnt" / path.strip("/").replace("/", "_")
               for path in PRIVATE_DIRS}
    for directory in backing.values():
        directory.mkdir(parents=True)
    api.kubeconfig(backing["/etc/cni/net.d"] / "netsched-cni.kubeconfig")
    mounts = " && ".join(f"mount --bind {src} {dst}" for dst, src in backing.items())
    with ExitStack() as stack:
        stack.enter_context(created_dirs(PRIVATE_DIRS))
        daemon = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"{mounts} && exec {netsched_cni_binary()} daemon --socket /run/netsched/cni.sock"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_enter(node))  # noqa: PLW1509 - only system calls, see runner._LIBC
        try:
            assert daemon.stdout is not None
            line = daemon.stdout.readline()
            assert line.strip() == "ready /run/netsched/cni.sock", (line, daemon.stderr.read())
            yield Replay(node, daemon, backing["/var/lib/cni/netsched"])
        finally:
            daemon.terminate()
            daemon.wait(10)


def pod_on_bridge(lab: Lab, node: str, bridge: str, netns: str, address: str,
                  host_veth: str, mac: str | None = None) -> None:
    """What the bridge plugin leaves: ``eth0`` in ``netns`` on ``bridge``, address and route."""
    sh("ip", "-n", node, "link", "add", host_veth, "type", "veth", "peer", "name", "eth0",
       "netns", netns)
    if mac:
        sh("ip", "-n", netns, "link", "set", "eth0", "address", mac)
    sh("ip", "-n", node, "link", "set", host_veth, "master", bridge, "up")
    sh("ip", "-n", netns, "addr", "add", address, "dev", "eth0")
    sh("ip", "-n", netns, "link", "set", "eth0", "up")


def fixture_netns(lab: Lab, path: str) -> str:
    """The namespace a fixture names (``/var/run/netns/<name>``), removed with the lab."""
    name = Path(path).name
    sh("ip", "netns", "add", name)
    lab.namespaces.append(name)
    return name


def kernel_rates(netns: str) -> dict[str, int]:
    """Bits/s of the tbf on eth0 (egress) and on the pod's ifb (ingress), as tc reads them."""
    rates = {}
    for direction, dev in (("egress", "eth0"),
                           ("ingress", next((n for n in link_names(netns)
                                             if n.startswith("nsb")), None))):
        if dev is None:
            continue
        for qdisc in qdiscs(netns, dev):
            if qdisc["kind"] == "tbf":
                rates[direction] = qdisc["options"]["rate"] * 8
    return rates


def test_containerd_16_stdin_verbatim_shapes_50_and_20_mbit(lab: Lab) -> None:
    add, delete, delete_again = fixture("add.json"), fixture("del.json"), fixture("del-2.json")
    assert add["stdin"]["runtimeConfig"]["bandwidth"]["IngressRate"] == 50 * MBIT  # as sent
    node = lab.netns("nd")
    sh("ip", "-n", node, "link", "add", "crih0", "type", "bridge")
    sh("ip", "-n", node, "addr", "add", "10.231.0.1/24", "dev", "crih0")
    sh("ip", "-n", node, "link", "set", "crih0", "up")
    pod = fixture_netns(lab, add["env"]["CNI_NETNS"])
    sent = add["stdin"]["prevResult"]["interfaces"]
    pod_on_bridge(lab, node, "crih0", pod, add["stdin"]["prevResult"]["ips"][0]["address"],
                  sent[1]["name"], sent[2]["mac"])
    server = lab.netns("sv")
    pod_on_bridge(lab, node, "crih0", server, "10.231.0.20/24", lab.name("vs"))
    # The sandbox of del.json, added the same way (its ADD was not captured).
    other = fixture_netns(lab, delete["env"]["CNI_NETNS"])
    pod_on_bridge(lab, node, "crih0", other, delete["stdin"]["prevResult"]["ips"][0]["address"],
                  lab.name("vo"))
    other_add = json.loads(json.dumps(add))
    other_add["env"].update(CNI_CONTAINERID=delete["env"]["CNI_CONTAINERID"],
                            CNI_NETNS=delete["env"]["CNI_NETNS"])
    other_add["stdin"]["prevResult"] = delete["stdin"]["prevResult"]

    with PodAPI(netns=node) as api:
        api.pods[("default", "bw1")] = pod_json("default", "bw1", {
            "kubernetes.io/ingress-bandwidth": "50M", "kubernetes.io/egress-bandwidth": "20M"})
        with replay_world(lab, api, node) as world:
            code, result = world.call(add)
            assert code == 0, result
            assert result is not None and result["cniVersion"] == "1.0.0"
            shaping = result["netsched"]["shaping"]["eth0"]
            assert (shaping["ingress"]["rate"], shaping["egress"]["rate"]) == (50 * MBIT, 20 * MBIT)
            assert kernel_rates(pod) == {"ingress": 50 * MBIT, "egress": 20 * MBIT}
            assert api.requests, "kubeconfig mode asked the API for the pod"

            egress = lab.goodput_ratios(server, "10.231.0.20", pod, 20 * MBIT, reverse=False,
                                        low=0.95)
            ingress = lab.goodput_ratios(server, "10.231.0.20", pod, 50 * MBIT, reverse=True,
                                         low=0.95)
            assert egress[-1] >= 0.95 and ingress[-1] >= 0.95, (egress, ingress)

            assert world.call(other_add)[0] == 0
            assert kernel_rates(other) == {"ingress": 50 * MBIT, "egress": 20 * MBIT}
            # del.json and del-2.json verbatim: the other sandbox goes, this one stays shaped.
            assert world.call(delete) == (0, None)
            assert world.call(delete_again) == (0, None)
            assert kernel_rates(other) == {}
            assert kernel_rates(pod) == {"ingress": 50 * MBIT, "egress": 20 * MBIT}

            teardown = json.loads(json.dumps(add))
            teardown["env"]["CNI_COMMAND"] = "DEL"
            assert world.call(teardown) == (0, None)
            assert kernel_rates(pod) == {}
            assert link_names(pod) == {"lo", "eth0"}
            assert not list((world.state_dir / "records").iterdir())
