"""NetworkAttachmentDefinitions read as networks: mode, link, VLAN and range from the CNI
config (single plugin or conflist), which nodes' links carry them, and the reason kept
when the config says nothing netsched can place by."""

import json

import pytest

from contract.attachment_definitions import NetworkAttachmentDefinition
from contract.objects import NetworkInterface
from topology.attachment_definitions import describe_definition
from topology.graph import definition_carriers


def nad(config, name="storage", namespace="team"):
    text = config if isinstance(config, str) else json.dumps(config)
    return NetworkAttachmentDefinition.model_validate({
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": namespace}, "spec": {"config": text}})


MACVLAN_CONFLIST = {
    "cniVersion": "1.0.0", "name": "storage",
    "plugins": [
        {"type": "macvlan", "master": "eth1", "mode": "bridge", "mtu": 9000,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.20.0.0/24", "rangeStart": "10.20.0.10",
                                                     "rangeEnd": "10.20.0.200", "gateway": "10.20.0.1"}]]}},
        {"type": "netsched-cni", "capabilities": {"bandwidth": True}},
    ],
}


def test_a_macvlan_conflist_with_netsched_chained():
    network = describe_definition(nad(MACVLAN_CONFLIST))
    assert (network.key, network.mode, network.master, network.mtu) == ("team/storage", "macvlan", "eth1", 9000)
    assert (str(network.subnet), str(network.range_start), str(network.range_end), str(network.gateway)) == (
        "10.20.0.0/24", "10.20.0.10", "10.20.0.200", "10.20.0.1")
    assert network.plugins == ("macvlan", "netsched-cni") and network.shaped and network.reach_known


@pytest.mark.parametrize(
    ("config", "mode", "master", "vlan"),
    [
        ({"cniVersion": "0.3.1", "type": "ipvlan", "master": "bond0"}, "ipvlan", "bond0", None),
        ({"cniVersion": "0.3.1", "type": "vlan", "master": "eth2", "vlanId": 120,
          "ipam": {"type": "whereabouts", "range": "192.168.120.0/24", "gateway": "192.168.120.1"}},
         "vlan", "eth2", 120),
        ({"cniVersion": "0.3.1", "type": "bridge", "bridge": "br-data", "vlan": 30}, "bridge", "br-data", 30),
        ({"cniVersion": "0.3.1", "type": "bridge"}, "bridge", "cni0", None),
        ({"cniVersion": "0.3.1", "type": "host-device", "device": "ens5f1"}, "host-device", "ens5f1", None),
        ({"cniVersion": "0.3.1", "type": "macvlan"}, "macvlan", None, None),
    ],
)
def test_single_configs_of_each_recognised_plugin(config, mode, master, vlan):
    network = describe_definition(nad(config))
    assert (network.mode, network.master, network.vlan, network.problem) == (mode, master, vlan, None)
    assert not network.shaped


def test_whereabouts_and_legacy_host_local_ranges():
    vlan = describe_definition(nad({"type": "vlan", "master": "eth2", "vlanId": 120, "ipam": {
        "type": "whereabouts", "range": "192.168.120.0/24", "range_start": "192.168.120.20"}}))
    assert (str(vlan.subnet), str(vlan.range_start)) == ("192.168.120.0/24", "192.168.120.20")
    legacy = describe_definition(nad({"type": "macvlan", "master": "eth1", "ipam": {
        "type": "host-local", "subnet": "10.9.0.0/16", "gateway": "10.9.0.1"}}))
    assert (str(legacy.subnet), str(legacy.gateway)) == ("10.9.0.0/16", "10.9.0.1")


@pytest.mark.parametrize(
    ("config", "mode", "says"),
    [
        ("", "opaque", "spec.config is empty"),
        ("{not json", "opaque", "spec.config is not valid JSON"),
        ("[1]", "opaque", "spec.config must be a JSON object"),
        ({"name": "x", "plugins": []}, "opaque", "spec.config.plugins must be a non-empty list"),
        ({"name": "x", "plugins": [{"master": "eth1"}]}, "opaque", "spec.config.plugins[0].type is missing"),
        ({"type": "vlan", "master": "eth1"}, "opaque", "the vlan plugin needs master and vlanId"),
        ({"type": "vlan", "master": "eth1", "vlanId": 5000}, "opaque", "vlanId 5000 must be an integer in 0-4094"),
        ({"type": "macvlan", "master": "a/b"}, "opaque", "master 'a/b' is not an interface name"),
        ({"type": "macvlan", "master": "eth1", "ipam": {"type": "host-local", "ranges": [[{"subnet": "x"}]]}},
         "opaque", "ipam.ranges[0][0].subnet 'x' is not a subnet"),
        ({"type": "macvlan", "master": "eth1", "ipam": {"type": "host-local", "subnet": "10.0.0.0/24",
                                                        "gateway": "10.1.0.1"}},
         "opaque", "ipam.gateway 10.1.0.1 is outside 10.0.0.0/24"),
        ({"type": "sriov", "vlan": 7}, "sriov", "SR-IOV virtual functions come from a device plugin"),
        ({"type": "host-device", "pciBusID": "0000:3b:00.1"}, "host-device", "by hwaddr, kernelpath or pciBusID"),
        ({"type": "ovn-k8s-cni-overlay"}, "opaque", "CNI type 'ovn-k8s-cni-overlay' does not say"),
    ],
)
def test_what_cannot_be_read_is_a_network_of_unknown_reach_with_the_reason(config, mode, says):
    network = describe_definition(nad(config))
    assert network.mode == mode and not network.reach_known
    assert says in network.problem
    assert "reach unknown" in network.describe() and "team/storage" in network.describe()


def iface(name, kind="physical", vlans=(), state="up", role="any"):
    return NetworkInterface(name=name, kind=kind, vlans=list(vlans), oper_state=state, role=role)


def test_carriers_are_the_named_link_and_a_vlan_device_charges_its_parent():
    eth0, eth1 = iface("eth0", role="pod"), iface("eth1", vlans=[100])
    vlan_device = iface("eth1.100", kind="vlan")
    links = {i.name: i for i in (eth0, eth1, vlan_device)}
    network = describe_definition(nad(MACVLAN_CONFLIST))
    assert definition_carriers(network, links, eth0) == [eth1]
    assert definition_carriers(network, {"eth0": eth0}, eth0) == []
    assert definition_carriers(network, {"eth0": eth0, "eth1": iface("eth1", state="down")}, eth0) == []
    on_vlan = describe_definition(nad({"type": "macvlan", "master": "eth1.100"}))
    assert definition_carriers(on_vlan, links, eth0) == [eth1]
    no_master = describe_definition(nad({"type": "macvlan"}))
    assert definition_carriers(no_master, links, eth0) == [eth0]
    unknown = describe_definition(nad({"type": "sriov"}))
    assert definition_carriers(unknown, links, eth0) == [eth0]
    assert definition_carriers(unknown, links, None) == []
