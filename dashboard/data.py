"""The dashboard's data: one compact document with everything the page draws.

The page polls it every two seconds, so it is shaped for that: rates as
``[ingress, egress]`` pairs, nodes grouped by zone and switch, and only the recent
decisions, their refused nodes grouped by reason. ``version`` changes whenever
anything in it would, so an unchanged cluster answers ``304 Not Modified``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from contract.objects import InterfaceRole
from contract.wire import DefinitionMode, NetworkMode
from scheduler_extender.scheduler import Decision
from scheduler_extender.state import ClusterState
from scheduler_extender.views import PolicyView, policy_views

RECENT_DECISIONS = 25
LISTED_REFUSALS = 200
LISTED_REASONS = 50
"""Refused node names and distinct reasons listed per decision; ``/api/v1/decisions`` has all."""

_DIGITS = re.compile(r"(\d+)")

Pair = tuple[int, int]
"""(ingress, egress) in bits/s."""


# Nodes and interfaces are TypedDicts, not models: a 5,000-node document holds 20,000 of
# them, and plain dicts (serialised by the enclosing model) build several times faster.


class InterfaceLoad(TypedDict):
    name: str
    role: InterfaceRole
    kind: str
    speed_mbps: int
    up: bool
    vlans: list[int]
    vnis: list[int]
    networks: Annotated[
        list[str], Field(description="Networks this interface carries on this node.")
    ]
    capacity: Annotated[Pair, Field(description="Usable bits/s: link speed less headroom.")]
    reserved: Pair
    observed: Pair


class NodeLoad(TypedDict):
    name: str
    heartbeat: datetime | None
    pods: Annotated[int, Field(description="Pods holding reservations on the node.")]
    interfaces: list[InterfaceLoad]


class SwitchGroup(BaseModel):
    name: str
    nodes: list[NodeLoad]


class ZoneGroup(BaseModel):
    name: str
    region: str
    switches: list[SwitchGroup]


class NetworkSummary(BaseModel):
    name: str
    mode: NetworkMode | DefinitionMode
    segment: str = Field(description="VLAN tag, VNI or 'untagged'.")
    zones: list[str]
    nodes: int
    note: str | None = Field(
        default=None, description="For a NetworkAttachmentDefinition: what netsched read of it, "
        "or why its reach is unknown.",
    )


class AttachmentSummary(BaseModel):
    network: str
    interface: str
    parent: str
    segment: str
    ip: str | None
    rates: Pair


class PodReservation(BaseModel):
    pod: str
    uid: str
    node: str
    priority: int
    interfaces: dict[str, Pair]
    attachments: list[AttachmentSummary]
    foreign: bool = Field(description="Placed by another scheduler (or holding no reservation netsched trusts): its bandwidth annotations, which the runtime shapes; no attachments.")
    claim: str | None = Field(default=None, description="namespace/name of the DRA ResourceClaim holding it (kube-scheduler allocated it), if one does.")
    share_id: str | None = Field(default=None, description="The claim's shareID on the shared device.")


class RefusalGroup(BaseModel):
    reason: str
    count: int = Field(description="Nodes refused for this reason.")
    nodes: list[str] = Field(description="Some or all of them (see LISTED_REFUSALS).")


class DecisionSummary(BaseModel):
    time: datetime
    verb: str
    pod: str
    node: str | None
    passed: int
    refused: int
    error: str
    reasons: list[RefusalGroup] = Field(
        description=f"Refused nodes by reason, largest group first; at most {LISTED_REFUSALS} "
        f"node names and {LISTED_REASONS} reasons."
    )


class DashboardView(BaseModel):
    version: str
    report_ttl_seconds: float | None
    zones: list[ZoneGroup]
    networks: list[NetworkSummary]
    reservations: list[PodReservation]
    policies: list[PolicyView] = Field(description="BandwidthPolicies with what their namespaces hold now.")
    decisions: list[DecisionSummary] = Field(description="Newest first.")


def dashboard_version(state: ClusterState, decisions: Sequence[Decision]) -> str:
    """Changes whenever the topology, a node report, the ledger or the decision log does.

    Node reports that change only heartbeats and observed rates are taken in place
    without bumping ``state.generation``; every such report moves its node's
    heartbeat forward, so the sum of heartbeats stands for them.
    """
    topology = state.topology
    beats = 0.0
    for name in topology.node_networks:
        beat = topology.heartbeat(name)
        if beat is not None:
            beats += beat.timestamp()
    last = decisions[-1] if decisions else None
    stamp = f"{last.time.timestamp():.6f}" if last is not None else "0"
    return f"{state.generation}.{state.ledger.version}.{beats:.6f}.{stamp}"


def dashboard_view(
    state: ClusterState, decisions: Sequence[Decision], report_ttl_seconds: float | None
) -> DashboardView:
    version = dashboard_version(state, decisions)
    topology, ledger = state.topology, state.ledger
    holdings = ledger.holdings()
    pods_on: dict[str, int] = {}
    for holding in holdings:
        pods_on[holding.node] = pods_on.get(holding.node, 0) + 1

    zones: dict[str, ZoneGroup] = {}
    switches: dict[tuple[str, str], SwitchGroup] = {}
    for name in sorted(topology.nodes.keys() | topology.node_networks.keys(), key=_natural):
        location = topology.location(name)
        carried = topology.networks_by_interface(name)
        interfaces = [
            InterfaceLoad(
                name=iface.name,
                role=iface.role,
                kind=iface.kind,
                speed_mbps=iface.speed_mbps,
                up=iface.oper_state != "down",
                vlans=iface.vlans,
                vnis=iface.vnis,
                networks=carried.get(iface.name, []),
                capacity=ledger.usable(name, iface.name),
                reserved=ledger.reserved(name, iface.name),
                observed=(iface.rx_bps, iface.tx_bps),
            )
            for iface in topology.interfaces(name).values()
        ]
        zone = zones.get(location.zone)
        if zone is None:
            zone = zones[location.zone] = ZoneGroup(
                name=location.zone, region=location.region, switches=[]
            )
        switch = switches.get((location.zone, location.switch))
        if switch is None:
            switch = switches[(location.zone, location.switch)] = SwitchGroup(
                name=location.switch, nodes=[]
            )
            zone.switches.append(switch)
        switch.nodes.append(
            NodeLoad(
                name=name,
                heartbeat=topology.heartbeat(name),
                pods=pods_on.get(name, 0),
                interfaces=interfaces,
            )
        )

    networks = [
        NetworkSummary(
            name=name,
            mode=network.spec.mode,
            segment=_segment(network.spec.vlan, network.spec.vni),
            zones=network.spec.zones,
            nodes=len(topology.nodes_reaching(name)),
        )
        for name, network in sorted(topology.networks.items())
    ] + [
        NetworkSummary(
            name=name,
            mode=definition.mode,
            segment=_segment(definition.vlan, None),
            zones=[],
            nodes=len(topology.nodes_reaching(name)),
            note=definition.describe(),
        )
        for name, definition in sorted(topology.definitions.items())
    ]
    reservations = [
        PodReservation(
            pod=h.pod,
            uid=h.uid,
            node=h.node,
            priority=h.priority,
            interfaces={
                name: (r.ingress, r.egress) for name, r in h.reservation.interfaces.items()
            },
            attachments=[
                AttachmentSummary(
                    network=a.network,
                    interface=a.interface,
                    parent=a.parent,
                    segment=_segment(a.vlan, a.vni),
                    ip=a.ip,
                    rates=(a.ingress, a.egress),
                )
                for a in h.reservation.attachments
            ],
            foreign=h.foreign,
            claim=h.claim.key if h.claim is not None else None,
            share_id=h.claim.share_id if h.claim is not None else None,
        )
        for h in sorted(holdings, key=lambda h: (h.pod, h.uid))
    ]
    recent = list(decisions)[-RECENT_DECISIONS:]
    return DashboardView(
        version=version,
        report_ttl_seconds=report_ttl_seconds,
        zones=sorted(zones.values(), key=lambda z: z.name),
        networks=networks,
        reservations=reservations,
        policies=policy_views(state),
        decisions=[_summary(d) for d in reversed(recent)],
    )


def _summary(decision: Decision) -> DecisionSummary:
    by_reason: dict[str, list[str]] = {}
    for node, reason in decision.refused.items():
        by_reason.setdefault(reason, []).append(node)
    groups, listed = [], 0
    for reason, nodes in sorted(by_reason.items(), key=lambda item: -len(item[1]))[:LISTED_REASONS]:
        names = sorted(nodes, key=_natural)[: max(0, LISTED_REFUSALS - listed)]
        groups.append(RefusalGroup(reason=reason, count=len(nodes), nodes=names))
        listed += len(names)
    return DecisionSummary(
        time=decision.time,
        verb=decision.verb,
        pod=decision.pod,
        node=decision.node,
        passed=decision.passed,
        refused=len(decision.refused),
        error=decision.error,
        reasons=groups,
    )


def _segment(vlan: int | None, vni: int | None) -> str:
    if vlan is not None:
        return f"VLAN {vlan}"
    if vni is not None:
        return f"VNI {vni}"
    return "untagged"


def _natural(name: str) -> tuple:
    """Sort ``node-a-10`` after ``node-a-9``."""
    return tuple(
        (0, int(chunk)) if chunk.isdigit() else (1, chunk) for chunk in _DIGITS.split(name)
    )
