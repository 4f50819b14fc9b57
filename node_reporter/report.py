"""Turning a netlink snapshot into the node's ``NodeNetwork`` report.

Segments are attributed to the interface whose bandwidth they consume: a VLAN link's
tag to its parent, a VXLAN device's VNI to its underlay (``IFLA_VXLAN_LINK``, else the
link that owns the VXLAN's local address). The VLAN or VXLAN device itself lists no
segment, so the extender charges the uplink, never a virtual device.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from contract.objects import (
    SWITCH_LABEL,
    ZONE_LABEL,
    NetworkInterface,
    NodeNetwork,
    NodeNetworkStatus,
    ObjectMeta,
)
from node_reporter.config import ReporterConfig
from node_reporter.netlink import SCOPE_LINK, Address, Link, NetlinkSource, Snapshot
from node_reporter.rates import Rate, RateMeter

log = logging.getLogger(__name__)


def _address_key(address: Address) -> tuple[int, int, int]:
    return (address.address.version, int(address.address.ip), address.address.network.prefixlen)


def segments_by_link(snapshot: Snapshot) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """VLAN tags and VXLAN VNIs per underlying link index, as the kernel shows them."""
    indexes = {link.index for link in snapshot.links}
    owner = {str(a.address.ip): a.index for a in snapshot.addresses}
    vlans: dict[int, set[int]] = {}
    vnis: dict[int, set[int]] = {}
    for link in snapshot.links:
        if link.vlan_id is not None and link.parent in indexes:
            vlans.setdefault(link.parent, set()).add(link.vlan_id)
        if link.vxlan_vni is not None:
            underlay = link.vxlan_underlay if link.vxlan_underlay in indexes else None
            if underlay is None and link.vxlan_local is not None:
                underlay = owner.get(str(ipaddress.ip_address(link.vxlan_local)))
            if underlay is None:
                log.debug(
                    "VXLAN %s (VNI %s) has no underlay on this node", link.name, link.vxlan_vni
                )
                continue
            vnis.setdefault(underlay, set()).add(link.vxlan_vni)
    return vlans, vnis


def reported_links(snapshot: Snapshot, config: ReporterConfig) -> list[Link]:
    """The links that matter, in interface-index order (the exclusion rule applied)."""
    return [
        link
        for link in sorted(snapshot.links, key=lambda l: l.index)
        if not config.exclude.excludes(link.name, link.kind, link.master is not None, link.alias)
    ]


def build_interfaces(
    snapshot: Snapshot,
    config: ReporterConfig,
    speeds: Mapping[int, int | None],
    rates: Mapping[int, Rate],
) -> list[NetworkInterface]:
    """One :class:`NetworkInterface` per reported link, with its segments, role and rate."""
    vlans, vnis = segments_by_link(snapshot)
    addresses: dict[int, list[Address]] = {}
    for address in snapshot.addresses:
        if address.scope < SCOPE_LINK:
            addresses.setdefault(address.index, []).append(address)
    interfaces = []
    for link in reported_links(snapshot, config):
        override = config.override_for(link.name)
        tags = sorted(vlans.get(link.index, set()) | set(override.trunk_vlans if override else ()))
        speed = (override.speed_mbps if override and override.speed_mbps else None) or speeds.get(
            link.index
        )
        rate = rates.get(link.index, Rate(0, 0))
        try:
            interface = NetworkInterface(
                name=link.name,
                kind=link.kind,
                role=config.role_for(link.name, tags),
                speed_mbps=speed or 0,
                mtu=link.mtu,
                mac=link.mac,
                oper_state=link.oper_state,
                vlans=tags,
                vnis=sorted(vnis.get(link.index, set())),
                addresses=[
                    str(a.address) for a in sorted(addresses.get(link.index, []), key=_address_key)
                ],
                rx_bps=rate.rx_bps,
                tx_bps=rate.tx_bps,
            )
        except ValidationError as error:
            # Something the API schema cannot hold (loopback's MTU 65536, a 16-char
            # name from a newer kernel): leave the link out rather than the report.
            log.warning("leaving %s out of the report: %s", link.name, error)
            continue
        interfaces.append(interface)
    return interfaces


def with_placement(
    report: NodeNetwork, labels: Mapping[str, str], config: ReporterConfig
) -> NodeNetwork:
    """The report with zone and switch from the Node's labels, else from the configuration."""
    status = report.status.model_copy(
        update={
            "zone": labels.get(ZONE_LABEL) or config.zone,
            "switch": labels.get(SWITCH_LABEL) or config.switch,
        }
    )
    return report.model_copy(update={"status": status})


SPEED_REFRESH_SECONDS = 60.0
"""How long a link's ethtool speed is reused while its name and oper state stay the
same. Speed changes come with a renegotiation, which the oper state shows; asking
ethtool for every link on every cycle was half of a cycle's CPU at 200 links."""


@dataclass(frozen=True, slots=True)
class _KnownSpeed:
    name: str
    oper_state: str
    speed_mbps: int
    at: float


class Reporter:
    """One node's discovery cycle: snapshot, speeds, rates since the last cycle, report."""

    def __init__(
        self,
        config: ReporterConfig,
        source: NetlinkSource,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.source = source
        self.meter = RateMeter()
        self._now = now
        self._speeds: dict[int, _KnownSpeed] = {}

    def prime(self) -> None:
        """Take the first counter sample, so the next :meth:`cycle` has a window."""
        self.meter.update(self.source.snapshot().links, time.monotonic())

    def cycle(self) -> NodeNetwork:
        """A report with rates over the window since the previous cycle (or :meth:`prime`);
        zone and switch come from the configuration until :func:`with_placement`."""
        snapshot = self.source.snapshot()
        rates = self.meter.update(snapshot.links, snapshot.taken_at)
        links = reported_links(snapshot, self.config)
        speeds = {link.index: self._speed(link, snapshot.taken_at) for link in links}
        self._speeds = {index: known for index, known in self._speeds.items() if index in speeds}
        return NodeNetwork(
            metadata=ObjectMeta(name=self.config.node_name),
            status=NodeNetworkStatus(
                interfaces=build_interfaces(snapshot, self.config, speeds, rates),
                zone=self.config.zone,
                switch=self.config.switch,
                heartbeat_time=self._now().replace(microsecond=0),
            ),
        )

    def forget_speeds(self) -> None:
        """Ask ethtool again for every link on the next cycle."""
        self._speeds.clear()

    def _speed(self, link: Link, now: float) -> int | None:
        override = self.config.override_for(link.name)
        if override is not None and override.speed_mbps:
            return None  # build_interfaces applies the override; no need to ask the driver
        known = self._speeds.get(link.index)
        if (
            known is not None
            and known.name == link.name
            and known.oper_state == link.oper_state
            and now - known.at < SPEED_REFRESH_SECONDS
        ):
            return known.speed_mbps
        speed = self.source.speed_mbps(link)
        if (
            speed is not None
        ):  # "unknown" may be transient (a vanished link, a busy driver): ask again
            self._speeds[link.index] = _KnownSpeed(link.name, link.oper_state, speed, now)
        return speed


def report_json(report: NodeNetwork) -> str:
    """The report as people read it (``--once``): unset metadata fields left out."""
    return report.model_dump_json(indent=2, by_alias=True, exclude_none=True)
