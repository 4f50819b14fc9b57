"""A node's interfaces as DRA devices: the ``ResourceSlice`` netsched publishes per node.

With DRA consumable capacity (KEP-5075) kube-scheduler itself allocates bandwidth from
shared devices. For that to agree with the extender, a device must promise exactly what
the ledger does: its ``ingress``/``egress`` capacity is the interface's usable capacity
(``ledger.usable_by_interface``: speed less the node's headroom), and its attributes are
the topology the extender places by (zone, switch, which Networks reach the link).

The slice is pure data built from the topology snapshot; ``scheduler_extender.slices``
writes it. Everything the API server would refuse (a string attribute over 64
characters, more than 128 devices) is left out and said in ``NodeDevices.left_out``,
never sent: one refused slice would hide every device of the node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from bandwidth_accounting.ledger import node_headroom, usable_by_interface
from bandwidth_accounting.settings import CapacitySettings
from contract import dra
from contract.objects import NetworkInterface
from contract.rates import MAX_RATE_BPS, MIN_RATE_BPS
from topology.graph import UP_STATES, Topology

ATTRIBUTE_VALUE_MAX = 64
"""``resourceapi.DeviceAttributeMaxValueLength``: the longest string attribute."""
ATTRIBUTES_AND_CAPACITIES_MAX = 32
"""``resourceapi.ResourceSliceMaxAttributesAndCapacitiesPerDevice``."""
ATTRIBUTE_NAME_MAX = 32
"""``resourceapi.DeviceMaxIDLength``: an attribute name is a C identifier this long at most."""
DEVICES_MAX = 128
"""``resourceapi.ResourceSliceMaxDevices``: devices in one slice."""
SLICE_NAME_MAX = 253
"""A ResourceSlice's name is a DNS subdomain."""

REQUEST_STEP_BPS = MIN_RATE_BPS
"""A claim's request is rounded up to a multiple of this (the request policy's ``step``), so
that nothing below the least rate the CNI shapes (1k) is ever allocated, except nothing."""
REQUEST_DEFAULT = "0"
"""What a claim that names no ``ingress`` (or ``egress``) consumes of it: nothing, so that
direction is not shaped, as an absent bandwidth annotation is not."""

ATTRIBUTE_NAMES = (
    "interface", "kind", "role", "speed", "mtu", "region", "zone", "switch", "networks", "vlans", "vnis",
)
"""Every attribute a device may carry (string unless said): ``speed`` (int, bits/s) and
``mtu`` (int); ``networks``, ``vlans`` and ``vnis`` are lists written ``,a,b,``."""


@dataclass(frozen=True, slots=True)
class NodeDevices:
    """A node's slice and what could not go into it (for a log line, in words)."""

    slice: dra.ResourceSlice
    left_out: tuple[str, ...] = ()


def quantity(bps: int) -> str:
    """``bps`` as the API server writes a decimal quantity back (``9G``, ``22500M``, ``0``):
    what netsched writes is then what it reads, and a comparison never sees a change that
    is only spelling."""
    suffixes = ("", "k", "M", "G", "T", "P", "E")
    step = 0
    while bps and bps % 1000 == 0 and step < len(suffixes) - 1:
        bps //= 1000
        step += 1
    return f"{bps}{suffixes[step]}"


def slice_name(node: str) -> str:
    """``<node>-netsched.io``; a node name too long for that is shortened with a hash of it."""
    name = f"{node}-{dra.DRIVER}"
    if len(name) <= SLICE_NAME_MAX:
        return name
    digest = hashlib.sha256(node.encode()).hexdigest()[:8]
    return f"{node[: SLICE_NAME_MAX - len(dra.DRIVER) - 10].rstrip('.-')}-{digest}-{dra.DRIVER}"


def listed(values: Iterable[object]) -> tuple[str, list[str]]:
    """``,a,b,`` (so that a selector's ``.contains(",a,")`` matches ``a`` exactly) with as
    many values as fit in an attribute, and the values that did not fit."""
    text, left = ",", []
    for value in values:
        if len(text) + len(str(value)) + 1 <= ATTRIBUTE_VALUE_MAX and not left:
            text += f"{value},"
        else:
            left.append(str(value))
    return text, left


def request_policy(usable: int) -> dra.CapacityRequestPolicy:
    """What a claim may take of one direction: multiples of 1k from nothing up to the
    capacity (and never past the 10T the CNI shapes). Below the range's minimum the
    scheduler rounds a request up, above its maximum it refuses the device."""
    top = min(usable, MAX_RATE_BPS) // REQUEST_STEP_BPS * REQUEST_STEP_BPS
    return dra.CapacityRequestPolicy(
        default=REQUEST_DEFAULT,
        valid_range=dra.CapacityRequestPolicyRange(min="0", max=quantity(top), step=quantity(REQUEST_STEP_BPS)),
    )


def pod_traffic_interfaces(topology: Topology, node: str) -> list[NetworkInterface]:
    """The node's up interfaces that carry pods' traffic: the pod interface, and every one
    that carries a Network or a NetworkAttachmentDefinition (an attachment's traffic)."""
    carrying = topology.networks_by_interface(node)
    pod = topology.pod_interface(node)
    return sorted(
        (
            interface
            for interface in topology.interfaces(node).values()
            if (interface.name in carrying or (pod is not None and interface.name == pod.name))
            and interface.oper_state in UP_STATES
        ),
        key=lambda interface: interface.name,
    )


def node_inputs(topology: Topology, node: str, capacity: CapacitySettings) -> tuple[object, ...]:
    """Everything ``node_devices`` reads of the node, as one comparable value: equal inputs
    build equal slices, so a writer rebuilds only the nodes whose inputs changed. Observed
    rates and heartbeats, which reporters re-send every few seconds, are not inputs."""
    node_object = topology.nodes.get(node)
    pod = topology.pod_interface(node)
    carried = topology.networks_by_interface(node)
    return (
        node_object.metadata.uid if node_object else None,
        node_headroom(node_object, capacity.headroom) if node_object else None,
        node in topology.node_networks,
        topology.location(node),
        pod.name if pod else None,
        tuple(
            (i.name, i.kind, i.role, i.speed_mbps, i.mtu, i.oper_state, tuple(i.vlans), tuple(i.vnis),
             tuple(sorted(n for n in carried.get(i.name, []) if n in topology.networks)), i.name in carried)
            for i in topology.interfaces(node).values()
        ),
    )


def node_devices(
    topology: Topology, node: str, capacity: CapacitySettings, generation: int = 1
) -> NodeDevices | None:
    """The slice of ``node`` (pool = the node, one slice in it), or None without both its
    Node (the slice's owner) and its NodeNetwork (its interfaces)."""
    node_object = topology.nodes.get(node)
    report = topology.node_networks.get(node)
    location = topology.location(node)
    if node_object is None or report is None or location is None:
        return None
    usable = usable_by_interface(report, node_object, capacity)
    carried = topology.networks_by_interface(node)
    left_out: list[str] = []
    devices: list[dra.Device] = []
    for interface in pod_traffic_interfaces(topology, node):
        if usable[interface.name] < REQUEST_STEP_BPS:
            left_out.append(f"{interface.name}: no capacity to promise (speed {interface.speed_mbps} Mbit/s)")
            continue
        attributes: dict[str, dra.DeviceAttribute] = {
            "speed": dra.DeviceAttribute(integer=interface.speed_mbps * 1_000_000),
            "mtu": dra.DeviceAttribute(integer=interface.mtu),
        }
        strings: dict[str, object] = {
            "interface": interface.name, "kind": interface.kind, "role": interface.role.value,
            "region": location.region, "zone": location.zone, "switch": location.switch,
        }
        networks = sorted(name for name in carried.get(interface.name, []) if name in topology.networks)
        lists = {"networks": networks, "vlans": interface.vlans, "vnis": interface.vnis}
        for name, values in lists.items():
            text, left = listed(values)
            strings[name] = text
            if left:
                left_out.append(f"{interface.name}: {name} {', '.join(left)} (over {ATTRIBUTE_VALUE_MAX} characters)")
        for name, value in strings.items():
            if len(str(value)) > ATTRIBUTE_VALUE_MAX:
                left_out.append(f"{interface.name}: {name} (over {ATTRIBUTE_VALUE_MAX} characters)")
            else:
                attributes[name] = dra.DeviceAttribute(string=str(value))
        bps = usable[interface.name]
        devices.append(dra.Device(
            name=dra.device_name(interface.name),
            attributes=dict(sorted(attributes.items())),
            capacity={
                direction: dra.DeviceCapacity(value=quantity(bps), request_policy=request_policy(bps))
                for direction in (dra.EGRESS, dra.INGRESS)
            },
            allow_multiple_allocations=True,
        ))
    if len(devices) > DEVICES_MAX:
        left_out += [f"{device.name}: over {DEVICES_MAX} devices" for device in devices[DEVICES_MAX:]]
        devices = devices[:DEVICES_MAX]
    uid = node_object.metadata.uid
    owners = [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid, "controller": True}] if uid else None
    resource_slice = dra.ResourceSlice(
        metadata=dra.DraMeta(name=slice_name(node), owner_references=owners),
        spec=dra.ResourceSliceSpec(
            driver=dra.DRIVER,
            pool=dra.ResourcePool(name=node, generation=generation, resource_slice_count=1),
            node_name=node,
            devices=devices,
        ),
    )
    return NodeDevices(resource_slice, tuple(left_out))
