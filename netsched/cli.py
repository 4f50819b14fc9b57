"""The ``netsched`` command line: one subcommand per module in ``netsched.commands``.

Subcommands import their dependencies lazily, so ``netsched reporter`` on a node
never loads the extender's web stack.

SIGTERM and SIGINT are caught on ``main``'s first line, before any of those imports: a
process that is PID 1 in a container has no default action for them, so a signal that
arrives before a handler exists is lost and the runtime kills the process at the end of
its grace period. The long-running commands (``serve``, ``demo``, ``reporter``) get the
request as ``args.stopping`` and end cleanly at whatever point of their start they are;
the others get the usual handling back, and a signal that came meanwhile is delivered.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from types import FrameType

COMMANDS = ("demo", "serve", "certificates", "reporter", "topology", "explain", "reservations", "simulate")
"""Modules of ``netsched.commands``; each has ``add_parser(subparsers)`` and ``run(args)``."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netsched", description="Network-aware scheduling for Kubernetes.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"netsched.commands.{name}")
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


class StopRequest:
    """SIGTERM and SIGINT, from now on, set ``event`` instead of ending the process."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: int | None = None
        in_main_thread = threading.current_thread() is threading.main_thread()
        self._previous = (  # only the main thread may handle signals (in-process callers)
            {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
            if in_main_thread
            else {}
        )

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum
        self.event.set()

    def release(self) -> None:
        """Give the signals back their previous handling; deliver one that came meanwhile."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self.received is not None:
            signal.raise_signal(self.received)


def main(argv: list[str] | None = None) -> int:
    stop = StopRequest()
    parser = build_parser()
    try:
        args, forwarded = parser.parse_known_args(argv)
    except BaseException:  # --help, a usage error: they exit as usual
        stop.release()
        raise
    if not getattr(args, "stops_on_signals", False):
        stop.release()
    args.stopping = stop.event
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
        from netsched.extras import missing_extra_message  # reads package metadata

        message = missing_extra_message(args.command, error)
        if message is None:
            raise
        parser.exit(2, message + "\n")


if __name__ == "__main__":
    sys.exit(main())
