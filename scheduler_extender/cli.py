"""The ``netsched`` command line: one subcommand per module in ``scheduler_extender.commands``.

Subcommands import their dependencies lazily, so ``netsched reporter`` on a node
never loads the extender's web stack.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from scheduler_extender.extras import missing_extra_message

COMMANDS = ("demo", "serve", "certificates", "reporter", "topology", "explain", "reservations", "simulate")
"""Modules of ``scheduler_extender.commands``; each has ``add_parser(subparsers)`` and ``run(args)``."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netsched", description="Network-aware scheduling for Kubernetes.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"scheduler_extender.commands.{name}")
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, forwarded = parser.parse_known_args(argv)
    # A command that owns its arguments (``reporter``) gets the rest as it was typed.
    if forwarded and not getattr(args, "forwards_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(forwarded)}")
    args.forwarded = forwarded
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return args.run(args) or 0
    except ModuleNotFoundError as error:
        message = missing_extra_message(args.command, error)
        if message is None:
            raise
        parser.exit(2, message + "\n")


if __name__ == "__main__":
    sys.exit(main())
