"""A minimal container runtime for tests and benchmarks: runs a conflist as libcni does.

ADD runs the plugins in order, each getting the previous one's result as ``prevResult``;
DEL runs them in reverse with the cached ADD result; CHECK in order with it; GC and
STATUS call every plugin. ``runtimeConfig`` is injected only into plugins that declare
the capability, and every plugin runs inside the "node" namespace, like a runtime on
that node would run it. ``netsched-cni`` is the package's executable (Python: in-process,
or the thin client of the node daemon when the config names a ``socket``) or, with
``client="native"``, the native thin client (cni/thin_client) that nodes install.
"""

from __future__ import annotations

import copy
import ctypes
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cni.install import CLIENT_BUILD

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONFLIST = REPO / "deploy" / "cni" / "10-netsched.conflist"
REFERENCE_PLUGINS = Path("/usr/lib/cni")
CLONE_NEWNET = 0x40000000


def netsched_cni_binary() -> Path:
    found = shutil.which("netsched-cni") or str(REPO / ".venv" / "bin" / "netsched-cni")
    return Path(found)


# The thin clients that forward to the node daemon: the package's Python executable and
# the native one; tests of the daemon run once through each.
THIN_CLIENTS = ("python", "native")


def client_dir(client: str) -> Path:
    """The directory whose ``netsched-cni`` is ``client`` (one of THIN_CLIENTS)."""
    if client not in THIN_CLIENTS:
        raise ValueError(f"client: {client!r} is not one of {THIN_CLIENTS}")
    return CLIENT_BUILD.parent if client == "native" else netsched_cni_binary().parent


class PluginError(Exception):
    """A plugin exited non-zero; ``error`` is its CNI error JSON (code, msg, details)."""

    def __init__(self, plugin: str, command: str, error: dict[str, Any], stderr: str,
                 returncode: int) -> None:
        status = (f"killed by {signal.Signals(-returncode).name}" if returncode < 0
                  else f"exit {returncode}")
        super().__init__(f"{plugin} {command} failed ({status}): {error}\n{stderr[-3000:]}")
        self.plugin = plugin
        self.error = error
        self.stderr = stderr

    @property
    def code(self) -> int | None:
        return self.error.get("code")


# Loaded here, not in the forked child: between fork and exec the child may only make
# plain system calls (tests fork from several threads at once), never take the loader's lock.
_LIBC = ctypes.CDLL(None, use_errno=True)


def _enter(netns: str | None):
    """preexec_fn: move the child into the node namespace before it execs the plugin."""
    if netns is None:
        return None

    def enter() -> None:
        fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
        if _LIBC.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)

    return enter


@dataclass
class Runtime:
    """Runs one conflist for containers on one node namespace."""

    conflist: dict[str, Any]
    node_netns: str | None
    client: str = "python"
    cache: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def plugin_dirs(self) -> list[Path]:
        return [REFERENCE_PLUGINS, client_dir(self.client)]

    def _binary(self, plugin_type: str) -> Path:
        for directory in self.plugin_dirs:
            candidate = directory / plugin_type
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"plugin {plugin_type} not in {self.plugin_dirs}")

    def _plugin_conf(self, plugin: dict[str, Any], runtime_config: dict[str, Any],
                     prev_result: dict[str, Any] | None) -> dict[str, Any]:
        conf = copy.deepcopy(plugin)
        conf["cniVersion"] = self.conflist["cniVersion"]
        conf["name"] = self.conflist["name"]
        capabilities = conf.get("capabilities", {})
        injected = {k: v for k, v in runtime_config.items() if capabilities.get(k)}
        if injected:
            conf["runtimeConfig"] = injected
        if prev_result is not None:
            conf["prevResult"] = prev_result
        return conf

    def invoke(self, plugin_type: str, command: str, conf: dict[str, Any],
               container_id: str = "", netns: str = "", ifname: str = "",
               args: str = "") -> dict[str, Any] | None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": ifname,
            "CNI_ARGS": args,
            "CNI_PATH": ":".join(str(d) for d in self.plugin_dirs),
        }
        done = subprocess.run([str(self._binary(plugin_type))], input=json.dumps(conf).encode(),
                              capture_output=True, env=env, preexec_fn=_enter(self.node_netns),
                              timeout=60, check=False)
        output = done.stdout.decode().strip()
        if done.returncode != 0:
            try:
                error = json.loads(output)
            except ValueError:
                error = {"msg": output}
            raise PluginError(plugin_type, command, error, done.stderr.decode(), done.returncode)
        return json.loads(output) if output else None

    def add(self, container_id: str, netns_path: str, ifname: str = "eth0",
            runtime_config: dict[str, Any] | None = None, args: str = "") -> dict[str, Any]:
        result: dict[str, Any] | None = None
        for plugin in self.conflist["plugins"]:
            conf = self._plugin_conf(plugin, runtime_config or {}, result)
            result = self.invoke(plugin["type"], "ADD", conf, container_id, netns_path, ifname,
                                 args)
        assert result is not None
        self.cache[(container_id, ifname)] = {"result": result,
                                              "runtime_config": runtime_config or {}}
        return result

    def delete(self, container_id: str, netns_path: str, ifname: str = "eth0",
               args: str = "") -> None:
        cached = self.cache.pop((container_id, ifname), {})
        for plugin in reversed(self.conflist["plugins"]):
            conf = self._plugin_conf(plugin, cached.get("runtime_config", {}),
                                     cached.get("result"))
            self.invoke(plugin["type"], "DEL", conf, container_id, netns_path, ifname, args)

    def check(self, container_id: str, netns_path: str, ifname: str = "eth0",
              args: str = "") -> None:
        cached = self.cache[(container_id, ifname)]
        for plugin in self.conflist["plugins"]:
            conf = self._plugin_conf(plugin, cached["runtime_config"], cached["result"])
            self.invoke(plugin["type"], "CHECK", conf, container_id, netns_path, ifname, args)

    def gc(self, valid: list[tuple[str, str]]) -> None:
        attachments = [{"containerID": cid, "ifname": ifname} for cid, ifname in valid]
        for plugin in self.conflist["plugins"]:
            conf = self._plugin_conf(plugin, {}, None)
            conf["cni.dev/valid-attachments"] = attachments
            self.invoke(plugin["type"], "GC", conf)

    def status(self) -> None:
        for plugin in self.conflist["plugins"]:
            self.invoke(plugin["type"], "STATUS", self._plugin_conf(plugin, {}, None))


def lab_conflist(bridge: str, subnet: str, workdir: Path, *, version: str = "1.0.0",
                 shaper: str = "netsched-cni", extra: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The deploy/ conflist, adapted to a test: its own bridge, subnet and state dirs.

    ``shaper="bandwidth"`` swaps netsched-cni for the reference plugin (the comparison).
    """
    conflist = json.loads(DEPLOY_CONFLIST.read_text())
    conflist["cniVersion"] = version
    conflist["name"] = f"lab-{bridge}"
    main, ours = conflist["plugins"]
    main["bridge"] = bridge
    main["ipMasq"] = False
    main["ipam"]["ranges"] = [[{"subnet": subnet}]]
    main["ipam"]["dataDir"] = str(workdir / "ipam")
    if shaper == "bandwidth":
        conflist["plugins"] = [main, {"type": "bandwidth", "capabilities": {"bandwidth": True}}]
        return conflist
    ours.pop("kubeconfig")
    ours.pop("socket", None)  # in-process unless a test starts a daemon (test_daemon.py)
    ours["stateDir"] = str(workdir / "netsched")
    ours.update(extra or {})
    return conflist


class Daemon:
    """``netsched-cni daemon`` inside a node namespace, as the CNI DaemonSet runs it."""

    def __init__(self, node_netns: str, socket_path: Path, node_name: str | None = None,
                 log: int | IO[str] = subprocess.PIPE, args: Sequence[str] = ()) -> None:
        """``node_name``: the NODE_NAME the DaemonSet's downward API would set. ``log``:
        where its log goes; a pipe (tests read it after stopping the daemon) holds a few
        hundred invocations' lines before the daemon blocks writing, so long runs pass
        a file or DEVNULL. ``args``: more of the daemon's options (the kubelet plugin's)."""
        self.socket_path = socket_path
        env = {**os.environ, "NODE_NAME": node_name} if node_name else None
        self.process = subprocess.Popen(
            [str(netsched_cni_binary()), "daemon", "--socket", str(socket_path), *args],
            stdout=subprocess.PIPE, stderr=log, text=True, env=env,
            preexec_fn=_enter(node_netns),  # noqa: PLW1509 - only system calls, see _LIBC
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == f"ready {socket_path}", (
            line, self.process.stderr.read() if self.process.stderr else "")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=10)

    def cpu_seconds(self) -> float:
        """User + system CPU the daemon has used so far (its work is not a child's)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_daemon(node_netns: str, socket_path: Path, node_name: str | None = None,
                   log: int | IO[str] = subprocess.PIPE, args: Sequence[str] = ()
                   ) -> Iterator[Daemon]:
    daemon = Daemon(node_netns, socket_path, node_name, log, args)
    try:
        yield daemon
    finally:
        if daemon.process.poll() is None:
            daemon.stop()
