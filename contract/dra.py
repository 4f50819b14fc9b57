"""The parts of Kubernetes' Dynamic Resource Allocation API (``resource.k8s.io/v1``) that
netsched writes and reads: its NICs as shared devices in a ``ResourceSlice``, the
``DeviceClass`` claims name, and a ``ResourceClaim``'s allocation with the capacity
kube-scheduler consumed on each device (DRA consumable capacity, KEP-5075).

Field names are the API's (camelCase on the wire). Unknown fields are ignored, so a
newer API server's additions do not break reading; the models name only what netsched
uses, and what it writes is complete for the API server's validation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import ConfigDict, Field

from contract.quantity import is_zero_quantity, parse_bandwidth
from contract.wire import WireModel

DRIVER = "netsched.io"
"""The driver name on every device netsched publishes, and the ``driver`` of an allocation
result that netsched enforces."""
DEVICE_CLASS = "bandwidth.netsched.io"
"""The ``DeviceClass`` a claim names to ask for NIC bandwidth (``deploy/dra/``)."""
GROUP_VERSION = "resource.k8s.io/v1"
INGRESS = "ingress"
EGRESS = "egress"
"""Capacity names of a device: bits per second the interface can still promise, per direction."""

RESOURCE_SLICES = "resourceslices"
DEVICE_CLASSES = "deviceclasses"
RESOURCE_CLAIMS = "resourceclaims"
"""Plurals in the REST paths: slices and classes are cluster-scoped, claims namespaced."""


def capacity_bps(quantity: str | None) -> int:
    """Bits/s of one of a device's ``ingress``/``egress`` quantities in a claim (asked or
    consumed). Absent or zero is 0: what kube-scheduler consumes of a capacity the claim
    did not name (the request policy's default), which nothing shapes or holds. Anything
    else must be a rate netsched reads; raises ``contract.quantity.QuantityError``."""
    if quantity is None or is_zero_quantity(quantity):
        return 0
    return parse_bandwidth(quantity)


_NOT_IN_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def device_name(interface: str) -> str:
    """The device name of a node's interface in its ResourceSlice.

    A device name must be a DNS label; a Linux interface name need not be one
    (``eth0.100``, ``br_data``, ``Wan0``). A name that is already a label is kept, so
    ``eth0`` is device ``eth0``; any other is lowered, its other characters made ``-``,
    and suffixed with a hash of the original so that two interfaces never share a device.
    """
    label = _NOT_IN_DNS_LABEL.sub("-", interface.lower()).strip("-")
    if label == interface and label:
        return label
    digest = hashlib.sha256(interface.encode()).hexdigest()[:8]
    return f"{label[:54]}-{digest}" if label else f"if-{digest}"


def interface_of_device(device: str, interfaces: Iterable[str]) -> str | None:
    """Which of a node's ``interfaces`` is published as ``device`` (None: none of them)."""
    return next((name for name in interfaces if device_name(name) == device), None)


class DraMeta(WireModel):
    name: str
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    owner_references: list[dict[str, object]] | None = None


# ---- ResourceSlice ----------------------------------------------------------------


class DeviceAttribute(WireModel):
    """Exactly one of the four is set (the API's rule); strings are at most 64 characters."""

    string: str | None = None
    integer: int | None = Field(default=None, alias="int")
    boolean: bool | None = Field(default=None, alias="bool")
    version: str | None = None


class CapacityRequestPolicyRange(WireModel):
    min: str
    max: str | None = None
    step: str | None = None


class CapacityRequestPolicy(WireModel):
    default: str | None = None
    valid_range: CapacityRequestPolicyRange | None = None
    valid_values: list[str] | None = None


class DeviceCapacity(WireModel):
    value: str
    """A Kubernetes quantity; for netsched's ``ingress``/``egress``, bits per second."""
    request_policy: CapacityRequestPolicy | None = None


class Device(WireModel):
    name: str
    attributes: dict[str, DeviceAttribute] = Field(default_factory=dict)
    capacity: dict[str, DeviceCapacity] = Field(default_factory=dict)
    allow_multiple_allocations: bool | None = None


class ResourcePool(WireModel):
    name: str
    generation: int
    resource_slice_count: int


class ResourceSliceSpec(WireModel):
    driver: str
    pool: ResourcePool
    node_name: str | None = None
    all_nodes: bool | None = None
    devices: list[Device] = Field(default_factory=list)


class ResourceSlice(WireModel):
    api_version: Literal["resource.k8s.io/v1"] = "resource.k8s.io/v1"
    kind: Literal["ResourceSlice"] = "ResourceSlice"
    metadata: DraMeta
    spec: ResourceSliceSpec


# ---- DeviceClass --------------------------------------------------------------------


class CELDeviceSelector(WireModel):
    expression: str


class DeviceSelector(WireModel):
    cel: CELDeviceSelector | None = None


class DeviceClassSpec(WireModel):
    selectors: list[DeviceSelector] = Field(default_factory=list)


class DeviceClass(WireModel):
    api_version: Literal["resource.k8s.io/v1"] = "resource.k8s.io/v1"
    kind: Literal["DeviceClass"] = "DeviceClass"
    metadata: DraMeta
    spec: DeviceClassSpec


# ---- ResourceClaim ------------------------------------------------------------------


class CapacityRequirements(WireModel):
    requests: dict[str, str] = Field(default_factory=dict)


class ExactDeviceRequest(WireModel):
    device_class_name: str
    selectors: list[DeviceSelector] = Field(default_factory=list)
    allocation_mode: str | None = None
    count: int | None = None
    capacity: CapacityRequirements | None = None


class DeviceRequest(WireModel):
    name: str
    exactly: ExactDeviceRequest | None = None


class DeviceClaim(WireModel):
    requests: list[DeviceRequest] = Field(default_factory=list)


class ResourceClaimSpec(WireModel):
    devices: DeviceClaim = Field(default_factory=DeviceClaim)


class DeviceRequestAllocationResult(WireModel):
    request: str
    driver: str
    pool: str
    device: str
    consumed_capacity: dict[str, str] | None = None
    """What kube-scheduler took from the device's capacity for this claim (quantities)."""
    share_id: str | None = Field(default=None, alias="shareID")
    """Tells apart allocations of one shared device (``allowMultipleAllocations``)."""


class DeviceAllocationResult(WireModel):
    results: list[DeviceRequestAllocationResult] = Field(default_factory=list)


class AllocationResult(WireModel):
    devices: DeviceAllocationResult = Field(default_factory=DeviceAllocationResult)
    node_selector: dict[str, object] | None = None


class ResourceClaimConsumerReference(WireModel):
    resource: str
    name: str
    uid: str
    api_group: str | None = None


class ResourceClaimStatus(WireModel):
    allocation: AllocationResult | None = None
    reserved_for: list[ResourceClaimConsumerReference] = Field(default_factory=list)


class ResourceClaim(WireModel):
    api_version: Literal["resource.k8s.io/v1"] = "resource.k8s.io/v1"
    kind: Literal["ResourceClaim"] = "ResourceClaim"
    metadata: DraMeta
    spec: ResourceClaimSpec = Field(default_factory=ResourceClaimSpec)
    status: ResourceClaimStatus = Field(default_factory=ResourceClaimStatus)

    @property
    def key(self) -> str:
        """namespace/name, as pods name the claim."""
        return f"{self.metadata.namespace or 'default'}/{self.metadata.name}"

    def netsched_results(self) -> list[DeviceRequestAllocationResult]:
        """The allocation results on netsched's devices (a claim may mix drivers)."""
        if self.status.allocation is None:
            return []
        return [r for r in self.status.allocation.devices.results if r.driver == DRIVER]


# ---- the pod's side -----------------------------------------------------------------


class PodResourceClaim(WireModel):
    """``pod.spec.resourceClaims[]``: a claim by name, or one made from a template."""

    model_config = ConfigDict(frozen=True)

    name: str
    resource_claim_name: str | None = None
    resource_claim_template_name: str | None = None


class PodResourceClaimStatus(WireModel):
    """``pod.status.resourceClaimStatuses[]``: the name of the claim made from a template."""

    model_config = ConfigDict(frozen=True)

    name: str
    resource_claim_name: str | None = None
