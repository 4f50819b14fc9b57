"""Observed rx/tx bits per second from consecutive samples of 64-bit byte counters.

Samples are keyed by interface index, which survives a rename (so the rate of a
renamed link continues) and is not reused by the kernel for a new link soon after a
delete. A counter that went backwards was reset (driver reload, 64-bit wrap): the
rate then counts from zero, a lower bound, instead of a huge bogus figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from node_reporter.netlink import Link


@dataclass(frozen=True, slots=True)
class Rate:
    rx_bps: int
    tx_bps: int


@dataclass(frozen=True, slots=True)
class _Sample:
    rx_bytes: int
    tx_bytes: int
    at: float


def _delta(current: int, previous: int) -> int:
    return current - previous if current >= previous else current


class RateMeter:
    """Remembers the last sample per link; :meth:`update` returns rates since then."""

    def __init__(self) -> None:
        self._samples: dict[int, _Sample] = {}

    def update(self, links: Iterable[Link], at: float) -> dict[int, Rate]:
        """Record a sample of ``links`` taken at ``at`` (monotonic seconds) and return
        each link's rate over the window since its previous sample. Links seen for the
        first time have no window yet and get no entry; links no longer present are
        forgotten."""
        rates: dict[int, Rate] = {}
        samples: dict[int, _Sample] = {}
        for link in links:
            sample = _Sample(link.rx_bytes, link.tx_bytes, at)
            samples[link.index] = sample
            previous = self._samples.get(link.index)
            if previous is None or at <= previous.at:
                continue
            seconds = at - previous.at
            rates[link.index] = Rate(
                rx_bps=round(_delta(sample.rx_bytes, previous.rx_bytes) * 8 / seconds),
                tx_bps=round(_delta(sample.tx_bytes, previous.tx_bytes) * 8 / seconds),
            )
        self._samples = samples
        return rates
