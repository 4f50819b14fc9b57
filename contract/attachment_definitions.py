"""Multus's ``NetworkAttachmentDefinition`` (the Network Plumbing WG's CRD), as netsched
reads it.

A NAD (``k8s.cni.cncf.io/v1``, namespaced) holds a CNI configuration in ``spec.config``;
how netsched reads that configuration as a network of the topology is
``topology.attachment_definitions``; the kind of attachment it makes is
``contract.wire.DefinitionMode``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from contract.objects import ObjectMeta
from contract.wire import WireModel

DEFINITION_GROUP = "k8s.cni.cncf.io"
DEFINITION_VERSION = "v1"
DEFINITION_API_VERSION = f"{DEFINITION_GROUP}/{DEFINITION_VERSION}"
DEFINITION_KIND = "NetworkAttachmentDefinition"
DEFINITION_PLURAL = "network-attachment-definitions"


class NetworkAttachmentDefinitionSpec(WireModel):
    config: str = Field(default="", description="CNI configuration JSON: one plugin or a conflist.")


class NetworkAttachmentDefinition(WireModel):
    """``NetworkAttachmentDefinition`` (namespaced), the Network Plumbing WG's CRD that Multus reads."""

    api_version: Literal[DEFINITION_API_VERSION] = DEFINITION_API_VERSION
    kind: Literal[DEFINITION_KIND] = DEFINITION_KIND
    metadata: ObjectMeta
    spec: NetworkAttachmentDefinitionSpec = Field(default_factory=NetworkAttachmentDefinitionSpec)

    @property
    def key(self) -> str:
        """``namespace/name``: the network's name in the topology and in requirements."""
        return self.metadata.key
