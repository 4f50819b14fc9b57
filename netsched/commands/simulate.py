"""``netsched simulate``: placement quality of netsched beside bandwidth-blind kube-scheduler."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bandwidth_accounting.settings import CapacitySettings
    from simulator import REPORT_INTERVAL, SEED, SHIPPED_EXTENDER_WEIGHT, ClusterShape, PolicyName

    parser = subparsers.add_parser(
        "simulate",
        help="simulate pods arriving and leaving; compare netsched with bandwidth-blind scheduling and DRA",
        description="A discrete-event simulation of pods arriving and leaving a sample cluster, placed by "
        "kube-scheduler alone, by kube-scheduler with netsched (spread and pack), through the "
        "extender's own filter, prioritize and bind, and by kube-scheduler allocating bandwidth as DRA "
        "claims itself, alone and with netsched's prioritize.",
    )
    parser.add_argument("--nodes", type=_positive, default=500, help="cluster size (default %(default)s)")
    parser.add_argument("--pods", type=_positive, default=10_000, help="pods arriving (default %(default)s)")
    parser.add_argument(
        "--workload", default="mixed",
        help="workload YAML file, or a bundled one: storage-heavy, mixed, peer-chatty, noisy-neighbours "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--pods-per-node", type=_positive_number, metavar="LOAD",
        help="mean pods alive per node, overriding the workload's pods_per_node (sets the arrival rate)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="(default %(default)s)")
    parser.add_argument(
        "--policies", nargs="+", type=PolicyName, default=list(PolicyName), metavar="POLICY",
        help=f"which to run: {', '.join(p.value for p in PolicyName)} (default all)",
    )
    parser.add_argument(
        "--extender-weight", type=_positive, default=SHIPPED_EXTENDER_WEIGHT,
        help="netsched's weight in kube-scheduler's extender config (default %(default)s, as deploy/ ships it)",
    )
    parser.add_argument(
        "--observed-window", type=_non_negative,
        default=CapacitySettings().observed_window.total_seconds(), metavar="SECONDS",
        help="the extender's --observed-window (default %(default)s)",
    )
    parser.add_argument(
        "--namespace-default", metavar="RATE",
        help="give the pods' namespace a BandwidthPolicy whose default (both directions) is RATE, e.g. 1G; "
        "pods that annotate nothing are then reserved and shaped to it under netsched",
    )
    parser.add_argument(
        "--report-interval", type=_positive_number, default=REPORT_INTERVAL, metavar="SECONDS",
        help="the node reporters' interval (default %(default)s)",
    )
    parser.add_argument("--zones", type=_positive, default=ClusterShape().zones, help="(default %(default)s)")
    parser.add_argument("--nodes-per-switch", type=_positive, default=ClusterShape().nodes_per_switch, help="(default %(default)s)")
    parser.add_argument("--jobs", type=_positive, default=1, help="policies run in parallel processes (default %(default)s)")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--plot", metavar="PNG", help="write the link utilisation plot to this PNG file (needs the plot extra, matplotlib)")
    return parser


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from netsched.extras import require_module

    if args.plot:
        require_module("matplotlib")
    from simulator import ClusterShape
    from simulator import report as reporting
    from simulator.run import SimulationConfig, run_simulation
    from simulator.workload import WorkloadError, load_workload

    try:
        workload = load_workload(args.workload)
    except WorkloadError as error:
        print(f"netsched simulate: {error}", file=sys.stderr)
        return 2
    if args.pods_per_node is not None:
        workload = workload.model_copy(update={"pods_per_node": args.pods_per_node})
    config = SimulationConfig(
        workload=workload,
        nodes=args.nodes,
        pods=args.pods,
        seed=args.seed,
        extender_weight=args.extender_weight,
        observed_window=args.observed_window,
        report_interval=args.report_interval,
        namespace_default=args.namespace_default,
        shape=ClusterShape(zones=args.zones, nodes_per_switch=args.nodes_per_switch),
    )
    result = run_simulation(config, list(dict.fromkeys(args.policies)), jobs=args.jobs)
    if args.plot:
        reporting.plot(result, Path(args.plot))
    if args.output == "json":
        print(result.model_dump_json(indent=2))
    else:
        print(reporting.table(result))
        if args.plot:
            print(f"plot: {args.plot}")
    return 0


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value
