"""The ``netsched.io/reservation`` annotation: what a bound pod holds, and where.

Written by the extender before the Binding, read back to rebuild the ledger after a
restart and by the CNI plugin to shape and attach the pod. It is the only record of
a reservation: there is no other store.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from contract.wire import DefinitionMode, IPAddress, NetworkMode, WireModel

Direction = Literal["ingress", "egress"]
DIRECTIONS: tuple[Direction, Direction] = ("ingress", "egress")

Bps = Annotated[int, Field(ge=0, description="bits per second")]


class Rates(WireModel):
    """A pair of rates in bits/s; ingress is traffic into the pod, egress out of it.

    Frozen: the ledger gives equal rates one object, shared by the reservations it holds
    (``Ledger._share_rates``)."""

    model_config = ConfigDict(frozen=True)

    ingress: Bps = 0
    egress: Bps = 0

    def get(self, direction: Direction) -> int:
        return self.ingress if direction == "ingress" else self.egress


class AttachmentReservation(WireModel):
    """One extra network the pod is attached to, resolved to concrete values on its node."""

    network: str
    interface: str = Field(description="Interface name inside the pod, e.g. net1.")
    mode: NetworkMode | DefinitionMode
    definition: str | None = Field(
        default=None,
        description="namespace/name of the NetworkAttachmentDefinition when Multus creates the "
        "interface: netsched-cni then makes nothing and shapes it only when chained in that "
        "definition's own conflist.",
    )
    vlan: int | None = None
    vni: int | None = None
    port: int | None = None
    group: IPAddress | None = None
    parent: str = Field(description="Host interface that carries the network (uplink).")
    ip: str | None = Field(default=None, description="Address with prefix, e.g. 10.20.0.15/24.")
    mac: str | None = Field(
        default=None, description="Always set when netsched-cni creates the interface; for a "
        "definition's, only when the pod asked one (its CNI plugin picks otherwise).",
    )
    gateway: IPAddress | None = None
    mtu: int | None = None
    ingress: Bps = 0
    egress: Bps = 0


class Reservation(WireModel):
    """Everything netsched promised one pod on one node."""

    node: str
    primary: Rates = Field(default_factory=Rates, description="Rates of the pod's eth0.")
    primary_parent: str | None = Field(
        default=None, description="Host interface charged for the primary rates."
    )
    interfaces: dict[str, Rates] = Field(
        default_factory=dict, description="Bits/s reserved per host interface and direction."
    )
    attachments: list[AttachmentReservation] = Field(default_factory=list)

    def annotation(self) -> str:
        """The value of the pod's reservation annotation, as bind writes it: the fields that
        are set (an attachment's unset VLAN, VNI or gateway are left out, not written as null)."""
        return self.model_dump_json(exclude_none=True)
