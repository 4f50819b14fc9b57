"""``netsched explain POD``: for each node, whether the pod fits, its score, or why not.

The answer comes from the extender's own filter and prioritize (without recording
a decision), so it is what kube-scheduler would be told for this pod right now.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # views load the scheduler (numpy); only annotations need them here
    from scheduler_extender.views import ExplainView, PolicyView

FORMATS = ("table", "json")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from netsched.commands.cluster_access import add_access_arguments

    parser = subparsers.add_parser(
        "explain", help="say for each node whether a pod fits, its score, or why not"
    )
    parser.add_argument(
        "pod", nargs="?", metavar="POD", help="namespace/name (or name in namespace default)"
    )
    parser.add_argument(
        "-f", "--filename", metavar="FILE", help="explain the Pod in this manifest instead"
    )
    add_access_arguments(parser, FORMATS)
    return parser


def run(args: argparse.Namespace) -> int:
    from netsched.commands.cluster_access import (
        AccessError,
        emit,
        load_pod_manifest,
        open_access,
        print_json,
    )

    if bool(args.pod) == bool(args.filename):
        raise SystemExit("netsched explain: give either POD or -f FILE")
    try:
        access = open_access(args)
        view = (
            access.explain_pod(load_pod_manifest(args.filename))
            if args.filename
            else access.explain(args.pod)
        )
    except AccessError as error:
        raise SystemExit(f"netsched explain: {error}") from None
    if args.output == "json":
        print_json(view)
    else:
        emit(render(view))
    return 0


def describe_policy(policy: PolicyView) -> str:
    """One line: the default a pod asking nothing gets, the per-pod maximum, used of hard."""
    from contract.quantity import format_bandwidth

    spec, parts = policy.spec, []
    for label, pair in (("default", spec.default), ("max per pod", spec.max)):
        if pair is not None and (pair.ingress or pair.egress):
            parts.append(f"{label} in {pair.ingress or '-'} out {pair.egress or '-'}")
    if spec.hard is not None:
        for direction, hard, used in (("in", spec.hard.ingress, policy.used.ingress),
                                      ("out", spec.hard.egress, policy.used.egress)):
            if hard is not None:
                parts.append(f"{direction} {format_bandwidth(used)} used of {hard} hard")
    return "; ".join(parts) or "sets nothing"


def render(view: ExplainView) -> str:
    from netsched.commands.cluster_access import table

    lines = [
        f"Pod {view.pod}"
        + (f" (bound to {view.bound_to}; its own reservation counts)" if view.bound_to else "")
    ]
    if view.rejected_reservation:
        lines.append(f"  its netsched.io/reservation is not counted: {view.rejected_reservation}")
    for name, value in sorted(view.annotations.items()):
        lines.append(f"  {name}: {value}")
    for claim in view.claims:
        lines.append(f"  ResourceClaim {claim} (DeviceClass bandwidth.netsched.io)")
    if not view.annotations and not view.claims and not any(p.spec.default for p in view.policies):
        lines.append("  no netsched annotations: fits every node with a neutral score")
    for definition in view.definitions:
        lines.append(definition)
    for policy in view.policies:
        lines.append(f"BandwidthPolicy {policy.namespace}/{policy.name}: {describe_policy(policy)}")
    lines.append(f"Fits {view.fits} of {len(view.nodes)} nodes.")
    lines.append("")
    rows = []
    for verdict in view.nodes:
        reasons = [
            r.message + ("" if not r.resolvable else " (preemption could free it)")
            for r in verdict.reasons
        ]
        rows.append(
            (
                verdict.node,
                verdict.zone,
                "yes" if verdict.fits else "no",
                verdict.score if verdict.score is not None else "-",
                reasons[0] if reasons else "",
            )
        )
        rows.extend(("", "", "", "", reason) for reason in reasons[1:])
    lines.append(table(("NODE", "ZONE", "FITS", "SCORE", "REASON"), rows))
    return "\n".join(lines)
