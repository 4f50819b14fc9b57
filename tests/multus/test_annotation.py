"""The Multus ``k8s.v1.cni.cncf.io/networks`` annotation read as Multus reads it
(``parsePodNetworkAnnotation``): both forms, namespace and interface defaulting, and the
refusals that name the annotation and the element."""

import json

import pytest

from bandwidth_accounting.requirements import InvalidAnnotation, parse_requirements
from contract import annotations

MULTUS = annotations.MULTUS_NETWORKS


def attachments(value, namespace="team"):
    return parse_requirements({MULTUS: value}, namespace).attachments


def test_comma_form_defaults_namespace_to_the_pods_and_interfaces_to_their_position():
    found = attachments(" storage , infra/replication@repl, backup ")
    assert [(a.network, a.interface) for a in found] == [
        ("team/storage", "net1"), ("infra/replication", "repl"), ("team/backup", "net3")]
    assert all(a.ingress_bps == a.egress_bps == 0 and a.ip is None and a.mac is None for a in found)


def test_json_form_reads_every_field_netsched_acts_on():
    value = json.dumps([
        {"name": "storage", "interface": "data0", "ips": ["10.20.0.15/24"], "mac": "02:00:00:00:00:15",
         "default-route": ["10.20.0.1"],
         "bandwidth": {"ingressRate": 2_000_000_000, "ingressBurst": 0, "egressRate": 1_000_000_000,
                       "egressBurst": 4_294_967_295}},
        {"name": "replication", "namespace": "infra", "portMappings": [], "cni-args": {"x": 1}},
    ])
    storage, replication = attachments(value)
    assert (storage.network, storage.interface, storage.ingress_bps, storage.egress_bps) == (
        "team/storage", "data0", 2_000_000_000, 1_000_000_000)
    assert str(storage.ip) == "10.20.0.15/24" and storage.mac == "02:00:00:00:00:15"
    assert (replication.network, replication.interface) == ("infra/replication", "net2")


def test_json_form_is_chosen_as_multus_chooses_it_and_keys_match_ignoring_case():
    # Multus takes the JSON form when any of [ { " appears; Go's decoder folds key case.
    [storage] = attachments('[{"Name": "storage", "Interface": "net7", "bandWidth": {"EgressRate": 5000}}]')
    assert (storage.network, storage.interface, storage.egress_bps) == ("team/storage", "net7", 5000)
    # The deprecated pre-3.2 key still names the interface, as in Multus.
    [old] = attachments('[{"name": "storage", "interfaceRequest": "old1"}]')
    assert old.interface == "old1"


def test_an_address_without_prefix_and_a_hyphenated_mac_are_accepted_as_multus_does():
    [storage] = attachments('[{"name": "storage", "ips": ["10.20.0.15"], "mac": "02-00-00-00-00-AB"}]')
    assert str(storage.ip.ip) == "10.20.0.15" and storage.mac == "02:00:00:00:00:ab"


def test_a_multus_attachment_is_a_requirement_like_ours():
    requirements = parse_requirements({
        annotations.EGRESS_BANDWIDTH: "100M",
        annotations.NETWORKS: '[{"name": "backup", "interface": "bk0"}]',
        MULTUS: '[{"name": "storage", "bandwidth": {"egressRate": 1000000000}}]',
    }, "team")
    assert requirements.needs_resources and requirements.egress_bps == 100_000_000
    assert [(a.network, a.interface) for a in requirements.attachments] == [
        ("backup", "bk0"), ("team/storage", "net1")]


@pytest.mark.parametrize(
    ("ours", "theirs", "says"),
    [
        ("storage", "fast", "interface 'net1' is asked by both netsched.io/networks (network 'storage') "
         "and k8s.v1.cni.cncf.io/networks (team/fast)"),
        ('[{"name": "storage", "interface": "st0"}]', "storage@st1", "network 'storage' is asked by both"),
    ],
)
def test_one_attachment_in_both_annotations_is_refused_saying_which_to_keep(ours, theirs, says):
    with pytest.raises(InvalidAnnotation) as error:
        parse_requirements({annotations.NETWORKS: ours, MULTUS: theirs}, "team")
    message = str(error.value)
    assert message.startswith(f"annotation {MULTUS}=") and says in message
    assert f"keep {MULTUS} when Multus attaches" in message and f"or {annotations.NETWORKS} when" in message


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("[{", "not valid JSON"),
        ('{"name": "storage"}', "the JSON form must be a list"),
        ('["storage"]', "element 1 'storage' must be an object"),
        ("storage,,backup", "element 2 is empty"),
        ("a/b/c", "element 1 'a/b/c' has more than one '/'"),
        ("storage@a@b", "more than one '@'"),
        ("Storage", "element 1 'Storage': name 'Storage' must be lower-case"),
        ("Team/storage", "namespace 'Team' must be lower-case"),
        ("storage@much-too-long-name", "element 1 (team/storage): interface 'much-too-long-name'"),
        ('[{"namespace": "infra"}]', "element 1: name None is not a NetworkAttachmentDefinition name"),
        ('[{"name": "storage", "namespace": "In_Fra"}]', "namespace 'In_Fra' is not a namespace name"),
        ('[{"name": "storage", "bandwith": {}}]', "element 1: unknown key 'bandwith'"),
        ('[{"name": "a", "interface": "net2"}, {"name": "b"}]',
         "element 2 (team/b): interface 'net2' is already used by element 1 (team/a)"),
        ('[{"name": "a", "interface": "eth0"}]', "interface 'eth0' is already the pod's primary interface"),
        ('[{"name": "a", "bandwidth": {"egressRate": "1G"}}]',
         "element 1 (team/a): bandwidth.egressRate '1G' must be a non-negative integer"),
        ('[{"name": "a", "bandwidth": {"ingressRate": 1.5}}]', "bandwidth.ingressRate 1.5 must be"),
        ('[{"name": "a", "bandwidth": {"ingressRate": -1}}]', "bandwidth.ingressRate -1 must be"),
        ('[{"name": "a", "bandwidth": {"ingressRate": 500}}]', "bandwidth.ingressRate 500 is below 1k"),
        ('[{"name": "a", "bandwidth": {"ingressRate": 100000000, "rate": 1}}]', "bandwidth key 'rate' is not one of"),
        ('[{"name": "a", "bandwidth": 5}]', "bandwidth must be an object"),
        ('[{"name": "a", "ips": "10.0.0.5/24"}]', "ips '10.0.0.5/24' must be a list of addresses"),
        ('[{"name": "a", "ips": ["10.0.0.300/24"]}]', "ips '10.0.0.300/24' is not an IP address"),
        ('[{"name": "a", "ips": ["10.0.0.5/24", "fd00::5/64"]}]', "netsched reserves one address per attachment"),
        ('[{"name": "a", "mac": "02:00:00:00:00"}]', "mac '02:00:00:00:00' is not a MAC address"),
        ('[{"name": "a", "mac": "01:00:5e:00:00:01"}]', "is a multicast address"),
        ('[{"name": "a", "mac": 7}]', "mac 7 is not a MAC address"),
        ('[{"name": "a", "default-route": ["gateway"]}]', "default-route 'gateway' is not an IP address"),
        ('[{"name": "a", "default-route": "10.0.0.1"}]', "default-route must be a list"),
        (",".join(f"n{i}" for i in range(17)), "17 networks; the limit is 16 per pod"),
    ],
)
def test_bad_values_name_the_annotation_and_the_element(value, says):
    with pytest.raises(InvalidAnnotation) as error:
        attachments(value)
    message = str(error.value)
    assert message.startswith(f"annotation {MULTUS}={value!r}: ")
    assert says in message


def test_an_oversized_value_is_refused_before_it_is_parsed():
    with pytest.raises(InvalidAnnotation, match="the limit is 16384"):
        attachments("a," * 10_000)


def test_an_empty_value_asks_nothing():
    # Multus treats an empty annotation as no networks (NoK8sNetworkError).
    assert attachments("") == () and attachments("  ") == ()


def test_both_annotations_together_stay_within_the_per_pod_limit():
    ours = ",".join(f"a{i}" for i in range(10))
    theirs = json.dumps([{"name": f"b{i}", "interface": f"m{i}"} for i in range(7)])
    with pytest.raises(InvalidAnnotation, match="10 networks in netsched.io/networks and 7 here; the limit is 16"):
        parse_requirements({annotations.NETWORKS: ours, MULTUS: theirs}, "team")


LABEL_RULE = "lower-case letters, digits and '-', starting and ending alphanumeric (a DNS-1123 label)"
BANDWIDTH_KEYS = "ingressRate, ingressBurst, egressRate, egressBurst"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"name": "storage"}', "the JSON form must be a list of network-selection elements"),
        ("storage@a@b", "element 1 'storage@a@b' has more than one '@'"),
        ("infra/", f"element 1 'infra/': name '' must be {LABEL_RULE}"),
        ("Infra/storage", f"element 1 'Infra/storage': namespace 'Infra' must be {LABEL_RULE}"),
        ('[{"name": 5}]', "element 1: name 5 is not a NetworkAttachmentDefinition name"),
        ('[{"name": "storage", "namespace": "In_Fra"}]', "element 1 ('storage'): namespace 'In_Fra' is not a namespace name"),
        ('[{"name": "a", "interface": "much-too-long-name"}]',
         "element 1 (team/a): interface 'much-too-long-name' is not a valid interface name (1-15 letters, digits, "
         "'_', '.' or '-')"),
        ('[{"name": "a", "speed": 1}]', "element 1: unknown key 'speed' (known: name, namespace, interface, "
         "interfaceRequest, ips, mac, default-route, bandwidth, portMappings, cni-args, infiniband-guid, deviceID)"),
        ('[{"name": "a", "bandwidth": 5}]', f"element 1 (team/a): bandwidth must be an object with {BANDWIDTH_KEYS}"),
        ('[{"name": "a", "bandwidth": {"rate": 1}}]',
         f"element 1 (team/a): bandwidth key 'rate' is not one of {BANDWIDTH_KEYS}"),
        ('[{"name": "a", "bandwidth": {"egressRate": 500}}]',
         "element 1 (team/a): bandwidth.egressRate 500 is below 1k (1 kbit/s), the least Kubernetes and netsched shape"),
        ('[{"name": "a", "ips": ["10.0.0.5/24", "fd00::5/64"]}]',
         "element 1 (team/a): ips ['10.0.0.5/24', 'fd00::5/64']: netsched reserves one address per attachment"),
        ('[{"name": "a", "mac": 7}]', "element 1 (team/a): mac 7 is not a MAC address"),
        ('[{"name": "a", "default-route": ["gateway"]}]', "element 1 (team/a): default-route 'gateway' is not an IP address"),
        ('[{"name": "a", "default-route": [167772161]}]', "element 1 (team/a): default-route 167772161 is not an IP address"),
    ],
)
def test_each_refusal_says_exactly_which_element_and_field(value, reason):
    """Whole reasons: the element's position and network, the field and its value."""
    with pytest.raises(InvalidAnnotation) as error:
        attachments(value)
    assert (error.value.annotation, error.value.value, error.value.reason) == (MULTUS, value, reason)


def test_a_direction_multus_gives_no_rate_is_not_reserved():
    [ingress_only, egress_only, neither] = attachments(json.dumps([
        {"name": "a", "bandwidth": {"ingressRate": 7000}}, {"name": "b", "bandwidth": {"egressRate": 5000}},
        {"name": "c", "bandwidth": {"ingressBurst": 9, "egressBurst": 9}},
    ]))
    assert [(a.ingress_bps, a.egress_bps) for a in (ingress_only, egress_only, neither)] == [
        (7000, 0), (0, 5000), (0, 0)]


def test_limits_are_accepted_at_exactly_their_value_and_an_empty_mac_is_none():
    namespace = "n" * 63  # a DNS-1123 label's longest
    [found] = attachments(f"{namespace}/storage")
    assert found.network == f"{namespace}/storage"
    assert len(attachments(",".join(f"n{i}" for i in range(annotations.MAX_ATTACHMENTS)))) == annotations.MAX_ATTACHMENTS
    [no_mac] = attachments('[{"name": "a", "mac": ""}]')
    assert no_mac.mac is None
