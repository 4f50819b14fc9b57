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
from typing import Any

from contract.dra import DEVICE_CLASS, DRIVER

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


def consumer(pod: dict[str, Any]) -> dict[str, Any]:
    return {"resource": "pods", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}


def allocated_claim(name: str, node: str, **rates: Any) -> dict[str, Any]:
    """A claim with its allocation (for a snapshot or a seed that keeps status)."""
    claim = claim_object(name, **{k: v for k, v in rates.items() if k in ("egress", "ingress")})
    claim["metadata"]["uid"] = str(uuid.uuid4())
    claim["metadata"]["finalizers"] = [FINALIZER]
    claim["status"] = allocation(node, **rates)
    return claim


def with_claim(pod: dict[str, Any], claim: str) -> dict[str, Any]:
    """``pod`` using the claim ``claim`` by name, as ``spec.resourceClaims[]`` does."""
    pod["spec"]["resourceClaims"] = [{"name": "bandwidth", "resourceClaimName": claim}]
    pod["spec"]["containers"][0]["resources"] = {"claims": [{"name": "bandwidth"}]}
    return pod
