"""What every netsched API object shares: camelCase on the wire, and the value types
both the objects and the reservation use.

Apart from ``contract.objects`` so that the reservation, which the CNI plugin reads on
every ADD, is built without the models of the cluster's objects.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WireModel(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields ignored.

    Kubernetes objects arrive with defaults, ``managedFields`` and ``status`` we do
    not use; ignoring them keeps netsched compatible with every API version.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        serialize_by_alias=True,
    )


# How a ``Network`` is segmented; a reservation's attachment names the same mode. (No
# docstring: it would become the CRDs' and the OpenAPI document's description.)
class NetworkMode(StrEnum):
    VLAN = "vlan"
    VXLAN = "vxlan"
    MACVLAN = "macvlan"


class DefinitionMode(StrEnum):
    """What kind of attachment a NAD makes, from its main plugin's CNI type."""

    MACVLAN = "macvlan"
    IPVLAN = "ipvlan"
    VLAN = "vlan"
    BRIDGE = "bridge"
    HOST_DEVICE = "host-device"
    SRIOV = "sriov"
    OPAQUE = "opaque"
