"""Multus ``NetworkAttachmentDefinition`` objects read as networks of the topology.

A NAD (``k8s.cni.cncf.io/v1``, namespaced) holds a CNI configuration in ``spec.config``:
one plugin config or a conflist. netsched reads from its first ("main") plugin what
decides where the network exists and what it costs: the mode (the plugin type), the
host link it rides (``master``, ``bridge`` or ``device``), the VLAN id and the address
range of its IPAM. A NAD netsched cannot read this way is still a network: of unknown
reach, with the reason kept so that the dashboard and ``netsched explain`` can say it.

The network's name in the topology is ``namespace/name``, as Multus names its delegates;
``Network`` names never hold a ``/``, so the two kinds cannot collide.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import orjson

from contract.attachment_definitions import NetworkAttachmentDefinition
from contract.group import CNI_TYPE
from contract.wire import DefinitionMode, IPAddress, IPNetwork

DEFAULT_BRIDGE = "cni0"
"""The reference ``bridge`` plugin's bridge when its config names none."""


@dataclass(frozen=True, slots=True)
class DefinitionNetwork:
    """What netsched understood of one NAD.

    ``problem`` is None when the reach is known: the network exists on the nodes whose
    ``NodeNetwork`` has the link ``master`` (for macvlan and ipvlan without one, the
    node's pod interface, the default-route link those plugins pick). Otherwise it says
    why netsched cannot tell where the network reaches.
    """

    key: str
    mode: DefinitionMode
    plugins: tuple[str, ...] = ()
    master: str | None = None
    vlan: int | None = None
    subnet: IPNetwork | None = None
    range_start: IPAddress | None = None
    range_end: IPAddress | None = None
    gateway: IPAddress | None = None
    mtu: int | None = None
    problem: str | None = None

    @property
    def shaped(self) -> bool:
        """Whether netsched-cni is chained in the NAD's own conflist (and so shapes it)."""
        return CNI_TYPE in self.plugins

    @property
    def reach_known(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """One line for a person: mode, link, VLAN, range, or why the reach is unknown."""
        parts = [f"NetworkAttachmentDefinition {self.key}: {self.mode}"]
        if self.master:
            parts.append(f"on {self.master}")
        if self.vlan is not None:
            parts.append(f"VLAN {self.vlan}")
        if self.subnet is not None:
            parts.append(f"subnet {self.subnet}")
        if self.problem is not None:
            parts.append(f"(reach unknown: {self.problem})")
        return " ".join(parts)


class _Unreadable(ValueError):
    """A part of the CNI config netsched cannot read; the message names the field."""


def describe_definition(definition: NetworkAttachmentDefinition) -> DefinitionNetwork:
    """Read a NAD's CNI config; never raises: what cannot be read becomes ``problem``."""
    key = definition.key
    text = definition.spec.config.strip()
    if not text:
        return DefinitionNetwork(
            key, DefinitionMode.OPAQUE,
            problem="spec.config is empty: Multus then reads a file of the same name on each "
            "node, which netsched cannot see",
        )
    try:
        config = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return DefinitionNetwork(key, DefinitionMode.OPAQUE,
                                 problem=f"spec.config is not valid JSON ({error.msg})")
    try:
        plugins = _plugins(config)
        return _from_main_plugin(key, plugins[0], tuple(plugin["type"] for plugin in plugins))
    except _Unreadable as error:
        return DefinitionNetwork(key, DefinitionMode.OPAQUE, problem=str(error))


def _plugins(config: object) -> list[dict[str, Any]]:
    """The plugin configs in chain order: a conflist's ``plugins``, or the single config."""
    if not isinstance(config, dict):
        raise _Unreadable("spec.config must be a JSON object")
    if "plugins" in config:
        plugins = config["plugins"]
        where = "spec.config.plugins"
        if not isinstance(plugins, list) or not plugins:
            raise _Unreadable(f"{where} must be a non-empty list")
    else:
        plugins, where = [config], "spec.config"
    for position, plugin in enumerate(plugins):
        field = f"{where}[{position}]" if where.endswith("plugins") else where
        if not isinstance(plugin, dict):
            raise _Unreadable(f"{field} must be an object")
        if not isinstance(plugin.get("type"), str) or not plugin["type"]:
            raise _Unreadable(f"{field}.type is missing")
    return plugins


def _from_main_plugin(key: str, plugin: dict[str, Any], types: tuple[str, ...]) -> DefinitionNetwork:
    kind = plugin["type"]
    mtu = _optional_int(plugin, "mtu", 68, 65535)
    common: dict[str, Any] = {"plugins": types, "mtu": mtu, **_addressing(plugin.get("ipam"))}
    if kind in ("macvlan", "ipvlan"):
        return DefinitionNetwork(key, DefinitionMode(kind), master=_optional_name(plugin, "master"),
                                 **common)
    if kind == "vlan":
        master = _optional_name(plugin, "master")
        vlan = _optional_int(plugin, "vlanId", 0, 4094)
        if master is None or vlan is None:
            raise _Unreadable("the vlan plugin needs master and vlanId")
        return DefinitionNetwork(key, DefinitionMode.VLAN, master=master, vlan=vlan, **common)
    if kind == "bridge":
        return DefinitionNetwork(key, DefinitionMode.BRIDGE,
                                 master=_optional_name(plugin, "bridge") or DEFAULT_BRIDGE,
                                 vlan=_optional_int(plugin, "vlan", 0, 4094), **common)
    if kind == "host-device":
        device = _optional_name(plugin, "device")
        if device is None:
            return DefinitionNetwork(
                key, DefinitionMode.HOST_DEVICE, **common,
                problem="host-device names its device by hwaddr, kernelpath or pciBusID, not by a "
                "link name netsched's reports carry",
            )
        return DefinitionNetwork(key, DefinitionMode.HOST_DEVICE, master=device, **common)
    if kind == "sriov":
        return DefinitionNetwork(
            key, DefinitionMode.SRIOV, vlan=_optional_int(plugin, "vlan", 0, 4094), **common,
            problem="SR-IOV virtual functions come from a device plugin resource, which "
            "NodeNetwork reports do not list",
        )
    return DefinitionNetwork(
        key, DefinitionMode.OPAQUE, **common,
        problem=f"CNI type {kind!r} does not say which host link it uses",
    )


def _optional_name(plugin: dict[str, Any], field: str) -> str | None:
    value = plugin.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 15 or "/" in value or any(c.isspace() for c in value):
        raise _Unreadable(f"{field} {value!r} is not an interface name")
    return value


def _optional_int(plugin: dict[str, Any], field: str, low: int, high: int) -> int | None:
    value = plugin.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Unreadable(f"{field} {value!r} must be an integer in {low}-{high}")
    return value


def _addressing(ipam: object) -> dict[str, Any]:
    """Subnet, range and gateway of the IPAM plugins that hand out a pool: host-local
    (``ranges`` or the older top-level ``subnet``) and whereabouts (``range``). The first
    range is the network's; others (a second address family) are left to the plugin."""
    if ipam is None or ipam == {}:
        return {}
    if not isinstance(ipam, dict):
        raise _Unreadable("ipam must be an object")
    kind = ipam.get("type")
    if kind == "host-local":
        ranges = ipam.get("ranges")
        if ranges is not None:
            try:
                first = ranges[0][0]
            except (IndexError, KeyError, TypeError):
                raise _Unreadable("ipam.ranges must be a list of lists of ranges") from None
            return _range(first, "ipam.ranges[0][0]", "subnet", "rangeStart", "rangeEnd")
        return _range(ipam, "ipam", "subnet", "rangeStart", "rangeEnd") if "subnet" in ipam else {}
    if kind == "whereabouts" and "range" in ipam:
        return _range(ipam, "ipam", "range", "range_start", "range_end")
    return {}


def _range(source: object, where: str, subnet_key: str, start_key: str, end_key: str) -> dict[str, Any]:
    if not isinstance(source, dict):
        raise _Unreadable(f"{where} must be an object")
    try:
        subnet = ipaddress.ip_network(source[subnet_key], strict=False)
    except (KeyError, TypeError, ValueError):
        raise _Unreadable(f"{where}.{subnet_key} {source.get(subnet_key)!r} is not a subnet") from None
    found: dict[str, Any] = {"subnet": subnet}
    for key, field in ((start_key, "range_start"), (end_key, "range_end"), ("gateway", "gateway")):
        if source.get(key) is None:
            continue
        try:
            address = ipaddress.ip_address(str(source[key]).split("/")[0])
        except ValueError:
            raise _Unreadable(f"{where}.{key} {source[key]!r} is not an address") from None
        if address not in subnet:
            raise _Unreadable(f"{where}.{key} {address} is outside {subnet}")
        found[field] = address
    return found


__all__ = ["DefinitionNetwork", "describe_definition"]
