"""kube-scheduler allocating NIC bandwidth itself: DRA consumable capacity (KEP-5075).

A model of what a v1.36 kube-scheduler does with the devices netsched publishes, detailed
where it decides placement (read from the structured allocator of
k8s.io/dynamic-resource-allocation, ``internal/incubating``, the variant that runs while
``DRAConsumableCapacity`` is beta):

- A node's devices are the ones in the ResourceSlice netsched publishes for it
  (``bandwidth_accounting.devices.node_devices``), in the slice's order: one shared device
  per interface carrying pod traffic, capacity ``ingress``/``egress`` = the interface's
  usable bits/s (the ledger's own rule), a request policy of 1k steps up to the capacity.
- A pod's bandwidth is one claim of DeviceClass ``bandwidth.netsched.io``: a request for
  the primary rates selecting the device whose ``role`` is ``pod``, and one per network
  attachment selecting a device whose ``networks`` list the network
  (``networks.contains(",storage,")``), each naming both capacities.
- The ``DynamicResources`` filter passes a node when the allocator finds a device for
  every request there: it tries devices in slice order and takes the first that matches
  and has room — the request rounded up by the device's request policy, plus what earlier
  claims consumed (``AggregatedCapacity``), plus what this claim's earlier requests took
  of the same device (``allocatingCapacity``), must not exceed the capacity, and a
  request above the policy's maximum skips the device — and backtracks when a later
  request finds nothing; the first full solution wins. It counts DRA allocations only:
  traffic nobody claimed is invisible to it.
- ``Reserve`` keeps the allocation the filter found for the chosen node; the claim's
  ``consumedCapacity`` is what each request took. A pod no node can take stays pending
  with "cannot allocate all claims".
- Its ``Score`` (prioritised lists' subrequests) is equal on every node for claims without
  ``firstAvailable``, as these are: it changes no ranking and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bandwidth_accounting.devices import node_devices
from bandwidth_accounting.requirements import PodRequirements
from bandwidth_accounting.settings import CapacitySettings
from contract import dra
from contract.quantity import parse_bandwidth
from topology.graph import Topology

CANNOT_ALLOCATE = "cannot allocate all claims"
"""kube-scheduler's message for a pod whose claims fit no node."""
DIRECTIONS = (dra.INGRESS, dra.EGRESS)
"""Capacity names, in the order of every (ingress, egress) pair here."""


@dataclass(frozen=True, slots=True)
class SharedDevice:
    """One device of a node's ResourceSlice, as the allocator reads it."""

    name: str
    interface: str
    role: str
    networks: frozenset[str]
    capacity: tuple[int, int]
    """(ingress, egress) bits/s the device offers to claims."""
    step: tuple[int, int]
    """The request policy's step: a request is rounded up to a multiple of it."""
    largest: tuple[int, int]
    """The request policy's maximum: a larger request skips the device."""

    @classmethod
    def read(cls, device: dra.Device) -> SharedDevice:
        def text(name: str) -> str:
            attribute = device.attributes.get(name)
            return attribute.string or "" if attribute is not None else ""

        capacities = [device.capacity[direction] for direction in DIRECTIONS]
        ranges = [c.request_policy.valid_range if c.request_policy else None for c in capacities]
        return cls(
            name=device.name,
            interface=text("interface"),
            role=text("role"),
            networks=frozenset(filter(None, text("networks").split(","))),
            capacity=_pair(c.value for c in capacities),
            step=_pair(r.step if r is not None and r.step else "1" for r in ranges),
            largest=_pair(
                r.max if r is not None and r.max else c.value for r, c in zip(ranges, capacities, strict=True)
            ),
        )

    def consumes(self, asks: tuple[int, int]) -> tuple[int, int] | None:
        """What a request asking ``asks`` consumes of the device (rounded up by its request
        policy), or None when the policy refuses it."""
        (ingress_step, egress_step), (ingress_max, egress_max) = self.step, self.largest
        ingress, egress = -(-asks[0] // ingress_step) * ingress_step, -(-asks[1] // egress_step) * egress_step
        if ingress > ingress_max or egress > egress_max:
            return None
        return ingress, egress


def _pair(quantities) -> tuple[int, int]:
    first, second = (parse_bandwidth(q) for q in quantities)
    return first, second


@dataclass(frozen=True, slots=True)
class CapacityRequest:
    """One request of a pod's claim: the devices it selects and the capacity it asks."""

    name: str
    network: str | None
    """None: the device with role ``pod`` (the primary rates); else a device carrying this network."""
    asks: tuple[int, int]
    """(ingress, egress) bits/s."""

    def selects(self, device: SharedDevice) -> bool:
        """The request's CEL selector, on the device's published attributes."""
        return device.role == "pod" if self.network is None else self.network in device.networks


def claim_requests(requirements: PodRequirements) -> tuple[CapacityRequest, ...]:
    """The requests of the claim a pod with these requirements carries (none: no claim)."""
    requests = []
    if requirements.ingress_bps or requirements.egress_bps:
        requests.append(CapacityRequest("primary", None, (requirements.ingress_bps, requirements.egress_bps)))
    for attachment in requirements.attachments:
        requests.append(
            CapacityRequest(attachment.interface, attachment.network, (attachment.ingress_bps, attachment.egress_bps))
        )
    return tuple(requests)


def claim_name(pod: str) -> str:
    """The name of the claim a pod's bandwidth is asked in (the pod's ``bandwidth`` claim)."""
    return f"{pod}-bandwidth"


@dataclass(frozen=True, slots=True)
class Allocation:
    """A claim's allocation result on one node: the device each request got, and what it consumed."""

    node: int
    requests: tuple[CapacityRequest, ...]
    devices: tuple[int, ...]
    """Index in the node's slice of each request's device."""
    consumed: tuple[tuple[int, int], ...]


class DeviceAllocator:
    """The devices of every node, what claims consumed of them, and the allocator's search.

    Nodes are indexed as kube-scheduler's model lists them (``KubeScheduler.names``).
    """

    def __init__(self, topology: Topology, names: Sequence[str], capacity: CapacitySettings) -> None:
        self.names = list(names)
        self.devices: list[list[SharedDevice]] = []
        for name in self.names:
            published = node_devices(topology, name, capacity)
            self.devices.append([SharedDevice.read(d) for d in published.slice.spec.devices] if published else [])
        self.consumed = [[[0, 0] for _ in devices] for devices in self.devices]
        """Per node, per device: (ingress, egress) the allocated claims consume."""
        self._selected: dict[tuple[int, str | None], tuple[int, ...]] = {}
        """Positions of the devices a request's selector matches, per (node, network)."""

    def allocate(self, node: int, requests: Sequence[CapacityRequest]) -> Allocation | None:
        """The allocator's first solution for the claim on ``node`` (None: it cannot)."""
        devices, consumed = self.devices[node], self.consumed[node]
        options = []
        """Per request, in slice order: (position, device, share) of each device it selects
        and whose request policy takes it."""
        for request in requests:
            selected = self._selected.get((node, request.network))
            if selected is None:
                selected = self._selected[(node, request.network)] = tuple(
                    position for position, device in enumerate(devices) if request.selects(device)
                )
            options.append([
                (position, devices[position], share) for position in selected
                if (share := devices[position].consumes(request.asks)) is not None
            ])
        taking: dict[int, tuple[int, int]] = {}
        """This claim's requests so far, per device (the allocator's ``allocatingCapacity``)."""
        chosen: list[tuple[int, tuple[int, int]]] = []

        def search(index: int) -> bool:
            if index == len(requests):
                return True
            for position, device, share in options[index]:
                taken = taking.get(position, (0, 0))
                held = consumed[position]
                if (held[0] + taken[0] + share[0] > device.capacity[0]
                        or held[1] + taken[1] + share[1] > device.capacity[1]):
                    continue
                taking[position] = (taken[0] + share[0], taken[1] + share[1])
                chosen.append((position, share))
                if search(index + 1):
                    return True
                chosen.pop()
                taking[position] = taken
            return False

        if not search(0):
            return None
        return Allocation(node, tuple(requests), tuple(p for p, _ in chosen), tuple(s for _, s in chosen))

    def commit(self, allocation: Allocation) -> None:
        """The claim's status is written: its consumed capacity counts from now on."""
        self._add(allocation, 1)

    def release(self, allocation: Allocation) -> None:
        """The pod is gone and its claim deallocated."""
        self._add(allocation, -1)

    def _add(self, allocation: Allocation, sign: int) -> None:
        consumed = self.consumed[allocation.node]
        for position, share in zip(allocation.devices, allocation.consumed, strict=True):
            for direction in (0, 1):
                consumed[position][direction] += sign * share[direction]

    def interfaces(self, allocation: Allocation) -> list[tuple[CapacityRequest, str]]:
        """Each request with the interface its device is."""
        devices = self.devices[allocation.node]
        return [
            (request, devices[position].interface)
            for request, position in zip(allocation.requests, allocation.devices, strict=True)
        ]

    def claim(self, allocation: Allocation, namespace: str, pod: str, pod_uid: str) -> dra.ResourceClaim:
        """The pod's claim as kube-scheduler leaves it: its requests, and the allocation with
        each result's device, consumed capacity and share, reserved for the pod."""
        node, devices = self.names[allocation.node], self.devices[allocation.node]
        requests = [
            dra.DeviceRequest(name=request.name, exactly=dra.ExactDeviceRequest(
                device_class_name=dra.DEVICE_CLASS,
                capacity=dra.CapacityRequirements(requests=dict(zip(DIRECTIONS, map(str, request.asks), strict=True))),
            ))
            for request in allocation.requests
        ]
        results = [
            dra.DeviceRequestAllocationResult(
                request=request.name, driver=dra.DRIVER, pool=node, device=devices[position].name,
                consumed_capacity=dict(zip(DIRECTIONS, map(str, share), strict=True)),
                share_id=f"{pod_uid}-{index}",
            )
            for index, (request, position, share) in enumerate(
                zip(allocation.requests, allocation.devices, allocation.consumed, strict=True)
            )
        ]
        return dra.ResourceClaim(
            metadata=dra.DraMeta(name=claim_name(pod), namespace=namespace, uid=f"{pod_uid}-claim"),
            spec=dra.ResourceClaimSpec(devices=dra.DeviceClaim(requests=requests)),
            status=dra.ResourceClaimStatus(
                allocation=dra.AllocationResult(devices=dra.DeviceAllocationResult(results=results)),
                reserved_for=[dra.ResourceClaimConsumerReference(resource="pods", name=pod, uid=pod_uid)],
            ),
        )
