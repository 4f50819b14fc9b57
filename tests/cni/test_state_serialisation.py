"""ADD, DEL and GC on one node take the state directory's lock: segment sharing is check-then-act.

A DEL that drops the last hold on a shared segment device (a VXLAN ``nsx<vni>``) then
deletes the device. An ADD on the same segment in between would find the device, put
its macvlan on it and answer success; the device's deletion then takes the new pod's
interface with it (the kernel deletes a macvlan with its lower device). The test
stops the DEL exactly between "nobody holds it" and the deletion, with a schedule,
and runs the ADD there; it fails on every run when ``StateDir.locked`` is gone. Both
run in-process, in threads of a process in the node's namespace as the node daemon
runs them, so the seams can be patched in.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from cni import main, segments
from tests.cni.lab import Lab, inside, link_names
from tests.cni.runner import Runtime
from tests.cni.topologies import Node, attachment, switched_nodes
from tests.interleaving import Schedule

pytestmark = pytest.mark.kernel


def run_in(node: Node, command: str, conf: dict, container: str, netns: str) -> tuple[int, str]:
    """The plugin in this thread, in the node's namespace, as the runtime would start it."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": ""}
    with inside(node.netns):
        return main.run(env, json.dumps(conf).encode())


def prepared_pod(lab: Lab, node: Node, runtime: Runtime) -> tuple[str, str, dict]:
    """A pod with the main plugin's eth0, and the config netsched-cni's ADD would get."""
    pod = lab.netns("pd")
    container = f"ctr{pod}"
    *chain, ours = runtime.conflist["plugins"]
    result = None
    for plugin in chain:
        conf = runtime._plugin_conf(plugin, {}, result)
        result = runtime.invoke(plugin["type"], "ADD", conf, container, lab.path(pod), "eth0")
    return pod, container, runtime._plugin_conf(ours, {}, result)


def test_an_add_cannot_join_a_segment_a_del_is_removing(lab: Lab, monkeypatch) -> None:
    node, _ = switched_nodes(lab)

    def runtime_for(host: int) -> Runtime:
        return node.runtime(extra={"attachments": [attachment(
            node, mode="vxlan", vni=790, ip=f"10.81.0.{host}/24", mac=f"02:00:00:00:81:{host:02d}")]})

    leaving, leaving_id, _ = node.pod(runtime_for(1))
    assert "nsx790" in link_names(node.netns)
    joining, joining_id, joining_conf = prepared_pod(lab, node, runtime_for(2))
    leaving_conf = {**runtime_for(1).conflist["plugins"][-1], "cniVersion": "1.0.0",
                    "name": runtime_for(1).conflist["name"]}

    schedule = Schedule()
    remove_segment = segments.remove_segment

    def pause_then_remove(ipr, name: str) -> None:
        schedule.point("removing")
        remove_segment(ipr, name)

    def flock(fd: int, operation: int) -> None:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            schedule.blocked()
            fcntl.flock(fd, operation)

    monkeypatch.setattr(segments, "remove_segment", pause_then_remove)
    monkeypatch.setattr("cni.state.fcntl", SimpleNamespace(flock=flock, LOCK_EX=fcntl.LOCK_EX))
    schedule.stop("del", at="removing")
    with inside(node.netns):  # the whole process, as the daemon runs (cni.netns comes back to it)
        schedule.start("del", run_in, node, "DEL", leaving_conf, leaving_id, lab.path(leaving))
        assert schedule.next_event("del") == "paused"  # its hold is gone, the device not yet
        schedule.start("add", run_in, node, "ADD", joining_conf, joining_id, lab.path(joining))
        add_did = schedule.next_event("add")
        schedule.finish()

    assert schedule.errors == {}
    assert schedule.results["del"] == (0, "")
    code, output = schedule.results["add"]
    assert code == 0, output
    assert "net1" in link_names(joining), "the joining pod's attachment survived"
    assert "nsx790" in link_names(node.netns)
    users = Path(node.state_dir()) / "segments" / "nsx790"
    assert len(list(users.iterdir())) == 1
    assert add_did == "blocked"
    assert run_in(node, "DEL", leaving_conf, joining_id, lab.path(joining)) == (0, "")
    assert "nsx790" not in link_names(node.netns)
