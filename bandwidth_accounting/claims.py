"""DRA allocations in the ledger, and what a pod's netsched claims ask.

kube-scheduler allocates bandwidth natively when a pod's ResourceClaim asks DeviceClass
``bandwidth.netsched.io``: it writes, per allocation result, the device (a node's
interface, ``contract.dra.device_name``), the pool (the node) and the capacity it
consumed (``consumedCapacity``, with a ``shareID`` telling apart the claims sharing the
device). ``claim_holdings`` reads those results as ledger holdings beside the annotation
reservations, so the node's picture is whole. Each holding is keyed by the claim's uid
and the result's share: recording a claim again replaces, never adds, and deallocating
or deleting it frees exactly what it held.

What cannot be read exactly is said, never guessed silently (``ClaimProblem``):

- a pool naming a node without a NodeNetwork report is not counted: that node has no
  capacity on record, so no annotation pod is placed there beside it; the claim is read
  again when the report arrives;
- a device naming none of the node's interfaces is charged to the node's pod interface,
  as the runtime's rates of a foreign pod are: the bandwidth is real (kube-scheduler
  counts it against the device), the pod's traffic leaves through that interface
  unless the claim said otherwise, and counting it nowhere could over-commit the node;
- a consumed capacity that is not a rate netsched can read (the API server accepts any
  quantity; netsched's rates are 1k to 10T bits/s) counts nothing in that direction.

Pure: no I/O, no locks; the caller applies the holdings to its ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bandwidth_accounting.ledger import ClaimShare, Holding, Ledger, Shortfall
from contract.dra import DEVICE_CLASS, DRIVER, ResourceClaim, capacity_bps, interface_of_device
from contract.objects import Pod
from contract.quantity import QuantityError
from contract.reservation import DIRECTIONS, Rates, Reservation

HOLDING_PREFIX = "resourceclaim:"
"""Ledger keys of DRA holdings start with it, so they never meet a pod's uid."""

NodeInterfaces = Callable[[str], tuple[Collection[str], str | None] | None]
"""A node's interface names and its pod interface, or None for a node without a report."""


class ClaimProblemKind(StrEnum):
    """Why (part of) an allocation is not counted as written; the metric's ``reason`` label."""

    UNKNOWN_NODE = "unknown_node"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_QUANTITY = "bad_quantity"


@dataclass(frozen=True, slots=True)
class ClaimProblem:
    claim: str
    """namespace/name of the ResourceClaim."""
    kind: ClaimProblemKind
    field: str
    """The field of the claim, as a path: ``status.allocation.devices.results[0].device``."""
    value: str
    outcome: str
    """What netsched counts instead, for a person."""

    @property
    def message(self) -> str:
        return f"ResourceClaim {self.claim}: {self.field}={self.value!r}: {self.outcome}"


@dataclass(slots=True)
class ClaimReading:
    """A claim's allocation as ledger holdings, and what could not be read exactly."""

    holdings: list[Holding] = field(default_factory=list)
    problems: list[ClaimProblem] = field(default_factory=list)


def claim_holdings(claim: ResourceClaim, node_interfaces: NodeInterfaces) -> ClaimReading:
    """The ledger holdings of every ``netsched.io`` allocation result of ``claim``."""
    reading = ClaimReading()
    allocation = claim.status.allocation
    if allocation is None:
        return reading
    key = claim.key
    namespace = claim.metadata.namespace or "default"
    consumers = [ref.name for ref in claim.status.reserved_for if ref.resource == "pods"]
    held_by = f"{namespace}/{','.join(consumers)}" if consumers else key
    for index, result in enumerate(allocation.devices.results):
        if result.driver != DRIVER:
            continue
        where = f"status.allocation.devices.results[{index}]"
        known = node_interfaces(result.pool)
        if known is None:
            reading.problems.append(ClaimProblem(
                key, ClaimProblemKind.UNKNOWN_NODE, f"{where}.pool", result.pool,
                "no NodeNetwork report for that node: not counted until one arrives",
            ))
            continue
        names, pod_interface = known
        interface = interface_of_device(result.device, names)
        if interface is None:
            if pod_interface is None:
                reading.problems.append(ClaimProblem(
                    key, ClaimProblemKind.UNKNOWN_DEVICE, f"{where}.device", result.device,
                    f"no interface of node {result.pool} is that device, and it has no pod interface: "
                    "not counted",
                ))
                continue
            reading.problems.append(ClaimProblem(
                key, ClaimProblemKind.UNKNOWN_DEVICE, f"{where}.device", result.device,
                f"no interface of node {result.pool} is that device: charged to its pod interface "
                f"{pod_interface}",
            ))
            interface = pod_interface
        charged, unreadable = _rates(result.consumed_capacity or {})
        reading.problems += [
            ClaimProblem(
                key, ClaimProblemKind.BAD_QUANTITY, f"{where}.consumedCapacity.{direction}", raw,
                f"{error}: {direction} not counted",
            )
            for direction, raw, error in unreadable
        ]
        share = result.share_id or f"{result.request}/{result.pool}/{result.device}"
        reading.holdings.append(Holding(
            uid=f"{HOLDING_PREFIX}{claim.metadata.uid or key}/{share}",
            pod=held_by,
            priority=0,
            reservation=Reservation(
                node=result.pool, primary=charged, primary_parent=interface, interfaces={interface: charged}
            ),
            claim=ClaimShare(namespace, claim.metadata.name, result.request, result.device, result.share_id),
        ))
    return reading


def _rates(capacity: Mapping[str, str]) -> tuple[Rates, list[tuple[str, str, QuantityError]]]:
    """The ingress and egress of a capacity map (absent: 0), and each value that is not a rate
    netsched reads (counted as 0 there) with its direction and why."""
    rates, unreadable = {}, []
    for direction in DIRECTIONS:
        raw = capacity.get(direction)
        try:
            rates[direction] = capacity_bps(raw)
        except QuantityError as error:
            unreadable.append((direction, raw, error))
            rates[direction] = 0
    return Rates(**rates), unreadable


# -- a pod's claims, before kube-scheduler allocates them ----------------------------------


@dataclass(frozen=True, slots=True)
class ClaimAsk:
    """One request of a netsched claim: the capacity each device it gets must give."""

    claim: str
    request: str
    ingress: int
    egress: int


class InvalidClaim(ValueError):
    """A netsched claim's request that netsched cannot read; the message names the field."""


def pod_claim_names(pod: Pod) -> list[str]:
    """namespace/name of every ResourceClaim the pod uses (``Pod.claim_names``)."""
    namespace = pod.metadata.effective_namespace
    return [f"{namespace}/{name}" for name in pod.claim_names()]


def is_netsched_claim(claim: ResourceClaim) -> bool:
    """Whether a request of the claim asks for netsched's DeviceClass."""
    return any(
        r.exactly is not None and r.exactly.device_class_name == DEVICE_CLASS for r in claim.spec.devices.requests
    )


def claim_asks(claim: ResourceClaim) -> list[ClaimAsk]:
    """What each netsched request of the claim asks per device (``count`` devices each);
    raises ``InvalidClaim`` naming the field and value netsched cannot read."""
    key = claim.key
    asks = []
    for index, request in enumerate(claim.spec.devices.requests):
        exactly = request.exactly
        if exactly is None or exactly.device_class_name != DEVICE_CLASS:
            continue
        wanted, unreadable = _rates(exactly.capacity.requests if exactly.capacity is not None else {})
        for direction, _, error in unreadable:
            raise InvalidClaim(
                f"ResourceClaim {key}: spec.devices.requests[{index}].exactly.capacity.requests."
                f"{direction}: {error}"
            )
        asks += [ClaimAsk(key, request.name, wanted.ingress, wanted.egress)] * max(1, exactly.count or 1)
    return asks


def claim_shortfalls(
    asks: list[ClaimAsk], node: str, interfaces: Collection[str], ledger: Ledger, observed_since: float | None
) -> list[tuple[ClaimAsk, list[Shortfall]]]:
    """The asks that no interface of ``node`` has room for, each with every interface's
    shortfall; empty when each ask fits some interface (earlier asks charged first, each
    on the interface with the most room left for it).

    kube-scheduler chooses the device itself (its CEL selectors may narrow it), so this
    is a necessary condition, not a plan: bind checks the allocation it made.
    """
    planned: dict[str, tuple[int, int]] = {}
    failed = []
    for ask in asks:
        best, best_room = None, None
        for interface in interfaces:
            before = planned.get(interface, (0, 0))
            need = (before[0] + ask.ingress, before[1] + ask.egress)
            free = ledger.free(node, interface, observed_since)
            # as Ledger.shortfalls decides: a direction asking nothing always fits
            if any(n and n > f for n, f in zip(need, free, strict=True)):
                continue
            room = min(free[0] - need[0], free[1] - need[1])
            if best_room is None or room > best_room:
                best, best_room = interface, room
        if best is None:
            failed.append((ask, [
                shortfall
                for interface in interfaces
                for shortfall in ledger.shortfalls(node, {interface: _plus(planned.get(interface), ask)}, observed_since)
            ]))
            continue
        planned[best] = _plus(planned.get(best), ask)
    return failed


def _plus(planned: tuple[int, int] | None, ask: ClaimAsk) -> tuple[int, int]:
    ingress, egress = planned or (0, 0)
    return ingress + ask.ingress, egress + ask.egress


def overcommits(holdings: Iterable[Holding], ledger: Ledger) -> list[Shortfall]:
    """The budgets that recording ``holdings`` would take past usable capacity, each holding
    replacing what its key already holds (the watch may have recorded the claim first).

    kube-scheduler allocated them without seeing annotation reservations; call this with
    the ledger locked and record the holdings under the same lock, or a reservation taken
    in between is not counted.
    """
    asked: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    held: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for holding in holdings:
        for sums, record in ((asked, holding), (held, ledger.holding(holding.uid))):
            if record is None:
                continue
            for interface, rates in record.reservation.interfaces.items():
                pair = sums[(record.node, interface)]
                pair[0] += rates.ingress
                pair[1] += rates.egress
    result = []
    for (node, interface), wanted in asked.items():
        usable = ledger.usable(node, interface)
        reserved = ledger.reserved(node, interface)
        foreign = ledger.foreign_reserved(node, interface)
        claimed = ledger.claimed(node, interface)
        own = held[(node, interface)]
        for index, direction in enumerate(DIRECTIONS):
            others = reserved[index] - own[index]
            if wanted[index] and others + wanted[index] > usable[index]:
                result.append(Shortfall(
                    node, interface, direction, others, usable[index], wanted[index],
                    foreign_bps=foreign[index], claimed_bps=claimed[index] - own[index],
                ))
    return result


__all__ = [
    "HOLDING_PREFIX",
    "ClaimAsk",
    "ClaimProblem",
    "ClaimProblemKind",
    "ClaimReading",
    "InvalidClaim",
    "NodeInterfaces",
    "claim_asks",
    "claim_holdings",
    "claim_shortfalls",
    "is_netsched_claim",
    "overcommits",
    "pod_claim_names",
]
