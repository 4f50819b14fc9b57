"""The DRA kubelet plugin of driver ``netsched.io``, served by ``netsched-cni daemon``.

A DRA driver answers the kubelet on its node over two gRPC services on unix sockets:

- ``pluginregistration.Registration`` on ``<registry>/netsched.io-reg.sock``: the
  kubelet's plugin watcher finds the socket in its ``plugins_registry`` directory, asks
  ``GetInfo`` (type ``DRAPlugin``, the driver's name, the endpoint and the services
  served there) and reports the outcome with ``NotifyRegistrationStatus``;
- ``k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin`` on that endpoint: the kubelet calls
  ``NodePrepareResources`` for a pod's claims before it creates the pod's sandbox (so
  before the CNI ADD), and ``NodeUnprepareResources`` once no pod on the node uses them.

Prepare reads each claim, checks that kube-scheduler's allocation on netsched's devices
is enforceable here (this node's pool, a local interface, rates netsched can shape) and
keeps what the CNI ADD needs in the state directory; the ADD does the shaping, because
only it has the pod's network namespace (docs/dra.md, "On the node"). A claim that fails
a check gets an error naming the claim, the field and the value: the kubelet does not
start the pod and asks again later.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from pydantic import ValidationError

from cni.kubelet_api import (
    dra_pb2,
    dra_pb2_grpc,
    pluginregistration_pb2,
    pluginregistration_pb2_grpc,
)
from cni.config import KUBELET_PLUGIN_DIR, KUBELET_REGISTRY_DIR
from cni.state import PreparedClaim, PreparedDevice, StateDir
from contract.dra import DRIVER, EGRESS, INGRESS, ResourceClaim, capacity_bps, interface_of_device
from contract.quantity import QuantityError

log = logging.getLogger("netsched.cni.kubelet_plugin")

PLUGIN_TYPE = "DRAPlugin"
"""``PluginInfo.type`` of a DRA driver (the kubelet's ``pluginregistration.DRAPlugin``)."""
SUPPORTED_SERVICES = ("v1.DRAPlugin",)
"""``PluginInfo.supported_versions``: for DRA, the services served at the endpoint as
"<last part of the proto package>.<service>"; the v1.36 kubelet picks the first it knows
of ``v1.DRAPlugin`` and ``v1beta1.DRAPlugin`` and refuses a plugin that lists neither."""
REGISTRATION_SOCKET = f"{DRIVER}-reg.sock"
DRA_SOCKET = "dra.sock"
WORKERS = 4


class ClaimRefused(Exception):
    """A claim netsched cannot prepare on this node; the message is the kubelet's error."""


def _rate(quantity: str | None, field: str) -> int:
    """Bits/s of one consumed capacity; absent or zero (what kube-scheduler consumes of a
    capacity the claim did not ask for) is not shaped."""
    try:
        return capacity_bps(quantity)
    except QuantityError as exc:
        raise ClaimRefused(f"{field}: {exc}") from exc


def prepare(claim: ResourceClaim, node: str, interfaces: Iterable[str]) -> PreparedClaim:
    """What the CNI needs of ``claim`` on ``node``, whose links are ``interfaces``.

    Raises :class:`ClaimRefused` naming the field and value that netsched cannot enforce.
    """
    allocation = claim.status.allocation
    if allocation is None:
        raise ClaimRefused("status.allocation: missing (the claim is not allocated)")
    local = list(interfaces)
    devices = []
    for position, result in enumerate(allocation.devices.results):
        if result.driver != DRIVER:
            continue  # another driver's device in the same claim: its own plugin prepares it
        field = f"status.allocation.devices.results[{position}]"
        if result.pool != node:
            raise ClaimRefused(f"{field}.pool: {result.pool!r} is not this node {node!r} "
                               "(netsched's pool of a node is the node's name)")
        interface = interface_of_device(result.device, local)
        if interface is None:
            raise ClaimRefused(f"{field}.device: {result.device!r} is no interface of node "
                               f"{node!r} (it has {', '.join(sorted(local))})")
        if result.consumed_capacity is None:
            raise ClaimRefused(f"{field}.consumedCapacity: missing: netsched shapes the "
                               "capacity kube-scheduler consumed on a shared device")
        consumed = result.consumed_capacity
        devices.append(PreparedDevice(
            request=result.request, pool=result.pool, device=result.device, interface=interface,
            share_id=result.share_id,
            ingress=_rate(consumed.get(INGRESS), f"{field}.consumedCapacity.{INGRESS}"),
            egress=_rate(consumed.get(EGRESS), f"{field}.consumedCapacity.{EGRESS}")))
    if not devices:
        raise ClaimRefused(f"status.allocation.devices.results: no device of driver {DRIVER}")
    meta = claim.metadata
    return PreparedClaim(namespace=meta.namespace or "", name=meta.name, uid=meta.uid or "",
                         devices=devices)


ReadClaim = Callable[[str, str], ResourceClaim]
"""(namespace, name) -> the claim; raises ``kubernetes_access.ApiFailure``."""


@dataclass(frozen=True)
class KubeletPlugin:
    """Prepare and unprepare, over the state directory the CNI ADD reads."""

    node: str
    state: StateDir
    read_claim: ReadClaim
    local_interfaces: Callable[[], Sequence[str]]

    def prepare_one(self, namespace: str, name: str, uid: str) -> PreparedClaim:
        from kubernetes_access import ApiFailure, NotFound

        where = f"ResourceClaim {namespace}/{name}"
        try:
            claim = self.read_claim(namespace, name)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ClaimRefused(f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']} "
                               f"(value {first.get('input')!r})") from exc
        except NotFound as exc:
            raise ClaimRefused(f"{where}: not found (API answered {exc.status})") from exc
        except ApiFailure as exc:
            said = f"API answered {exc.status}" if exc.status else "API unreachable"
            raise ClaimRefused(f"{where}: cannot be read ({said}): {exc.message}") from exc
        if claim.metadata.uid != uid:
            raise ClaimRefused(f"{where}: metadata.uid: {claim.metadata.uid!r} is not the "
                               f"claim the kubelet prepares ({uid!r}): it was replaced")
        try:
            prepared = prepare(claim, self.node, self.local_interfaces())
        except ClaimRefused as exc:
            raise ClaimRefused(f"{where}: {exc}") from exc
        self.state.save_claim(prepared)
        return prepared

    def prepare_claims(self, request: dra_pb2.NodePrepareResourcesRequest
                       ) -> dra_pb2.NodePrepareResourcesResponse:
        response = dra_pb2.NodePrepareResourcesResponse()
        for claim in request.claims:
            answer = response.claims[claim.uid]
            try:
                prepared = self.prepare_one(claim.namespace, claim.name, claim.uid)
            except ClaimRefused as exc:
                log.warning("NodePrepareResources: %s", exc)
                answer.error = str(exc)
                continue
            for device in prepared.devices:
                answer.devices.add(request_names=[device.request], pool_name=device.pool,
                                   device_name=device.device)
            log.info("prepared ResourceClaim %s/%s: %s", claim.namespace, claim.name, ", ".join(
                f"{d.interface} ingress {d.ingress} egress {d.egress}" for d in prepared.devices))
        return response

    def unprepare_claims(self, request: dra_pb2.NodeUnprepareResourcesRequest
                         ) -> dra_pb2.NodeUnprepareResourcesResponse:
        response = dra_pb2.NodeUnprepareResourcesResponse()
        for claim in request.claims:
            self.state.forget_claim(claim.namespace, claim.name, claim.uid)
            response.claims[claim.uid].SetInParent()  # every claim gets an entry, even empty
            log.info("unprepared ResourceClaim %s/%s", claim.namespace, claim.name)
        return response


class _DRAPlugin(dra_pb2_grpc.DRAPluginServicer):
    def __init__(self, plugin: KubeletPlugin) -> None:
        self.plugin = plugin

    def NodePrepareResources(self, request, context):  # noqa: N802 - the service's names
        return self.plugin.prepare_claims(request)

    def NodeUnprepareResources(self, request, context):  # noqa: N802
        return self.plugin.unprepare_claims(request)


class _Registration(pluginregistration_pb2_grpc.RegistrationServicer):
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def GetInfo(self, request, context):  # noqa: N802
        return pluginregistration_pb2.PluginInfo(
            type=PLUGIN_TYPE, name=DRIVER, endpoint=self.endpoint,
            supported_versions=list(SUPPORTED_SERVICES))

    def NotifyRegistrationStatus(self, request, context):  # noqa: N802
        if request.plugin_registered:
            log.info("the kubelet registered DRA driver %s", DRIVER)
        else:
            log.error("the kubelet refused DRA driver %s: %s", DRIVER, request.error)
        return pluginregistration_pb2.RegistrationStatusResponse()


def _bind(server: grpc.Server, path: Path) -> None:
    """Listen on ``path`` (0600: only root, the kubelet, may call); a stale socket goes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            path.unlink()
    except FileNotFoundError:
        pass
    umask = os.umask(0o177)
    try:
        server.add_insecure_port(f"unix://{path}")
        server.start()
    finally:
        os.umask(umask)


@dataclass
class Serving:
    """The two servers while they run; :meth:`stop` takes both away, sockets included."""

    registration: grpc.Server
    dra: grpc.Server
    sockets: tuple[Path, Path]

    def stop(self) -> None:
        # Registration first: the kubelet deregisters the driver when its socket goes.
        for server, path in zip((self.registration, self.dra), self.sockets, strict=True):
            server.stop(grace=2).wait()
            path.unlink(missing_ok=True)


def serve(plugin: KubeletPlugin, registry_dir: str = KUBELET_REGISTRY_DIR,
          plugin_dir: str = KUBELET_PLUGIN_DIR) -> Serving:
    """Start the DRA service, then announce it: the kubelet calls GetInfo as soon as the
    registration socket appears, and dials the endpoint right after."""
    endpoint = Path(plugin_dir) / DRA_SOCKET
    registration_socket = Path(registry_dir) / REGISTRATION_SOCKET
    dra = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS,
                                                 thread_name_prefix="dra"))
    dra_pb2_grpc.add_DRAPluginServicer_to_server(_DRAPlugin(plugin), dra)
    _bind(dra, endpoint)
    registration = grpc.server(futures.ThreadPoolExecutor(max_workers=1,
                                                          thread_name_prefix="registration"))
    pluginregistration_pb2_grpc.add_RegistrationServicer_to_server(
        _Registration(str(endpoint)), registration)
    try:
        _bind(registration, registration_socket)
    except BaseException:
        dra.stop(grace=None)
        endpoint.unlink(missing_ok=True)
        raise
    log.info("DRA kubelet plugin %s: registration %s, endpoint %s", DRIVER,
             registration_socket, endpoint)
    return Serving(registration, dra, (registration_socket, endpoint))


def node_interfaces() -> list[str]:
    """The names of this node's links (the daemon runs in the node's network namespace)."""
    from cni.netns import host_netlink

    with host_netlink() as host:
        return [link.get_attr("IFLA_IFNAME") for link in host.get_links()]
