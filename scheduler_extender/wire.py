"""The JSON of ``k8s.io/kube-scheduler/extender/v1``, field for field, and how bodies are read.

The Go types carry no JSON tags, so the wire names are the Go field names
(``Pod``, ``NodeNames``, ``FailedAndUnresolvableNodes``…). Pods and Nodes arrive as
full API objects; we validate the parts we read and carry the rest through
untouched (a filter reply without ``nodeCacheCapable`` must return the NodeList).

``read_body`` turns request bytes into one of these models: orjson builds the objects
(several times faster than the standard library on full Pod objects) and pydantic
validates only the fields the models declare. Anything wrong is a ``BodyRejected``
listing each bad field, FastAPI-style, never an exception that becomes a 500.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from contract.objects import Pod

M = TypeVar("M", bound=BaseModel)

MAX_ECHOED_INPUT = 200
"""Characters of a bad value quoted back in a 422 (a body can be megabytes)."""


class BodyRejected(ValueError):
    """A request body that is not the verb's JSON; ``errors`` name each bad field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"] if errors else "invalid body")
        self.errors = errors

    def detail(self) -> bytes:
        """The 422 body: ``{"detail": [{"type", "loc", "msg", "input"}]}``, as FastAPI answers."""
        return orjson.dumps({"detail": self.errors}, default=repr)


def read_body(model: type[M], raw: bytes) -> M:
    """``raw`` as ``model``, or ``BodyRejected`` naming what is wrong and where."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BodyRejected([_not_json(raw, error)]) from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BodyRejected(
            [
                {
                    "type": e["type"],
                    "loc": ["body", *e["loc"]],
                    "msg": e["msg"],
                    "input": _quoted(e.get("input")),
                }
                for e in error.errors(include_url=False, include_context=False)
            ]
        ) from None


def _not_json(raw: bytes, error: orjson.JSONDecodeError) -> dict[str, Any]:
    """JSON has no NaN or Infinity (Go never sends them), but Python's parser reads them:
    when that is what broke orjson, name the field that holds one."""
    try:
        loose = json.loads(raw)
    except (ValueError, RecursionError):
        return {"type": "json_invalid", "loc": ["body", error.pos], "msg": f"JSON decode error: {error.msg}", "input": {}}
    where = _non_finite(loose)
    return {
        "type": "finite_number",
        "loc": ["body", *(where or [])],
        "msg": "NaN and Infinity are not JSON numbers",
        "input": str(_at(loose, where or [])),
    }


def _non_finite(value: Any, path: tuple[str | int, ...] = ()) -> list[str | int] | None:
    """The path of the first NaN or ±Infinity in a parsed document (iterative: no recursion limit)."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return list(where)
        if isinstance(item, dict):
            stack.extend((v, (*where, k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, (*where, i)) for i, v in reversed(list(enumerate(item))))
    return None


def _at(value: Any, path: list[str | int]) -> Any:
    for part in path:
        value = value[part]
    return value


def _quoted(value: Any) -> Any:
    """A bad value as echoed back: scalars as they are, long text and containers cut short."""
    if isinstance(value, str):
        return value[:MAX_ECHOED_INPUT]
    if value is None or isinstance(value, bool | int | float):
        return value
    return repr(value)[:MAX_ECHOED_INPUT]


def _named_node(item: dict[str, Any]) -> dict[str, Any]:
    metadata = item.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        # pydantic turns a ValueError (not a TypeError) into an error at this item's place
        raise ValueError(f"metadata must be an object with a string name, not {_quoted(metadata)!r}")  # noqa: TRY004
    return item


NodeItem = Annotated[dict[str, Any], AfterValidator(_named_node)]
"""A Node as sent: only ``metadata.name`` is checked, the rest is echoed untouched."""


class WireType(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NodeList(WireType):
    """A core/v1 NodeList; items are kept as sent so that they can be echoed back."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    items: list[NodeItem] = Field(default_factory=list)

    def names(self) -> list[str]:
        return [item["metadata"]["name"] for item in self.items]


class ExtenderArgs(WireType):
    """Body of ``/filter`` and ``/prioritize``: exactly one of Nodes / NodeNames is non-null."""

    Pod: Pod
    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None

    def node_names(self) -> list[str]:
        if self.NodeNames is not None:
            return self.NodeNames
        return self.Nodes.names() if self.Nodes is not None else []


class ExtenderFilterResult(WireType):
    Nodes: NodeList | None = None
    NodeNames: list[str] | None = None
    FailedNodes: dict[str, str] = Field(default_factory=dict)
    FailedAndUnresolvableNodes: dict[str, str] = Field(default_factory=dict)
    Error: str = ""


MAX_EXTENDER_PRIORITY = 10
"""kube-scheduler's ``MaxExtenderPriority``: an extender scores 0..10."""


class HostPriority(WireType):
    Host: str
    Score: int = Field(ge=0, le=MAX_EXTENDER_PRIORITY)


_AFTER_HOST = tuple(b'","Score":%d},{"Host":"' % score for score in range(MAX_EXTENDER_PRIORITY + 1))


def host_priorities(names: Sequence[str], scores: Sequence[int]) -> bytes:
    """``list[HostPriority]`` as JSON, one ``{"Host", "Score"}`` per name in order.

    kube-scheduler sends hundreds of candidates. A dict per host for orjson costs twice
    this, and each is an object the cyclic collector counts. Instead orjson encodes the
    names in one call, and the encoded list is cut at its separators: inside a JSON
    string every quote is escaped, so ``","`` only ever stands between two names. Each
    name is followed by its score's piece, interleaved by slice assignment (C loops; a
    zip chained through a generator took half the call). Scores must be 0..10, as many
    as names (or ``ValueError``)."""
    if not names:
        return b"[]"
    encoded = orjson.dumps(list(names))[2:-2].split(b'","')
    pieces = encoded * 2  # the length of both; every slot is written below
    pieces[0::2] = encoded
    pieces[1::2] = [_AFTER_HOST[score] for score in scores]
    return b'[{"Host":"' + b"".join(pieces).removesuffix(b',{"Host":"') + b"]"


class ExtenderBindingArgs(WireType):
    PodName: str
    PodNamespace: str
    PodUID: str
    Node: str


class ExtenderBindingResult(WireType):
    Error: str = ""


class MetaPod(WireType):
    UID: str


class MetaVictims(WireType):
    Pods: list[MetaPod] = Field(default_factory=list)
    NumPDBViolations: int = 0


class Victims(WireType):
    """Victims as full pods (sent when the extender is not nodeCacheCapable)."""

    Pods: list[Pod] = Field(default_factory=list)
    NumPDBViolations: int = 0


class ExtenderPreemptionArgs(WireType):
    Pod: Pod
    NodeNameToVictims: dict[str, Victims] | None = None
    NodeNameToMetaVictims: dict[str, MetaVictims] | None = None

    def candidates(self) -> dict[str, list[str]]:
        """node → victim UIDs, from whichever of the two maps was sent."""
        if self.NodeNameToMetaVictims is not None:
            return {n: [p.UID for p in v.Pods] for n, v in self.NodeNameToMetaVictims.items()}
        return {
            n: [p.metadata.uid or "" for p in v.Pods] for n, v in (self.NodeNameToVictims or {}).items()
        }

    def pdb_violations(self, node: str) -> int:
        for victims in (self.NodeNameToMetaVictims or {}, self.NodeNameToVictims or {}):
            if node in victims:
                return victims[node].NumPDBViolations
        return 0


class ExtenderPreemptionResult(WireType):
    NodeNameToMetaVictims: dict[str, MetaVictims] = Field(default_factory=dict)
