import json

import pytest

from bandwidth_accounting.requirements import (
    InvalidAnnotation,
    Placement,
    PodRequirements,
    parse_requirements,
)
from contract import annotations


def test_a_pod_without_annotations_asks_nothing():
    assert parse_requirements({}) == PodRequirements()
    assert not parse_requirements({"app": "x"}).needs_resources
    assert parse_requirements(None) == PodRequirements()


def test_reads_every_annotation_of_the_design():
    requirements = parse_requirements({
        annotations.INGRESS_BANDWIDTH: "100M",
        annotations.EGRESS_BANDWIDTH: "1G",
        annotations.NETWORKS: json.dumps([
            {"name": "storage", "interface": "net5", "ingress": "2G", "egress": "1G",
             "ip": "10.20.0.15/24", "mac": "02:00:00:00:00:15"},
            {"name": "replication"},
        ]),
        annotations.PLACEMENT: "pack",
        annotations.PEERS: "app=db,tier!=cache,zone,!legacy",
    })
    assert (requirements.ingress_bps, requirements.egress_bps) == (100_000_000, 1_000_000_000)
    storage, replication = requirements.attachments
    assert (storage.network, storage.interface, storage.ingress_bps, storage.egress_bps) == (
        "storage", "net5", 2_000_000_000, 1_000_000_000)
    assert str(storage.ip) == "10.20.0.15/24" and storage.mac == "02:00:00:00:00:15"
    assert (replication.interface, replication.ingress_bps, replication.ip) == ("net1", 0, None)
    assert requirements.placement is Placement.PACK
    assert requirements.peers.matches({"app": "db", "zone": "a"})
    assert not requirements.peers.matches({"app": "db", "tier": "cache", "zone": "a"})
    assert not requirements.peers.matches({"app": "db", "zone": "a", "legacy": "1"})
    assert not requirements.peers.matches({"app": "db"})


def test_comma_list_is_shorthand_for_names():
    requirements = parse_requirements({annotations.NETWORKS: "storage, replication"})
    assert [(a.network, a.interface) for a in requirements.attachments] == [
        ("storage", "net1"), ("replication", "net2")]


def test_generated_interface_names_skip_explicit_ones():
    value = json.dumps([{"name": "a"}, {"name": "b", "interface": "net1"}])
    assert [a.interface for a in parse_requirements({annotations.NETWORKS: value}).attachments] == [
        "net2", "net1"]


@pytest.mark.parametrize(
    ("annotation", "value", "says"),
    [
        (annotations.INGRESS_BANDWIDTH, "-5M", "must be a positive rate"),
        (annotations.EGRESS_BANDWIDTH, "abc", "is not a Kubernetes quantity"),
        (annotations.EGRESS_BANDWIDTH, "0", "must be a positive rate"),
        (annotations.NETWORKS, "[{", "not valid JSON"),
        (annotations.NETWORKS, '{"name": "a"}', "must be a JSON list"),
        (annotations.NETWORKS, '[{"name": "a"}, {"name": "b", "interface": "net1"}, {"name": "c", "interface": "net1"}]',
         "duplicate interface name 'net1'"),
        (annotations.NETWORKS, '[{"name": "a", "interface": "eth0"}]', "duplicate interface name 'eth0'"),
        (annotations.NETWORKS, '[{"name": "a", "interface": "much-too-long-name"}]', "interface name"),
        (annotations.NETWORKS, '[{"name": "a", "ip": "10.0.0.300/24"}]', "is not an IP address"),
        (annotations.NETWORKS, '[{"name": "a", "ip": 17}]', "is not an IP address"),
        (annotations.NETWORKS, '[{"name": "a", "mac": "02:00:00:00:00"}]', "is not a MAC address"),
        (annotations.NETWORKS, '[{"name": "a", "mac": "01:00:5e:00:00:01"}]', "multicast"),
        (annotations.NETWORKS, '[{"name": "a", "mac": "00:00:00:00:00:00"}]', "all zeros"),
        (annotations.NETWORKS, '[{"name": "a", "egress": "lots"}]', "a.egress"),
        (annotations.NETWORKS, '[{"name": "a", "vlan": 5}]', "unknown key"),
        (annotations.NETWORKS, '[{"name": "Bad_Name"}]', "network name 'Bad_Name'"),
        (annotations.NETWORKS, '["storage"]', "must be an object"),
        (annotations.PLACEMENT, "tight", "must be 'spread' or 'pack'"),
        (annotations.PEERS, "app=db,,x", "empty term"),
        (annotations.PEERS, "app=b@d", "is not a label value"),
    ],
)
def test_bad_values_name_the_annotation_and_the_value(annotation, value, says):
    with pytest.raises(InvalidAnnotation) as error:
        parse_requirements({annotation: value})
    message = str(error.value)
    assert message.startswith(f"annotation {annotation}={value!r}: ")
    assert says in message
