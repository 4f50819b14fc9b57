"""Does a pod fit a node, and if not, why: the fit check shared by filter, bind and simulate.

``pod_refusals`` finds what is wrong with the pod on every node (an unknown network,
a static address outside its subnet or taken); ``plan_on_node`` then either returns a
``Plan`` (which interfaces carry what) or every reason the node fails. ``reservation_for``
turns a plan into the reservation that bind records. Filter, bind and the simulator all
call these same functions, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bandwidth_accounting.ipam import AddressPoolExhausted, allocate_address, derived_mac
from bandwidth_accounting.ledger import Ledger
from bandwidth_accounting.requirements import AttachmentRequirement, PodRequirements
from bandwidth_accounting.settings import FitSettings
from contract import annotations
from contract.objects import NetworkInterface
from contract.reservation import (
    DIRECTIONS,
    AttachmentReservation,
    Rates,
    Reservation,
)
from contract.wire import IPAddress, IPNetwork, NetworkMode
from topology.attachment_definitions import DefinitionNetwork
from topology.graph import Topology


class Cause(StrEnum):
    """Why a node was refused; also the ``reason`` label of the rejection metric."""

    INVALID_ANNOTATION = "invalid_annotation"
    UNKNOWN_NETWORK = "unknown_network"
    ADDRESS = "address"
    NO_REPORT = "no_report"
    STALE_REPORT = "stale_report"
    NO_POD_INTERFACE = "no_pod_interface"
    NETWORK_UNREACHABLE = "network_unreachable"
    BANDWIDTH = "bandwidth"
    POLICY = "bandwidth_policy"
    """The namespace's BandwidthPolicy: a per-pod maximum, a namespace total, or a bad policy."""
    CLAIM = "resource_claim"
    """A netsched ResourceClaim that cannot be read, or asked beside bandwidth annotations."""


@dataclass(frozen=True, slots=True)
class Refusal:
    cause: Cause
    message: str
    resolvable: bool = False
    """Whether evicting lower-priority pods could cure it (kube-scheduler's FailedNodes)."""


@dataclass(slots=True)
class Plan:
    """Where a pod's traffic would go on one node."""

    node: str
    charges: dict[str, tuple[int, int]] = field(default_factory=dict)
    """(ingress, egress) bits/s per host interface."""
    primary_parent: str | None = None
    attachments: list[tuple[AttachmentRequirement, NetworkInterface]] = field(default_factory=list)


def pod_refusals(
    requirements: PodRequirements, topology: Topology, ledger: Ledger, pod_uid: str
) -> list[Refusal]:
    """What makes the pod unplaceable on every node, whatever the node."""
    refusals = []
    for attachment in requirements.attachments:
        definition = topology.definitions.get(attachment.network)
        network = topology.networks.get(attachment.network)
        # A definition's name holds its namespace ("team/storage"), a Network's never does.
        annotation = annotations.MULTUS_NETWORKS if "/" in attachment.network else annotations.NETWORKS
        if network is None and definition is None:
            missing = (
                f"no NetworkAttachmentDefinition {attachment.network!r}" if "/" in attachment.network
                else f"unknown network {attachment.network!r}"
            )
            refusals.append(Refusal(Cause.UNKNOWN_NETWORK, f"annotation {annotation}: {missing}"))
            continue
        if attachment.ip is None:
            continue
        if definition is not None:
            subnet, gateway = definition.subnet, definition.gateway
            if subnet is None:  # the definition's IPAM hands out no known pool: nothing to check
                continue
        else:
            assert network is not None
            subnet, gateway = network.spec.subnet, network.spec.gateway
        if subnet is None or attachment.ip.ip not in subnet:
            refusals.append(
                Refusal(
                    Cause.ADDRESS,
                    f"annotation {annotation}: ip {str(attachment.ip)!r} is outside "
                    f"network {attachment.network!r} subnet {subnet}",
                )
            )
            continue
        reserved = _reserved_address_role(attachment.ip.ip, subnet, gateway)
        if reserved is not None:
            refusals.append(
                Refusal(
                    Cause.ADDRESS,
                    f"annotation {annotation}: ip {str(attachment.ip.ip)!r} is the "
                    f"{reserved} address of network {attachment.network!r} ({subnet})",
                )
            )
            continue
        holder = ledger.address_holder(attachment.network, str(attachment.ip.ip))
        if holder is not None and holder != pod_uid:
            refusals.append(
                Refusal(
                    Cause.ADDRESS,
                    f"annotation {annotation}: ip {str(attachment.ip.ip)!r} on network "
                    f"{attachment.network!r} is already taken",
                )
            )
    return refusals


def _reserved_address_role(address: IPAddress, subnet: IPNetwork, gateway: IPAddress | None) -> str | None:
    """Which address no pod may take: the subnet's network, broadcast, or the gateway.

    The same addresses ``ipam`` never hands out; the CNI plugin refuses them too.
    """
    if gateway is not None and address == gateway:
        return "gateway"
    # /31 and /32 (IPv4) and /128 (IPv6) have no network or broadcast address to keep free.
    if address == subnet.network_address and subnet.num_addresses > (2 if subnet.version == 4 else 1):
        return "network"
    if subnet.version == 4 and address == subnet.broadcast_address and subnet.num_addresses > 2:
        return "broadcast"
    return None


def plan_on_node(
    requirements: PodRequirements,
    node: str,
    topology: Topology,
    ledger: Ledger,
    now: datetime,
    settings: FitSettings,
    priority: int = 0,
) -> Plan | list[Refusal]:
    """Choose interfaces for the pod on ``node``, or say every reason it cannot go there."""
    plan = Plan(node)
    if not requirements.needs_resources:
        return plan
    heartbeat = topology.heartbeat(node)
    if heartbeat is None and node not in topology.node_networks:
        return [Refusal(Cause.NO_REPORT, f"no NodeNetwork report for node {node}")]
    ttl = settings.report_ttl
    if ttl is not None and (heartbeat is None or now - heartbeat > ttl):
        age = "never" if heartbeat is None else f"{(now - heartbeat).total_seconds():.0f}s ago"
        return [
            Refusal(
                Cause.STALE_REPORT,
                f"NodeNetwork report is stale (last heartbeat {age}, TTL {ttl.total_seconds():.0f}s)",
            )
        ]

    refusals: list[Refusal] = []
    if requirements.ingress_bps or requirements.egress_bps:
        pod_interface = topology.pod_interface(node)
        if pod_interface is None:
            refusals.append(Refusal(Cause.NO_POD_INTERFACE, "no interface with role pod or any"))
        else:
            plan.primary_parent = pod_interface.name
            plan.charges[pod_interface.name] = (requirements.ingress_bps, requirements.egress_bps)

    since = settings.observed_since(now)
    for attachment in requirements.attachments:
        carriers = topology.interfaces_carrying(node, attachment.network)
        if not carriers:
            refusals.append(_unreachable(topology, node, attachment.network))
            continue
        chosen = _roomiest(carriers, plan, ledger, node, attachment, since)
        plan.attachments.append((attachment, chosen))
        _charge(plan, chosen.name, attachment.ingress_bps, attachment.egress_bps)

    for shortfall in ledger.shortfalls(node, plan.charges, since):
        # Evicting pods frees their reservations; traffic nobody reserved stays.
        held_lower = _held_by_lower_priority(ledger, node, shortfall.interface, shortfall.direction, priority)
        curable = shortfall.asked_bps <= shortfall.usable_bps - shortfall.load_bps + held_lower
        refusals.append(Refusal(Cause.BANDWIDTH, shortfall.message, resolvable=curable))
    return refusals or plan


def reservation_for(
    plan: Plan, requirements: PodRequirements, topology: Topology, ledger: Ledger, pod_uid: str
) -> Reservation:
    """Turn a plan into the reservation bind records, allocating addresses and MACs.

    Call it with the ledger locked, so that the addresses chosen are still free
    when the reservation is taken.
    """
    attachments = []
    for attachment, interface in plan.attachments:
        definition = topology.definitions.get(attachment.network)
        if definition is not None:
            attachments.append(_delegated(attachment, interface, definition))
            continue
        spec = topology.networks[attachment.network].spec
        if attachment.ip is not None:
            address = str(attachment.ip)
        elif spec.subnet is not None:
            try:
                address = allocate_address(spec, ledger.addresses_in_use(attachment.network))
            except AddressPoolExhausted as error:
                raise AddressPoolExhausted(f"network {attachment.network!r}: {error}") from None
        else:
            address = None
        attachments.append(
            AttachmentReservation(
                network=attachment.network,
                interface=attachment.interface,
                mode=spec.mode,
                vlan=spec.vlan,
                vni=spec.vni,
                port=spec.port,
                group=spec.group,
                parent=interface.name,
                ip=address,
                mac=attachment.mac or derived_mac(pod_uid, attachment.network),
                gateway=spec.gateway,
                mtu=spec.mtu,
                ingress=attachment.ingress_bps,
                egress=attachment.egress_bps,
            )
        )
    return Reservation(
        node=plan.node,
        primary=Rates(ingress=requirements.ingress_bps, egress=requirements.egress_bps),
        primary_parent=plan.primary_parent,
        interfaces={
            name: Rates(ingress=ingress, egress=egress)
            for name, (ingress, egress) in plan.charges.items()
            if ingress or egress
        },
        attachments=attachments,
    )


def _delegated(
    attachment: AttachmentRequirement, interface: NetworkInterface, definition: DefinitionNetwork
) -> AttachmentReservation:
    """A definition's attachment: Multus's delegate chain creates it and the definition's
    IPAM addresses it, so netsched records what the pod asked and allocates nothing."""
    return AttachmentReservation(
        network=attachment.network,
        definition=definition.key,
        interface=attachment.interface,
        mode=definition.mode,
        vlan=definition.vlan,
        parent=interface.name,
        ip=str(attachment.ip) if attachment.ip is not None else None,
        mac=attachment.mac,
        gateway=definition.gateway,
        mtu=definition.mtu,
        ingress=attachment.ingress_bps,
        egress=attachment.egress_bps,
    )


def _charge(plan: Plan, interface: str, ingress: int, egress: int) -> None:
    current = plan.charges.get(interface)
    if current is None:
        plan.charges[interface] = (ingress, egress)
    else:
        plan.charges[interface] = (current[0] + ingress, current[1] + egress)


def _roomiest(
    carriers: list[NetworkInterface],
    plan: Plan,
    ledger: Ledger,
    node: str,
    attachment: AttachmentRequirement,
    observed_since: float | None,
) -> NetworkInterface:
    """Of the interfaces carrying a network, the one with the most room left for this ask."""
    if len(carriers) == 1:
        return carriers[0]

    def room(interface: NetworkInterface) -> int:
        free_in, free_out = ledger.free(node, interface.name, observed_since)
        planned_in, planned_out = plan.charges.get(interface.name, (0, 0))
        return min(
            free_in - planned_in - attachment.ingress_bps,
            free_out - planned_out - attachment.egress_bps,
        )

    return max(carriers, key=room)


def _unreachable(topology: Topology, node: str, network: str) -> Refusal:
    definition = topology.definitions.get(network)
    if definition is not None:
        if definition.master is not None and definition.reach_known:
            message = f"NetworkAttachmentDefinition {network}: no up interface {definition.master}"
        else:
            message = f"NetworkAttachmentDefinition {network}: no interface with role pod or any"
        return Refusal(Cause.NETWORK_UNREACHABLE, message)
    spec = topology.networks[network].spec
    zone = topology.zone_of(node)
    if spec.zones and zone not in spec.zones:
        message = f"network {network!r} is not in zone {zone} (zones: {', '.join(spec.zones)})"
    elif spec.mode is NetworkMode.VLAN:
        message = f"network {network!r}: no interface carries VLAN {spec.vlan}"
    else:
        message = f"network {network!r}: no interface of role {spec.role or 'any'} is up"
    return Refusal(Cause.NETWORK_UNREACHABLE, message)


def _held_by_lower_priority(
    ledger: Ledger, node: str, interface: str, direction: str, priority: int
) -> int:
    index = DIRECTIONS.index(direction)  # type: ignore[arg-type]
    total = 0
    for holding in ledger.holdings_on(node):
        if holding.priority < priority and holding.claim is None:  # a DRA allocation is no victim
            rates = holding.reservation.interfaces.get(interface)
            if rates is not None:
                total += (rates.ingress, rates.egress)[index]
    return total


__all__ = [
    "Cause",
    "Plan",
    "Refusal",
    "plan_on_node",
    "pod_refusals",
    "reservation_for",
]
