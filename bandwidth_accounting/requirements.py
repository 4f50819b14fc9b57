"""What a pod asks for, parsed from its annotations.

Parsing is strict and total: every input either becomes a ``PodRequirements`` or
raises ``InvalidAnnotation`` naming the annotation and the offending value, which
the extender turns into the same refusal on every node. Nothing here knows the
cluster; checks that need it (unknown network, IP outside the subnet) live in
``bandwidth_accounting.fit``.

Pod authors choose these strings, so parsing costs time linear in them and every
value is refused above its cap (``annotations.MAX_LENGTH``) before it is read; a
refusal quotes only a short prefix of the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import orjson

from contract import annotations
from contract.annotations import quoted
from contract.quantity import QuantityError, parse_bandwidth
from contract.wire import IPAddress

PRIMARY_INTERFACE = "eth0"
# Matched with fullmatch: a "$" anchor would also accept a trailing newline.
_INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A DNS-1123 subdomain: how the API server names a Network or a NetworkAttachmentDefinition."""
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
# Kubernetes' label syntax (apimachinery validation.IsQualifiedName / IsValidLabelValue):
# an optional DNS subdomain prefix of at most 253 characters, then a name of at most 63.
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
LABEL_PREFIX_CHARACTERS = 253
LABEL_NAME_CHARACTERS = 63
_ATTACHMENT_KEYS = {"name", "interface", "ingress", "egress", "ip", "mac"}


class InvalidAnnotation(ValueError):
    """An annotation whose value netsched cannot honour; the message is for a person."""

    def __init__(self, annotation: str, value: object, reason: str) -> None:
        self.annotation = annotation
        self.value = value
        self.reason = reason
        super().__init__(f"annotation {annotation}={quoted(value)}: {reason}")


class Placement(StrEnum):
    SPREAD = "spread"
    PACK = "pack"


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One term of an equality-based label selector (``k=v``, ``k!=v``, ``k``, ``!k``)."""

    key: str
    operator: str  # "=", "!=", "exists", "!exists"
    value: str | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "=":
            return labels.get(self.key) == self.value
        if self.operator == "!=":
            return labels.get(self.key) != self.value
        if self.operator == "exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class LabelSelector:
    terms: tuple[LabelRequirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(term.matches(labels) for term in self.terms)


@dataclass(frozen=True, slots=True)
class AttachmentRequirement:
    network: str
    interface: str
    ingress_bps: int = 0
    egress_bps: int = 0
    ip: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None = None
    mac: str | None = None

    @property
    def static_address(self) -> IPAddress | None:
        return self.ip.ip if self.ip is not None else None


@dataclass(frozen=True, slots=True)
class PodRequirements:
    """Everything a pod asks of the network; the empty value asks nothing."""

    ingress_bps: int = 0
    egress_bps: int = 0
    attachments: tuple[AttachmentRequirement, ...] = ()
    placement: Placement = Placement.SPREAD
    peers: LabelSelector | None = None
    annotated: bool = field(default=False, compare=False)

    @property
    def needs_resources(self) -> bool:
        """Whether the pod reserves anything (bandwidth or attachments) on its node."""
        return bool(self.ingress_bps or self.egress_bps or self.attachments)


def parse_requirements(
    pod_annotations: Mapping[str, str] | None, namespace: str = "default"
) -> PodRequirements:
    """Read a pod's netsched annotations and Multus's; raise ``InvalidAnnotation`` on the
    first bad one. ``namespace`` is the pod's: Multus's elements without one are in it."""
    # Imported here: the Multus parser builds on this module's types.
    from bandwidth_accounting.multus import multus_attachments

    pod_annotations = pod_annotations or {}
    if not any(name in pod_annotations for name in annotations.INPUTS):
        return PodRequirements()
    ours = _attachments(_value(pod_annotations, annotations.NETWORKS))
    theirs = multus_attachments(_value(pod_annotations, annotations.MULTUS_NETWORKS), namespace)
    _refuse_overlap(pod_annotations[annotations.MULTUS_NETWORKS] if theirs else "", ours, theirs)
    if len(ours) + len(theirs) > annotations.MAX_ATTACHMENTS:
        raise InvalidAnnotation(
            annotations.MULTUS_NETWORKS, pod_annotations[annotations.MULTUS_NETWORKS],
            f"{len(ours)} networks in {annotations.NETWORKS} and {len(theirs)} here; the limit is "
            f"{annotations.MAX_ATTACHMENTS} per pod",
        )
    return PodRequirements(
        ingress_bps=_rate(pod_annotations, annotations.INGRESS_BANDWIDTH),
        egress_bps=_rate(pod_annotations, annotations.EGRESS_BANDWIDTH),
        attachments=ours + theirs,
        placement=_placement(_value(pod_annotations, annotations.PLACEMENT)),
        peers=_selector(_value(pod_annotations, annotations.PEERS)),
        annotated=True,
    )


def _refuse_overlap(
    value: str, ours: tuple[AttachmentRequirement, ...], theirs: tuple[AttachmentRequirement, ...]
) -> None:
    """One pod interface asked through both annotations, or one network by both names, would
    be made twice (by netsched-cni and by Multus): the pod must say which one makes it."""
    for mine in ours:
        for other in theirs:
            same_interface = mine.interface == other.interface
            if same_interface or mine.network == other.network.partition("/")[2]:
                what = f"interface {mine.interface!r}" if same_interface else f"network {mine.network!r}"
                raise InvalidAnnotation(
                    annotations.MULTUS_NETWORKS, value,
                    f"{what} is asked by both {annotations.NETWORKS} (network {mine.network!r}) and "
                    f"{annotations.MULTUS_NETWORKS} ({other.network}); keep "
                    f"{annotations.MULTUS_NETWORKS} when Multus attaches the pod's networks "
                    f"(netsched then places, reserves and shapes what Multus creates), or "
                    f"{annotations.NETWORKS} when netsched-cni attaches them",
                )


def primary_rates(pod_annotations: Mapping[str, str]) -> tuple[int, int]:
    """(ingress, egress) bits/s of the pod's ``eth0`` from the two ``kubernetes.io/*-bandwidth``
    annotations, which the runtime's bandwidth plugin shapes whoever placed the pod; raises
    ``InvalidAnnotation``."""
    return (
        _rate(pod_annotations, annotations.INGRESS_BANDWIDTH),
        _rate(pod_annotations, annotations.EGRESS_BANDWIDTH),
    )


def _value(pod_annotations: Mapping[str, str], name: str) -> str | None:
    """The annotation's value, refused before any parsing when it is over its cap."""
    value = pod_annotations.get(name)
    if value is not None and (reason := annotations.oversized(name, value)) is not None:
        raise InvalidAnnotation(name, value, reason)
    return value


def _rate(pod_annotations: Mapping[str, str], name: str) -> int:
    value = _value(pod_annotations, name)
    if value is None:
        return 0
    try:
        return parse_bandwidth(value)
    except QuantityError as error:
        raise InvalidAnnotation(name, value, str(error)) from None


def _placement(value: str | None) -> Placement:
    if value is None:
        return Placement.SPREAD
    try:
        return Placement(value.strip())
    except ValueError:
        raise InvalidAnnotation(
            annotations.PLACEMENT, value, "must be 'spread' or 'pack'"
        ) from None


def _selector(value: str | None) -> LabelSelector | None:
    if value is None:
        return None
    terms = []
    for raw in value.split(","):
        term = raw.strip()
        if not term:
            raise InvalidAnnotation(annotations.PEERS, value, "empty term in label selector")
        if "!=" in term:
            key, _, label = term.partition("!=")
            operator = "!="
        elif "=" in term:
            key, _, label = term.partition("==" if "==" in term else "=")
            operator = "="
        elif term.startswith("!"):
            key, label, operator = term[1:], "", "!exists"
        else:
            key, label, operator = term, "", "exists"
        key, label = key.strip(), label.strip()
        problem = _label_key_problem(key)
        if problem:
            raise InvalidAnnotation(annotations.PEERS, value, f"{quoted(key)} is not a label key: {problem}")
        if operator in ("=", "!=") and (problem := _label_value_problem(label)):
            raise InvalidAnnotation(
                annotations.PEERS, value, f"{quoted(label)} is not a label value: {problem}"
            )
        terms.append(LabelRequirement(key, operator, label if operator in ("=", "!=") else None))
    return LabelSelector(tuple(terms))


def _label_key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix or len(prefix) > LABEL_PREFIX_CHARACTERS:
            return f"the prefix must be 1-{LABEL_PREFIX_CHARACTERS} characters"
        if not _LABEL_PREFIX.fullmatch(prefix):
            return "the prefix must be a lowercase DNS subdomain"
    return _label_name_problem(name, "the name")


def _label_value_problem(label: str) -> str | None:
    return _label_name_problem(label, "it") if label else None


def _label_name_problem(name: str, what: str) -> str | None:
    if not name or len(name) > LABEL_NAME_CHARACTERS:
        return f"{what} must be 1-{LABEL_NAME_CHARACTERS} characters"
    if not _LABEL_NAME.fullmatch(name):
        return f"{what} must be letters, digits, '-', '_' or '.', starting and ending alphanumeric"
    return None


def _attachments(value: str | None) -> tuple[AttachmentRequirement, ...]:
    if value is None or not value.strip():
        return ()
    name = annotations.NETWORKS
    text = value.strip()
    if text.startswith("{"):
        raise InvalidAnnotation(name, value, "must be a JSON list of objects, or a comma list of names")
    if text.startswith("["):
        entries = json_list(name, value, "must be a JSON list")
    else:
        entries = [{"name": part.strip()} for part in text.split(",")]
    if len(entries) > annotations.MAX_ATTACHMENTS:
        raise InvalidAnnotation(
            name, value, f"{len(entries)} networks; the limit is {annotations.MAX_ATTACHMENTS} per pod"
        )

    result: list[AttachmentRequirement] = []
    networks: set[str] = set()
    used_names = {PRIMARY_INTERFACE}
    explicit = {
        entry.get("interface") for entry in entries if isinstance(entry, dict)
    } - {None}
    next_index = 1
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidAnnotation(name, value, f"entry {quoted(entry)} must be an object")
        unknown = set(entry) - _ATTACHMENT_KEYS
        if unknown:
            raise InvalidAnnotation(name, value, f"unknown key(s) {quoted(sorted(unknown))}")
        network = entry.get("name")
        if not isinstance(network, str) or not valid_object_name(network):
            raise InvalidAnnotation(name, value, f"network name {quoted(network)} is not valid")
        if network in networks:
            # Two attachments to one network would get the same address and MAC.
            raise InvalidAnnotation(name, value, f"network {network!r} is listed twice")
        networks.add(network)
        interface = entry.get("interface")
        if interface is None:
            while f"net{next_index}" in explicit or f"net{next_index}" in used_names:
                next_index += 1
            interface = f"net{next_index}"
        if not isinstance(interface, str) or not valid_interface_name(interface):
            raise InvalidAnnotation(name, value, f"interface name {quoted(interface)} is not valid")
        if interface in used_names:
            raise InvalidAnnotation(name, value, f"duplicate interface name {interface!r}")
        used_names.add(interface)
        result.append(
            AttachmentRequirement(
                network=network,
                interface=interface,
                ingress_bps=_attachment_rate(value, entry, "ingress"),
                egress_bps=_attachment_rate(value, entry, "egress"),
                ip=_attachment_ip(value, entry.get("ip")),
                mac=_attachment_mac(value, entry.get("mac")),
            )
        )
    return tuple(result)


def json_list(annotation: str, value: str, not_a_list: str) -> list[object]:
    """``value`` parsed as a JSON list; else ``InvalidAnnotation`` (``not_a_list`` says what
    it should have been)."""
    try:
        # orjson refuses nesting past 1024 levels with an error, where the
        # standard library's parser would raise RecursionError.
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidAnnotation(annotation, value, f"not valid JSON ({error.msg})") from None
    if not isinstance(parsed, list):
        raise InvalidAnnotation(annotation, value, not_a_list)
    return parsed


def _attachment_rate(value: str, entry: dict, key: str) -> int:
    rate = entry.get(key)
    if rate is None:
        return 0
    try:
        return parse_bandwidth(rate)
    except QuantityError as error:
        raise InvalidAnnotation(
            annotations.NETWORKS, value, f"{entry['name']}.{key}: {error}"
        ) from None


def _attachment_ip(
    value: str, ip: object
) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    if ip is None:
        return None
    try:
        if isinstance(ip, str):
            return ipaddress.ip_interface(ip)
    except ValueError:
        pass
    raise InvalidAnnotation(annotations.NETWORKS, value, f"ip {quoted(ip)} is not an IP address")


def _attachment_mac(value: str, mac: object) -> str | None:
    if mac is None:
        return None
    if not isinstance(mac, str):
        raise InvalidAnnotation(annotations.NETWORKS, value, f"mac {quoted(mac)} is not a MAC address")
    problem = valid_mac(mac)
    if problem is not None:
        raise InvalidAnnotation(annotations.NETWORKS, value, f"mac {quoted(mac)} {problem}")
    return mac.lower()


def valid_mac(mac: str) -> str | None:
    """Why ``mac`` cannot be a pod interface's address (``02:00:00:00:00:15`` form), or None."""
    if not _MAC.fullmatch(mac):
        return "is not a MAC address"
    if int(mac[:2], 16) & 1:
        return "is a multicast address"
    if mac.replace(":", "") == "0" * 12:
        return "is all zeros"
    return None


def valid_object_name(name: str) -> bool:
    """Whether ``name`` can name an API object such as a network (a DNS-1123 subdomain)."""
    return _OBJECT_NAME.fullmatch(name) is not None


def valid_interface_name(name: str) -> bool:
    """Whether ``name`` can name an interface in the pod (Linux's 15 characters, no oddities)."""
    return _INTERFACE_NAME.fullmatch(name) is not None
