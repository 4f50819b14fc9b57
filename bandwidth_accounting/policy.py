"""Namespace bandwidth policy: defaults for pods that ask nothing, a per-pod maximum, a total.

A ``BandwidthPolicy`` does for bandwidth what LimitRange and ResourceQuota do for CPU and
memory. Its default turns a pod that annotates nothing into one with a reservation, so
the CNI plugin shapes it like any other: traffic nobody reserved stops being possible
in that namespace. Several policies in one namespace all hold (as ResourceQuotas do);
the default of the first by name that sets one applies.

Totals count every interface of a pod together, per direction: primary and
attachments, what its reservation would hold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bandwidth_accounting.requirements import PodRequirements
from contract.objects import BandwidthPolicy, BandwidthPolicyStatus, DirectionalBandwidth
from contract.quantity import QuantityError, format_bandwidth, parse_bandwidth
from contract.reservation import DIRECTIONS

Pair = tuple[int, int]
"""(ingress, egress) bits/s."""
Limit = tuple[int | None, int | None]
"""(ingress, egress) bits/s; None: no limit in that direction."""


_ZERO = re.compile(r"(?:0+(?:\.0*)?|\.0+)(?:Ki|Mi|Gi|Ti|Pi|Ei|[kMGTPE])?")
"""A zero quantity: a maximum or total of nothing is a real setting ("no bandwidth here")."""


class InvalidPolicy(ValueError):
    """A policy value netsched cannot use; the message names the policy, field and value."""


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    """One ``BandwidthPolicy`` with its quantities parsed."""

    name: str
    """namespace/name, for people."""
    default: Limit = (None, None)
    max: Limit = (None, None)
    hard: Limit = (None, None)

    @classmethod
    def of(cls, policy: BandwidthPolicy) -> NamespacePolicy:
        spec, name = policy.spec, policy.key
        return cls(
            name=name,
            default=_limit(name, "default", spec.default, zero_allowed=False),
            max=_limit(name, "max", spec.max, zero_allowed=True),
            hard=_limit(name, "hard", spec.hard, zero_allowed=True),
        )


def pod_totals(requirements: PodRequirements) -> Pair:
    """What the pod would hold reserved, all interfaces together, per direction."""
    return (
        requirements.ingress_bps + sum(a.ingress_bps for a in requirements.attachments),
        requirements.egress_bps + sum(a.egress_bps for a in requirements.attachments),
    )


def with_defaults(requirements: PodRequirements, policies: Sequence[NamespacePolicy]) -> PodRequirements:
    """The pod's requirements with the namespace default in each primary direction it left unset."""
    default = next((p.default for p in policies if p.default != (None, None)), None)
    if default is None:
        return requirements
    ingress = requirements.ingress_bps or default[0] or 0
    egress = requirements.egress_bps or default[1] or 0
    if (ingress, egress) == (requirements.ingress_bps, requirements.egress_bps):
        return requirements
    return replace(requirements, ingress_bps=ingress, egress_bps=egress)


def policy_problems(requirements: PodRequirements, policies: Sequence[NamespacePolicy], used: Pair) -> list[str]:
    """Why the pod may not hold its reservation in its namespace: a per-pod maximum it
    exceeds, or a namespace total that ``used`` (what the namespace holds now) plus the
    pod would exceed. Empty: it may."""
    asked = pod_totals(requirements)
    problems = []
    for policy in policies:
        for index, direction in enumerate(DIRECTIONS):
            maximum, hard = policy.max[index], policy.hard[index]
            if maximum is not None and asked[index] > maximum:
                problems.append(
                    f"BandwidthPolicy {policy.name}: {direction} {format_bandwidth(asked[index])} exceeds the "
                    f"per-pod maximum {format_bandwidth(maximum)}"
                )
            if hard is not None and asked[index] and used[index] + asked[index] > hard:
                problems.append(
                    f"BandwidthPolicy {policy.name}: {direction} {format_bandwidth(used[index])} used of "
                    f"{format_bandwidth(hard)} hard, asks {format_bandwidth(asked[index])}"
                )
    return problems


def policy_status(policy: BandwidthPolicy, used: Pair) -> BandwidthPolicyStatus:
    """The status netsched writes, like ResourceQuota's: the enforced totals as the spec
    gives them, and what the namespace's pods hold now in each direction that has one."""
    hard = policy.spec.hard or DirectionalBandwidth()
    return BandwidthPolicyStatus(
        hard=hard,
        used=DirectionalBandwidth(
            **{
                direction: format_bandwidth(used[index]) if getattr(hard, direction) is not None else None
                for index, direction in enumerate(DIRECTIONS)
            }
        ),
    )


def _limit(name: str, field: str, value: DirectionalBandwidth | None, *, zero_allowed: bool) -> Limit:
    if value is None:
        return (None, None)
    result: list[int | None] = []
    for direction in DIRECTIONS:
        raw = getattr(value, direction)
        if raw is None:
            result.append(None)
        elif zero_allowed and _ZERO.fullmatch(raw):
            result.append(0)
        else:
            try:
                result.append(parse_bandwidth(raw))
            except QuantityError as error:
                raise InvalidPolicy(f"BandwidthPolicy {name}: spec.{field}.{direction}: {error}") from None
    return result[0], result[1]
