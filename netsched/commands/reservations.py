"""``netsched reservations``: the pods holding bandwidth, where, and on which interfaces."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from contract.quantity import format_bandwidth

if TYPE_CHECKING:  # views load the scheduler (numpy); only annotations need them here
    from scheduler_extender.views import ReservationView

FORMATS = ("table", "json")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from netsched.commands.cluster_access import add_access_arguments

    parser = subparsers.add_parser(
        "reservations", help="list pods holding bandwidth and network attachments"
    )
    add_access_arguments(parser, FORMATS)
    parser.add_argument("--node", help="only pods on this node")
    return parser


def run(args: argparse.Namespace) -> int:
    from netsched.commands.cluster_access import (
        AccessError,
        emit,
        open_access,
        print_json,
    )

    try:
        held = open_access(args).reservations(args.node)
    except AccessError as error:
        raise SystemExit(f"netsched reservations: {error}") from None
    if args.output == "json":
        print_json(held)
    else:
        emit(render_table(held) if held else "No pod holds a reservation.")
    return 0


def render_table(held: list[ReservationView]) -> str:
    """One line per pod and host interface; attachments on the pod's first line."""
    from netsched.commands.cluster_access import table

    rows = []
    for item in held:
        reservation = item.reservation
        attachments = (
            ", ".join(
                f"{a.interface}:{a.network}" + (f"@{a.ip}" if a.ip else "")
                for a in reservation.attachments
            )
            or ("(another scheduler's pod: its annotations)" if item.foreign else "-")
        )
        if item.claim is not None:
            attachments = f"(DRA claim {item.claim.namespace}/{item.claim.name}, share {item.claim.share_id or '-'})"
        interfaces = sorted(reservation.interfaces.items()) or [("-", None)]
        for index, (name, rates) in enumerate(interfaces):
            first = index == 0
            rows.append(
                (
                    item.pod if first else "",
                    reservation.node if first else "",
                    item.priority if first else "",
                    name,
                    format_bandwidth(rates.ingress) if rates else "-",
                    format_bandwidth(rates.egress) if rates else "-",
                    attachments if first else "",
                )
            )
    return table(("POD", "NODE", "PRIORITY", "IFACE", "INGRESS", "EGRESS", "ATTACHMENTS"), rows)
