"""``labelSelector`` and ``fieldSelector`` on lists and watches, as kube-apiserver reads them.

Label selectors follow apimachinery's ``labels.Parse``: requirements joined by commas,
each ``key``, ``!key``, ``key=value`` (or ``==``), ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``, ``key>n`` or ``key<n``; ``!=`` and ``notin`` also match objects
without the label. Field selectors follow ``fields.ParseSelector``: ``field=value`` (or
``==``) and ``field!=value``, only on the fields each resource declares selectable
(every resource: ``metadata.name`` and ``metadata.namespace``; pods and nodes a few
more, as in ``pkg/apis/core/v1/conversion.go``; resourceslices ``spec.nodeName`` and
``spec.driver``). Anything else is what the real server answers: 400 ``BadRequest``, ``field label not supported: <field>`` for a field it does
not select on, and an ``unable to parse requirement`` message for a malformed label
selector. Parsing errors carry the offending text; their wording is close to, not a
copy of, apimachinery's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_NOT_EXISTS = re.compile(rf"^!\s*({_KEY})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_COMPARE = re.compile(rf"^({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})$")
_EXISTS = re.compile(rf"^({_KEY})$")

SELECTABLE_FIELDS: dict[str, frozenset[str]] = {
    "pods": frozenset({
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    }),
    "nodes": frozenset({"spec.unschedulable"}),
    # resource.k8s.io (pkg/apis/resource/v1/conversion.go): not spec.pool.name, which only
    # client-side filters of the DRA helpers match on.
    "resourceslices": frozenset({"spec.nodeName", "spec.driver"}),
}
"""Beyond ``metadata.name`` and ``metadata.namespace``, which every resource selects on."""

Match = Callable[[dict[str, Any]], bool]


class SelectorRefused(ValueError):
    """A selector the real server answers with 400 ``BadRequest``; the message is its text."""


@dataclass(frozen=True)
class Selection:
    """The requirements of one request; an object is selected when it meets them all."""

    requirements: tuple[Match, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(requirement(obj) for requirement in self.requirements)


def selection(plural: str, query: dict[str, str]) -> Selection:
    """The request's selectors; ``SelectorRefused`` for one the real server refuses."""
    found: list[Match] = []
    labels = query.get("labelSelector", "").strip()
    if labels:
        found += [_label_requirement(part.strip()) for part in _split(labels)]
    fields = query.get("fieldSelector", "").strip()
    if fields:
        found += [_field_requirement(plural, part.strip()) for part in fields.split(",")]
    return Selection(tuple(found))


def _split(selector: str) -> list[str]:
    """Commas separate requirements, except inside the parentheses of ``in (...)``."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(selector[start:index])
            start = index + 1
    parts.append(selector[start:])
    return parts


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _label_requirement(text: str) -> Match:
    if match := _NOT_EXISTS.match(text):
        key = match[1]
        return lambda obj: key not in _labels(obj)
    if match := _SET.match(text):
        key, operator = match[1], match[2]
        values = {v.strip() for v in match[3].split(",")}
        if not all(re.fullmatch(_VALUE, v) for v in values) or values == {""}:
            raise _unparsable(text, "invalid values in the set")
        if operator == "in":
            return lambda obj: _labels(obj).get(key) in values
        return lambda obj: _labels(obj).get(key) not in values
    if match := _COMPARE.match(text):
        key, operator, value = match[1], match[2], match[3]
        if operator in ("=", "=="):
            return lambda obj: _labels(obj).get(key) == value
        if operator == "!=":
            return lambda obj: _labels(obj).get(key) != value
        if not value.isdigit():
            raise _unparsable(text, f"for '{operator}', the value must be an integer")
        bound = int(value)
        return lambda obj: _compares(_labels(obj).get(key), operator, bound)
    if match := _EXISTS.match(text):
        key = match[1]
        return lambda obj: key in _labels(obj)
    raise _unparsable(text, "expected a key, !key, key=value, key!=value or key in (...)")


def _compares(actual: str | None, operator: str, bound: int) -> bool:
    if actual is None or not actual.lstrip("-").isdigit():
        return False
    return int(actual) > bound if operator == ">" else int(actual) < bound


def _unparsable(text: str, why: str) -> SelectorRefused:
    return SelectorRefused(f"unable to parse requirement: {text!r}: {why}")


def _field_requirement(plural: str, text: str) -> Match:
    for operator in ("!=", "==", "="):
        field, found, value = text.partition(operator)
        if found:
            break
    else:
        raise SelectorRefused(f"invalid selector: '{text}'; can't understand '{text}'")
    field = field.strip()
    if field not in {"metadata.name", "metadata.namespace"} | SELECTABLE_FIELDS.get(plural, set()):
        raise SelectorRefused(f"field label not supported: {field}")
    path = field.split(".")
    if operator == "!=":
        return lambda obj: _field_value(obj, path) != value
    return lambda obj: _field_value(obj, path) == value


def _field_value(obj: dict[str, Any], path: list[str]) -> str:
    """A field as the server compares it: a string; booleans ``true``/``false``; absent ``""``."""
    current: Any = obj
    for step in path:
        current = current.get(step) if isinstance(current, dict) else None
    if isinstance(current, bool):
        return "true" if current else "false"
    return "" if current is None else str(current)
