"""deploy/dra/'s DeviceClass and sample claims, their CEL evaluated with cel-python against
the devices netsched publishes, as kube-scheduler's DRA allocator evaluates them.

The allocator gives each selector a ``device`` with ``driver``, and ``attributes``
keyed by domain, then by name: an attribute published without a domain (all of
netsched's) is in the driver's own (``device.attributes["netsched.io"].zone``). It
evaluates the class's selectors first and then the request's, and a device is a candidate
only when each is true, in that order: a device of another driver stops at the class's
and is never asked about netsched's attributes. (``device.capacity``, quantities in the
real environment, is not modelled: no selector here reads it.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from bandwidth_accounting.devices import node_devices
from bandwidth_accounting.settings import CapacitySettings
from contract import dra
from contract.objects import Network, Node, NodeNetwork
from topology.graph import Topology

DRA_DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "dra"
ENVIRONMENT = celpy.Environment()


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def programs(selectors: list[dict[str, Any]]) -> list[celpy.Runner]:
    return [ENVIRONMENT.program(ENVIRONMENT.compile(s["cel"]["expression"])) for s in selectors]


(DEVICE_CLASS,) = [d for d in documents(DRA_DEPLOY / "deviceclass.yaml") if d["kind"] == "DeviceClass"]
CLASS_SELECTORS = programs(DEVICE_CLASS["spec"]["selectors"])
SAMPLES = {d["metadata"]["name"]: d for d in documents(DRA_DEPLOY / "samples" / "claims.yaml")}


def request_selectors(name: str) -> list[celpy.Runner]:
    sample = SAMPLES[name]
    spec = sample["spec"]["spec"] if sample["kind"] == "ResourceClaimTemplate" else sample["spec"]
    (request,) = spec["devices"]["requests"]
    assert request["exactly"]["deviceClassName"] == DEVICE_CLASS["metadata"]["name"] == dra.DEVICE_CLASS
    return programs(request["exactly"]["selectors"])


def cel_device(device: dra.Device, driver: str = dra.DRIVER) -> Any:
    attributes = {
        name: next(v for v in (value.string, value.integer, value.boolean, value.version) if v is not None)
        for name, value in device.attributes.items()
    }
    return celpy.json_to_cel({"driver": driver, "attributes": {driver: attributes}})


def selected(device: Any, selectors: list[celpy.Runner]) -> bool:
    for program in [*CLASS_SELECTORS, *selectors]:
        result = program.evaluate({"device": device})
        assert isinstance(result, celpy.celtypes.BoolType), f"the CEL did not evaluate: {result!r}"
        if not result:
            return False
    return True


def published(zone: str, networks: dict[str, int]) -> dict[str, dra.Device]:
    """The devices of a node in ``zone`` whose eth1 trunks the VLANs of ``networks``."""
    node = Node.model_validate({"metadata": {"name": "n1", "uid": "u1", "labels": {"topology.kubernetes.io/zone": zone}}})
    report = NodeNetwork.model_validate({"metadata": {"name": "n1"}, "status": {"interfaces": [
        {"name": "eth0", "role": "pod", "speedMbps": 10_000},
        {"name": "eth1", "role": "storage", "speedMbps": 25_000, "vlans": sorted(networks.values())},
    ]}})
    objects = [Network.model_validate({"metadata": {"name": name}, "spec": {"mode": "vlan", "vlan": vlan}})
               for name, vlan in networks.items()]
    built = node_devices(Topology([node], [report], objects), "n1", CapacitySettings())
    return {device.name: device for device in built.slice.spec.devices}


def test_the_class_selects_every_netsched_device_and_no_other_drivers():
    devices = published("eu-1a", {"storage": 100})
    assert all(selected(cel_device(d), []) for d in devices.values())
    assert not selected(cel_device(devices["eth0"], driver="gpu.example.com"), [])


def test_the_template_selects_by_zone():
    selectors = request_selectors("web-bandwidth")
    assert all(selected(cel_device(d), selectors) for d in published("eu-1a", {}).values())
    assert not any(selected(cel_device(d), selectors) for d in published("eu-1b", {}).values())


@pytest.mark.parametrize(("networks", "chosen"), [
    ({"storage": 100}, {"eth1"}),
    ({"storage-2": 100, "backup": 200}, set()),  # a longer name that starts alike is not "storage"
    ({"backup": 200, "storage": 100}, {"eth1"}),
])
def test_the_claim_selects_an_interface_carrying_its_network_exactly(networks, chosen):
    selectors = request_selectors("db-storage-bandwidth")
    devices = published("eu-1a", networks)
    assert {name for name, d in devices.items() if selected(cel_device(d), selectors)} == chosen


def test_another_drivers_device_never_reaches_netscheds_attributes():
    """Its attributes are in its own domain: asked about netsched.io's, the CEL would fail;
    the class's selector turns it away first, as the allocator evaluates in that order."""
    other = cel_device(published("eu-1a", {"storage": 100})["eth1"], driver="gpu.example.com")
    (request,) = request_selectors("db-storage-bandwidth")
    with pytest.raises(celpy.CELEvalError, match="no such key"):
        request.evaluate({"device": other})
    assert not selected(other, [request])
