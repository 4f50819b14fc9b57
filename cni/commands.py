"""The CNI verbs ADD, DEL, CHECK, STATUS and GC over the shared helpers (VERSION: :mod:`cni.versions`).

Each verb is a small function from the validated environment and NetConf to a result
(or None); :mod:`cni.main` turns that into stdout and an exit code.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyroute2.iproute.linux import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cni import podlinks, segments, shaping
from cni.config import (
    Environment,
    NetConf,
    Result,
    ResultInterface,
    parse_attachments,
)
from cni.errors import CNIError, ErrorCode
from cni.kube import fetch_pod, pod_identity, reservation_of
from cni.netns import (
    NamespaceGone,
    NotANamespace,
    host_netlink,
    is_own_namespace,
    netlink_in,
    open_netns,
    rtnl_in,
)
from cni.rtnl import Rtnl
from cni.state import AttachedInterface, Record, StateDir
from cni.validate import check_rate, validate_attachments, validate_network_name
from cni.versions import SUPPORTED_VERSIONS
from contract.annotations import RESERVATION
from contract.objects import Pod
from contract.reservation import AttachmentReservation


@dataclass(frozen=True)
class Limits:
    """Rates (bits/s, 0 = unshaped) and bursts (bits, 0 = default) of one pod interface."""

    ingress_rate: int = 0
    ingress_burst: int = 0
    egress_rate: int = 0
    egress_burst: int = 0

    @property
    def shaped(self) -> bool:
        return bool(self.ingress_rate or self.egress_rate)

    def buckets(self, mtu: int, max_queue_ms: float
                ) -> tuple[shaping.TokenBucket | None, shaping.TokenBucket | None]:
        """(ingress, egress) token buckets for an interface of ``mtu``."""
        ingress = (shaping.plan_bucket(self.ingress_rate, self.ingress_burst, max_queue_ms, mtu)
                   if self.ingress_rate else None)
        egress = (shaping.plan_bucket(self.egress_rate, self.egress_burst, max_queue_ms, mtu)
                  if self.egress_rate else None)
        return ingress, egress


@dataclass(frozen=True)
class Desired:
    """What the pod should end up with: limits per pod interface, and the attachments."""

    limits: dict[str, Limits]
    attachments: list[AttachmentReservation]


@contextmanager
def step(what: str) -> Iterator[None]:
    """Turn a netlink failure into a CNI error that says which step failed."""
    try:
        yield
    except NetlinkError as exc:
        raise CNIError(ErrorCode.NETLINK_FAILURE, f"{what}: {os.strerror(exc.code)}",
                       str(exc)) from exc


def require_version(conf: NetConf, verb: str, minimum: str) -> None:
    if SUPPORTED_VERSIONS.index(conf.cni_version) < SUPPORTED_VERSIONS.index(minimum):
        raise CNIError(ErrorCode.INCOMPATIBLE_VERSION,
                       f"cniVersion {conf.cni_version} does not allow {verb}",
                       f"{verb} needs cniVersion {minimum} or later")


def require_prev_result(conf: NetConf) -> Result:
    if conf.prev_result is None:
        raise CNIError(ErrorCode.INVALID_CONFIG, "prevResult: missing; netsched-cni is a chained "
                       "plugin and runs after a main plugin such as bridge")
    return conf.prev_result


def desired_state(env: Environment, conf: NetConf) -> Desired:
    """Limits and attachments from the reservation annotation, else from the pod's prepared
    ResourceClaims (primary) and the config (attachments), else from the config alone."""
    validate_network_name(conf.name)
    runtime = conf.runtime_config.bandwidth
    bursts = (runtime.ingress_burst, runtime.egress_burst) if runtime else (0, 0)
    reservation = claimed = None
    if conf.kubeconfig:
        pod = fetch_pod(conf.kubeconfig, *pod_identity(env.args))
        reservation = reservation_of(pod, conf.node_name or os.environ.get("NODE_NAME") or None,
                                     conf.scheduler_names)
        claimed = claimed_limits(pod, StateDir(conf.state_dir), bursts)
        if reservation is not None and claimed is not None:
            meta = pod.get("metadata") or {}
            raise CNIError(ErrorCode.RESERVATION_REJECTED,
                           f"pod {meta.get('namespace')}/{meta.get('name')} has both a "
                           f"{RESERVATION} annotation and netsched ResourceClaims: netsched "
                           "enforces one or the other, never both",
                           "the extender refuses such a pod too (docs/dra.md)")
    if reservation is not None:
        delegated = [att for att in reservation.attachments if att.definition is not None]
        made_by_multus = next((att for att in delegated if att.interface == env.ifname), None)
        if made_by_multus is not None:
            # Chained in a NetworkAttachmentDefinition's conflist, which Multus ran for this
            # interface: shape it to its reservation; the pod's other interfaces are not ours here.
            for direction in ("ingress", "egress"):
                check_rate(f"reservation.attachments[{env.ifname}].{direction}",
                           getattr(made_by_multus, direction))
            return Desired({env.ifname: Limits(made_by_multus.ingress, bursts[0],
                                               made_by_multus.egress, bursts[1])}, [])
        primary = Limits(reservation.primary.ingress, bursts[0], reservation.primary.egress, bursts[1])
        # Attachments of a definition are Multus's to create, in its own delegate chains.
        attachments = [att for att in reservation.attachments if att.definition is None]
        source = "reservation.attachments"
        for direction in ("ingress", "egress"):
            check_rate(f"reservation.primary.{direction}", getattr(reservation.primary, direction))
    else:
        if claimed is not None:  # the claims' rates replace the runtime's, as a reservation's do
            primary = claimed
        elif runtime:
            primary = Limits(runtime.ingress_rate, runtime.ingress_burst, runtime.egress_rate,
                             runtime.egress_burst)
        else:
            primary = Limits()
        attachments, source = parse_attachments(conf.attachments), "attachments"
    validate_attachments(attachments, env.ifname, source)
    limits = {env.ifname: primary}
    limits.update({att.interface: Limits(att.ingress, 0, att.egress, 0) for att in attachments})
    return Desired(limits, list(attachments))


def claimed_limits(pod: dict[str, Any], state: StateDir, bursts: tuple[int, int]
                   ) -> Limits | None:
    """The primary interface's limits from the pod's ResourceClaims that the kubelet plugin
    prepared (None: it has none of netsched's). Every netsched device is an interface that
    carries pod traffic, so each allocation is bandwidth of the pod's primary interface, and
    several add up per direction (docs/dra.md, "On the node")."""
    parsed = Pod.model_validate(pod)
    namespace = parsed.metadata.effective_namespace
    prepared = [claim for name in parsed.claim_names()
                if (claim := state.prepared_claim(namespace, name)) is not None]
    if not prepared:
        return None
    ingress = sum(device.ingress for claim in prepared for device in claim.devices)
    egress = sum(device.egress for claim in prepared for device in claim.devices)
    field = f"ResourceClaims {', '.join(claim.name for claim in prepared)}"
    check_rate(f"{field}: ingress", ingress)
    check_rate(f"{field}: egress", egress)
    return Limits(ingress, bursts[0], egress, bursts[1])


def pod_namespace(env: Environment) -> int:
    try:
        netns_fd = open_netns(env.netns)
    except NotANamespace as exc:
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT,
                       f"CNI_NETNS: {env.netns!r} is not a network namespace",
                       "a file, a directory or an unmounted namespace's mount point") from exc
    except NamespaceGone as exc:
        raise CNIError(ErrorCode.UNKNOWN_CONTAINER, f"CNI_NETNS: {env.netns!r} does not exist") from exc
    refuse_node_namespace(netns_fd, env.netns)
    return netns_fd


def refuse_node_namespace(netns_fd: int, path: str) -> None:
    """A pod never shares the node's namespace: shaping it would shape the node's own links."""
    if is_own_namespace(netns_fd):
        os.close(netns_fd)
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT,
                       f"CNI_NETNS: {path!r} is the node's own network namespace",
                       "netsched-cni shapes pod namespaces only (hostNetwork pods get no CNI call)")


def cmd_add(env: Environment, conf: NetConf) -> dict[str, Any]:
    # extended in place (attachments): conf is this invocation's own parse of stdin
    result = require_prev_result(conf)
    desired = desired_state(env, conf)
    state = StateDir(conf.state_dir)
    planned = Record(
        network=conf.name, container_id=env.container_id, ifname=env.ifname, netns=env.netns,
        shaped=[name for name, limits in desired.limits.items() if limits.shaped],
        attachments=[AttachedInterface(interface=att.interface, segment=segments.segment_name(att))
                     for att in desired.attachments],
    )
    made = planned.model_copy(update={"shaped": [], "attachments": []})
    report: dict[str, Any] = {}
    described: list[dict[str, Any]] = []
    netns_fd = pod_namespace(env)
    try:
        with state.locked():
            state.save(planned)
            for attached in planned.attachments:
                if attached.segment:
                    state.hold_segment(attached.segment, planned)
            try:
                with rtnl_in(netns_fd) as pod:
                    primary = pod.link(env.ifname)
                    if primary is None:
                        raise CNIError(ErrorCode.INVALID_CONFIG,
                                       f"CNI_IFNAME: {env.ifname!r} is not in the pod's namespace",
                                       "the main plugin must create it before netsched-cni runs")
                    if desired.attachments:
                        with host_netlink() as host, netlink_in(netns_fd) as pod_links:
                            for position, att in enumerate(desired.attachments):
                                _attach(host, pod_links, netns_fd, env, att,
                                        f"attachments[{position}]", made, result, described)
                    for name, limits in desired.limits.items():
                        if limits.shaped:
                            made.shaped.append(name)
                            link = primary if name == env.ifname else pod.link(name)
                            assert link is not None, f"{name} was made by this ADD"
                            report[name] = _shape(pod, env.container_id, name, link, limits,
                                                  conf.max_queue_ms)
            except BaseException:
                _undo(made, planned, state, netns_fd)
                raise
    finally:
        os.close(netns_fd)
    body = result.render(conf.cni_version)
    if report or described:
        body["netsched"] = {"shaping": report, "attachments": described}
    return body


def _attach(host: IPRoute, pod: IPRoute, netns_fd: int, env: Environment, att: AttachmentReservation,
            field: str, made: Record, result: Result, described: list[dict[str, Any]]) -> None:
    with step(f"{field}: segment {segments.segment_name(att) or att.parent}"):
        lower = segments.ensure_segment(host, att, field)
    with step(f"{field}: macvlan {att.interface} in the pod"):
        podlinks.create_macvlan(host, lower, netns_fd, att)
    made.attachments.append(AttachedInterface(interface=att.interface,
                                              segment=segments.segment_name(att)))
    with step(f"{field}: address {att.ip} on {att.interface}"):
        index = podlinks.configure(pod, att, env.container_id)
    result.interfaces.append(ResultInterface(name=att.interface, mac=att.mac.lower(), mtu=att.mtu,
                                             sandbox=env.netns))
    # Not in ``ips``: the reference bridge's CHECK wants every address there on its own
    # interface (eth0) and would fail the whole chain. The result says where it is instead.
    described.append({"interface": att.interface, "network": att.network, "mode": str(att.mode),
                      "mac": att.mac.lower(), "ip": att.ip, "ifindex": index,
                      "segment": segments.segment_name(att)})


def _shape(pod: Rtnl, container_id: str, name: str, link: tuple[int, int], limits: Limits,
           max_queue_ms: float) -> dict[str, Any]:
    index, mtu = link
    ingress, egress = limits.buckets(mtu, max_queue_ms)
    report: dict[str, Any] = {}
    if egress is not None:
        with step(f"tbf on {name} (egress)"):
            shaping.shape_egress(pod, index, egress)
        report["egress"] = egress.describe()
    if ingress is not None:
        ifb = shaping.ifb_name(container_id, name)
        with step(f"ifb {ifb} for {name} (ingress)"):
            shaping.shape_ingress(pod, index, ifb, mtu, ingress, container_id)
        report["ingress"] = ingress.describe()
    return report


def _undo(made: Record, planned: Record, state: StateDir, netns_fd: int) -> None:
    """Remove what a failed ADD made; every planned segment hold is released."""
    try:
        _remove_from_pod(netns_fd, made)
    except NamespaceGone:
        pass
    _release_segments(planned, state)
    state.forget(planned)


def _remove_from_pod(netns_fd: int, record: Record) -> None:
    """Shaping first, then the attachments' interfaces (pyroute2 only when there are some)."""
    with rtnl_in(netns_fd) as pod:
        for name in record.shaped:
            shaping.unshape(pod, name, shaping.ifb_name(record.container_id, name))
    if record.attachments:
        with netlink_in(netns_fd) as pod_links:
            for attached in record.attachments:
                podlinks.remove(pod_links, attached.interface)


def _release_segments(record: Record, state: StateDir) -> None:
    """Drop the record's segment holds; a device nobody holds any more is removed."""
    released = [attached.segment for attached in record.attachments
                if attached.segment and state.release_segment(attached.segment, record)]
    if released:
        with host_netlink() as host:
            for device in released:
                segments.remove_segment(host, device)


def teardown(record: Record, state: StateDir, netns_path: str) -> None:
    """Undo one ADD from its record; whatever is already gone counts as removed."""
    try:
        netns_fd = open_netns(netns_path) if netns_path else None
    except NamespaceGone:  # gone, or never one: nothing of ours can be in it
        netns_fd = None
    if netns_fd is not None:
        refuse_node_namespace(netns_fd, netns_path)
        try:
            _remove_from_pod(netns_fd, record)
        except NamespaceGone:
            pass
        finally:
            os.close(netns_fd)
    _release_segments(record, state)
    state.forget(record)


def cmd_del(env: Environment, conf: NetConf) -> None:
    """Idempotent: no record, no namespace or no interfaces all mean "already deleted"."""
    validate_network_name(conf.name)
    state = StateDir(conf.state_dir)
    with state.locked():
        record = state.load(conf.name, env.container_id, env.ifname)
        if record is not None:
            with step(f"DEL {env.container_id}"):
                teardown(record, state, env.netns or record.netns)


def cmd_check(env: Environment, conf: NetConf) -> None:
    require_version(conf, "CHECK", "0.4.0")
    require_prev_result(conf)
    desired = desired_state(env, conf)
    netns_fd = pod_namespace(env)
    try:
        with rtnl_in(netns_fd) as pod:
            for name, limits in desired.limits.items():
                _check_shaping(pod, env.container_id, name, limits, conf.max_queue_ms)
        if desired.attachments:
            with host_netlink() as host, netlink_in(netns_fd) as pod_links:
                for att in desired.attachments:
                    _check_attachment(host, pod_links, env.container_id, att)
    finally:
        os.close(netns_fd)


def _mismatch(msg: str) -> CNIError:
    return CNIError(ErrorCode.CHECK_MISMATCH, msg)


def _check_shaping(pod: Rtnl, container_id: str, name: str, limits: Limits, max_queue_ms: float) -> None:
    found = pod.link(name)
    if found is None:
        raise _mismatch(f"interface {name} is missing in the pod")
    index, mtu = found
    ingress, egress = limits.buckets(mtu, max_queue_ms)
    shaping.check_bucket(pod, index, f"{name} egress", egress)
    ifb = shaping.ifb_name(container_id, name)
    ifb_found = pod.link(ifb)
    if ingress is None:
        if ifb_found is not None:
            raise _mismatch(f"{name} ingress: ifb {ifb} exists but no ingress limit is set")
        return
    if ifb_found is None:
        raise _mismatch(f"{name} ingress: ifb {ifb} is missing")
    if not shaping.has_ingress(pod, index):
        raise _mismatch(f"{name} ingress: the ingress qdisc is missing")
    shaping.check_bucket(pod, ifb_found[0], f"{name} ingress", ingress)


def _check_attachment(host: IPRoute, pod: IPRoute, container_id: str, att: AttachmentReservation) -> None:
    seen = podlinks.describe(pod, att.interface)
    if seen is None:
        raise _mismatch(f"attachment {att.interface} is missing in the pod")
    if str(seen["mac"]).lower() != att.mac.lower():
        raise _mismatch(f"attachment {att.interface}: MAC {seen['mac']}, expected {att.mac}")
    if att.mtu and seen["mtu"] != att.mtu:
        raise _mismatch(f"attachment {att.interface}: MTU {seen['mtu']}, expected {att.mtu}")
    if att.ip is not None and att.ip not in seen["addresses"]:  # type: ignore[operator]
        raise _mismatch(f"attachment {att.interface}: addresses {seen['addresses']}, "
                        f"expected {att.ip}")
    if seen["alias"] != container_id:
        raise _mismatch(f"attachment {att.interface} belongs to {seen['alias']!r}")
    device = segments.segment_name(att)
    if device is not None and segments.link_index(host, device) is None:
        raise _mismatch(f"attachment {att.interface}: segment device {device} is missing")


def cmd_gc(conf: NetConf) -> None:
    """Tear down every record of this network not in ``cni.dev/valid-attachments``."""
    require_version(conf, "GC", "1.1.0")
    validate_network_name(conf.name)
    valid = {(a.container_id, a.ifname) for a in conf.valid_attachments or []}
    state = StateDir(conf.state_dir)
    with state.locked():
        for record in state.all_records():
            if record.network == conf.name and (record.container_id, record.ifname) not in valid:
                with step(f"GC {record.container_id}"):
                    teardown(record, state, record.netns)
        with host_netlink() as host, step("GC segment devices"):
            for device in segments.orphan_segments(host):
                if state.segment_users(device) == 0:
                    segments.remove_segment(host, device)


def cmd_status(conf: NetConf) -> None:
    """Ready when the state directory is writable and the kubeconfig (if any) is readable."""
    require_version(conf, "STATUS", "1.1.0")
    try:
        StateDir(conf.state_dir).records.mkdir(parents=True, exist_ok=True)
        if not os.access(conf.state_dir, os.W_OK):
            raise OSError(errno.EACCES, "not writable")
    except OSError as exc:
        raise CNIError(ErrorCode.NOT_AVAILABLE, f"stateDir: {conf.state_dir!r} is not usable",
                       str(exc)) from exc
    if conf.kubeconfig and not os.access(conf.kubeconfig, os.R_OK):
        raise CNIError(ErrorCode.NOT_AVAILABLE, f"kubeconfig: {conf.kubeconfig!r} is not readable")
