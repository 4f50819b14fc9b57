"""``netsched reporter``: the node reporter, whose arguments ``node_reporter.main`` owns."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "reporter",
        help="discover this node's network and publish its NodeNetwork (see: netsched reporter --help)",
        add_help=False,
    )
    parser.set_defaults(forwards_arguments=True, stops_on_signals=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from node_reporter.main import main as reporter_main

    return reporter_main(args.forwarded, stop=args.stopping)
