"""Observed load: the node reporters' rates, held over a window, as the ledger counts them.

Pods that annotate nothing, and the host itself, send traffic nobody reserved. The node
reporter measures every interface's rx and tx rate over its interval (10 s by default)
and publishes them in the node's ``NodeNetwork`` status. Traffic is bursty: one quiet
report between two busy ones must not invite a reservation that the next burst
overruns. So the load a link is held to carry is the highest rate it reported within
``window``: it rises with the first report that shows new traffic and falls only once
a whole window of reports has shown less (the same idea as the Horizontal Pod
Autoscaler's scale-down stabilisation window). Received bytes are the pods' ingress,
sent bytes their egress.

How old an observation may be and still count is the fit check's business
(``FitSettings.observed_max_age``); this module only keeps the held values, with the
time of the report that produced them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import timedelta

from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.settings import CapacitySettings
from contract.objects import NodeNetwork

Rates = Mapping[str, tuple[int, int]]
"""(ingress, egress) bits/s per interface of one node."""


class ObservedLoad:
    """Recent reports per node; each new one updates the node's held load in the ledger."""

    def __init__(self, ledger: Ledger, window: timedelta | None = None) -> None:
        """``window``: how long a reported rate is held; None: ``CapacitySettings``' default."""
        self.ledger = ledger
        window = window if window is not None else CapacitySettings().observed_window
        self.window = window.total_seconds()
        self._history: dict[str, deque[tuple[float, Rates]]] = {}

    def record(self, node: str, at: float, rates: Rates) -> None:
        """A report of ``node`` made at ``at`` (seconds since the epoch).

        Reports no newer than the last one recorded (a replayed watch event, an old
        object from a relist) change nothing.
        """
        history = self._history.setdefault(node, deque())
        if history and at <= history[-1][0]:
            return
        history.append((at, rates))
        while history[0][0] < at - self.window:
            history.popleft()
        held = {}
        for interface in rates:
            seen = [past[interface] for _, past in history if interface in past]
            held[interface] = (max(r[0] for r in seen), max(r[1] for r in seen))
        self.ledger.set_observed(node, at, held)

    def record_report(self, report: NodeNetwork) -> None:
        """The rates of a reporter's ``NodeNetwork`` (one without a heartbeat says nothing)."""
        status = report.status
        if status.heartbeat_time is None:
            return
        rates = {iface.name: (iface.rx_bps, iface.tx_bps) for iface in status.interfaces}
        self.record(report.metadata.name, status.heartbeat_time.timestamp(), rates)

    def nodes(self) -> set[str]:
        return set(self._history)

    def forget(self, node: str) -> None:
        self._history.pop(node, None)
        self.ledger.forget_observed(node)
