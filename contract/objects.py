"""Pydantic models of the Kubernetes objects netsched reads and writes.

These models are the single source of each schema: the CRDs in ``deploy/``, the
reporter's output, the CNI's view of a network and the extender's OpenAPI all come
from here. Field names are snake_case in Python and camelCase on the wire, exactly
as the Kubernetes API spells them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from contract.dra import PodResourceClaim, PodResourceClaimStatus
from contract.group import API_VERSION, BANDWIDTH_POLICY, NETWORK, NODE_NETWORK
from contract.wire import IPAddress, IPNetwork, NetworkMode, WireModel

ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
SWITCH_LABEL = "netsched.io/switch"


class ObjectMeta(WireModel):
    name: str
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: datetime | None = None
    """Set when the object is being deleted (a pod then still runs out its grace period)."""

    @property
    def effective_namespace(self) -> str:
        """The namespace the API server puts an object in when its manifest names none."""
        return self.namespace or "default"

    @property
    def key(self) -> str:
        """``namespace/name``, as kubectl and the API's cache keys name a namespaced object."""
        return f"{self.effective_namespace}/{self.name}"

    @model_validator(mode="before")
    @classmethod
    def _null_maps_are_empty(cls, data: object) -> object:
        # The API server sends ``"labels": null`` for objects without labels.
        if isinstance(data, dict):
            for key in ("labels", "annotations"):
                if key in data and data[key] is None:
                    data = {**data, key: {}}
        return data


class Node(WireModel):
    """The parts of a core/v1 Node that placement depends on."""

    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def zone(self) -> str | None:
        return self.metadata.labels.get(ZONE_LABEL)

    @property
    def region(self) -> str | None:
        return self.metadata.labels.get(REGION_LABEL)

    @property
    def switch(self) -> str | None:
        return self.metadata.labels.get(SWITCH_LABEL)


class InterfaceRole(StrEnum):
    """What traffic an interface is meant for; ``any`` serves every role."""

    POD = "pod"
    STORAGE = "storage"
    CONTROL = "control"
    ANY = "any"

    def serves(self, wanted: InterfaceRole | None) -> bool:
        return wanted is None or InterfaceRole.ANY in (self, wanted) or self == wanted


class NetworkInterface(WireModel):
    """One host interface as the node reporter saw it."""

    name: Annotated[str, Field(min_length=1, max_length=15)]
    kind: str = "physical"
    role: InterfaceRole = InterfaceRole.ANY
    speed_mbps: Annotated[int, Field(ge=0)] = 0
    mtu: Annotated[int, Field(ge=68, le=65535)] = 1500
    mac: str | None = None
    oper_state: str = "up"
    vlans: list[Annotated[int, Field(ge=1, le=4094)]] = Field(default_factory=list)
    vnis: list[Annotated[int, Field(ge=1, le=16777215)]] = Field(default_factory=list)
    addresses: list[str] = Field(default_factory=list)
    rx_bps: Annotated[int, Field(ge=0)] = 0
    tx_bps: Annotated[int, Field(ge=0)] = 0


class NodeNetworkStatus(WireModel):
    interfaces: list[NetworkInterface] = Field(default_factory=list)
    zone: str | None = None
    switch: str | None = None
    heartbeat_time: datetime | None = None


class NodeNetwork(WireModel):
    """``NodeNetwork`` (cluster-scoped, named after its node), written by the reporter."""

    api_version: Literal[API_VERSION] = API_VERSION
    kind: Literal[NODE_NETWORK.kind] = NODE_NETWORK.kind
    metadata: ObjectMeta
    status: NodeNetworkStatus = Field(default_factory=NodeNetworkStatus)


class NetworkSpec(WireModel):
    """How a ``Network`` is segmented, where it exists and how its addresses are handed out."""

    mode: NetworkMode
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    vni: Annotated[int, Field(ge=1, le=16777215)] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    group: IPAddress | None = Field(
        default=None, description="VXLAN multicast group; derived from the VNI when unset."
    )
    zones: list[str] = Field(default_factory=list, description="Empty means every zone.")
    role: InterfaceRole | None = None
    subnet: IPNetwork | None = None
    range_start: IPAddress | None = None
    range_end: IPAddress | None = None
    gateway: IPAddress | None = None
    mtu: Annotated[int, Field(ge=68, le=65535)] | None = None

    @model_validator(mode="after")
    def _segment_matches_mode(self) -> NetworkSpec:
        if self.mode is NetworkMode.VLAN and self.vlan is None:
            raise ValueError("spec.vlan is required when spec.mode is 'vlan'")
        if self.mode is NetworkMode.VXLAN and self.vni is None:
            raise ValueError("spec.vni is required when spec.mode is 'vxlan'")
        for field in ("range_start", "range_end", "gateway"):
            address = getattr(self, field)
            if address is None:
                continue
            if self.subnet is None:
                raise ValueError(f"spec.{to_camel(field)} needs spec.subnet")
            if address not in self.subnet:
                raise ValueError(
                    f"spec.{to_camel(field)} {address} is outside spec.subnet {self.subnet}"
                )
        if self.range_start and self.range_end and self.range_start > self.range_end:
            raise ValueError(
                f"spec.rangeStart {self.range_start} is after spec.rangeEnd {self.range_end}"
            )
        return self


class Network(WireModel):
    """``Network`` (cluster-scoped), written by the admin."""

    api_version: Literal[API_VERSION] = API_VERSION
    kind: Literal[NETWORK.kind] = NETWORK.kind
    metadata: ObjectMeta
    spec: NetworkSpec

    @property
    def name(self) -> str:
        return self.metadata.name


BANDWIDTH_QUANTITY_PATTERN = r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|[kMGTPE])?$"
"""A non-negative Kubernetes quantity of bits/s (``0``, ``100M``, ``1.5G``, ``1Gi``); the API
server checks it on admission, netsched again (with the range it accepts) when it reads one."""

BandwidthQuantity = Annotated[str, Field(pattern=BANDWIDTH_QUANTITY_PATTERN, max_length=64)]


class DirectionalBandwidth(WireModel):
    """Bits per second in each direction, as Kubernetes quantities; an absent one sets nothing."""

    ingress: BandwidthQuantity | None = None
    egress: BandwidthQuantity | None = None


class BandwidthPolicySpec(WireModel):
    """What a namespace's pods get and may hold, in the spirit of LimitRange and ResourceQuota."""

    default: DirectionalBandwidth | None = Field(
        default=None,
        description="Reserved (and so shaped by the CNI plugin) for a pod that asks nothing for "
        "that direction of its primary interface.",
    )
    max: DirectionalBandwidth | None = Field(
        default=None, description="The most one pod may reserve per direction, all its interfaces together."
    )
    hard: DirectionalBandwidth | None = Field(
        default=None, description="The most the namespace's pods may hold reserved together, per direction."
    )


class BandwidthPolicyStatus(WireModel):
    """Like ResourceQuota's: the enforced totals and what the namespace's pods hold now."""

    hard: DirectionalBandwidth = Field(default_factory=DirectionalBandwidth)
    used: DirectionalBandwidth = Field(default_factory=DirectionalBandwidth)


class BandwidthPolicy(WireModel):
    """``BandwidthPolicy`` (namespaced), written by the admin; netsched writes its status."""

    api_version: Literal[API_VERSION] = API_VERSION
    kind: Literal[BANDWIDTH_POLICY.kind] = BANDWIDTH_POLICY.kind
    metadata: ObjectMeta
    spec: BandwidthPolicySpec = Field(default_factory=BandwidthPolicySpec)
    status: BandwidthPolicyStatus = Field(default_factory=BandwidthPolicyStatus)

    @property
    def key(self) -> str:
        return self.metadata.key


class PodSpec(WireModel):
    """Frozen, as ``PodStatus``: the extender's state holds one object for each distinct
    value, shared by the pods that have it (``ClusterState``), so a change is a new
    object (``model_copy(update=...)``), never an edit."""

    model_config = ConfigDict(frozen=True)

    node_name: str | None = None
    priority: int = 0
    preemption_policy: str | None = None
    """``Never``: the pod waits rather than having lower-priority pods evicted for it."""
    scheduler_name: str = "default-scheduler"
    """Kubernetes' default when a pod names none."""
    resource_claims: tuple[PodResourceClaim, ...] = ()
    """DRA claims the pod uses, by name or through a template (``contract.dra``)."""


class PodStatus(WireModel):
    model_config = ConfigDict(frozen=True)

    phase: str | None = None
    resource_claim_statuses: tuple[PodResourceClaimStatus, ...] = ()
    """The names of the claims made from the pod's templates."""


class Pod(WireModel):
    """The parts of a core/v1 Pod that netsched reads: identity, annotations, node, phase."""

    metadata: ObjectMeta
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)

    @property
    def key(self) -> str:
        return self.metadata.key

    @property
    def is_terminal(self) -> bool:
        return self.status.phase in ("Succeeded", "Failed")

    def claim_names(self) -> list[str]:
        """Names of the ResourceClaims the pod uses (in its namespace): named directly, or
        made from a template (known once the claim controller wrote it into the status)."""
        made = {s.name: s.resource_claim_name for s in self.status.resource_claim_statuses}
        names = []
        for entry in self.spec.resource_claims:
            name = entry.resource_claim_name or made.get(entry.name)
            if name:
                names.append(name)
        return names


__all__ = [
    "BandwidthPolicy",
    "BandwidthPolicySpec",
    "BandwidthPolicyStatus",
    "DirectionalBandwidth",
    "InterfaceRole",
    "Network",
    "NetworkInterface",
    "NetworkSpec",
    "Node",
    "NodeNetwork",
    "NodeNetworkStatus",
    "ObjectMeta",
    "Pod",
]
