"""``netsched serve``: the scheduler extender for kube-scheduler."""

from __future__ import annotations

import argparse
from datetime import timedelta


def add_server_arguments(parser: argparse.ArgumentParser, default_port: int = 8080) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=default_port, help="port (default %(default)s)")
    parser.add_argument("--headroom", type=float, default=0.10, help="share of each link kept free (default %(default)s)")
    parser.add_argument(
        "--report-ttl", type=float, default=60.0,
        help="seconds after which a node's NodeNetwork report is stale (default %(default)s)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("serve", help="run the scheduler extender webhook")
    add_server_arguments(parser)
    parser.add_argument("--cluster", metavar="FILE", required=True, help="YAML of Nodes, NodeNetworks, Networks and Pods")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="private key of --tls-cert (PEM)")
    return parser


def extender_from_args(args: argparse.Namespace, source):  # noqa: ANN001, ANN201 - avoids importing at parse time
    from bandwidth_accounting.fit import FitSettings
    from scheduler_extender.app import Extender
    from scheduler_extender.scheduler import SchedulerSettings
    from scheduler_extender.state import CapacitySettings, ClusterState

    if not 0 <= args.headroom < 1:
        raise SystemExit(f"--headroom {args.headroom}: must be at least 0 and below 1")
    if args.report_ttl <= 0:
        raise SystemExit(f"--report-ttl {args.report_ttl}: must be positive")
    state = ClusterState(CapacitySettings(headroom=args.headroom))
    settings = SchedulerSettings(fit=FitSettings(report_ttl=timedelta(seconds=args.report_ttl)))
    return Extender.build(source, state, settings=settings)


def run(args: argparse.Namespace) -> int:
    from scheduler_extender.app import create_app
    from scheduler_extender.file_source import ClusterFileError, FileClusterSource
    from scheduler_extender.server import ServeOptions, uvicorn_server

    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    try:
        source = FileClusterSource.from_yaml(args.cluster)
    except (OSError, ClusterFileError, ValueError) as error:
        raise SystemExit(f"--cluster {args.cluster}: {error}") from None
    extender = extender_from_args(args, source)
    options = ServeOptions(args.host, args.port, args.tls_cert, args.tls_key, log_level="info")
    print(f"netsched extender on {options.scheme}://{args.host}:{args.port}", flush=True)
    uvicorn_server(create_app(extender), options).run()
    return 0
