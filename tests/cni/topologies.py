"""Small clusters built from a :class:`Lab`: nodes with a CNI runtime, pods, a switch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cni.lab import Lab, link_names, qdiscs
from tests.cni.runner import Runtime, lab_conflist

GBIT = 1_000_000_000
MBIT = 1_000_000


@dataclass
class Node:
    """A node namespace; ``uplink`` is its veth to the switch (None on a lone node)."""

    lab: Lab
    netns: str
    subnet: str
    bridge: str
    uplink: str | None = None
    pods: list[tuple[Runtime, str, str]] = field(default_factory=list)

    def runtime(self, *, version: str = "1.0.0", shaper: str = "netsched-cni",
                extra: dict[str, Any] | None = None, client: str = "python") -> Runtime:
        conflist = lab_conflist(self.bridge, self.subnet, self.lab.workdir / self.netns,
                                version=version, shaper=shaper, extra=extra)
        return Runtime(conflist, self.netns, client)

    def pod(self, runtime: Runtime, *, runtime_config: dict[str, Any] | None = None,
            args: str = "") -> tuple[str, str, dict[str, Any]]:
        """(namespace, container id, result) of a new pod added through ``runtime``."""
        netns = self.lab.netns("pd")
        container_id = f"ctr{netns}"
        result = runtime.add(container_id, self.lab.path(netns), runtime_config=runtime_config,
                             args=args)
        self.pods.append((runtime, container_id, netns))
        return netns, container_id, result

    def state_dir(self) -> str:
        return str(self.lab.workdir / self.netns / "netsched")


def lone_node(lab: Lab, index: int = 0) -> Node:
    return Node(lab, lab.netns("nd"), f"10.{90 + index}.0.0/24", lab.name("cb"))


def switched_nodes(lab: Lab, count: int = 2) -> list[Node]:
    """``count`` nodes whose uplinks (192.168.77.N/24) meet on one bridge in a switch namespace."""
    switch, bridge = lab.switch()
    nodes = []
    for index in range(count):
        node = lone_node(lab, index)
        node.uplink = lab.uplink(node.netns, switch, bridge, f"192.168.77.{index + 1}/24")
        nodes.append(node)
    return nodes


def attachment(node: Node, *, mode: str, interface: str = "net1", ip: str | None,
               mac: str, vni: int | None = None, vlan: int | None = None,
               ingress: int = 0, egress: int = 0, mtu: int | None = None) -> dict[str, Any]:
    """An attachment in the reservation annotation's shape, on ``node``'s uplink."""
    body: dict[str, Any] = {"network": f"{mode}-{vni or vlan or 'flat'}", "interface": interface,
                            "mode": mode, "parent": node.uplink, "ip": ip, "mac": mac,
                            "ingress": ingress, "egress": egress}
    if vni is not None:
        body["vni"] = vni
    if vlan is not None:
        body["vlan"] = vlan
    if mtu is not None:
        body["mtu"] = mtu
    return body


def assert_nothing_of_ours(node: Node, pod: str, *, eth0_expected: bool) -> None:
    """No attachment, ifb, qdisc, segment device or record of netsched-cni is left."""
    names = link_names(pod)
    assert names == ({"lo", "eth0"} if eth0_expected else {"lo"}), names
    if eth0_expected:
        kinds = {q["kind"] for q in qdiscs(pod, "eth0")}
        assert not kinds & {"tbf", "ingress"}, kinds
    assert not [n for n in link_names(node.netns) if n.startswith("nsx")]
    records = Path(node.state_dir()) / "records"
    assert not records.exists() or not list(records.iterdir())
    segments = Path(node.state_dir()) / "segments"
    assert not segments.exists() or not list(segments.iterdir())
