"""The CustomResourceDefinitions, generated from the pydantic models.

``python -m netsched.crds > deploy/base/crds.yaml`` writes them; a test checks the
committed file equals the output, so the models stay the one source of each schema.

Kubernetes wants *structural* OpenAPI v3 schemas: a ``type`` on every node, no
``$ref``, and no ``anyOf`` that carries types. The converter therefore inlines
references, turns ``X | None`` into ``nullable: true``, keeps bounds and enums, and
replaces pydantic's address formats with anchored patterns (the API server checks
``pattern`` with Go's RE2, so the patterns use only what both RE2 and Python's ``re``
understand). Titles and defaults are dropped: defaults stay with the models, which
fill them in when they read an object.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from contract.group import BANDWIDTH_POLICY, GROUP, NETWORK, NODE_NETWORK, VERSION, Kind
from contract.objects import BandwidthPolicy, Network, NodeNetwork
from contract.wire import NetworkMode

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9a-fA-F]{1,4}"
IPV6 = (
    "(?:"
    rf"(?:{_H}:){{7}}{_H}"
    rf"|(?:{_H}:){{1,7}}:"
    rf"|(?:{_H}:){{1,6}}:{_H}"
    rf"|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
    rf"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}"
    rf"|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}"
    rf"|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
    rf"|{_H}:(?::{_H}){{1,6}}"
    rf"|:(?:(?::{_H}){{1,7}}|:)"
    rf"|(?:{_H}:){{6}}{IPV4}"
    rf"|::(?:ffff(?::0{{1,4}})?:)?{IPV4}"
    rf"|(?:{_H}:){{1,4}}:{IPV4}"
    ")"
)
IPV4_PREFIX = r"/(?:3[0-2]|[12]?[0-9])"
IPV6_PREFIX = r"/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])"

FORMAT_PATTERNS = {
    "ipv4": IPV4,
    "ipv6": IPV6,
    "ipv4network": IPV4 + IPV4_PREFIX,
    "ipv6network": IPV6 + IPV6_PREFIX,
}
"""pydantic's address formats as regular expressions (unanchored alternatives)."""
KEPT_FORMATS = {"date-time"}
"""Formats the API server itself validates, kept as they are."""
KEPT_KEYS = ("description", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "required")
"""``pattern`` is kept as the model writes it: models use only what RE2 and ``re`` share."""

SEGMENT_FIELD = {NetworkMode.VLAN: "vlan", NetworkMode.VXLAN: "vni"}
"""The field each mode requires (``NetworkSpec._segment_matches_mode``): the one rule across
fields that a JSON schema of the model cannot carry, so it is added here as ``anyOf``."""


class SchemaError(ValueError):
    """The model uses a construct this converter cannot express structurally."""


def structural(schema: dict[str, Any], defs: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A pydantic JSON schema node as a structural OpenAPI v3 node."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return {**structural(target, defs, where), **structural_extras(rest)}
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        nullable = len(branches) < len(schema["anyOf"])
        if len(branches) == 1:
            result = structural(branches[0], defs, where)
        else:
            result = _string_union(branches, where)
        result.update(structural_extras(schema))
        if nullable:
            result["nullable"] = True
        return result
    kind = schema.get("type")
    if kind is None:
        raise SchemaError(f"{where or '<root>'}: no type in {schema}")
    result: dict[str, Any] = {"type": kind}
    result.update(structural_extras(schema))
    fmt = schema.get("format")
    if fmt in FORMAT_PATTERNS:
        result["pattern"] = f"^{FORMAT_PATTERNS[fmt]}$"
    elif fmt in KEPT_FORMATS:
        result["format"] = fmt
    elif fmt is not None:
        raise SchemaError(f"{where}: format {fmt!r} has no pattern")
    if kind == "object":
        properties = schema.get("properties") or {}
        if properties:
            result["properties"] = {
                name: structural(sub, defs, f"{where}.{name}".lstrip("."))
                for name, sub in properties.items()
            }
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            result["additionalProperties"] = structural(extra, defs, f"{where}.*")
    if kind == "array":
        result["items"] = structural(schema["items"], defs, f"{where}[]")
    return result


def structural_extras(schema: dict[str, Any]) -> dict[str, Any]:
    return {key: schema[key] for key in KEPT_KEYS if key in schema}


def _string_union(branches: list[dict[str, Any]], where: str) -> dict[str, Any]:
    """``IPv4Address | IPv6Address`` and the like: one string matching either pattern."""
    formats = [b.get("format") for b in branches]
    if any(b.get("type") != "string" for b in branches) or not all(
        f in FORMAT_PATTERNS for f in formats
    ):
        raise SchemaError(f"{where}: cannot express the union {branches}")
    return {
        "type": "string",
        "pattern": "^(?:" + "|".join(FORMAT_PATTERNS[f] for f in formats) + ")$",
    }


def object_schema(model: type, description: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of a model: its spec/status, with the standard envelope."""
    source = model.model_json_schema(by_alias=True)
    defs = source.get("$defs", {})
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
    }
    required = []
    for name in ("spec", "status"):
        if name in source["properties"]:
            properties[name] = structural(source["properties"][name], defs, name)
            if name in source.get("required", []):
                required.append(name)
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "properties": properties,
    }
    if required:
        schema["required"] = required
    return schema


def network_schema() -> dict[str, Any]:
    schema = object_schema(
        Network, "A network pods can attach to: a VLAN, a VXLAN segment or macvlan L2."
    )
    schema["properties"]["spec"]["anyOf"] = [
        {
            "properties": {"mode": {"enum": [mode.value]}},
            **({"required": [SEGMENT_FIELD[mode]]} if mode in SEGMENT_FIELD else {}),
        }
        for mode in NetworkMode
    ]
    return schema


def node_network_schema() -> dict[str, Any]:
    return object_schema(
        NodeNetwork,
        "One node's interfaces, speeds, VLANs and observed load, written by netsched reporter.",
    )


def bandwidth_policy_schema() -> dict[str, Any]:
    return object_schema(
        BandwidthPolicy,
        "A namespace's bandwidth defaults, per-pod maximum and totals; netsched writes used/hard.",
    )


def definition(
    kind: Kind,
    schema: dict[str, Any],
    *,
    status: bool,
    columns: list[dict[str, Any]],
    short_names: list[str] | None = None,
) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": columns,
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "netsched"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if kind.namespaced else "Cluster",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                **({"shortNames": short_names} if short_names else {}),
                "categories": ["netsched"],
            },
            "versions": [version],
        },
    }


def definitions() -> list[dict[str, Any]]:
    return [
        definition(
            NODE_NETWORK,
            node_network_schema(),
            status=True,
            columns=[
                {"name": "Zone", "type": "string", "jsonPath": ".status.zone"},
                {"name": "Switch", "type": "string", "jsonPath": ".status.switch"},
                {"name": "Heartbeat", "type": "date", "jsonPath": ".status.heartbeatTime"},
            ],
        ),
        definition(
            NETWORK,
            network_schema(),
            status=False,
            columns=[
                {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                {"name": "VLAN", "type": "integer", "jsonPath": ".spec.vlan"},
                {"name": "VNI", "type": "integer", "jsonPath": ".spec.vni"},
                {"name": "Subnet", "type": "string", "jsonPath": ".spec.subnet"},
            ],
        ),
        definition(
            BANDWIDTH_POLICY,
            bandwidth_policy_schema(),
            status=True,
            short_names=["bwp"],
            # As `kubectl get resourcequota` shows usage: used and hard side by side.
            columns=[
                {"name": "Egress Used", "type": "string", "jsonPath": ".status.used.egress"},
                {"name": "Egress Hard", "type": "string", "jsonPath": ".status.hard.egress"},
                {"name": "Ingress Used", "type": "string", "jsonPath": ".status.used.ingress"},
                {"name": "Ingress Hard", "type": "string", "jsonPath": ".status.hard.ingress"},
                {"name": "Default Egress", "type": "string", "jsonPath": ".spec.default.egress"},
                {"name": "Default Ingress", "type": "string", "jsonPath": ".spec.default.ingress"},
                {"name": "Max Egress", "type": "string", "jsonPath": ".spec.max.egress", "priority": 1},
                {"name": "Max Ingress", "type": "string", "jsonPath": ".spec.max.ingress", "priority": 1},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
        ),
    ]


HEADER = (
    "# netsched CustomResourceDefinitions, generated from contract/objects.py by\n"
    "#   python -m netsched.crds > deploy/base/crds.yaml\n"
    "# Do not edit by hand: tests/kubernetes/test_crds.py checks this file equals the output.\n"
)


def render() -> str:
    return HEADER + yaml.safe_dump_all(
        definitions(), sort_keys=False, width=100, explicit_start=True
    )


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
