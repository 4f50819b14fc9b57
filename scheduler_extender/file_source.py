"""A cluster held in memory, loaded from a YAML file of API objects.

It serves ``netsched demo`` and the tests with the same semantics as the API
server where they matter to binding: a Binding under uid and resourceVersion
preconditions that carries the reservation, and a pod can be bound once.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from contract.attachment_definitions import NetworkAttachmentDefinition
from contract.dra import ResourceClaim
from contract.objects import BandwidthPolicy, BandwidthPolicyStatus, Network, Node, NodeNetwork, Pod
from scheduler_extender.cluster import BindConflict, ClusterObject, ClusterSink, ClusterSnapshot

_KINDS: dict[str, type] = {
    "Node": Node, "NodeNetwork": NodeNetwork, "Network": Network, "BandwidthPolicy": BandwidthPolicy, "Pod": Pod,
    "NetworkAttachmentDefinition": NetworkAttachmentDefinition, "ResourceClaim": ResourceClaim,
}


class ClusterFileError(ValueError):
    pass


def parse_objects(documents: list[Any]) -> ClusterSnapshot:
    """API objects (dicts) into a snapshot; ``List`` documents are flattened."""
    snapshot = ClusterSnapshot()
    lists = _lists(snapshot)
    pending = [doc for doc in documents if doc is not None]
    while pending:
        document = pending.pop(0)
        if not isinstance(document, dict):
            raise ClusterFileError(f"expected an API object, got {document!r:.80}")
        kind = document.get("kind")
        if kind is not None and kind.endswith("List"):
            pending[:0] = document.get("items") or []
            continue
        model = _KINDS.get(kind or "")
        if model is None:
            raise ClusterFileError(f"unsupported kind {kind!r} (expected one of {sorted(_KINDS)})")
        lists[model].append(TypeAdapter(model).validate_python(document))
    return snapshot


class FileClusterSource:
    """Implements ``ClusterSource`` over objects kept in memory."""

    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], ClusterObject] = {}
        self._versions = itertools.count(1)
        self._sink: ClusterSink | None = None
        for obj in snapshot.objects():
            self._objects[_key(obj)] = self._stamped(obj)

    @classmethod
    def from_yaml(cls, path: str | Path) -> FileClusterSource:
        with open(path, encoding="utf-8") as handle:
            return cls(parse_objects(list(yaml.safe_load_all(handle))))

    # -- ClusterSource -------------------------------------------------------------------

    def start(self, sink: ClusterSink) -> None:
        with self._lock:
            self._sink = sink
            snapshot = self.snapshot()
            snapshot.pods = [_handed(pod) for pod in snapshot.pods]
            sink.reset(snapshot)

    def stop(self) -> None:
        self._sink = None

    def read_pod(self, namespace: str, name: str) -> Pod | None:
        found = self._objects.get(("Pod", f"{namespace}/{name}"))
        return found if isinstance(found, Pod) else None

    def read_claim(self, namespace: str, name: str) -> ResourceClaim | None:
        found = self._objects.get(("ResourceClaim", f"{namespace}/{name}"))
        return found if isinstance(found, ResourceClaim) else None

    def bind(self, pod: Pod, node: str, annotations: Mapping[str, str]) -> None:
        """The API server's Binding: uid and resourceVersion preconditions, bound once,
        annotations merged in the same write."""
        with self._lock:
            current = self._current_pod(pod)
            if current.metadata.resource_version != pod.metadata.resource_version:
                raise BindConflict(
                    f"pod {pod.key} changed (resourceVersion {pod.metadata.resource_version} "
                    f"is now {current.metadata.resource_version})"
                )
            if current.spec.node_name:
                raise BindConflict(f"pod {pod.key} is already bound to {current.spec.node_name}")
            if ("Node", node) not in self._objects:
                raise BindConflict(f"node {node} does not exist")
            updated = current.model_copy(deep=True)
            updated.metadata.annotations.update(annotations)
            updated.spec = updated.spec.model_copy(update={"node_name": node})
            updated.status = updated.status.model_copy(update={"phase": "Running"})
            self._store(updated)

    def write_policy_status(self, policy: BandwidthPolicy, status: BandwidthPolicyStatus) -> None:
        with self._lock:
            current = self._objects.get(_key(policy))
            if isinstance(current, BandwidthPolicy):
                self._store(current.model_copy(update={"status": status}))

    # -- changing the cluster ------------------------------------------------------------

    def apply(self, obj: ClusterObject) -> ClusterObject:
        """Create or replace an object, as ``kubectl apply`` would."""
        with self._lock:
            return self._store(obj)

    def remove(self, obj: ClusterObject) -> None:
        with self._lock:
            removed = self._objects.pop(_key(obj), None)
            if removed is not None and self._sink is not None:
                self._sink.delete(removed)

    def get(self, kind: type, name: str) -> ClusterObject | None:
        return self._objects.get((kind.__name__, name))

    def snapshot(self) -> ClusterSnapshot:
        snapshot = ClusterSnapshot()
        lists = _lists(snapshot)
        for obj in self._objects.values():
            lists[type(obj)].append(obj)
        return snapshot

    # -- internals -----------------------------------------------------------------------

    def _current_pod(self, pod: Pod) -> Pod:
        current = self._objects.get(_key(pod))
        if not isinstance(current, Pod) or current.metadata.uid != pod.metadata.uid:
            raise BindConflict(f"pod {pod.key} no longer exists")
        return current

    def _stamped(self, obj: ClusterObject) -> ClusterObject:
        stamped = obj.model_copy(deep=True)
        stamped.metadata.resource_version = str(next(self._versions))
        return stamped

    def _store(self, obj: ClusterObject) -> ClusterObject:
        stored = self._stamped(obj)
        self._objects[_key(stored)] = stored
        if self._sink is not None:
            self._sink.upsert(_handed(stored))
        return stored


def _handed(obj: ClusterObject) -> ClusterObject:
    """What the sink gets of ``obj``: a pod of its own, which ``ClusterState`` reduces to
    what netsched reads (``ClusterSink``), while this cluster keeps the pod as applied."""
    return obj.model_copy(deep=True) if isinstance(obj, Pod) else obj


def _lists(snapshot: ClusterSnapshot) -> dict[type, list]:
    return {
        Node: snapshot.nodes, NodeNetwork: snapshot.node_networks, Network: snapshot.networks,
        BandwidthPolicy: snapshot.bandwidth_policies, Pod: snapshot.pods,
        NetworkAttachmentDefinition: snapshot.definitions, ResourceClaim: snapshot.claims,
    }


def _key(obj: ClusterObject) -> tuple[str, str]:
    keyed = Pod | BandwidthPolicy | NetworkAttachmentDefinition | ResourceClaim
    name = obj.key if isinstance(obj, keyed) else obj.metadata.name
    return type(obj).__name__, name
