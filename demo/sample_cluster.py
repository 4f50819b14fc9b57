"""The bundled sample cluster: zones, switches, nodes with mixed links, and networks.

Generated rather than stored so that the demo, the tests and the benchmarks share
one definition and can scale it (the benchmarks use the same shape at 5,000 nodes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from contract.attachment_definitions import (
    NetworkAttachmentDefinition,
    NetworkAttachmentDefinitionSpec,
)
from contract.objects import (
    REGION_LABEL,
    SWITCH_LABEL,
    ZONE_LABEL,
    InterfaceRole,
    Network,
    NetworkInterface,
    NetworkSpec,
    Node,
    NodeNetwork,
    NodeNetworkStatus,
    ObjectMeta,
)
from contract.wire import NetworkMode
from scheduler_extender.cluster import ClusterSnapshot

REGION = "eu-1"
ZONE_LETTERS = "abcdefghijklmnopqrstuvwxyz"
POD_LINK_SPEEDS_MBPS = (10_000, 25_000, 100_000)
STORAGE_VLAN, REPLICATION_VLAN, TENANT_VNI = 100, 200, 5000


def sample_networks(zones: list[str]) -> list[Network]:
    return [
        Network(
            metadata=ObjectMeta(name="storage"),
            spec=NetworkSpec(
                mode=NetworkMode.VLAN, vlan=STORAGE_VLAN, role=InterfaceRole.STORAGE,
                subnet="10.20.0.0/16", gateway="10.20.0.1", mtu=9000,
            ),
        ),
        Network(
            metadata=ObjectMeta(name="replication"),
            spec=NetworkSpec(
                mode=NetworkMode.VLAN, vlan=REPLICATION_VLAN, role=InterfaceRole.STORAGE,
                zones=zones[:2], subnet="10.30.0.0/16",
            ),
        ),
        Network(
            metadata=ObjectMeta(name="tenant"),
            spec=NetworkSpec(
                mode=NetworkMode.VXLAN, vni=TENANT_VNI, role=InterfaceRole.POD,
                subnet="10.40.0.0/16", range_start="10.40.1.0", range_end="10.40.255.254",
            ),
        ),
    ]


DEMO_NAMESPACE = "demo"
"""Where the demo's pods (and so the Multus definitions they name) live."""


def sample_definitions() -> list[NetworkAttachmentDefinition]:
    """Two Multus NetworkAttachmentDefinitions: a macvlan on the storage link that netsched
    shapes, and an SR-IOV one whose reach netsched cannot know (the dashboard says why)."""
    fast_storage = {
        "cniVersion": "1.0.0", "name": "fast-storage",
        "plugins": [
            {"type": "macvlan", "master": "eth1", "mode": "bridge",
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.50.0.0/16", "gateway": "10.50.0.1"}]]}},
            {"type": "netsched-cni", "capabilities": {"bandwidth": True}},
        ],
    }
    sriov = {"cniVersion": "1.0.0", "name": "sriov-fabric", "type": "sriov", "vlan": 300,
             "ipam": {"type": "whereabouts", "range": "10.60.0.0/16"}}
    return [
        NetworkAttachmentDefinition(
            metadata=ObjectMeta(name=config["name"], namespace=DEMO_NAMESPACE),
            spec=NetworkAttachmentDefinitionSpec(config=json.dumps(config)),
        )
        for config in (fast_storage, sriov)
    ]


def sample_cluster(
    zones: int = 3, switches_per_zone: int = 2, nodes_per_switch: int = 2, heartbeat: datetime | None = None
) -> ClusterSnapshot:
    """``zones × switches × nodes`` nodes named ``node-<zone letter>-<n>``, with three networks
    and two Multus NetworkAttachmentDefinitions."""
    heartbeat = heartbeat or datetime.now(UTC)
    zone_names = [f"{REGION}{_zone_suffix(z)}" for z in range(zones)]
    snapshot = ClusterSnapshot(networks=sample_networks(zone_names), definitions=sample_definitions())
    for z, zone in enumerate(zone_names):
        for s in range(switches_per_zone):
            switch = f"tor-{zone}-{s}"
            for n in range(nodes_per_switch):
                index = s * nodes_per_switch + n + 1
                name = f"node-{_zone_suffix(z)}-{index}"
                speed = POD_LINK_SPEEDS_MBPS[(z + index) % len(POD_LINK_SPEEDS_MBPS)]
                labels = {ZONE_LABEL: zone, REGION_LABEL: REGION, SWITCH_LABEL: switch}
                snapshot.nodes.append(Node(metadata=ObjectMeta(name=name, labels=labels)))
                snapshot.node_networks.append(
                    NodeNetwork(
                        metadata=ObjectMeta(name=name),
                        status=NodeNetworkStatus(
                            zone=zone,
                            switch=switch,
                            heartbeat_time=heartbeat,
                            interfaces=_interfaces(speed, node_index=len(snapshot.nodes)),
                        ),
                    )
                )
    return snapshot


def _zone_suffix(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = ZONE_LETTERS[rest] + letters
    return letters


def _interfaces(pod_speed: int, node_index: int) -> list[NetworkInterface]:
    mac = lambda i: f"52:54:00:{node_index >> 8 & 0xff:02x}:{node_index & 0xff:02x}:{i:02x}"
    return [
        NetworkInterface(
            name="eth0", kind="physical", role=InterfaceRole.POD, speed_mbps=pod_speed, mtu=1500,
            mac=mac(0), addresses=[f"192.0.{node_index >> 8 & 0xff}.{node_index & 0xff}/16"],
        ),
        NetworkInterface(
            name="eth1", kind="physical", role=InterfaceRole.STORAGE, speed_mbps=25_000, mtu=9000,
            mac=mac(1), vlans=[STORAGE_VLAN, REPLICATION_VLAN],
        ),
        NetworkInterface(
            name="eth2", kind="physical", role=InterfaceRole.CONTROL, speed_mbps=1_000, mtu=1500, mac=mac(2),
        ),
    ]
