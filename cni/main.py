"""``netsched-cni``: the executable a container runtime calls.

Reads the command from ``CNI_COMMAND`` and the config from stdin, prints the result (or
the spec's error JSON) on stdout and exits non-zero on error. When the config names a
``socket``, the node daemon does the work (``cni.client``); otherwise this process does.
``netsched-cni daemon`` and ``netsched-cni install`` are the node DaemonSet's two
commands. Imports stay minimal here: every ADD pays for them.
"""

from __future__ import annotations

import gc
import json
import os
import sys

from cni.client import DEFAULT_SOCKET, forward
from cni.errors import CNIError, ErrorCode
from cni.fastimport import skip_package_inits
from cni.versions import SPEC_VERSION, version_report

# typing's own import costs every ADD ~4 ms; type checkers read this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

    from cni.kubelet_plugin import Serving


def _top_level_string(raw: bytes, key: str) -> str | None:
    """``key`` of the config document when it is a string; the full parse comes later."""
    try:
        value = json.loads(raw or b"{}").get(key)
    except (ValueError, AttributeError, RecursionError):  # the full parse reports it
        return None
    return value if isinstance(value, str) else None


def run(environ: Mapping[str, str], stdin: bytes) -> tuple[int, str]:
    """One invocation in this process: (exit code, stdout). The daemon calls it too."""
    requested = _top_level_string(stdin, "cniVersion")
    version = requested or SPEC_VERSION
    try:
        command = environ.get("CNI_COMMAND", "")
        if command == "VERSION":
            return 0, json.dumps(version_report(requested))
        try:
            from cni import commands
            from cni.config import Environment, parse_netconf
        except ModuleNotFoundError as exc:  # the host's thin client, called without a socket
            raise CNIError(ErrorCode.INVALID_CONFIG,
                           "socket: not set, and this netsched-cni only forwards to the daemon",
                           str(exc)) from exc

        env = Environment.from_environ(environ)
        conf = parse_netconf(stdin)
        version = conf.cni_version
        if env.command == "ADD":
            return 0, json.dumps(commands.cmd_add(env, conf))
        if env.command == "DEL":
            commands.cmd_del(env, conf)
        elif env.command == "CHECK":
            commands.cmd_check(env, conf)
        elif env.command == "STATUS":
            commands.cmd_status(conf)
        elif env.command == "GC":
            commands.cmd_gc(conf)
        else:
            raise CNIError(ErrorCode.INVALID_ENVIRONMENT,
                           f"CNI_COMMAND: {env.command!r} is not a CNI verb")
        return 0, ""
    except CNIError as exc:
        return 1, exc.to_json(version)
    except Exception as exc:  # noqa: BLE001 - never a traceback instead of the spec's JSON
        import traceback  # only on this path: every ADD pays for top-level imports

        traceback.print_exc(file=sys.stderr)
        error = CNIError(ErrorCode.IO_FAILURE, f"internal error: {type(exc).__name__}: {exc}")
        return 1, error.to_json(version)


def invoke(environ: Mapping[str, str], stdin: bytes) -> tuple[int, str]:
    """One plugin invocation: through the daemon when the config names its socket."""
    socket_path = _top_level_string(stdin, "socket")
    if socket_path is None or environ.get("CNI_COMMAND") == "VERSION":
        # One short-lived run: the cyclic collector would only rescan the import-time
        # objects of pydantic and pyroute2 (~10 ms an ADD); the process exit frees them.
        gc.disable()
        skip_package_inits()
        return run(environ, stdin)
    try:
        return forward(socket_path, environ, stdin)
    except CNIError as exc:
        return 1, exc.to_json(_top_level_string(stdin, "cniVersion") or SPEC_VERSION)


# What warm_up feeds the models: the shape of a kubeconfig-mode ADD with a reservation.
_WARM_CONFIG = json.dumps({
    "cniVersion": "1.0.0", "name": "warm-up", "type": "netsched-cni", "kubeconfig": "/dev/null",
    "runtimeConfig": {"bandwidth": {"IngressRate": 50_000_000, "EgressRate": 20_000_000}},
    "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}],
                   "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1", "interface": 0}]},
}).encode()
_WARM_RESERVATION = json.dumps({
    "node": "n", "primary": {"ingress": 1000, "egress": 1000}, "attachments": [{
        "network": "s", "interface": "net1", "mode": "vxlan", "vni": 1, "parent": "eth1",
        "ip": "10.0.0.3/24", "mac": "02:00:00:00:00:01", "ingress": 1000}]})


def warm_up() -> None:
    """Pay at start what the first ADD after a (re)start would: every import (the plugin,
    the contract's reservation model, the kubernetes client), each model's first
    validation, pyroute2's netlink tables for links and qdiscs, and the API client's
    construction. Measured, a kubeconfig-mode first ADD cost 2.5-9.5 s against 60-120 ms
    for the next ones on a loaded machine (docs/benchmarks.md)."""
    import kubernetes.client

    from cni import commands, kube, shaping  # noqa: F401 - commands and kube: imports only
    from cni.config import parse_netconf
    from cni.netns import host_netlink
    from cni.rtnl import Rtnl
    from cni.state import Record
    from cni.validate import validate_attachments
    from contract.reservation import Reservation
    from kubernetes_access import api_client  # noqa: F401 - loaded by a kubeconfig-mode ADD

    conf = parse_netconf(_WARM_CONFIG)
    reservation = Reservation.model_validate_json(_WARM_RESERVATION)
    validate_attachments(reservation.attachments, "eth0", "reservation.attachments")
    assert conf.prev_result is not None
    conf.prev_result.render(conf.cni_version)
    Record(network="w", container_id="w", ifname="eth0", netns="/x").model_dump_json()
    shaping.plan_bucket(50_000_000, 0, conf.max_queue_ms, 1500).describe()
    with host_netlink() as host, Rtnl() as rtnl:
        for link in host.get_links():
            shaping.root_bucket(rtnl, link["index"])
            shaping.has_ingress(rtnl, link["index"])
    kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(kubernetes.client.Configuration()))


def daemon_parser() -> argparse.ArgumentParser:
    """The options of ``netsched-cni daemon`` (the DaemonSet's command is checked against them)."""
    import argparse

    from cni.config import DEFAULT_STATE_DIR, KUBELET_PLUGIN_DIR, KUBELET_REGISTRY_DIR

    parser = argparse.ArgumentParser(prog="netsched-cni daemon",
                                     description="Run CNI invocations for the thin client.")
    parser.add_argument("--socket", default=DEFAULT_SOCKET,
                        help=f"Unix socket to listen on (default {DEFAULT_SOCKET})")
    dra = parser.add_argument_group(
        "DRA kubelet plugin", "Prepare ResourceClaims of driver netsched.io for the kubelet "
        "(docs/dra.md); off unless --kubelet-registry is given.")
    dra.add_argument("--kubelet-registry", metavar="DIR",
                     help=f"the kubelet's plugin registration directory ({KUBELET_REGISTRY_DIR})")
    dra.add_argument("--kubelet-plugin-dir", metavar="DIR", default=KUBELET_PLUGIN_DIR,
                     help=f"where the DRA service's socket goes (default {KUBELET_PLUGIN_DIR})")
    dra.add_argument("--state-dir", default=DEFAULT_STATE_DIR,
                     help="where prepared claims are kept: the plugin config's stateDir "
                     f"(default {DEFAULT_STATE_DIR})")
    dra.add_argument("--kubeconfig", default=None,
                     help="to read ResourceClaims (default: the pod's service account)")
    dra.add_argument("--node-name", default=os.environ.get("NODE_NAME"),
                     help="this node (default: the NODE_NAME environment variable)")
    return parser


def daemon(argv: list[str]) -> int:
    """``netsched-cni daemon``: serve invocations on the node's socket until SIGTERM, and
    with ``--kubelet-registry`` the DRA kubelet plugin of driver netsched.io beside them."""
    from cni.daemon import serve, stop_on_signals

    stop = stop_on_signals()  # first: the imports below take a second, see stop_on_signals
    import logging
    import time

    args = daemon_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    warm_up()
    logging.getLogger("netsched.cni.daemon").info(
        "warmed up in %.0f ms", (time.perf_counter() - started) * 1000)
    kubelet_plugin = None
    try:
        if args.kubelet_registry:
            kubelet_plugin = _serve_kubelet_plugin(args)
        serve(args.socket, run, ready=lambda: print(f"ready {args.socket}", flush=True), stop=stop)
    except CNIError as exc:
        print(f"netsched-cni daemon: {exc.msg}", file=sys.stderr)
        return 1
    finally:
        if kubelet_plugin is not None:
            kubelet_plugin.stop()
    return 0


def _serve_kubelet_plugin(args: argparse.Namespace) -> Serving:
    """Start the DRA kubelet plugin from the daemon's arguments."""
    from functools import partial

    from cni import kubelet_plugin
    from cni.kube import fetch_claim
    from cni.state import StateDir
    from kubernetes_access import NoConfiguration, api_client

    if not args.node_name:
        raise CNIError(ErrorCode.INVALID_CONFIG, "--node-name: not set, nor NODE_NAME: the "
                       "kubelet plugin prepares claims allocated on this node only")
    try:
        api = api_client(args.kubeconfig, retries=None)
    except NoConfiguration as exc:
        raise CNIError(ErrorCode.INVALID_CONFIG, f"--kubeconfig: cannot load {exc.where}",
                       exc.detail) from exc
    plugin = kubelet_plugin.KubeletPlugin(
        node=args.node_name, state=StateDir(args.state_dir), read_claim=partial(fetch_claim, api),
        local_interfaces=kubelet_plugin.node_interfaces)
    return kubelet_plugin.serve(plugin, args.kubelet_registry, args.kubelet_plugin_dir)


USAGE = """usage: netsched-cni                  a CNI plugin: CNI_* variables, config on stdin
       netsched-cni daemon [--help]    the node daemon the plugin forwards to (config "socket")
       netsched-cni install [--help]   put the plugin on a node (the CNI DaemonSet's init)
"""


def main() -> int:
    if sys.argv[1:2] == ["daemon"]:
        return daemon(sys.argv[2:])
    if sys.argv[1:2] == ["install"]:
        from cni.install import main as install

        return install(sys.argv[2:])
    if sys.argv[1:]:  # a runtime passes no arguments; a person asking gets the usage
        asked = sys.argv[1] in ("-h", "--help")
        (sys.stdout if asked else sys.stderr).write(USAGE)
        return 0 if asked else 2
    code, output = invoke(os.environ, sys.stdin.buffer.read())
    if output:
        sys.stdout.write(output + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
