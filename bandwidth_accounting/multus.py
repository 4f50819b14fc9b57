"""Attachments asked through Multus's ``k8s.v1.cni.cncf.io/networks`` annotation.

Both forms the Network Plumbing WG spec defines, read as Multus reads them
(``pkg/k8sclient`` ``parsePodNetworkAnnotation``):

- a comma list of ``[namespace/]name[@interface]``;
- a JSON list of network-selection elements (``name``, ``namespace``, ``interface``,
  ``ips``, ``mac``, ``default-route``, ``bandwidth`` and the keys netsched passes over).

Multus takes the JSON form when the value holds any of ``[``, ``{`` or ``"``; an element
without a namespace is in the pod's; an element without an interface gets ``net<N>``,
N its position in the list counted from 1 (Multus's delegate index, the cluster network
being 0). Each element becomes the same ``AttachmentRequirement`` ``netsched.io/networks``
produces, for the network ``namespace/name``, so placement, accounting and everything
after treat both alike. Where Multus would accept a value that cannot work (a rate of
0.5 bit/s, two attachments named ``net1``), netsched refuses it here, naming the
annotation and the element, instead of letting the pod fail on its node.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from bandwidth_accounting.requirements import (
    PRIMARY_INTERFACE,
    AttachmentRequirement,
    InvalidAnnotation,
    json_list,
    valid_interface_name,
    valid_mac,
    valid_object_name,
)
from contract import annotations
from contract.annotations import quoted
from contract.rates import rate_problem

NAME = annotations.MULTUS_NETWORKS
# Multus's own check of the comma form (a DNS-1123 label) for namespaces and names.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_CHARACTERS = 63
_BANDWIDTH_KEYS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")
_USED_KEYS = ("name", "namespace", "interface", "interfaceRequest", "ips", "mac", "default-route",
              "bandwidth")
_PASSED_KEYS = ("portMappings", "cni-args", "infiniband-guid", "deviceID")
"""Keys of the element that Multus hands to the delegate and netsched has no part in."""
_KEYS = {key.lower(): key for key in _USED_KEYS + _PASSED_KEYS}
_JSON_MARKERS = frozenset('[{"')


def multus_attachments(value: str | None, namespace: str) -> tuple[AttachmentRequirement, ...]:
    """The attachments ``value`` asks for, for a pod in ``namespace``; raises ``InvalidAnnotation``."""
    if value is None or not value.strip():
        return ()
    elements = list(_elements(value))
    if len(elements) > annotations.MAX_ATTACHMENTS:
        raise InvalidAnnotation(
            NAME, value, f"{len(elements)} networks; the limit is {annotations.MAX_ATTACHMENTS} per pod"
        )
    result = []
    interfaces = {PRIMARY_INTERFACE: "the pod's primary interface"}
    for position, element in enumerate(elements, start=1):
        attachment = _attachment(value, position, element, namespace)
        label = _label(position, attachment.network)
        if attachment.interface in interfaces:
            raise InvalidAnnotation(
                NAME, value, f"{label}: interface {attachment.interface!r} is already "
                f"{interfaces[attachment.interface]}; give one of them another \"interface\"",
            )
        interfaces[attachment.interface] = f"used by {label}"
        result.append(attachment)
    return tuple(result)


def _label(position: int, network: str) -> str:
    return f"element {position} ({network})"


def _elements(value: str) -> Iterator[dict[str, object]]:
    """The value as JSON-form elements: the comma form is turned into the same dicts."""
    if _JSON_MARKERS.intersection(value):
        parsed = json_list(NAME, value, "the JSON form must be a list of network-selection elements")
        for position, element in enumerate(parsed, start=1):
            if not isinstance(element, dict):
                raise InvalidAnnotation(
                    NAME, value, f"element {position} {quoted(element)} must be an object"
                )
            yield element
        return
    for position, item in enumerate(value.split(","), start=1):
        yield _comma_element(value, position, item.strip())


def _comma_element(value: str, position: int, item: str) -> dict[str, object]:
    """``[namespace/]name[@interface]``, checked as Multus checks it."""
    if not item:
        raise InvalidAnnotation(NAME, value, f"element {position} is empty")
    namespace, slash, rest = item.partition("/")
    if not slash:
        namespace, rest = "", item
    if "/" in rest:
        raise InvalidAnnotation(NAME, value, f"element {position} {quoted(item)} has more than one '/'")
    name, at, interface = rest.partition("@")
    if "@" in interface:
        raise InvalidAnnotation(NAME, value, f"element {position} {quoted(item)} has more than one '@'")
    element: dict[str, object] = {"name": name.strip()}
    if namespace.strip():
        element["namespace"] = namespace.strip()
    for what, text in (("namespace", namespace.strip()), ("name", name.strip())):
        if (text or what == "name") and not _is_label(text):
            raise InvalidAnnotation(
                NAME, value, f"element {position} {quoted(item)}: {what} {quoted(text)} must be "
                "lower-case letters, digits and '-', starting and ending alphanumeric (a DNS-1123 label)",
            )
    if at:
        element["interface"] = interface.strip()
    return element


def _attachment(value: str, position: int, element: dict[str, object], pod_namespace: str
                ) -> AttachmentRequirement:
    fields = _fields(value, position, element)
    name = fields.get("name")
    if not isinstance(name, str) or not valid_object_name(name):
        raise InvalidAnnotation(NAME, value, f"element {position}: name {quoted(name)} is not a "
                                "NetworkAttachmentDefinition name")
    namespace = fields.get("namespace") or pod_namespace
    if not isinstance(namespace, str) or not _is_label(namespace):
        raise InvalidAnnotation(NAME, value, f"element {position} ({quoted(name)}): namespace "
                                f"{quoted(namespace)} is not a namespace name")
    network = f"{namespace}/{name}"
    label = _label(position, network)
    interface = fields.get("interface") or fields.get("interfaceRequest") or f"net{position}"
    if not isinstance(interface, str) or not valid_interface_name(interface):
        raise InvalidAnnotation(NAME, value, f"{label}: interface {quoted(interface)} is not a valid "
                                "interface name (1-15 letters, digits, '_', '.' or '-')")
    ingress, egress = _bandwidth(value, label, fields.get("bandwidth"))
    _default_route(value, label, fields.get("default-route"))
    return AttachmentRequirement(
        network=network,
        interface=interface,
        ingress_bps=ingress,
        egress_bps=egress,
        ip=_address(value, label, fields.get("ips")),
        mac=_mac(value, label, fields.get("mac")),
    )


def _is_label(text: str) -> bool:
    """Whether ``text`` is a DNS-1123 label, as Multus checks namespaces and names."""
    return len(text) <= _LABEL_CHARACTERS and _LABEL.fullmatch(text) is not None


def _fields(value: str, position: int, element: dict[str, object]) -> dict[str, object]:
    """The element's keys matched as Go's decoder matches them (ignoring case); an unknown
    key is refused rather than ignored, so that a misspelt ``bandwith`` is not lost."""
    fields: dict[str, object] = {}
    for key, item in element.items():
        known = _KEYS.get(key.lower())
        if known is None:
            raise InvalidAnnotation(
                NAME, value, f"element {position}: unknown key {quoted(key)} (known: "
                f"{', '.join(_USED_KEYS + _PASSED_KEYS)})",
            )
        fields[known] = item
    return fields


def _bandwidth(value: str, label: str, bandwidth: object) -> tuple[int, int]:
    """(ingress, egress) bits/s of ``bandwidth`` (Multus's BandwidthEntry: Go ints, bits/s)."""
    if bandwidth is None:
        return 0, 0
    if not isinstance(bandwidth, dict):
        raise InvalidAnnotation(NAME, value, f"{label}: bandwidth must be an object with "
                                f"{', '.join(_BANDWIDTH_KEYS)}")
    folded = {key.lower(): key for key in _BANDWIDTH_KEYS}
    numbers: dict[str, int] = {}
    for key, number in bandwidth.items():
        known = folded.get(key.lower())
        if known is None:
            raise InvalidAnnotation(NAME, value, f"{label}: bandwidth key {quoted(key)} is not one of "
                                    f"{', '.join(_BANDWIDTH_KEYS)}")
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InvalidAnnotation(NAME, value, f"{label}: bandwidth.{known} {quoted(number)} must be "
                                    "a non-negative integer (bits/s, bits for a burst)")
        numbers[known] = number
    for key in ("ingressRate", "egressRate"):
        problem = rate_problem(numbers.get(key, 0))
        if problem is not None:
            raise InvalidAnnotation(NAME, value, f"{label}: bandwidth.{key} {numbers[key]} {problem}")
    return numbers.get("ingressRate", 0), numbers.get("egressRate", 0)


def _address(value: str, label: str, ips: object
             ) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    """The one static address of ``ips`` (a CIDR, or an address as Multus also accepts)."""
    if ips is None or ips == []:
        return None
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise InvalidAnnotation(NAME, value, f"{label}: ips {quoted(ips)} must be a list of addresses")
    if len(ips) > 1:
        raise InvalidAnnotation(NAME, value, f"{label}: ips {quoted(ips)}: netsched reserves one "
                                "address per attachment")
    try:
        return ipaddress.ip_interface(ips[0])
    except ValueError:
        raise InvalidAnnotation(
            NAME, value, f"{label}: ips {quoted(ips[0])} is not an IP address"
        ) from None


def _mac(value: str, label: str, mac: object) -> str | None:
    if mac is None or mac == "":
        return None
    if not isinstance(mac, str):
        raise InvalidAnnotation(NAME, value, f"{label}: mac {quoted(mac)} is not a MAC address")
    problem = valid_mac(mac.replace("-", ":"))
    if problem is not None:
        raise InvalidAnnotation(NAME, value, f"{label}: mac {quoted(mac)} {problem}")
    return mac.replace("-", ":").lower()


def _default_route(value: str, label: str, gateways: object) -> None:
    """``default-route`` is Multus's to apply; it must still be a list of addresses, as Go's
    decoder of ``[]net.IP`` demands (Multus would refuse the whole annotation)."""
    if gateways is None:
        return
    if not isinstance(gateways, list):
        raise InvalidAnnotation(NAME, value, f"{label}: default-route must be a list of gateway addresses")
    for gateway in gateways:
        try:
            ipaddress.ip_address(gateway if isinstance(gateway, str) else "")
        except ValueError:
            raise InvalidAnnotation(NAME, value, f"{label}: default-route {quoted(gateway)} is not an "
                                    "IP address") from None


__all__ = ["multus_attachments"]
