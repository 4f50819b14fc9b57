"""``netsched topology``: the cluster's network as the scheduler sees it, as a tree or a table."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from contract.quantity import format_bandwidth

if TYPE_CHECKING:  # views load the scheduler (numpy); only annotations need them here
    from scheduler_extender.views import InterfaceView, TopologyView

FORMATS = ("tree", "table", "json")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from netsched.commands.cluster_access import add_access_arguments

    parser = subparsers.add_parser(
        "topology",
        help="show zones, switches, nodes, interfaces and VLANs with capacity, reservations and load",
    )
    add_access_arguments(parser, FORMATS)
    return parser


def run(args: argparse.Namespace) -> int:
    from netsched.commands.cluster_access import (
        AccessError,
        emit,
        open_access,
        print_json,
    )

    try:
        view = open_access(args).topology()
    except AccessError as error:
        raise SystemExit(f"netsched topology: {error}") from None
    if args.output == "json":
        print_json(view)
    elif args.output == "table":
        emit(render_table(view))
    else:
        emit(render_tree(view))
    return 0


def render_tree(view: TopologyView) -> str:
    """region → zone → switch → node → interface, one line each, figures in aligned columns."""
    pods = _pods_per_node(view)
    labels: list[tuple[str, str]] = []  # (tree label, figures)
    tree: dict[str, dict[str, dict[str, list]]] = {}
    for node in view.nodes:
        tree.setdefault(node.region, {}).setdefault(node.zone, {}).setdefault(
            node.switch, []
        ).append(node)

    def add(prefix: str, last: bool, label: str, figures: str = "") -> str:
        labels.append((f"{prefix}{'└── ' if last else '├── '}{label}", figures))
        return prefix + ("    " if last else "│   ")

    for region, zones in sorted(tree.items()):
        labels.append((region, ""))
        for zi, (zone, switches) in enumerate(sorted(zones.items())):
            zone_prefix = add("", zi == len(zones) - 1, f"zone {zone}")
            for si, (switch, nodes) in enumerate(sorted(switches.items())):
                switch_prefix = add(zone_prefix, si == len(switches) - 1, f"switch {switch}")
                for ni, node in enumerate(nodes):
                    count = pods.get(node.name, 0)
                    stale = "" if node.heartbeat_time else "  (no report)"
                    node_prefix = add(
                        switch_prefix,
                        ni == len(nodes) - 1,
                        node.name,
                        f"{count} pod{'s' if count != 1 else ''}{stale}",
                    )
                    for ii, iface in enumerate(node.interfaces):
                        add(
                            node_prefix,
                            ii == len(node.interfaces) - 1,
                            _iface_label(iface),
                            _iface_figures(iface),
                        )
    width = max(len(label) for label, _ in labels) if labels else 0
    return "\n".join(f"{label.ljust(width)}   {figures}".rstrip() for label, figures in labels)


def render_table(view: TopologyView) -> str:
    from netsched.commands.cluster_access import table

    rows = [
        (
            node.name,
            node.zone,
            node.switch,
            iface.name,
            iface.role.value,
            _speed(iface.speed_mbps),
            _share(iface.reserved.ingress, iface.usable.ingress),
            _share(iface.reserved.egress, iface.usable.egress),
            format_bandwidth(iface.observed.ingress),
            format_bandwidth(iface.observed.egress),
            ",".join(iface.networks) or "-",
        )
        for node in view.nodes
        for iface in node.interfaces
    ]
    headers = (
        "NODE",
        "ZONE",
        "SWITCH",
        "IFACE",
        "ROLE",
        "SPEED",
        "IN RESERVED",
        "OUT RESERVED",
        "IN OBSERVED",
        "OUT OBSERVED",
        "NETWORKS",
    )
    return table(headers, rows)


def _iface_label(iface: InterfaceView) -> str:
    networks = f"  [{', '.join(iface.networks)}]" if iface.networks else ""
    state = "" if iface.oper_state != "down" else " DOWN"
    return f"{iface.name} {iface.role.value} {_speed(iface.speed_mbps)}{state}{networks}"


def _iface_figures(iface: InterfaceView) -> str:
    ingress = _share(iface.reserved.ingress, iface.usable.ingress)
    egress = _share(iface.reserved.egress, iface.usable.egress)
    return (
        f"in {ingress:<19} out {egress:<19} "
        f"observed in {format_bandwidth(iface.observed.ingress):<6} out {format_bandwidth(iface.observed.egress)}"
    )


def _share(reserved: int, usable: int) -> str:
    """``1.2G/9G (13%)``: reserved of usable capacity."""
    percent = f"{reserved / usable:.0%}" if usable else "-"
    return f"{format_bandwidth(reserved)}/{format_bandwidth(usable)} ({percent})"


def _speed(mbps: int) -> str:
    return format_bandwidth(mbps * 1_000_000)


def _pods_per_node(view: TopologyView) -> dict[str, int]:
    counts: dict[str, int] = {}
    for holding in view.reservations:
        counts[holding.reservation.node] = counts.get(holding.reservation.node, 0) + 1
    return counts
