"""``netsched reporter``: handled by ``node_reporter.main`` (see ``scheduler_extender.cli``)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "reporter", help="discover this node's network and publish its NodeNetwork", add_help=False
    )
    parser.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def run(args: argparse.Namespace) -> int:
    from node_reporter.main import main as reporter_main

    return reporter_main(args.args)
