"""The JSON of ``k8s.io/kube-scheduler/extender/v1``, field for field.

The Go types carry no JSON tags, so the wire names are the Go field names
(``Pod``, ``NodeNames``, ``FailedAndUnresolvableNodes``…). Pods and Nodes arrive as
full API objects; we validate the parts we read and carry the rest through
untouched (a filter reply without ``nodeCacheCapable`` must return the NodeList).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from topology.models import Pod


class WireType(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NodeList(WireType):
    """A core/v1 NodeList; items are kept as sent so that they can be echoed back."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    items: list[dict[str, Any]] = Field(default_factory=list)

    def names(self) -> list[str]:
        return [item.get("metadata", {}).get("name", "") for item in self.items]


class ExtenderArgs(WireType):
    """Body of ``/filter`` and ``/prioritize``: exactly one of Nodes / NodeNames is non-null."""

    Pod: Pod
    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None

    def node_names(self) -> list[str]:
        if self.NodeNames is not None:
            return self.NodeNames
        return self.Nodes.names() if self.Nodes is not None else []


class ExtenderFilterResult(WireType):
    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None
    FailedNodes: dict[str, str] = Field(default_factory=dict)
    FailedAndUnresolvableNodes: dict[str, str] = Field(default_factory=dict)
    Error: str = ""


class HostPriority(WireType):
    Host: str
    Score: int = Field(ge=0, le=10)


class ExtenderBindingArgs(WireType):
    PodName: str
    PodNamespace: str
    PodUID: str
    Node: str


class ExtenderBindingResult(WireType):
    Error: str = ""


class MetaPod(WireType):
    UID: str


class MetaVictims(WireType):
    Pods: list[MetaPod] = Field(default_factory=list)
    NumPDBViolations: int = 0


class Victims(WireType):
    """Victims as full pods (sent when the extender is not nodeCacheCapable)."""

    Pods: list[Pod] = Field(default_factory=list)
    NumPDBViolations: int = 0


class ExtenderPreemptionArgs(WireType):
    Pod: Pod
    NodeNameToVictims: dict[str, Victims] | None = None
    NodeNameToMetaVictims: dict[str, MetaVictims] | None = None

    def candidates(self) -> dict[str, list[str]]:
        """node → victim UIDs, from whichever of the two maps was sent."""
        if self.NodeNameToMetaVictims is not None:
            return {n: [p.UID for p in v.Pods] for n, v in self.NodeNameToMetaVictims.items()}
        return {
            n: [p.metadata.uid or "" for p in v.Pods] for n, v in (self.NodeNameToVictims or {}).items()
        }

    def pdb_violations(self, node: str) -> int:
        for victims in (self.NodeNameToMetaVictims or {}, self.NodeNameToVictims or {}):
            if node in victims:
                return victims[node].NumPDBViolations
        return 0


class ExtenderPreemptionResult(WireType):
    NodeNameToMetaVictims: dict[str, MetaVictims] = Field(default_factory=dict)
