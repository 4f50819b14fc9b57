"""Where the extender's picture of the cluster comes from, and where bindings go.

A *cluster source* loads Nodes, NodeNetworks, Networks, BandwidthPolicies and Pods, streams their
changes into a *sink* (the extender's ``ClusterState``), and carries out the two
writes a bind makes: the reservation annotation, then the Binding. The file source
(demo, tests) and the Kubernetes source implement the same protocol, so the
scheduling code never knows which one it talks to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from topology.models import BandwidthPolicy, BandwidthPolicyStatus, Network, Node, NodeNetwork, Pod

ClusterObject = Node | NodeNetwork | Network | BandwidthPolicy | Pod


class BindConflict(RuntimeError):
    """The API refused a bind write (stale resourceVersion, pod gone, already bound)."""


@dataclass(slots=True)
class ClusterSnapshot:
    nodes: list[Node] = field(default_factory=list)
    node_networks: list[NodeNetwork] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    bandwidth_policies: list[BandwidthPolicy] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)

    def objects(self) -> Iterable[ClusterObject]:
        yield from self.nodes
        yield from self.node_networks
        yield from self.networks
        yield from self.bandwidth_policies
        yield from self.pods


class ClusterSink(Protocol):
    """Receives the cluster's state: a full snapshot, then object events."""

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

    def write_reservation(self, pod: Pod, reservation_json: str) -> Pod:
        """Set the ``netsched.io/reservation`` annotation, conditional on the pod's
        resourceVersion; return the updated pod or raise ``BindConflict``."""

    def create_binding(self, pod: Pod, node: str) -> None:
        """Bind ``pod`` to ``node`` (the ``pods/binding`` subresource); raise ``BindConflict``."""

    def write_policy_status(self, policy: BandwidthPolicy, status: BandwidthPolicyStatus) -> None:
        """Set a BandwidthPolicy's status (best effort: the next sync tries again)."""
