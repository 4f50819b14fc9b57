"""``netsched serve``: the scheduler extender for kube-scheduler."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import threading
from datetime import timedelta

from bandwidth_accounting.settings import CapacitySettings, FitSettings
from contract.group import SCHEDULER_NAME
from scheduler_extender.settings import LeaseSettings

log = logging.getLogger(__name__)


def add_server_arguments(parser: argparse.ArgumentParser, default_port: int = 8080) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=default_port, help="port (default %(default)s)")
    add_placement_arguments(parser)


def add_placement_arguments(parser: argparse.ArgumentParser, note: str = "") -> None:
    """The settings ``extender_from_args`` reads; ``note`` prefixes each help text. Their
    defaults are the settings dataclasses' own."""
    capacity, fit = CapacitySettings(), FitSettings()
    parser.add_argument(
        "--headroom", type=float, default=capacity.headroom,
        help=f"{note}share of each link kept free (default %(default)s)",
    )
    parser.add_argument(
        "--report-ttl", type=float, default=fit.report_ttl.total_seconds(),
        help=f"{note}seconds after which a node's NodeNetwork report is stale (default %(default)s)",
    )
    parser.add_argument(
        "--observed-window", type=float, default=capacity.observed_window.total_seconds(),
        metavar="SECONDS",
        help=f"{note}a link's observed load is the highest rate its reporter published within this "
        "window (default %(default)s)",
    )
    parser.add_argument(
        "--observed-max-age", type=float, default=fit.observed_max_age.total_seconds(),
        metavar="SECONDS",
        help=f"{note}observed load counts in placement while its report is at most this old; 0: never, "
        "reservations alone bound what is free (default %(default)s)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("serve", help="run the scheduler extender webhook")
    parser.set_defaults(stops_on_signals=True)
    add_server_arguments(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--cluster", metavar="FILE", help="YAML of Nodes, NodeNetworks, Networks and Pods")
    where.add_argument(
        "--kubernetes", action="store_true",
        help="follow the cluster through the Kubernetes API (in-cluster config, or --kubeconfig)",
    )
    parser.add_argument("--kubeconfig", metavar="FILE", help="with --kubernetes: kubeconfig to use")
    parser.add_argument(
        "--scheduler-name", action="append", metavar="NAME",
        help="a kube-scheduler profile that calls this extender; /bind refuses pods naming any other "
        f"(repeat for several; default {SCHEDULER_NAME})",
    )
    parser.add_argument(
        "--publish-resource-slices", action="store_true",
        help="with --kubernetes: keep one resource.k8s.io/v1 ResourceSlice per node for DRA driver "
        "netsched.io, its pod-traffic NICs as devices with their usable bandwidth (the leader writes; "
        "needs deploy/dra/'s RBAC; docs/dra.md)",
    )
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    parser.add_argument(
        "--tls-client-ca", metavar="FILE",
        help="mutual TLS: accept only callers presenting a certificate from this CA (PEM), "
        "as kube-scheduler's extender tlsConfig certFile/keyFile does",
    )
    parser.add_argument(
        "--no-http2", dest="http2", action="store_false",
        help="with --tls-cert: serve HTTP/1.1 only (by default HTTP/2 is offered too, and kube-scheduler "
        "then sends every request on one connection; docs/deploy.md)",
    )
    parser.add_argument(
        "--read-only-port", type=int, metavar="PORT",
        help="serve health, /metrics, the JSON API and the dashboard on this port (plain HTTP), "
        "and only the webhook verbs and health on --port",
    )
    election = parser.add_argument_group("leader election (with --kubernetes)")
    election.add_argument(
        "--leader-elect", action="store_true",
        help="only the holder of a coordination.k8s.io Lease binds and reports ready",
    )
    lease = LeaseSettings()
    election.add_argument("--lease-name", default=lease.name, help="(default %(default)s)")
    election.add_argument("--lease-namespace", default=lease.namespace, help="(default %(default)s)")
    election.add_argument(
        "--identity", default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="this replica's name in the Lease (default $POD_NAME or the host name)",
    )
    election.add_argument("--lease-duration", type=float, default=lease.lease_duration,
                          help="seconds (default %(default)s)")
    election.add_argument("--renew-deadline", type=float, default=lease.renew_deadline,
                          help="seconds (default %(default)s)")
    election.add_argument("--retry-period", type=float, default=lease.retry_period,
                          help="seconds (default %(default)s)")
    return parser


def extender_from_args(args: argparse.Namespace, source):
    from scheduler_extender.extender import Extender
    from scheduler_extender.scheduler import SchedulerSettings
    from scheduler_extender.state import ClusterState

    if not 0 <= args.headroom < 1:
        raise SystemExit(f"--headroom {args.headroom}: must be at least 0 and below 1")
    if args.report_ttl <= 0:
        raise SystemExit(f"--report-ttl {args.report_ttl}: must be positive")
    if args.observed_window < 0:
        raise SystemExit(f"--observed-window {args.observed_window}: must not be negative")
    if args.observed_max_age < 0:
        raise SystemExit(f"--observed-max-age {args.observed_max_age}: must not be negative")
    max_age = timedelta(seconds=args.observed_max_age) if args.observed_max_age else None
    fit = FitSettings(report_ttl=timedelta(seconds=args.report_ttl), observed_max_age=max_age)
    names = getattr(args, "scheduler_name", None)
    settings = SchedulerSettings(fit=fit, **({"scheduler_names": frozenset(names)} if names else {}))
    # /bind and the ledger agree on which pods are netsched's: one set, from the same flag.
    state = ClusterState(
        CapacitySettings(headroom=args.headroom, observed_window=timedelta(seconds=args.observed_window)),
        scheduler_names=settings.scheduler_names,
    )
    return Extender.build(source, state, settings=settings)


def run(args: argparse.Namespace) -> int:
    stopping: threading.Event = args.stopping
    from dashboard import dashboard_router
    from scheduler_extender.app import create_app
    from scheduler_extender.policy_status import PolicyStatusWriter
    from scheduler_extender.read_api import create_read_only_app
    from scheduler_extender.server import BackgroundServer, ServeOptions, uvicorn_server

    options = ServeOptions(
        args.host, args.port, args.tls_cert, args.tls_key, args.tls_client_ca,
        http2=args.http2, log_level="info",
    )
    if problems := options.problems():
        raise SystemExit("; ".join(problems))
    if args.read_only_port is not None and args.read_only_port == args.port:
        raise SystemExit("--read-only-port must differ from --port")
    if not args.kubernetes and (args.kubeconfig or args.leader_elect or args.publish_resource_slices):
        raise SystemExit("--kubeconfig, --leader-elect and --publish-resource-slices need --kubernetes")
    if args.kubernetes:
        source, elector = _kubernetes(args)
    else:
        source, elector = _cluster_file(args), None
    extender = extender_from_args(args, source)
    if elector is not None:
        extender.is_ready = elector.is_leader
    sink, helpers = _acting_on_refusals(args, extender, elector)
    publisher = _slice_publisher(args, extender, elector)

    def follow() -> None:
        source.start(sink)  # returns at once once stopped
        if elector is not None and not stopping.is_set():
            elector.start()
        if publisher is not None:  # DRA devices, written by the leader like the policy status
            threading.Thread(target=publisher.run, args=(stopping,), name="resource-slices", daemon=True).start()
        PolicyStatusWriter(extender.state, source).run(stopping)  # BandwidthPolicy used/hard

    separate = args.read_only_port is not None
    try:
        if stopping.is_set():
            return 0
        verbs = "mutual TLS" if args.tls_client_ca else options.scheme.upper()
        print(f"netsched extender on {options.scheme}://{args.host}:{args.port} (verbs: {verbs})", flush=True)
        # The cluster is loaded beside the server: /healthz answers at once, /readyz once loaded.
        threading.Thread(target=follow, name="cluster-source", daemon=True).start()
        dashboard = [dashboard_router(extender)]  # beside the read-only API, wherever that is
        app = create_app(extender, start_source=False, read_only=not separate, read_only_routers=dashboard)
        server = uvicorn_server(app, options)
        # While uvicorn runs it takes SIGTERM and SIGINT itself, shuts down gracefully and then
        # hands the signal back to the CLI's handler; a stop asked before it took them over
        # reaches it through this thread. Either way ``run`` returns and the Lease is handed back.
        threading.Thread(target=_exit_when, args=(stopping, server), name="stop", daemon=True).start()
        with contextlib.ExitStack() as stack:
            if separate:
                read_only = ServeOptions(args.host, args.read_only_port, log_level="info")
                stack.enter_context(BackgroundServer(create_read_only_app(extender, dashboard), read_only))
                print(f"netsched read-only API on http://{args.host}:{args.read_only_port}", flush=True)
            server.run()
    finally:
        stopping.set()  # also when serving failed: the cluster-source thread starts no elector
        for helper in helpers:
            helper.stop()
        if elector is not None:
            elector.stop(release=True)
        source.stop()
    log.info("stopped")
    return 0


def _exit_when(stopping: threading.Event, server) -> None:
    stopping.wait()
    server.should_exit = True


def _acting_on_refusals(args: argparse.Namespace, extender, elector):
    """With --kubernetes: preempt for bandwidth kube-scheduler will not preempt for, and send
    refused pods back to kube-scheduler's queue when what refused them changes. Returns the
    sink the source feeds and the helpers to stop."""
    if not args.kubernetes:
        return extender.state, []
    from scheduler_extender.kubernetes_source import api_client
    from scheduler_extender.preemption import Preemptor
    from scheduler_extender.requeue import follow_with_retries

    api = api_client(args.kubeconfig)
    may_write = elector.is_leader if elector is not None else None
    preemptor = Preemptor(api, extender.scheduler, may_write=may_write)
    requeuer, sink = follow_with_retries(extender.state, api, may_write)
    extender.refusal_listeners += [preemptor, requeuer]
    preemptor.start()
    return sink, [preemptor, requeuer]


def _slice_publisher(args: argparse.Namespace, extender, elector):
    """With --publish-resource-slices: the writer of the nodes' ResourceSlices (DRA)."""
    if not args.publish_resource_slices:
        return None
    from scheduler_extender.kubernetes_source import api_client
    from scheduler_extender.slices import SlicePublisher

    return SlicePublisher(
        extender.state, api_client(args.kubeconfig), may_write=elector.is_leader if elector is not None else None
    )


def _cluster_file(args: argparse.Namespace):
    from scheduler_extender.file_source import ClusterFileError, FileClusterSource

    try:
        return FileClusterSource.from_yaml(args.cluster)
    except (OSError, ClusterFileError, ValueError) as error:
        raise SystemExit(f"--cluster {args.cluster}: {error}") from None


def _kubernetes(args: argparse.Namespace):
    from kubernetes_access import NoConfiguration
    from scheduler_extender.kubernetes_source import KubernetesClusterSource, api_client
    from scheduler_extender.leader import LeaderElector

    try:
        api = api_client(args.kubeconfig)
    except NoConfiguration as error:
        raise SystemExit(f"--kubernetes: {error}") from None
    source = KubernetesClusterSource(api)
    if not args.leader_elect:
        return source, None
    settings = LeaseSettings(
        name=args.lease_name, namespace=args.lease_namespace, identity=args.identity,
        lease_duration=args.lease_duration, renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )
    problems = settings.problems()
    if problems:
        raise SystemExit("--leader-elect: " + "; ".join(problems))
    elector = LeaderElector(api, settings, prepare=source.resync)
    source.may_write = elector.is_leader
    return source, elector
