import json

import pytest

from bandwidth_accounting.requirements import (
    InvalidAnnotation,
    LabelRequirement,
    Placement,
    PodRequirements,
    parse_requirements,
    primary_rates,
    valid_mac,
)
from contract import annotations
from contract.annotations import quoted


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
    # The fields the extender's refusal and `netsched explain` read, not only the message.
    assert (error.value.annotation, error.value.value) == (annotation, value)
    assert message == f"annotation {annotation}={value!r}: {error.value.reason}"


def refusal(pod_annotations: dict[str, str]) -> str:
    """The reason ``parse_requirements`` gives for refusing ``pod_annotations``, checked to
    name one of them and its whole value."""
    with pytest.raises(InvalidAnnotation) as error:
        parse_requirements(pod_annotations)
    assert error.value.value == pod_annotations.get(error.value.annotation, KeyError)
    return error.value.reason


def test_every_selector_form_becomes_its_term_spaces_around_keys_and_values_ignored():
    selector = " app == db , tier!= cache,zone , ! legacy,role=,example.com/team=a"
    peers = parse_requirements({annotations.PEERS: selector}).peers
    assert peers.terms == (
        LabelRequirement("app", "=", "db"), LabelRequirement("tier", "!=", "cache"),
        LabelRequirement("zone", "exists"), LabelRequirement("legacy", "!exists"),
        LabelRequirement("role", "=", ""), LabelRequirement("example.com/team", "=", "a"),
    )
    assert peers.matches({"app": "db", "zone": "z", "role": "", "example.com/team": "a"})
    assert peers.matches({"app": "db", "tier": "web", "zone": "z", "role": "", "example.com/team": "a"})
    assert not peers.matches({"app": "db", "zone": "z", "example.com/team": "a"})  # role="" needs the label


def test_a_label_requirement_matches_as_kubernetes_equality_selectors_do():
    labels = {"app": "db", "empty": ""}
    assert LabelRequirement("app", "=", "db").matches(labels)
    assert not LabelRequirement("app", "=", "web").matches(labels)
    assert not LabelRequirement("missing", "=", "").matches(labels)
    assert LabelRequirement("app", "!=", "web").matches(labels)
    assert not LabelRequirement("app", "!=", "db").matches(labels)
    assert LabelRequirement("missing", "!=", "db").matches(labels)  # as in Kubernetes: absent is "not db"
    assert LabelRequirement("empty", "exists").matches(labels)
    assert not LabelRequirement("missing", "exists").matches(labels)
    assert LabelRequirement("missing", "!exists").matches(labels)
    assert not LabelRequirement("empty", "!exists").matches(labels)


@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        ("app=db, ", "empty term in label selector"),
        ("=db", "'' is not a label key: the name must be 1-63 characters"),
        ("!", "'' is not a label key: the name must be 1-63 characters"),
        ("/app", "'/app' is not a label key: the prefix must be 1-253 characters"),
        (f"{'a' * 254}/app", f"{quoted('a' * 254 + '/app')} is not a label key: the prefix must be 1-253 characters"),
        ("Example.com/app", "'Example.com/app' is not a label key: the prefix must be a lowercase DNS subdomain"),
        ("example.com-/app", "'example.com-/app' is not a label key: the prefix must be a lowercase DNS subdomain"),
        ("a" * 64, f"{'a' * 64!r} is not a label key: the name must be 1-63 characters"),
        ("-app=x", "'-app' is not a label key: the name must be letters, digits, '-', '_' or '.', starting and "
                   "ending alphanumeric"),
        ("app!=x!=y", "'x!=y' is not a label value: it must be letters, digits, '-', '_' or '.', starting and "
                      "ending alphanumeric"),
        ("app=x=y", "'x=y' is not a label value: it must be letters, digits, '-', '_' or '.', starting and "
                    "ending alphanumeric"),
        ("app!=x_", "'x_' is not a label value: it must be letters, digits, '-', '_' or '.', starting and "
                    "ending alphanumeric"),
        (f"app={'v' * 64}", f"{'v' * 64!r} is not a label value: it must be 1-63 characters"),
    ],
)
def test_a_bad_selector_term_is_refused_saying_what_is_wrong_with_it(selector, reason):
    assert refusal({annotations.PEERS: selector}) == reason


def test_label_keys_and_values_at_kubernetes_limits_are_accepted():
    key = f"{'p' * 126}.{'q' * 126}/{'n' * 63}"  # a 253-character prefix, a 63-character name
    value = "v" * 63
    [term] = parse_requirements({annotations.PEERS: f"{key}={value}"}).peers.terms
    assert term == LabelRequirement(key, "=", value)
    assert parse_requirements({annotations.PEERS: "a.b-c/x_y.z-1=A.b_c-9"}).peers.terms == (
        LabelRequirement("a.b-c/x_y.z-1", "=", "A.b_c-9"),)


def networks(value: str) -> list[tuple]:
    """Each attachment ``NETWORKS=value`` asks for, every field."""
    return [(a.network, a.interface, a.ingress_bps, a.egress_bps, a.ip and str(a.ip), a.mac)
            for a in parse_requirements({annotations.NETWORKS: value}).attachments]


def test_attachments_get_their_fields_and_the_first_interface_names_nobody_took():
    value = json.dumps([
        {"name": "a", "mac": "02:AB:cd:00:00:0F", "ip": "fd00::15/64"},
        {"name": "b", "interface": "net3"}, {"name": "c"}, {"name": "d", "interface": "net1"},
        {"name": "e", "ingress": "1k"},
    ])
    assert networks(value) == [
        ("a", "net2", 0, 0, "fd00::15/64", "02:ab:cd:00:00:0f"), ("b", "net3", 0, 0, None, None),
        ("c", "net4", 0, 0, None, None), ("d", "net1", 0, 0, None, None), ("e", "net5", 1000, 0, None, None),
    ]
    assert networks("  ") == [] and networks(" [ ] ") == []
    assert parse_requirements({annotations.NETWORKS: " "}) == PodRequirements()


def test_attachments_up_to_the_limit_are_read_one_more_is_refused():
    names = [f"n{i}" for i in range(annotations.MAX_ATTACHMENTS + 1)]
    assert len(networks(",".join(names[:-1]))) == annotations.MAX_ATTACHMENTS
    assert refusal({annotations.NETWORKS: ",".join(names)}) == (
        f"{annotations.MAX_ATTACHMENTS + 1} networks; the limit is {annotations.MAX_ATTACHMENTS} per pod")
    both = {annotations.NETWORKS: ",".join(names[:10]),
            annotations.MULTUS_NETWORKS: ",".join(f"m{i}@m{i}" for i in range(annotations.MAX_ATTACHMENTS - 9))}
    assert refusal(both) == (
        f"10 networks in {annotations.NETWORKS} and {annotations.MAX_ATTACHMENTS - 9} here; the limit is "
        f"{annotations.MAX_ATTACHMENTS} per pod")
    both[annotations.MULTUS_NETWORKS] = ",".join(f"m{i}@m{i}" for i in range(annotations.MAX_ATTACHMENTS - 10))
    assert len(parse_requirements(both).attachments) == annotations.MAX_ATTACHMENTS


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (' {"name": "a"}', "must be a JSON list of objects, or a comma list of names"),
        ('[{"name": "a"}, {"name": "a", "interface": "x1"}]', "network 'a' is listed twice"),
        ("a,,b", "network name '' is not valid"),
        ('[{"interface": "x1"}]', "network name None is not valid"),
        ('[{"name": 5}]', "network name 5 is not valid"),
        ('[{"name": "a", "interface": 7}]', "interface name 7 is not valid"),
        ('[{"name": "a", "interface": "x1"}, {"name": "b", "interface": "x1"}]', "duplicate interface name 'x1'"),
        ('[{"name": "a", "speed": 1, "vlan": 2}]', "unknown key(s) ['speed', 'vlan']"),
        ('[{"name": "a"}, 3]', "entry 3 must be an object"),
        ('[{"name": "a", "ingress": "fast"}]', "a.ingress: 'fast' is not a Kubernetes quantity (examples: 100M, 1G, 1500k, 1Gi)"),
        ('[{"name": "a", "ip": "fd00::1/129"}]', "ip 'fd00::1/129' is not an IP address"),
        ('[{"name": "a", "ip": ["10.0.0.1/24"]}]', "ip ['10.0.0.1/24'] is not an IP address"),
        ('[{"name": "a", "mac": 2}]', "mac 2 is not a MAC address"),
        ('[{"name": "a", "mac": "02:00:00:00:00:0g"}]', "mac '02:00:00:00:00:0g' is not a MAC address"),
        ('[{"name": "a", "mac": "03:00:00:00:00:01"}]', "mac '03:00:00:00:00:01' is a multicast address"),
        ('[{"name": "a", "mac": "00:00:00:00:00:00"}]', "mac '00:00:00:00:00:00' is all zeros"),
    ],
)
def test_a_bad_attachment_is_refused_saying_which_field_and_why(value, reason):
    assert refusal({annotations.NETWORKS: value}) == reason


def test_a_mac_is_a_unicast_non_zero_colon_separated_address():
    for good in ("02:00:00:00:00:15", "00:00:00:00:00:01", "FE:ff:00:00:00:00", "10:00:00:00:00:00"):
        assert valid_mac(good) is None, good
    assert valid_mac("01:00:00:00:00:00") == valid_mac("ff:ff:ff:ff:ff:ff") == "is a multicast address"
    assert valid_mac("11:00:00:00:00:00") == "is a multicast address"  # the low bit of the first octet
    assert valid_mac("00:00:00:00:00:00") == "is all zeros"
    for bad in ("02:00:00:00:00", "02:00:00:00:00:15:00", "02-00-00-00-00-15", "0200:00:00:00:15", "02:00:00:00:00:15\n"):
        assert valid_mac(bad) == "is not a MAC address", bad


def test_an_oversized_annotation_is_refused_before_it_is_read():
    cap = annotations.MAX_LENGTH[annotations.PEERS]
    assert len(parse_requirements({annotations.PEERS: ",".join(["a"] * ((cap + 1) // 2))}).peers.terms) == (cap + 1) // 2
    value = "a," * (cap // 2) + "a"
    assert refusal({annotations.PEERS: value}) == f"is {cap + 1} characters long; the limit is {cap}"
    rate = "1" * (annotations.MAX_LENGTH[annotations.EGRESS_BANDWIDTH] + 1)
    with pytest.raises(InvalidAnnotation) as error:
        primary_rates({annotations.EGRESS_BANDWIDTH: rate})
    assert (error.value.annotation, error.value.reason) == (
        annotations.EGRESS_BANDWIDTH, f"is {len(rate)} characters long; the limit is {len(rate) - 1}")


def test_primary_rates_are_the_two_kubernetes_bandwidth_annotations_alone():
    assert primary_rates({}) == (0, 0)
    assert primary_rates({annotations.INGRESS_BANDWIDTH: "10M"}) == (10_000_000, 0)
    assert primary_rates({annotations.EGRESS_BANDWIDTH: "2G", annotations.NETWORKS: "[nonsense"}) == (0, 2_000_000_000)
    assert primary_rates({annotations.INGRESS_BANDWIDTH: "1k", annotations.EGRESS_BANDWIDTH: "3k"}) == (1000, 3000)
    with pytest.raises(InvalidAnnotation) as error:
        primary_rates({annotations.INGRESS_BANDWIDTH: "-1"})
    assert error.value.annotation == annotations.INGRESS_BANDWIDTH and error.value.value == "-1"


def test_placement_is_read_without_surrounding_spaces_and_defaults_to_spread():
    assert parse_requirements({annotations.PLACEMENT: " pack\n"}).placement is Placement.PACK
    assert parse_requirements({annotations.PLACEMENT: "spread"}).placement is Placement.SPREAD
    assert parse_requirements({annotations.EGRESS_BANDWIDTH: "1M"}).placement is Placement.SPREAD
    assert refusal({annotations.PLACEMENT: "Pack"}) == "must be 'spread' or 'pack'"


def test_any_netsched_annotation_makes_the_pod_annotated_even_asking_nothing():
    for name, value in ((annotations.PEERS, "app"), (annotations.PLACEMENT, "pack"),
                        (annotations.NETWORKS, ""), (annotations.MULTUS_NETWORKS, "")):
        requirements = parse_requirements({name: value, "other": "x"})
        assert requirements.annotated and not requirements.needs_resources, name
    assert not parse_requirements({"other": "x"}).annotated
    assert parse_requirements({annotations.EGRESS_BANDWIDTH: "1k"}).needs_resources
    assert parse_requirements({annotations.INGRESS_BANDWIDTH: "1k"}).needs_resources
    assert parse_requirements({annotations.NETWORKS: "a"}).needs_resources


def test_multus_elements_without_a_namespace_are_in_the_pod_s():
    requirements = parse_requirements({annotations.MULTUS_NETWORKS: "storage"}, "team")
    assert [a.network for a in requirements.attachments] == ["team/storage"]
    assert [a.network for a in parse_requirements({annotations.MULTUS_NETWORKS: "storage"}).attachments] == [
        "default/storage"]


def test_the_same_network_by_both_annotations_is_refused_naming_the_network_and_the_multus_value():
    multus = '[{"name": "storage", "namespace": "infra", "interface": "st1"}]'
    with pytest.raises(InvalidAnnotation) as error:
        parse_requirements({annotations.NETWORKS: '[{"name": "storage", "interface": "st0"}]',
                            annotations.MULTUS_NETWORKS: multus})
    assert (error.value.annotation, error.value.value) == (annotations.MULTUS_NETWORKS, multus)
    assert error.value.reason.startswith(
        f"network 'storage' is asked by both {annotations.NETWORKS} (network 'storage') and "
        f"{annotations.MULTUS_NETWORKS} (infra/storage); keep ")
    # A network named like the namespace is not the same network.
    assert len(parse_requirements({annotations.NETWORKS: '[{"name": "infra", "interface": "st0"}]',
                                   annotations.MULTUS_NETWORKS: multus}).attachments) == 2
