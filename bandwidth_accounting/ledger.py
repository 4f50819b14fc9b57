"""The ledger: usable capacity, reservations and observed load per node, interface and direction.

The ledger is a cache of facts that live in the cluster (each bound pod's
``netsched.io/reservation`` annotation, each node reporter's rates), so it is rebuilt
from them and never persisted. Its one hard promise: ``reserve`` never takes an
interface past its usable capacity, whatever the interleaving of callers, because the
check and the update happen under one lock.

Observed load is what the node reporter measured on a link. Traffic of pods holding a
reservation is shaped to it, so what a link carries beyond its reservations is at
least ``observed - reserved``: the *load* a new reservation must fit beside is
``max(reserved, observed)``. Observations carry the time they were made; the fit check
says from when on they count (stale ones count for nothing).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from bandwidth_accounting.interning import Interning
from bandwidth_accounting.journal import ChangeJournal
from bandwidth_accounting.settings import CapacitySettings
from contract import annotations
from contract.objects import Node, NodeNetwork
from contract.quantity import format_bandwidth
from contract.reservation import DIRECTIONS, Direction, Rates, Reservation

log = logging.getLogger(__name__)

InterfaceKey = tuple[str, str]
"""(node, interface)."""
_NOTHING = (0, 0)
NEVER = float("nan")
"""Observation time of an interface nothing was observed on (compares False with any time)."""


def usable_bps(speed_mbps: int, headroom: float) -> int:
    """Capacity netsched may promise on a link: its speed less the headroom kept free."""
    return int(speed_mbps * 1_000_000 * (1.0 - headroom))


def node_headroom(node: Node | None, default: float) -> float:
    """The node's ``netsched.io/headroom`` annotation, else ``default`` (also when it is unreadable)."""
    if node is None:
        return default
    raw = node.metadata.annotations.get(annotations.HEADROOM)
    if raw is None:
        return default
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        log.warning("node %s: ignoring %s=%r (not a number)", node.name, annotations.HEADROOM, raw)
        return default
    if not 0 <= value < 1:
        log.warning("node %s: ignoring %s=%r (outside 0-100%%)", node.name, annotations.HEADROOM, raw)
        return default
    return value


def usable_by_interface(report: NodeNetwork, node: Node | None, capacity: CapacitySettings) -> dict[str, int]:
    """Usable bits/s (the same in each direction) of every interface of a node's report.

    The one rule for what a link can promise: the ledger's capacity and the devices
    published for DRA (``bandwidth_accounting.devices``) both come from here."""
    headroom = node_headroom(node, capacity.headroom)
    return {interface.name: usable_bps(interface.speed_mbps, headroom) for interface in report.status.interfaces}


@dataclass(frozen=True, slots=True)
class ClaimShare:
    """Where a DRA holding comes from: one allocation result of a ResourceClaim."""

    namespace: str
    name: str
    request: str
    device: str
    share_id: str | None
    """kube-scheduler's ``shareID`` of the allocation on a shared device (None: not shared)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Holding:
    """One pod's reservation, or one DRA allocation result, as the ledger keeps it."""

    uid: str
    pod: str  # namespace/name, for people
    priority: int
    reservation: Reservation
    foreign: bool = False
    """Not netsched's reservation: a bound pod's bandwidth annotations, which the runtime shapes
    whoever placed the pod (another scheduler, or a pod without a reservation to trust)."""
    claim: ClaimShare | None = None
    """Set for a DRA allocation (``bandwidth_accounting.claims``): kube-scheduler took it from
    the device's capacity; ``uid`` is then the claim's uid and share, never a pod's, so
    preemption never picks it as a victim."""

    @property
    def node(self) -> str:
        return self.reservation.node

    @property
    def namespace(self) -> str:
        return self.pod.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A budget that a request would overrun."""

    node: str
    interface: str
    direction: Direction
    reserved_bps: int
    usable_bps: int
    asked_bps: int
    observed_bps: int = 0
    """Traffic observed beyond the reservations (when observations count): nobody reserved it."""
    foreign_bps: int = 0
    """The part of ``reserved_bps`` that pods netsched did not place hold (their annotations)."""
    claimed_bps: int = 0
    """The part of ``reserved_bps`` that DRA claims hold (kube-scheduler allocated it)."""

    @property
    def load_bps(self) -> int:
        return self.reserved_bps + self.observed_bps

    @property
    def message(self) -> str:
        observed = f", {format_bandwidth(self.observed_bps)} observed" if self.observed_bps else ""
        parts = []
        if self.foreign_bps:
            parts.append(f"{format_bandwidth(self.foreign_bps)} of it by pods of other schedulers")
        if self.claimed_bps:
            parts.append(f"{format_bandwidth(self.claimed_bps)} of it by DRA claims")
        if parts and self.reserved_bps > self.usable_bps:
            # netsched never reserves past usable: only holdings it records as facts can over-commit
            parts[-1] += "; over-committed by them"
        foreign = f" ({', '.join(parts)})" if parts else ""
        return (
            f"{self.interface} {self.direction}: {format_bandwidth(self.reserved_bps)} reserved{foreign}"
            f"{observed} of {format_bandwidth(self.usable_bps)} usable, asks {format_bandwidth(self.asked_bps)}"
        )


class ReservationRefused(Exception):
    """``reserve`` found the request no longer fits; ``reasons`` are for a person."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


class Ledger:
    """Capacity and reservations, safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._usable: dict[InterfaceKey, tuple[int, int]] = {}
        self._reserved: dict[InterfaceKey, list[int]] = {}
        # The same budgets as arrays, one row per interface slot, for batch fit checks.
        self._slots: dict[InterfaceKey, int] = {}
        self._usable_rows = np.zeros((0, 2), dtype=np.int64)
        self._reserved_rows = np.zeros((0, 2), dtype=np.int64)
        self._observed: dict[InterfaceKey, tuple[float, int, int]] = {}  # (time, ingress, egress)
        self._observed_rows = np.zeros((0, 2), dtype=np.int64)
        self._observed_at_rows = np.zeros(0, dtype=np.float64)
        self._holdings: dict[str, Holding] = {}
        self._by_node: dict[str, dict[str, Holding]] = defaultdict(dict)  # node → uid → holding
        self._addresses: dict[str, dict[int, str]] = defaultdict(dict)  # network → address → uid
        self._addresses_in_order: dict[str, list[int]] = defaultdict(list)
        """network → the same addresses, ascending: allocation bisects them (``ipam.first_free``)."""
        self._by_namespace: dict[str, list[int]] = {}  # namespace → reserved (ingress, egress), all interfaces
        self._rates: Interning[Rates] = Interning()
        """Each distinct pair of rates the holdings hold, the one object they share (``_share_rates``)."""
        self._version = 0
        self.changes = ChangeJournal()
        """The nodes whose budgets, reservations or observed load changed, for caches of fit
        answers (``version`` says only that something changed)."""

    # -- reading ---------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped by every change; callers key caches on it."""
        return self._version

    @contextmanager
    def locked(self) -> Iterator[Ledger]:
        """Hold the ledger still while planning and reserving in one step."""
        with self._lock:
            yield self

    def usable(self, node: str, interface: str) -> tuple[int, int]:
        return self._usable.get((node, interface), (0, 0))

    def reserved(self, node: str, interface: str) -> tuple[int, int]:
        reserved = self._reserved.get((node, interface))
        return (reserved[0], reserved[1]) if reserved else (0, 0)

    def observed(self, node: str, interface: str, since: float | None) -> tuple[int, int]:
        """Observed (ingress, egress) if observed at or after ``since`` (seconds since the
        epoch; None: observations do not count), else (0, 0)."""
        seen = self._observed.get((node, interface))
        if since is None or seen is None or not seen[0] >= since:
            return _NOTHING
        return seen[1], seen[2]

    def observed_at(self, node: str, interface: str) -> float:
        """When the interface's load was last observed (NaN: never)."""
        seen = self._observed.get((node, interface))
        return seen[0] if seen else NEVER

    def load(self, node: str, interface: str, since: float | None) -> tuple[int, int]:
        """What a new reservation must fit beside: reservations, or the observed traffic
        (counted from ``since``) where it is higher."""
        reserved = self.reserved(node, interface)
        observed = self.observed(node, interface, since)
        return max(reserved[0], observed[0]), max(reserved[1], observed[1])

    def free(self, node: str, interface: str, since: float | None = None) -> tuple[int, int]:
        usable = self._usable.get((node, interface), _NOTHING)
        load = self.load(node, interface, since)
        return usable[0] - load[0], usable[1] - load[1]

    def slot(self, node: str, interface: str) -> int:
        """Row of the interface in ``budget_rows``; -1 when it has no capacity on record."""
        return self._slots.get((node, interface), -1)

    def budget_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(usable, reserved) as int64 arrays of shape (slots, 2): ingress, egress per slot."""
        return self._usable_rows, self._reserved_rows

    def observed_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(observed, observed at) per slot: int64 (slots, 2) and float64 seconds (NaN: never)."""
        return self._observed_rows, self._observed_at_rows

    def interfaces(self) -> Iterable[InterfaceKey]:
        return self._usable.keys() | self._reserved.keys()

    def foreign_reserved(self, node: str, interface: str) -> tuple[int, int]:
        """(ingress, egress) of ``interface`` held by pods netsched did not place."""
        with self._lock:
            held = [
                h.reservation.interfaces.get(interface)
                for h in self._by_node.get(node, {}).values() if h.foreign
            ]
        return sum(r.ingress for r in held if r), sum(r.egress for r in held if r)

    def claimed(self, node: str, interface: str) -> tuple[int, int]:
        """(ingress, egress) of ``interface`` held by DRA allocations."""
        with self._lock:
            held = [
                h.reservation.interfaces.get(interface)
                for h in self._by_node.get(node, {}).values() if h.claim is not None
            ]
        return sum(r.ingress for r in held if r), sum(r.egress for r in held if r)

    def holding(self, uid: str) -> Holding | None:
        return self._holdings.get(uid)

    def holdings(self) -> list[Holding]:
        with self._lock:
            return list(self._holdings.values())

    def holdings_on(self, node: str) -> list[Holding]:
        with self._lock:
            return list(self._by_node.get(node, {}).values())

    def namespace_reserved(self, namespace: str) -> tuple[int, int]:
        """What the namespace's pods hold reserved, all their interfaces together."""
        reserved = self._by_namespace.get(namespace)
        return (reserved[0], reserved[1]) if reserved else _NOTHING

    def address_holder(self, network: str, address: str) -> str | None:
        """UID of the pod holding ``address`` on ``network``, if any."""
        return self._addresses.get(network, {}).get(int(ipaddress.ip_address(address)))

    def addresses_in_use(self, network: str) -> Sequence[int]:
        """Addresses held on ``network``, as integers in ascending order (what allocation
        reads). The ledger's own list, not a copy: read it with the ledger locked."""
        return self._addresses_in_order.get(network, ())

    def node_view(self, node: str, excluding: Iterable[str] = ()) -> Ledger:
        """A private copy of one node's budgets without the given pods: "what if they left?"."""
        excluded = set(excluding)
        view = Ledger()
        with self._lock:
            view._usable = {key: usable for key, usable in self._usable.items() if key[0] == node}
            for holding in self._by_node.get(node, {}).values():
                if holding.uid not in excluded:
                    view._add(holding)
            # What the link carries beyond its reservations stays when pods leave.
            for key, (at, ingress, egress) in self._observed.items():
                if key[0] == node:
                    before, after = self.reserved(*key), view.reserved(*key)
                    view._observed[key] = (
                        at,
                        max(0, ingress - before[0]) + after[0],
                        max(0, egress - before[1]) + after[1],
                    )
        return view

    # -- capacity --------------------------------------------------------------------

    def set_usable(self, usable: Mapping[InterfaceKey, tuple[int, int]]) -> None:
        """Replace every interface's usable capacity (the topology changed)."""
        with self._lock:
            self._usable = dict(usable)
            self._slots = {key: row for row, key in enumerate(self._usable)}
            self._usable_rows = np.array(list(self._usable.values()), dtype=np.int64).reshape(-1, 2)
            self._reserved_rows = np.zeros_like(self._usable_rows)
            self._observed_rows = np.zeros_like(self._usable_rows)
            self._observed_at_rows = np.full(len(self._usable_rows), NEVER)
            for key, reserved in self._reserved.items():
                row = self._slots.get(key)
                if row is not None:
                    self._reserved_rows[row] = reserved
            for key in self._observed:
                self._mirror_observed(key)
            self._version += 1
            self.changes.reset()

    def update_usable(self, usable: Mapping[InterfaceKey, tuple[int, int]]) -> bool:
        """Change the usable capacity of interfaces the ledger already has (one node's
        headroom changed) in place; False, changing nothing, if one of them is new."""
        with self._lock:
            if any(key not in self._slots for key in usable):
                return False
            for key, rates in usable.items():
                self._usable[key] = rates
                self._usable_rows[self._slots[key]] = rates
            for node in {node for node, _ in usable}:
                self.changes.record(node)
            self._version += 1
            return True

    # -- observed load ---------------------------------------------------------------

    def set_observed(self, node: str, at: float, rates: Mapping[str, tuple[int, int]]) -> None:
        """Replace the observed (ingress, egress) of ``node``'s interfaces, seen at ``at``.

        Observations change with every report and do not bump ``version``: a plan made
        a report earlier stays valid for the caches keyed on it, and bind checks again.
        """
        with self._lock:
            for key in [key for key in self._observed if key[0] == node and key[1] not in rates]:
                del self._observed[key]
                self._mirror_observed(key)
            for interface, (ingress, egress) in rates.items():
                key = (node, interface)
                self._observed[key] = (at, ingress, egress)
                self._mirror_observed(key)

    def forget_observed(self, node: str) -> None:
        self.set_observed(node, NEVER, {})

    # -- reservations ----------------------------------------------------------------

    def shortfalls(
        self, node: str, charges: Mapping[str, tuple[int, int]], observed_since: float | None = None
    ) -> list[Shortfall]:
        """Budgets on ``node`` that ``charges`` ((ingress, egress) per interface) would overrun,
        counting observed load seen at or after ``observed_since`` (None: reservations only).

        This runs once per candidate node per pod, so it reads the dicts directly.
        """
        result = []
        usable_of, reserved_of = self._usable, self._reserved
        for interface, asked in charges.items():
            key = (node, interface)
            usable = usable_of.get(key, _NOTHING)
            reserved = reserved_of.get(key, _NOTHING)
            observed = self.observed(node, interface, observed_since)
            for index, direction in enumerate(DIRECTIONS):
                unreserved = max(0, observed[index] - reserved[index])
                if asked[index] and reserved[index] + unreserved + asked[index] > usable[index]:
                    foreign = self.foreign_reserved(node, interface)[index]
                    claimed = self.claimed(node, interface)[index]
                    result.append(
                        Shortfall(
                            node, interface, direction, reserved[index], usable[index], asked[index],
                            unreserved, foreign, claimed,
                        )
                    )
        return result

    def reserve(self, uid: str, pod: str, priority: int, reservation: Reservation) -> Holding:
        """Check and record a reservation atomically, or raise ``ReservationRefused``.

        Reserving again for a UID that already holds the same reservation is a no-op,
        so a retried bind or a replayed watch event cannot double-charge.
        """
        with self._lock:
            existing = self._holdings.get(uid)
            if existing is not None:
                if existing.reservation == reservation:
                    return existing
                self._remove(existing)
            charges = {name: (r.ingress, r.egress) for name, r in reservation.interfaces.items()}
            reasons = [s.message for s in self.shortfalls(reservation.node, charges)]
            reasons += self._address_conflicts(uid, reservation)
            if reasons:
                if existing is not None:
                    self._add(existing)
                raise ReservationRefused(reasons)
            holding = Holding(uid, pod, priority, reservation)
            self._add(holding)
            return holding

    def release(self, uid: str) -> Holding | None:
        with self._lock:
            holding = self._holdings.get(uid)
            if holding is not None:
                self._remove(holding)
            return holding

    def record(self, holding: Holding) -> None:
        """Take a reservation the cluster already holds (a fact), without a capacity check."""
        with self._lock:
            existing = self._holdings.get(holding.uid)
            if existing is not None:
                if existing == holding:
                    return
                self._remove(existing)
            self._add(holding)

    def rebuild(self, holdings: Iterable[Holding]) -> list[str]:
        """Replace all reservations with the cluster's record of them.

        Recorded reservations are facts (the pods hold them), so they are taken even
        when a link has since shrunk; the returned warnings say where that happened.
        """
        with self._lock:
            self._reserved.clear()
            self._reserved_rows[:] = 0
            self._holdings.clear()
            self._by_node.clear()
            self._by_namespace.clear()
            self._addresses.clear()
            self._addresses_in_order.clear()
            for holding in holdings:
                self.record(holding)
            self.changes.reset()
            return [
                f"{node}/{interface}: reserved {reserved} exceeds usable {self.usable(node, interface)}"
                for (node, interface), reserved in self._reserved.items()
                if any(r > u for r, u in zip(reserved, self.usable(node, interface), strict=True))
            ]

    # -- internals -------------------------------------------------------------------

    def _address_conflicts(self, uid: str, reservation: Reservation) -> list[str]:
        conflicts = []
        for attachment in reservation.attachments:
            if attachment.ip is None:
                continue
            address = ipaddress.ip_interface(attachment.ip).ip
            holder = self._addresses.get(attachment.network, {}).get(int(address))
            if holder is not None and holder != uid:
                conflicts.append(f"{attachment.network}: address {address} is already taken")
        return conflicts

    def _mirror_observed(self, key: InterfaceKey) -> None:
        row = self._slots.get(key)
        if row is not None:
            at, ingress, egress = self._observed.get(key, (NEVER, 0, 0))
            self._observed_rows[row] = (ingress, egress)
            self._observed_at_rows[row] = at
        self.changes.record(key[0], timed=True)

    def _mirror(self, key: InterfaceKey, reserved: list[int]) -> None:
        row = self._slots.get(key)
        if row is not None:
            self._reserved_rows[row] = reserved

    def _share_rates(self, reservation: Reservation) -> None:
        """Give ``reservation`` the ``Rates`` objects that equal rates held already are: a
        workload's replicas ask equal rates, and a reservation repeats its primary's for
        its primary's interface (``bandwidth_accounting.interning``)."""
        shared = self._rates
        reservation.primary = shared.of(reservation.primary)
        interfaces = reservation.interfaces
        for name, rates in interfaces.items():
            interfaces[name] = shared.of(rates)

    def _add(self, holding: Holding) -> None:
        self._share_rates(holding.reservation)
        node = holding.node
        in_namespace = self._by_namespace.setdefault(holding.namespace, [0, 0])
        for interface, rates in holding.reservation.interfaces.items():
            if not (rates.ingress or rates.egress):
                continue
            reserved = self._reserved.setdefault((node, interface), [0, 0])
            reserved[0] += rates.ingress
            reserved[1] += rates.egress
            in_namespace[0] += rates.ingress
            in_namespace[1] += rates.egress
            self._mirror((node, interface), reserved)
        for attachment in holding.reservation.attachments:
            if attachment.ip is not None:
                address = int(ipaddress.ip_interface(attachment.ip).ip)
                held = self._addresses[attachment.network]
                if address not in held:
                    insort(self._addresses_in_order[attachment.network], address)
                held[address] = holding.uid
        self._holdings[holding.uid] = holding
        self._by_node[holding.node][holding.uid] = holding
        self._version += 1
        self.changes.record(node)

    def _remove(self, holding: Holding) -> None:
        node = holding.node
        in_namespace = self._by_namespace.setdefault(holding.namespace, [0, 0])
        for interface, rates in holding.reservation.interfaces.items():
            if not (rates.ingress or rates.egress):
                continue
            reserved = self._reserved[(node, interface)]
            reserved[0] -= rates.ingress
            reserved[1] -= rates.egress
            in_namespace[0] -= rates.ingress
            in_namespace[1] -= rates.egress
            self._mirror((node, interface), reserved)
            if reserved == [0, 0]:
                del self._reserved[(node, interface)]
        for attachment in holding.reservation.attachments:
            if attachment.ip is not None:
                address = int(ipaddress.ip_interface(attachment.ip).ip)
                if self._addresses[attachment.network].get(address) == holding.uid:
                    del self._addresses[attachment.network][address]
                    in_order = self._addresses_in_order[attachment.network]
                    del in_order[bisect_left(in_order, address)]
        if in_namespace == [0, 0]:
            del self._by_namespace[holding.namespace]
        del self._holdings[holding.uid]
        on_node = self._by_node[holding.node]
        del on_node[holding.uid]
        if not on_node:
            del self._by_node[holding.node]
        self._version += 1
        self.changes.record(node)
