"""The network configuration netsched-cni reads on stdin, as pydantic models.

One model per thing the spec defines: the plugin's NetConf (with ``runtimeConfig`` and
``prevResult``), the result it extends, and the ``CNI_*`` environment. Attachments use
the reservation's own :class:`~contract.reservation.AttachmentReservation`,
whether they come from the pod's reservation annotation or straight from the config.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cni.errors import CNIError, ErrorCode, invalid_config
from cni.versions import SUPPORTED_VERSIONS
from contract.dra import DRIVER
from contract.group import SCHEDULER_NAME
from contract.rates import rate_problem
from contract.reservation import AttachmentReservation

DEFAULT_STATE_DIR = "/var/lib/cni/netsched"
KUBELET_REGISTRY_DIR = "/var/lib/kubelet/plugins_registry"
"""Where the kubelet's plugin watcher looks for registration sockets."""
KUBELET_PLUGIN_DIR = f"/var/lib/kubelet/plugins/{DRIVER}"
"""Where the DRA kubelet plugin's own socket goes. Both are here, not in
``cni.kubelet_plugin``, so that the daemon's parser does not load grpc on nodes that do
not serve DRA."""
DEFAULT_MAX_QUEUE_MS = 25.0
DEFAULT_SCHEDULER_NAMES = (SCHEDULER_NAME,)

_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# A JSON integer as Go's uint64 takes it: no string, no fraction, no bool, not negative.
Bits = Annotated[int, Field(ge=0, strict=True)]


def go_fold(key: str) -> str:
    """``key`` folded as Go's encoding/json compares keys (simple case folding, rune by rune).

    So ``IngressRate``, ``INGRESSRATE`` and ``ingreſsRate`` all find ``ingressRate``, but
    ``ingreßRate`` does not (ß has no one-letter upper case), as in Go.
    """
    return "".join(ch.upper().lower() if len(ch.upper()) == 1 else ch.lower() for ch in key)


@functools.cache
def _folded_keys(model: type[BaseModel]) -> tuple[frozenset[str], dict[str, str]]:
    """(exact keys, folded key -> key) of ``model``'s fields as they appear on the wire."""
    keys = [field.alias or name for name, field in model.model_fields.items()]
    return frozenset(keys), {go_fold(key): key for key in keys}


class SpecModel(BaseModel):
    """A spec object, read as the Go plugins and runtimes read it.

    Keys match fields as Go's decoder matches struct fields: exactly, or else ignoring
    case. containerd fills ``runtimeConfig`` from Go structs without json tags, so its
    bandwidth arrives as ``IngressRate``; CRI-O and Multus write ``ingressRate``. Fields the
    model does not know are kept, so a chain never loses another plugin's data.
    """

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _keys_as_go_matches_them(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        exact, folded = _folded_keys(cls)
        return {key if key in exact else folded.get(go_fold(key), key): value
                for key, value in data.items()}


class ResultInterface(SpecModel):
    name: str
    mac: str | None = None
    mtu: int | None = None
    sandbox: str | None = None


class ResultIP(SpecModel):
    address: str
    gateway: str | None = None
    interface: int | None = None
    version: str | None = None


class Result(SpecModel):
    """A CNI result (any supported version); ``render`` writes it in the requested version."""

    cni_version: str | None = Field(default=None, alias="cniVersion")
    interfaces: list[ResultInterface] = Field(default_factory=list)
    ips: list[ResultIP] = Field(default_factory=list)
    routes: list[dict[str, Any]] = Field(default_factory=list)
    dns: dict[str, Any] | None = None

    def render(self, cni_version: str) -> dict[str, Any]:
        """The result in the wire format of ``cni_version``: 0.x results carry ``ips[].version``."""
        body = self.model_dump(by_alias=True, exclude_none=True)
        body["cniVersion"] = cni_version
        legacy = cni_version.startswith("0.")
        for ip in body.get("ips", []):
            if legacy:
                ip["version"] = str(ipaddress.ip_interface(ip["address"]).version)
            else:
                ip.pop("version", None)
        if legacy:
            for interface in body.get("interfaces", []):
                interface.pop("mtu", None)
        return body


class Bandwidth(SpecModel):
    """The ``bandwidth`` capability, as the reference plugin reads it (bits and bits/s).

    Stricter than Go on one point: a key it does not know is refused, naming it, where the
    reference plugin ignores it. A plugin declaring the capability that shaped nothing
    because a runtime spelled a key differently would fail silently (it did, under
    containerd, before keys were matched as Go matches them).
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    ingress_rate: Bits = Field(default=0, alias="ingressRate")
    ingress_burst: Bits = Field(default=0, alias="ingressBurst")
    egress_rate: Bits = Field(default=0, alias="egressRate")
    egress_burst: Bits = Field(default=0, alias="egressBurst")

    @field_validator("ingress_rate", "egress_rate")
    @classmethod
    def _in_range(cls, bps: int) -> int:
        problem = rate_problem(bps)
        if problem is not None:
            raise PydanticCustomError("rate_range", problem)
        return bps


class RuntimeConfig(SpecModel):
    bandwidth: Bandwidth | None = None


class Attachment(SpecModel):
    """One entry of ``cni.dev/valid-attachments`` (GC input)."""

    container_id: str = Field(alias="containerID")
    ifname: str


class NetConf(SpecModel):
    """netsched-cni's plugin configuration, one element of a conflist's ``plugins``."""

    cni_version: str = Field(alias="cniVersion")
    name: str
    type: str
    runtime_config: RuntimeConfig = Field(default_factory=RuntimeConfig, alias="runtimeConfig")
    prev_result: Result | None = Field(default=None, alias="prevResult")
    kubeconfig: str | None = Field(
        default=None, description="When set, rates and attachments come from the pod's reservation."
    )
    node_name: str | None = Field(
        default=None, alias="nodeName",
        description="The node this plugin runs on, else the NODE_NAME environment variable "
        "(the DaemonSet's downward API): a reservation for another node is refused.",
    )
    scheduler_names: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULER_NAMES), alias="schedulerNames",
        description="Schedulers whose pods' reservations are enforced.",
    )
    attachments: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Attachments for runtimes without the extender, in the reservation's "
        "AttachmentReservation shape (validated by parse_attachments, only when present).",
    )
    socket: str | None = Field(
        default=None,
        description="Unix socket of the node's netsched-cni daemon: when set, the executable "
        "forwards each invocation there instead of doing the work itself (cni.daemon).",
    )
    state_dir: str = Field(default=DEFAULT_STATE_DIR, alias="stateDir")
    max_queue_ms: float = Field(default=DEFAULT_MAX_QUEUE_MS, alias="maxQueueMs", gt=0, le=1000)
    valid_attachments: list[Attachment] | None = Field(
        default=None, alias="cni.dev/valid-attachments"
    )


def parse_netconf(raw: bytes) -> NetConf:
    """Parse stdin; a bad document becomes a CNI error naming the field and its value."""
    try:
        conf = NetConf.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        if first["type"].startswith("json"):  # nesting too deep included: the parser's limit
            raise CNIError(ErrorCode.DECODE_FAILURE, "config is not valid JSON", first["msg"]) from exc
        if first["type"] == "extra_forbidden":
            raise invalid_config(field, first.get("input"), "is not a key of this object "
                                 "(keys are matched ignoring case, as Go does)") from exc
        raise invalid_config(field, first.get("input"), first["msg"]) from exc
    if conf.cni_version not in SUPPORTED_VERSIONS:
        raise CNIError(
            ErrorCode.INCOMPATIBLE_VERSION,
            f"cniVersion {conf.cni_version!r} is not supported",
            f"supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    return conf


def parse_attachments(raw: list[dict[str, Any]]) -> list[AttachmentReservation]:
    """``attachments`` from the config as the reservation's AttachmentReservation models."""
    parsed = []
    exact, folded = _folded_keys(AttachmentReservation)
    for position, item in enumerate(raw):
        unknown = [key for key in item if key not in exact and go_fold(key) not in folded]
        if unknown:  # the shared model ignores them (API objects); a config must not
            raise invalid_config(f"attachments[{position}].{unknown[0]}", item[unknown[0]],
                                 "is not a key of an attachment")
        item = {folded.get(go_fold(key), key): value for key, value in item.items()}
        try:
            parsed.append(AttachmentReservation.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise invalid_config(f"attachments[{position}].{field}", first.get("input"),
                                 first["msg"]) from exc
    return parsed


def valid_ifname(name: str) -> bool:
    """Linux interface-name rules as the CNI spec states them."""
    return (
        0 < len(name) <= 15
        and name not in (".", "..")
        and not any(c in name for c in "/:") and not any(c.isspace() for c in name)
    )


@dataclass(frozen=True)
class Environment:
    """The ``CNI_*`` variables of one invocation, validated."""

    command: str
    container_id: str
    netns: str
    ifname: str
    args: dict[str, str]

    @classmethod
    def from_environ(cls, environ: dict[str, str] | Any) -> Environment:
        command = environ.get("CNI_COMMAND", "")
        if not command:
            raise CNIError(ErrorCode.INVALID_ENVIRONMENT, "CNI_COMMAND is not set")
        container_id = environ.get("CNI_CONTAINERID", "")
        netns = environ.get("CNI_NETNS", "")
        ifname = environ.get("CNI_IFNAME", "")
        if command in ("ADD", "DEL", "CHECK"):
            if not _CONTAINER_ID.match(container_id):
                raise CNIError(ErrorCode.INVALID_ENVIRONMENT,
                               f"CNI_CONTAINERID: {container_id!r} is not a valid container id")
            if not valid_ifname(ifname):
                raise CNIError(ErrorCode.INVALID_ENVIRONMENT,
                               f"CNI_IFNAME: {ifname!r} is not a valid interface name")
            if command != "DEL" and not netns:
                raise CNIError(ErrorCode.INVALID_ENVIRONMENT, "CNI_NETNS is not set")
        return cls(command, container_id, netns, ifname, parse_cni_args(environ.get("CNI_ARGS", "")))


def parse_cni_args(text: str) -> dict[str, str]:
    """``CNI_ARGS`` is ``K=V;K=V``; pairs without ``=`` are ignored as libcni does.

    Keys are kept as sent; read them with :func:`cni_arg`.
    """
    pairs = (item.split("=", 1) for item in text.split(";") if "=" in item)
    return {key: value for key, value in pairs}


def cni_arg(args: dict[str, str], key: str) -> str:
    """The value of ``key`` in ``CNI_ARGS``, the key matched exactly or else ignoring case."""
    if key in args:
        return args[key]
    folded = go_fold(key)
    return next((value for name, value in args.items() if go_fold(name) == folded), "")
