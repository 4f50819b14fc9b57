"""For the node-side DRA tests: allocated claims and the pods that use them, as a v1.36 API
server holds them, and the kubelet's side of the DRA kubelet plugin protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from cni.kubelet_api import dra_pb2, dra_pb2_grpc, pluginregistration_pb2, pluginregistration_pb2_grpc
from contract.dra import DRIVER
from tests.dra.ledger_objects import allocation, claim_object

CLAIMS = "/apis/resource.k8s.io/v1/namespaces/{namespace}/resourceclaims"
PODS = "/api/v1/namespaces/{namespace}/pods"


def allocated_claim(namespace: str, name: str, *, node: str, device: str,
                    consumed: dict[str, str] | None, pod: str = "web-1",
                    driver: str = DRIVER) -> dict[str, Any]:
    """A claim kube-scheduler allocated on ``node``'s ``device`` for ``pod``
    (``tests/dra/ledger_objects``), its result's ``consumedCapacity`` exactly ``consumed``
    (None: none written) and its ``driver`` as given."""
    asked = {direction: (consumed or {}).get(direction, "0") for direction in ("egress", "ingress")}
    claim = claim_object(name, namespace=namespace, **asked)
    claim["status"] = allocation(node, device, **asked, consumers=[
        {"resource": "pods", "name": pod, "uid": f"uid-{pod}"}])
    (result,) = claim["status"]["allocation"]["devices"]["results"]
    result["driver"] = driver
    if consumed is None:
        del result["consumedCapacity"]
    else:
        result["consumedCapacity"] = dict(consumed)
    return claim


def pod_with_claims(namespace: str, name: str, claims: dict[str, str], *,
                    node: str = "node-a-1", annotations: dict[str, str] | None = None,
                    from_template: dict[str, str] | None = None,
                    scheduler: str = "default-scheduler") -> dict[str, Any]:
    """A bound pod using ``claims`` ({pod's name for it: ResourceClaim name}) directly, and
    ``from_template`` ({pod's name for it: claim made from its template}): the latter only
    in ``status.resourceClaimStatuses``, where the resource claim controller writes them."""
    templates = from_template or {}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                     "annotations": annotations or {}},
        "spec": {
            "nodeName": node, "schedulerName": scheduler,
            "containers": [{"name": "app", "image": "busybox",
                            "resources": {"claims": [{"name": n} for n in {**claims, **templates}]}}],
            "resourceClaims": [{"name": n, "resourceClaimName": c} for n, c in claims.items()]
            + [{"name": n, "resourceClaimTemplateName": f"{n}-template"} for n in templates],
        },
        "status": {"phase": "Pending", "resourceClaimStatuses": [
            {"name": n, "resourceClaimName": c} for n, c in templates.items()]},
    }


KUBELET_SERVICES = ("v1.DRAPlugin", "v1beta1.DRAPlugin")
"""What the v1.36 kubelet can call, newest first (its ``servicesSupportedByKubelet``)."""


@dataclass
class Kubelet:
    """The kubelet's side: its plugin watcher registers a driver from a socket in the
    ``plugins_registry`` directory (GetInfo, checks, NotifyRegistrationStatus), and its DRA
    manager then calls the endpoint the plugin gave, on the service chosen at registration."""

    registry: Path
    endpoint: str = ""
    service: str = ""

    def register(self) -> pluginregistration_pb2.PluginInfo:
        """As the plugin watcher and the DRA handler do: a ``.``-file is skipped; the type
        must be DRAPlugin; the service is the first the plugin lists that the kubelet knows."""
        (socket,) = [p for p in self.registry.iterdir() if not p.name.startswith(".")]
        with grpc.insecure_channel(f"unix://{socket}") as channel:
            registration = pluginregistration_pb2_grpc.RegistrationStub(channel)
            info = registration.GetInfo(pluginregistration_pb2.InfoRequest(), timeout=10)
            chosen = next((s for s in info.supported_versions if s in KUBELET_SERVICES), "")
            error = "" if info.type == "DRAPlugin" and chosen else (
                f"type {info.type!r}, services {list(info.supported_versions)}")
            registration.NotifyRegistrationStatus(pluginregistration_pb2.RegistrationStatus(
                plugin_registered=not error, error=error), timeout=10)
        assert not error, error
        self.endpoint, self.service = info.endpoint or str(socket), chosen
        return info

    def _call(self, method: str, request: Any) -> Any:
        assert self.service == "v1.DRAPlugin", "these tests speak the v1 service"
        with grpc.insecure_channel(f"unix://{self.endpoint}") as channel:
            return getattr(dra_pb2_grpc.DRAPluginStub(channel), method)(request, timeout=45)

    def prepare(self, *claims: dict[str, Any]) -> dra_pb2.NodePrepareResourcesResponse:
        """NodePrepareResources for stored claims (their namespace, uid and name); the
        kubelet treats a claim missing from the answer as an error, so every one is there."""
        request = dra_pb2.NodePrepareResourcesRequest(claims=[_claim(c) for c in claims])
        response = self._call("NodePrepareResources", request)
        assert set(response.claims) == {c.uid for c in request.claims}
        return response

    def unprepare(self, *claims: dict[str, Any]) -> dra_pb2.NodeUnprepareResourcesResponse:
        request = dra_pb2.NodeUnprepareResourcesRequest(claims=[_claim(c) for c in claims])
        response = self._call("NodeUnprepareResources", request)
        assert set(response.claims) == {c.uid for c in request.claims}
        return response


def _claim(stored: dict[str, Any]) -> dra_pb2.Claim:
    meta = stored["metadata"]
    return dra_pb2.Claim(namespace=meta["namespace"], uid=meta["uid"], name=meta["name"])
