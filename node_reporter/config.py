"""The reporter's settings: one pydantic model fed by a file, the environment and flags.

Precedence is flags > environment > file > defaults, so a DaemonSet can ship one
ConfigMap for the fleet and still override a single setting per node through env.
Every bad value is reported with the setting's name, its value and where it came from.
"""

from __future__ import annotations

import fnmatch
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from contract.objects import InterfaceRole

VlanId = Annotated[int, Field(ge=1, le=4094)]

DEFAULT_EXCLUDED_KINDS = (
    "loopback",
    "bridge",
    "openvswitch",
    "ifb",
    "dummy",
    "tun",
    "tap",
    "wireguard",
    "ipip",
    "gre",
    "gretap",
    "sit",
    "ip6tnl",
    "geneve",
    "vti",
    "nlmon",
)
"""Link kinds that never carry a node's uplink traffic themselves (the CNI's and other
agents' plumbing). A bond, VLAN, VXLAN, macvlan or a driver-backed NIC is kept."""

DEFAULT_EXCLUDED_NAMES = (
    "veth*",
    "cali*",
    "lxc*",
    "cni*",
    "flannel*",
    "docker*",
    "cilium*",
    "kube-*",
    "tunl*",
    "weave*",
    "vxlan.calico",
    "nodelocaldns",
    "virbr*",
)
"""Name patterns of pod-side veths and CNI leftovers of the common plugins."""

DEFAULT_EXCLUDED_ALIASES = ("netsched-segment*",)
"""Link aliases (``ip link set … alias``) of devices made by netsched-cni on demand: its
VXLAN devices and VLAN sub-interfaces. Their VNI or tag is still put on the uplink they
ride; the device itself must not look like a second uplink to the extender."""


class SettingsModel(BaseModel):
    """camelCase in files, snake_case in Python; unknown keys are an error (typos)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ExcludeRule(SettingsModel):
    """Which links are left out of the report. ``include`` wins over every exclusion."""

    kinds: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDED_KINDS))
    names: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDED_NAMES))
    enslaved: bool = Field(
        default=True,
        description="Leave out bridge ports and bond members: their master is reported.",
    )
    aliases: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDED_ALIASES))
    include: list[str] = Field(default_factory=list, description="Name patterns always reported.")

    def excludes(self, name: str, kind: str, has_master: bool, alias: str | None = None) -> bool:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.include):
            return False
        return (
            kind in self.kinds
            or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.names)
            or (self.enslaved and has_master)
            or (alias is not None and any(fnmatch.fnmatchcase(alias, p) for p in self.aliases))
        )


class RoleRule(SettingsModel):
    """``interface`` (a name pattern) and/or ``vlan`` (a carried tag) → ``role``."""

    interface: str | None = None
    vlan: VlanId | None = None
    role: InterfaceRole

    @model_validator(mode="after")
    def _needs_a_match(self) -> RoleRule:
        if self.interface is None and self.vlan is None:
            raise ValueError("a role rule needs 'interface' (name pattern) or 'vlan' (tag)")
        return self

    def matches(self, name: str, vlans: list[int]) -> bool:
        if self.interface is not None and not fnmatch.fnmatchcase(name, self.interface):
            return False
        return self.vlan is None or self.vlan in vlans


class InterfaceOverride(SettingsModel):
    """Facts the kernel cannot tell, per interface name pattern (first match wins)."""

    name: Annotated[str, Field(min_length=1)]
    speed_mbps: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="Link speed when the driver reports none (virtio) or a wrong one."
    )
    trunk_vlans: list[VlanId] = Field(
        default_factory=list,
        description="VLAN tags the switch port trunks to this uplink (the CNI creates the "
        "sub-interfaces on demand, so the kernel does not show them yet).",
    )

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.name)


class MetricsSettings(SettingsModel):
    address: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 9478


class ReporterConfig(SettingsModel):
    """Everything the reporter needs; see docs/reporter.md for an example file."""

    node_name: Annotated[str, Field(min_length=1, max_length=253)] = Field(
        default_factory=socket.gethostname
    )
    interval: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=10.0, description="Seconds between reports (and the rate sampling window)."
    )
    sample_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        default=1.0, description="Rate window of the first report (and of --once)."
    )
    netns: str | None = Field(default=None, description="Network namespace to inspect (tests).")
    kubeconfig: Path | None = Field(
        default=None, description="Without it: in-cluster config, else ~/.kube/config."
    )
    request_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    max_backoff: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0, description="Longest wait between publish retries while the API is away."
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    exclude: ExcludeRule = Field(default_factory=ExcludeRule)
    default_role: InterfaceRole = InterfaceRole.ANY
    roles: list[RoleRule] = Field(default_factory=list)
    interfaces: list[InterfaceOverride] = Field(default_factory=list)
    zone: str | None = Field(default=None, description="Used when the Node has no zone label.")
    switch: str | None = Field(default=None, description="Used when the Node has no switch label.")

    def override_for(self, name: str) -> InterfaceOverride | None:
        return next((o for o in self.interfaces if o.matches(name)), None)

    def role_for(self, name: str, vlans: list[int]) -> InterfaceRole:
        rule = next((r for r in self.roles if r.matches(name, vlans)), None)
        return rule.role if rule else self.default_role


class ConfigError(ValueError):
    """A setting is missing, malformed or out of range; the message says which and where."""


ENV_PREFIX = "NETSCHED_REPORTER_"
ENV_SETTINGS = {
    "NODE_NAME": "nodeName",
    "INTERVAL": "interval",
    "SAMPLE_SECONDS": "sampleSeconds",
    "NETNS": "netns",
    "KUBECONFIG": "kubeconfig",
    "REQUEST_TIMEOUT": "requestTimeout",
    "MAX_BACKOFF": "maxBackoff",
    "METRICS_ADDRESS": "metrics.address",
    "METRICS_PORT": "metrics.port",
    "DEFAULT_ROLE": "defaultRole",
    "ZONE": "zone",
    "SWITCH": "switch",
}
"""Scalar settings settable from the environment as ``NETSCHED_REPORTER_<NAME>``.
``NODE_NAME`` alone (the downward-API convention) also sets the node name."""


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot read it ({error.strerror})") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"config file {path}: not valid YAML/JSON ({error})") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: the top level must be a mapping, got {type(data).__name__}"
        )
    return data


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[leaf] = value


def load_config(
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> ReporterConfig:
    """Merge the sources (flags > env > file > defaults) and validate the result.

    ``flags`` maps dotted camelCase setting names (``metrics.port``) to values;
    ``None`` values mean "not given". Raises :class:`ConfigError`.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    file = file or (Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None)
    if file is not None:
        data = _read_file(file)
        origin = {key: f"file {file}" for key in data}
    if env.get("NODE_NAME"):
        data["nodeName"] = env["NODE_NAME"]
        origin["nodeName"] = "env NODE_NAME"
    for suffix, dotted in ENV_SETTINGS.items():
        if (value := env.get(ENV_PREFIX + suffix)) not in (None, ""):
            _set_dotted(data, dotted, value)
            origin[dotted] = f"env {ENV_PREFIX}{suffix}"
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
            origin[dotted] = "flag --" + _flag_name(dotted)
    try:
        return ReporterConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, data, origin)) from None


def _flag_name(dotted: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in dotted.replace(".", "-"))


def _describe(error: ValidationError, data: Mapping[str, Any], origin: Mapping[str, str]) -> str:
    lines = []
    for problem in error.errors():
        location = [str(part) for part in problem["loc"]]
        dotted = ".".join(location)
        source = next(
            (
                origin[key]
                for key in (
                    dotted,
                    *(".".join(location[:i]) for i in range(len(location) - 1, 0, -1)),
                )
                if key in origin
            ),
            "defaults",
        )
        value = problem.get("input") if problem["type"] != "missing" else None
        if problem["type"] == "extra_forbidden":
            lines.append(f"{dotted}: unknown setting (from {source})")
            continue
        shown = json.dumps(value, default=str) if value is not None else "(missing)"
        lines.append(f"{dotted} = {shown}: {problem['msg']} (from {source})")
    return "invalid reporter configuration:\n  " + "\n  ".join(lines)
