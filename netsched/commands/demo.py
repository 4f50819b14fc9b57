"""``netsched demo``: the extender on a bundled sample cluster, with pods coming and going."""

from __future__ import annotations

import argparse
import threading

from netsched.commands.serve import add_server_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("demo", help="run netsched on a bundled sample cluster, dashboard included")
    parser.set_defaults(stops_on_signals=True)
    add_server_arguments(parser)
    parser.add_argument("--zones", type=int, default=3, help="zones in the sample cluster (default %(default)s)")
    parser.add_argument("--nodes-per-switch", type=int, default=2, help="(default %(default)s)")
    parser.add_argument(
        "--interval", type=_positive_seconds, default=1.0,
        help="seconds between arriving pods, above 0 (default %(default)s)",
    )
    parser.add_argument("--initial-pods", type=int, default=12, help="pods placed before serving (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    return parser


def _positive_seconds(text: str) -> float:
    """A wait between pods; zero or less would spin a core at 100 % doing nothing useful."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive, finite number of seconds")
    return seconds


def run(args: argparse.Namespace) -> int:
    stopping: threading.Event = args.stopping
    from dashboard import dashboard_router
    from demo.sample_cluster import sample_cluster
    from demo.traffic import DemoTraffic
    from netsched.commands.serve import extender_from_args
    from scheduler_extender.app import create_app
    from scheduler_extender.file_source import FileClusterSource
    from scheduler_extender.server import BackgroundServer, ServeOptions

    source = FileClusterSource(sample_cluster(zones=args.zones, nodes_per_switch=args.nodes_per_switch))
    extender = extender_from_args(args, source)
    app = create_app(extender, read_only_routers=[dashboard_router(extender)])
    with BackgroundServer(app, ServeOptions(args.host, args.port)) as server:
        url = server.url
        traffic = DemoTraffic(source, extender.state, url, seed=args.seed)
        try:
            for _ in range(args.initial_pods):
                if stopping.is_set():
                    return 0
                traffic.schedule_one(0.0)
            nodes = len(extender.state.node_names())
            print(
                f"netsched demo: {nodes} nodes in {args.zones} zones, "
                f"{len(extender.state.ledger.holdings())} pods holding reservations\n"
                f"  dashboard   {url}/dashboard\n"
                f"  topology    {url}/api/v1/topology\n"
                f"  decisions   {url}/api/v1/decisions\n"
                f"  metrics     {url}/metrics\n"
                f"  API docs    {url}/docs\n"
                f"  webhook     POST {url}/filter /prioritize /bind /preempt\n"
                f"{_where(args.host)}\n"
                "Pods arrive every second and leave after 30-90 s; Ctrl-C stops.",
                flush=True,
            )
            traffic.run(stopping, args.interval, echo=lambda line: print(line, flush=True))
        finally:
            traffic.close()
    return 0


def _where(host: str) -> str:
    if host in ("127.0.0.1", "localhost", "::1"):
        return f"Listening on {host} only: in a container, add --host 0.0.0.0 to reach it from outside."
    return f"Listening on {host}."
