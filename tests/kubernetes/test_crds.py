"""The CRDs come from the models, are structural, accept the samples and reject bad objects."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from contract.objects import BandwidthPolicy, Network, NodeNetwork
from netsched import crds
from tests.kube_api import FakeKubeAPI, kube_api  # noqa: F401 - the fake API server fixture

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def committed() -> dict[str, dict[str, Any]]:
    documents = list(yaml.safe_load_all((DEPLOY / "base" / "crds.yaml").read_text()))
    return {d["spec"]["names"]["kind"]: d for d in documents}


def openapi_schema(kind: str) -> dict[str, Any]:
    return committed()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def as_json_schema(node: Any) -> Any:
    """OpenAPI v3.0 → JSON Schema: ``nullable: true`` means ``null`` is also allowed."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        result["type"] = [node["type"], "null"]
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
    return result


def verdict(kind: str, obj: dict[str, Any]) -> str | None:
    """None when the API server's schema accepts ``obj``, else the first complaint."""
    validator = jsonschema.Draft7Validator(as_json_schema(openapi_schema(kind)))
    errors = list(validator.iter_errors(obj))
    return " | ".join(sorted(e.message for e in errors)) if errors else None


def samples(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((DEPLOY / "samples" / name).read_text()))


def test_the_committed_file_is_what_the_models_generate():
    assert (DEPLOY / "base" / "crds.yaml").read_text() == crds.render(), (
        "deploy/base/crds.yaml is stale: "
        "run python -m netsched.crds > deploy/base/crds.yaml"
    )


def test_the_schemas_are_structural():
    def walk(node: dict[str, Any], where: str, in_junctor: bool = False) -> None:
        assert "$ref" not in node and "$defs" not in node, where
        if in_junctor:
            assert not {"type", "description", "nullable", "default"} & set(node), where
        else:
            assert "type" in node, f"{where} has no type"
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, f"{where}.{name}", in_junctor)
        if "items" in node:
            walk(node["items"], f"{where}[]", in_junctor)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}.*", in_junctor)
        for branch in node.get("anyOf", []):
            walk(branch, f"{where}|", in_junctor=True)
            for name in branch.get("properties", {}):
                assert name in node["properties"], f"{where}: anyOf names unknown {name}"

    for kind in ("Network", "NodeNetwork", "BandwidthPolicy"):
        walk(openapi_schema(kind), kind)
    for kind in ("NodeNetwork", "BandwidthPolicy"):
        assert committed()[kind]["spec"]["versions"][0]["subresources"] == {"status": {}}
    assert {kind: d["spec"]["scope"] for kind, d in committed().items()} == {
        "NodeNetwork": "Cluster", "Network": "Cluster", "BandwidthPolicy": "Namespaced"}


@pytest.mark.parametrize("sample", samples("networks.yaml"), ids=lambda s: s["metadata"]["name"])
def test_sample_networks_are_accepted_by_the_schema_and_the_model(sample):
    assert verdict("Network", sample) is None
    Network.model_validate(sample)


def test_the_sample_bandwidth_policy_is_accepted_and_bad_quantities_are_not():
    (sample,) = samples("bandwidthpolicy.yaml")
    assert verdict("BandwidthPolicy", sample) is None
    BandwidthPolicy.model_validate(sample)
    for bad in ("-1G", "1 G", "10Gbps", "1e9"):
        wrong = copy.deepcopy(sample)
        wrong["spec"]["hard"]["egress"] = bad
        assert "does not match" in (verdict("BandwidthPolicy", wrong) or ""), bad
        with pytest.raises(ValidationError, match="spec.hard.egress"):
            BandwidthPolicy.model_validate(wrong)
    columns = {c["name"]: c["jsonPath"] for c in
               committed()["BandwidthPolicy"]["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Egress Used"] == ".status.used.egress" and columns["Egress Hard"] == ".status.hard.egress"


def test_the_sample_node_network_is_accepted():
    (sample,) = samples("nodenetwork.yaml")
    assert verdict("NodeNetwork", sample) is None
    NodeNetwork.model_validate(sample)


def test_the_sample_node_network_loads_as_its_header_says(kube_api: FakeKubeAPI):
    """The status subresource drops ``status`` from a create (so a plain ``kubectl apply`` would
    store an empty report); the two commands of the sample's header store it as shown."""
    (sample,) = samples("nodenetwork.yaml")
    collection = f"{kube_api.url}/apis/netsched.io/v1alpha1/nodenetworks"
    created = httpx.post(collection, json=sample)
    assert created.status_code == 201 and "status" not in created.json()
    patched = httpx.patch(  # kubectl sends the YAML file as JSON
        f"{collection}/node-a-1/status", content=json.dumps(sample).encode(),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    stored = kube_api.get("/apis/netsched.io/v1alpha1/nodenetworks/node-a-1")
    assert stored is not None and stored["status"] == sample["status"]


VLAN = {
    "apiVersion": "netsched.io/v1alpha1",
    "kind": "Network",
    "metadata": {"name": "n"},
    "spec": {"mode": "vlan", "vlan": 100, "subnet": "10.20.0.0/16", "gateway": "10.20.0.1"},
}


def network(**spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(VLAN)
    for key, value in spec.items():
        if value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    return obj


GOOD_NETWORKS = {
    "lowest vlan": network(vlan=1),
    "highest vlan": network(vlan=4094),
    "vxlan": network(mode="vxlan", vlan=None, vni=16777215, port=4789),
    "macvlan": network(mode="macvlan", vlan=None),
    "ipv6": network(subnet="fd00:10::/64", gateway="fd00:10::1"),
    "ipv6 with v4 tail": network(subnet="::ffff:0:0/96", gateway="::ffff:10.0.0.1"),
    "host route": network(subnet="10.20.0.5/32", gateway=None),
    "no subnet": network(subnet=None, gateway=None),
    "null mtu": network(mtu=None),
}

BAD_NETWORKS = {
    "vlan 0": (network(vlan=0), "0 is less than the minimum of 1"),
    "vlan 4095": (network(vlan=4095), "4095 is greater than the maximum of 4094"),
    "vni too big": (network(mode="vxlan", vlan=None, vni=16777216), "greater than the maximum"),
    "unknown mode": (network(mode="bridge"), "'bridge' is not one of"),
    "vlan mode without vlan": (network(vlan=None), "is not valid under any of the given schemas"),
    "vxlan mode without vni": (network(mode="vxlan", vlan=None), "is not valid under any"),
    "prefix 33": (network(subnet="10.0.0.0/33", gateway=None), "does not match"),
    "not an address": (network(subnet="banana/24", gateway=None), "does not match"),
    "octet 300": (network(subnet="300.1.1.0/24", gateway=None), "does not match"),
    "bad gateway": (network(gateway="10.20.0.256"), "does not match"),
    "ipv6 prefix 129": (network(subnet="fd00::/129", gateway=None), "does not match"),
    "ipv6 two gaps": (network(subnet="fd00::1::/64", gateway=None), "does not match"),
    "unknown role": (network(role="gpu"), "'gpu' is not one of"),
    "tiny mtu": (network(mtu=60), "60 is less than the minimum of 68"),
    "no spec": ({k: v for k, v in VLAN.items() if k != "spec"}, "'spec' is a required property"),
}


@pytest.mark.parametrize("obj", GOOD_NETWORKS.values(), ids=GOOD_NETWORKS.keys())
def test_good_networks_pass_schema_and_model_alike(obj):
    assert verdict("Network", obj) is None
    Network.model_validate(obj)


@pytest.mark.parametrize(("obj", "complaint"), BAD_NETWORKS.values(), ids=BAD_NETWORKS.keys())
def test_bad_networks_are_rejected_by_schema_and_model_alike(obj, complaint):
    found = verdict("Network", obj)
    assert found is not None and complaint in found, found
    with pytest.raises(ValidationError):
        Network.model_validate(obj)


def test_the_api_is_stricter_than_the_model_about_types_and_prefixes():
    """The model reads leniently ("100" as 100, a bare address as a /32); the API server
    refuses both at the door, so what is stored is always what the model means."""
    assert "'100' is not of type 'integer'" in verdict("Network", network(vlan="100"))
    assert "does not match" in verdict("Network", network(subnet="10.0.0.0", gateway=None))
    Network.model_validate(network(vlan="100"))
    Network.model_validate(network(subnet="10.0.0.0", gateway=None))


def test_what_only_the_model_catches_is_known():
    """Rules across addresses (host bits, gateway inside the subnet) are beyond a schema:
    the API stores such a Network and the extender ignores it with a warning."""
    for obj in (network(subnet="10.20.0.1/16"), network(gateway="10.99.0.1")):
        assert verdict("Network", obj) is None
        with pytest.raises(ValidationError):
            Network.model_validate(obj)


def node_network(**interface: Any) -> dict[str, Any]:
    (sample,) = samples("nodenetwork.yaml")
    sample["status"]["interfaces"][0].update(interface)
    return sample


BAD_NODE_NETWORKS = {
    "vlan 0": (node_network(vlans=[0]), "0 is less than the minimum of 1"),
    "vlan 4095": (node_network(vlans=[100, 4095]), "greater than the maximum of 4094"),
    "negative speed": (node_network(speedMbps=-1), "-1 is less than the minimum of 0"),
    "long name": (node_network(name="a-sixteen-chars!"), "is too long"),
    "empty name": (node_network(name=""), "should be non-empty"),
    "unknown role": (node_network(role="wifi"), "'wifi' is not one of"),
    "vni 0": (node_network(vnis=[0]), "0 is less than the minimum of 1"),
}


@pytest.mark.parametrize(
    ("obj", "complaint"), BAD_NODE_NETWORKS.values(), ids=BAD_NODE_NETWORKS.keys()
)
def test_bad_node_networks_are_rejected_by_schema_and_model_alike(obj, complaint):
    found = verdict("NodeNetwork", obj)
    assert found is not None and complaint in found, found
    with pytest.raises(ValidationError):
        NodeNetwork.model_validate(obj)


def test_nullable_fields_accept_null():
    assert verdict("NodeNetwork", node_network(mac=None)) is None
    assert verdict("Network", network(mtu=None, role=None) | {}) is None


def test_a_construct_without_a_structural_form_is_refused_by_name():
    with pytest.raises(crds.SchemaError, match=r"spec.x: cannot express the union"):
        crds.structural({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {}, "spec.x")
