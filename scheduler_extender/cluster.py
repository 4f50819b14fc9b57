"""Where the extender's picture of the cluster comes from, and where bindings go.

A *cluster source* loads Nodes, NodeNetworks, Networks, NetworkAttachmentDefinitions,
BandwidthPolicies, Pods and DRA ResourceClaims, streams their
changes into a *sink* (the extender's ``ClusterState``), and carries out the one
write a bind makes: a Binding that carries the reservation annotation. The file source
(demo, tests) and the Kubernetes source implement the same protocol, so the
scheduling code never knows which one it talks to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from contract.attachment_definitions import NetworkAttachmentDefinition
from contract.dra import ResourceClaim
from contract.objects import BandwidthPolicy, BandwidthPolicyStatus, Network, Node, NodeNetwork, Pod

ClusterObject = Node | NodeNetwork | Network | NetworkAttachmentDefinition | BandwidthPolicy | Pod | ResourceClaim

CONCURRENT_BINDS = 64
"""Binds the extender carries out at once (each waits on one API call). kube-scheduler runs
every binding cycle in a goroutine of its own and its extender client sets no connection
limit, so binds arrive as fast as scheduling cycles end; docs/benchmarks.md measures this
size against the threadpool's default 40."""


class BindConflict(RuntimeError):
    """The API refused a bind (stale resourceVersion or UID, pod gone, already bound)."""


@dataclass(slots=True)
class ClusterSnapshot:
    nodes: list[Node] = field(default_factory=list)
    node_networks: list[NodeNetwork] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    bandwidth_policies: list[BandwidthPolicy] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    definitions: list[NetworkAttachmentDefinition] = field(default_factory=list)
    """Multus NetworkAttachmentDefinitions (none where the CRD is not installed)."""
    claims: list[ResourceClaim] = field(default_factory=list)
    """DRA ResourceClaims (none where the API server does not serve resource.k8s.io/v1)."""

    def objects(self) -> Iterable[ClusterObject]:
        yield from self.nodes
        yield from self.node_networks
        yield from self.networks
        yield from self.definitions
        yield from self.bandwidth_policies
        yield from self.pods
        yield from self.claims


class ClusterSink(Protocol):
    """Receives the cluster's state: a full snapshot, then object events.

    The sink keeps the objects it is handed, and may reduce them to what netsched reads
    (``ClusterState`` does, for pods): a source hands an object over and relies on no more
    of it afterwards than its identity (kind, namespace, name, uid, resourceVersion)."""

    def reset(self, snapshot: ClusterSnapshot) -> None:
        """Replace everything known with ``snapshot`` (start, relist after 410 Gone)."""

    def upsert(self, obj: ClusterObject) -> None:
        """An object was added or modified."""

    def delete(self, obj: ClusterObject) -> None:
        """An object was deleted."""


class ClusterSource(Protocol):
    def start(self, sink: ClusterSink) -> None:
        """Deliver the initial snapshot to ``sink`` before returning, then follow changes."""

    def stop(self) -> None:
        """Stop following changes; idempotent."""

    def read_pod(self, namespace: str, name: str) -> Pod | None:
        """The pod as the API holds it now (None: it does not exist); raise ``BindConflict``
        when it cannot be read."""

    def read_claim(self, namespace: str, name: str) -> ResourceClaim | None:
        """The ResourceClaim as the API holds it now (None: it does not exist); raise
        ``BindConflict`` when it cannot be read. Bind reads a pod's claims so: kube-scheduler
        writes their allocation just before it calls bind, ahead of the watch."""

    def bind(self, pod: Pod, node: str, annotations: Mapping[str, str]) -> None:
        """Create ``pod``'s Binding to ``node`` carrying ``annotations``, with the pod's uid
        and resourceVersion as preconditions: the API server sets ``spec.nodeName`` and
        merges the annotations into the pod in one write. Raise ``BindConflict``."""

    def write_policy_status(self, policy: BandwidthPolicy, status: BandwidthPolicyStatus) -> None:
        """Set a BandwidthPolicy's status (best effort: the next sync tries again)."""
