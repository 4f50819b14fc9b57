"""ResourceClaims as kube-scheduler v1.36 leaves them, for the ledger's and the extender's tests.

Modelled on what a real kube-scheduler wrote with DRA consumable capacity (DESIGN.md, last
section): the claim is created without status; kube-scheduler's DRA plugin adds its
finalizer in a normal update, then writes ``status.allocation`` (one result per device,
with ``consumedCapacity`` and a ``shareID``, and a ``nodeSelector`` of ``matchFields``
``metadata.name``) together with ``status.reservedFor`` in one ``/status`` update, in
PreBind, before the pod's bind. Unreserve, after a failed bind, removes only the pod
from ``reservedFor``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contract import annotations as ann
from contract.dra import DEVICE_CLASS, DRIVER
from contract.group import SCHEDULER_NAME
from contract.objects import Pod
from scheduler_extender.extender import Extender
from scheduler_extender.file_source import FileClusterSource, parse_objects

CLAIMS = "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims"
FINALIZER = "resource.kubernetes.io/delete-protection"


def claim_object(name: str, egress: str = "4G", ingress: str = "1G", namespace: str = "default") -> dict[str, Any]:
    """A claim for one device of DeviceClass bandwidth.netsched.io, as a user creates it."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "devices": {
                "requests": [
                    {
                        "name": "bandwidth",
                        "exactly": {
                            "deviceClassName": DEVICE_CLASS,
                            "allocationMode": "ExactCount",
                            "count": 1,
                            "capacity": {"requests": {"egress": egress, "ingress": ingress}},
                        },
                    }
                ]
            }
        },
    }


def allocation(
    node: str, device: str = "eth0", egress: str = "4G", ingress: str = "1G", share_id: str | None = None,
    consumers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``status`` kube-scheduler writes in PreBind for a claim on ``node``'s ``device``."""
    return {
        "allocation": {
            "devices": {
                "results": [
                    {
                        "request": "bandwidth",
                        "driver": DRIVER,
                        "pool": node,
                        "device": device,
                        "shareID": share_id or str(uuid.uuid4()),
                        "consumedCapacity": {"egress": egress, "ingress": ingress},
                    }
                ]
            },
            "nodeSelector": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            },
        },
        "reservedFor": consumers or [],
    }


def allocated_claim(name: str, node: str, **rates: Any) -> dict[str, Any]:
    """A claim with its allocation (for a snapshot or a seed that keeps status)."""
    claim = claim_object(name, **{k: v for k, v in rates.items() if k in ("egress", "ingress")})
    claim["metadata"]["uid"] = str(uuid.uuid4())
    claim["metadata"]["finalizers"] = [FINALIZER]
    claim["status"] = allocation(node, **rates)
    return claim


def small_cluster(nodes: tuple[str, ...] = ("node-x", "node-y")) -> list[dict[str, Any]]:
    """Nodes with one 10G pod interface eth0 each (9G usable at the default 10 % headroom),
    reports fresh: objects for ``file_source.parse_objects``."""
    beat = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    objects: list[dict[str, Any]] = []
    for name in nodes:
        objects.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        objects.append({
            "apiVersion": "netsched.io/v1alpha1", "kind": "NodeNetwork", "metadata": {"name": name},
            "status": {"heartbeatTime": beat, "interfaces": [
                {"name": "eth0", "role": "pod", "speedMbps": 10_000, "operState": "up"},
            ]},
        })
    return objects


@pytest.fixture
def source() -> FileClusterSource:
    """``small_cluster`` in memory, as the demo holds its cluster."""
    return FileClusterSource(parse_objects(small_cluster()))


@pytest.fixture
def extender(source: FileClusterSource) -> Extender:
    """An extender following ``source``."""
    extender = Extender.build(source)
    source.start(extender.state)
    return extender


def pod(name: str, claim: str | None = None, annotations: dict[str, str] | None = None) -> Pod:
    """A pending pod of netsched's scheduler, using ResourceClaim ``claim`` by name if given."""
    spec: dict = {"schedulerName": SCHEDULER_NAME}
    if claim is not None:
        spec["resourceClaims"] = [{"name": "bandwidth", "resourceClaimName": claim}]
    return Pod.model_validate({
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "annotations": annotations or {}},
        "spec": spec,
    })


def bound_annotation_pod(extender: Extender, source: FileClusterSource, name: str, node: str, egress: str) -> None:
    source.apply(pod(name, annotations={ann.EGRESS_BANDWIDTH: egress}))
    """An annotation pod bound by netsched to ``node``: its reservation is in the ledger."""
    extender.scheduler.bind("default", name, f"uid-{name}", node)


