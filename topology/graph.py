"""The topology graph and the questions placement asks of it.

The graph is a tree of infrastructure (region → zone → switch → node → interface)
with network vertices hanging off the interfaces that carry them. Queries that run
once per candidate node per pod are answered from indexes built with the graph, so
the hot path never walks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import networkx as nx
import numpy as np

from contract.objects import InterfaceRole, Network, NetworkInterface, Node, NodeNetwork
from contract.wire import NetworkMode
from topology.attachment_definitions import DefinitionNetwork
from topology.rows import NodeRows

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a node hangs in the tree; two locations give their hop distance."""

    region: str
    zone: str
    switch: str
    node: str

    def hops_to(self, other: Location) -> int:
        """Links crossed between two nodes: same node 0, switch 2, zone 4, region 6, else 8."""
        if self.node == other.node:
            return 0
        if (self.region, self.zone, self.switch) == (other.region, other.zone, other.switch):
            return 2
        if (self.region, self.zone) == (other.region, other.zone):
            return 4
        if self.region == other.region:
            return 6
        return 8


SEGMENT_KINDS = frozenset({"vlan", "vxlan", "macvlan", "macvtap", "ipvlan"})
"""Link kinds that are themselves segments: they carry only the tags and VNIs they list."""
UP_STATES = frozenset({"up", "unknown"})
"""Operational states of a usable link (virtual links often report ``unknown``)."""


def interface_carries(interface: NetworkInterface, network: Network) -> bool:
    """Whether a host interface can carry ``network`` (the design's "carries" rule).

    A VLAN needs its tag on the interface (a trunk the reporter saw or was told of).
    A VXLAN rides any up underlay of the network's role, or one already holding its VNI.
    A macvlan network is the untagged segment of an up interface of the network's role.
    Segment devices (a VLAN or VXLAN link, a macvlan) are never underlays or uplinks of
    their own: charging them instead of the uplink beneath would hide the real link.
    """
    spec = network.spec
    if spec.mode is NetworkMode.VLAN:
        return spec.vlan in interface.vlans
    if spec.mode is NetworkMode.VXLAN and spec.vni in interface.vnis:
        return True
    if interface.kind in SEGMENT_KINDS:
        return False
    return interface.role.serves(spec.role) and interface.oper_state in UP_STATES


def definition_carriers(
    definition: DefinitionNetwork,
    interfaces: Mapping[str, NetworkInterface],
    pod_interface: NetworkInterface | None,
) -> list[NetworkInterface]:
    """The host interfaces of one node that carry a NAD's network (empty: not there).

    The main plugin's link must be on the node and usable. A link that is itself a VLAN
    device named ``parent.id`` is charged to its parent carrying that tag, as a
    ``Network`` is: the parent is the wire whose capacity the traffic uses. Without a
    known reach, the pod interface stands in, so placement and accounting still work
    (and the reason is shown beside the network).
    """
    if definition.problem is not None or definition.master is None:
        return [pod_interface] if pod_interface is not None else []
    link = interfaces.get(definition.master)
    if link is None or link.oper_state not in UP_STATES:
        return []
    parent_name, dot, tag = definition.master.rpartition(".")
    parent = interfaces.get(parent_name) if dot and tag.isdigit() else None
    if link.kind in SEGMENT_KINDS and parent is not None and int(tag) in parent.vlans:
        return [parent]
    return [link]


def report_structure(report: NodeNetwork) -> dict:
    """A report less what changes every interval (heartbeat, observed rates)."""
    return report.status.model_dump(
        exclude={"heartbeat_time": True, "interfaces": {"__all__": {"rx_bps", "tx_bps"}}}
    )


class Topology:
    """A snapshot of the cluster's network structure, built from API objects.

    Only what reporters re-send every interval (heartbeats, observed rates) is ever
    refreshed in place (``refresh_report``); any other change builds a new Topology.
    """

    def __init__(
        self,
        nodes: Iterable[Node],
        node_networks: Iterable[NodeNetwork],
        networks: Iterable[Network],
        definitions: Iterable[DefinitionNetwork] = (),
    ) -> None:
        self.nodes: dict[str, Node] = {node.name: node for node in nodes}
        self.node_networks: dict[str, NodeNetwork] = {
            report.metadata.name: report for report in node_networks
        }
        self.networks: dict[str, Network] = {network.name: network for network in networks}
        self.definitions: dict[str, DefinitionNetwork] = {
            definition.key: definition for definition in definitions
        }
        """Multus NetworkAttachmentDefinitions, by ``namespace/name``: networks like the others
        (placement, accounting, the views), whose reach comes from their CNI config."""
        self.graph = nx.Graph()
        self._locations: dict[str, Location] = {}
        self._interfaces: dict[str, dict[str, NetworkInterface]] = {}
        self._pod_interfaces: dict[str, NetworkInterface] = {}
        self._heartbeats: dict[str, datetime] = {}
        self._carriers: dict[str, dict[str, list[NetworkInterface]]] = {}
        for name in sorted(set(self.nodes) | set(self.node_networks)):
            self._add_node(name)

    # -- construction -------------------------------------------------------------

    def _add_node(self, name: str) -> None:
        node = self.nodes.get(name)
        report = self.node_networks.get(name)
        status = report.status if report else None
        zone = (status.zone if status else None) or (node.zone if node else None) or UNKNOWN
        switch = (status.switch if status else None) or (node.switch if node else None)
        region = (node.region if node else None) or UNKNOWN
        location = Location(region, zone, switch or f"{zone}/{name}", name)
        self._locations[name] = location

        graph = self.graph
        graph.add_node(("cluster", ""), kind="cluster", name="")
        graph.add_node(("region", region), kind="region", name=region)
        graph.add_edge(("cluster", ""), ("region", region))
        graph.add_node(("zone", zone), kind="zone", name=zone, region=region)
        graph.add_node(("switch", location.switch), kind="switch", name=location.switch, zone=zone)
        graph.add_node(("node", name), kind="node", name=name, zone=zone)
        graph.add_edge(("region", region), ("zone", zone))
        graph.add_edge(("zone", zone), ("switch", location.switch))
        graph.add_edge(("switch", location.switch), ("node", name))

        interfaces = {iface.name: iface for iface in (status.interfaces if status else [])}
        self._interfaces[name] = interfaces
        carriers: dict[str, list[NetworkInterface]] = {}
        for iface in interfaces.values():
            vertex = ("interface", name, iface.name)
            graph.add_node(vertex, kind="interface", name=iface.name, node=name)
            graph.add_edge(("node", name), vertex)
            for network in self.networks.values():
                zones = network.spec.zones
                if (not zones or zone in zones) and interface_carries(iface, network):
                    graph.add_node(("network", network.name), kind="network", name=network.name)
                    graph.add_edge(vertex, ("network", network.name))
                    carriers.setdefault(network.name, []).append(iface)
        self._carriers[name] = carriers
        if status is not None and status.heartbeat_time is not None:
            self._heartbeats[name] = status.heartbeat_time
        for wanted in (InterfaceRole.POD, InterfaceRole.ANY):
            chosen = next((i for i in interfaces.values() if i.role is wanted), None)
            if chosen is not None:
                self._pod_interfaces[name] = chosen
                break
        for key, definition in self.definitions.items():
            for iface in definition_carriers(definition, interfaces, self._pod_interfaces.get(name)):
                graph.add_node(("network", key), kind="network", name=key)
                graph.add_edge(("interface", name, iface.name), ("network", key))
                carriers.setdefault(key, []).append(iface)

    # -- queries ------------------------------------------------------------------

    @cached_property
    def rows(self) -> NodeRows:
        """The same topology as arrays, one row per node (built on first use)."""
        return NodeRows.build(
            locations=self._locations,
            reported=set(self.node_networks),
            heartbeats={name: beat.timestamp() for name, beat in self._heartbeats.items()},
            pod_interface={name: iface.name for name, iface in self._pod_interfaces.items()},
            carriers={
                node: {network: [iface.name for iface in ifaces] for network, ifaces in carried.items()}
                for node, carried in self._carriers.items()
            },
            networks=[*self.networks, *self.definitions],
        )

    def replace_node(self, node: Node) -> None:
        """A newer version of a Node with the same region, zone and switch labels (the
        caller checked): nothing else of a Node shapes the topology, so nothing is rebuilt.
        The kubelet writes its Node's status every few minutes; none of it moves the node."""
        self.nodes[node.name] = node

    def refresh_report(self, report: NodeNetwork) -> bool:
        """Take a newer report of a node if only its heartbeat and observed rates changed.

        Reporters re-publish every few seconds; rebuilding the graph for each heartbeat
        would cost a 5,000-node cluster a second per report. Returns False (and changes
        nothing) when the report changes the structure: the caller then rebuilds.
        """
        name = report.metadata.name
        current = self.node_networks.get(name)
        if current is None or report_structure(current) != report_structure(report):
            return False
        self.node_networks[name] = report
        self._interfaces[name] = {iface.name: iface for iface in report.status.interfaces}
        beat = report.status.heartbeat_time
        if beat is not None:  # a report without one says nothing of the node's liveness
            self._heartbeats[name] = beat
            if "rows" in self.__dict__:
                self.rows.heartbeat[self.rows.position[name]] = beat.timestamp()
        return True

    def location(self, node: str) -> Location | None:
        return self._locations.get(node)

    def zone_of(self, node: str) -> str | None:
        location = self._locations.get(node)
        return location.zone if location else None

    def interfaces(self, node: str) -> Mapping[str, NetworkInterface]:
        return self._interfaces.get(node, {})

    def pod_interface(self, node: str) -> NetworkInterface | None:
        """The interface that carries pods' primary traffic: role ``pod``, else ``any``."""
        return self._pod_interfaces.get(node)

    def heartbeat(self, node: str) -> datetime | None:
        """When the node's reporter last reported (None: never, or no report)."""
        return self._heartbeats.get(node)

    def interfaces_carrying(self, node: str, network: str) -> list[NetworkInterface]:
        """Interfaces of ``node`` that carry ``network`` (empty if it is unreachable there)."""
        return self._carriers.get(node, {}).get(network, [])

    def networks_by_interface(self, node: str) -> dict[str, list[str]]:
        """Interface name → the networks it carries on ``node`` (interfaces carrying none left out)."""
        carried: dict[str, list[str]] = {}
        for network, interfaces in self._carriers.get(node, {}).items():
            for interface in interfaces:
                carried.setdefault(interface.name, []).append(network)
        return carried

    def nodes_reaching(self, network: str) -> set[str]:
        return {node for node, carriers in self._carriers.items() if carriers.get(network)}

    def hops(self, a: str, b: str) -> int | None:
        """Links between two nodes through the infrastructure tree (not through network
        vertices, which are logical), or None when either node is unknown."""
        first, second = self._locations.get(a), self._locations.get(b)
        if first is None or second is None:
            return None
        return first.hops_to(second)
