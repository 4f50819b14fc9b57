"""Read-only views of the cluster for people and tools (``/api/v1/...``, the CLI, the dashboard)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bandwidth_accounting.reservation import Rates, Reservation
from scheduler_extender.scheduler import Decision
from scheduler_extender.state import ClusterState
from topology.models import InterfaceRole, NetworkSpec


class InterfaceView(BaseModel):
    name: str
    role: InterfaceRole
    kind: str
    speed_mbps: int
    oper_state: str
    networks: list[str]
    usable: Rates
    reserved: Rates
    observed: Rates


class NodeView(BaseModel):
    name: str
    region: str
    zone: str
    switch: str
    heartbeat_time: datetime | None
    interfaces: list[InterfaceView]


class NetworkView(BaseModel):
    name: str
    spec: NetworkSpec
    nodes: int = Field(description="Nodes where the network is reachable.")


class ReservationView(BaseModel):
    uid: str
    pod: str
    priority: int
    reservation: Reservation


class TopologyView(BaseModel):
    nodes: list[NodeView]
    networks: list[NetworkView]
    reservations: list[ReservationView]


class DecisionView(BaseModel):
    time: datetime
    verb: str
    pod: str
    node: str | None
    passed: int
    refused: dict[str, str]
    error: str


def topology_view(state: ClusterState) -> TopologyView:
    topology, ledger = state.topology, state.ledger
    nodes = []
    for name in sorted(topology.nodes.keys() | topology.node_networks.keys()):
        location = topology.location(name)
        report = topology.node_networks.get(name)
        carried: dict[str, list[str]] = {}
        for network in topology.networks:
            for interface in topology.interfaces_carrying(name, network):
                carried.setdefault(interface.name, []).append(network)
        interfaces = [
            InterfaceView(
                name=iface.name,
                role=iface.role,
                kind=iface.kind,
                speed_mbps=iface.speed_mbps,
                oper_state=iface.oper_state,
                networks=carried.get(iface.name, []),
                usable=Rates(ingress=ledger.usable(name, iface.name)[0], egress=ledger.usable(name, iface.name)[1]),
                reserved=Rates(ingress=ledger.reserved(name, iface.name)[0], egress=ledger.reserved(name, iface.name)[1]),
                observed=Rates(ingress=iface.rx_bps, egress=iface.tx_bps),
            )
            for iface in topology.interfaces(name).values()
        ]
        nodes.append(
            NodeView(
                name=name,
                region=location.region,
                zone=location.zone,
                switch=location.switch,
                heartbeat_time=report.status.heartbeat_time if report else None,
                interfaces=interfaces,
            )
        )
    networks = [
        NetworkView(name=name, spec=network.spec, nodes=len(topology.nodes_reaching(name)))
        for name, network in sorted(topology.networks.items())
    ]
    reservations = [
        ReservationView(uid=h.uid, pod=h.pod, priority=h.priority, reservation=h.reservation)
        for h in sorted(ledger.holdings(), key=lambda h: h.pod)
    ]
    return TopologyView(nodes=nodes, networks=networks, reservations=reservations)


def decision_views(decisions: list[Decision]) -> list[DecisionView]:
    return [
        DecisionView(
            time=d.time, verb=d.verb, pod=d.pod, node=d.node, passed=d.passed, refused=dict(d.refused), error=d.error
        )
        for d in reversed(decisions)
    ]
