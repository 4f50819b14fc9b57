"""The DRA kubelet plugin over real unix sockets, called as the v1.36 kubelet calls it.

The kubelet's plugin watcher finds the registration socket, asks GetInfo and reports
with NotifyRegistrationStatus; its DRA manager then calls NodePrepareResources and
NodeUnprepareResources on the endpoint GetInfo named (``tests/cni/dra_objects.Kubelet``).
Claims are read over HTTP from the in-test API server (``tests/kube_api``) with the
allocation kube-scheduler writes. The node's links are given as a list here (the kernel
test, ``test_dra_enforcement.py``, reads them from a real namespace through the daemon).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from cni import kubelet_plugin
from cni.kube import fetch_claim
from cni.state import StateDir
from contract.dra import DRIVER, device_name
from kubernetes_access import api_client
from tests.cni.dra_objects import CLAIMS, Kubelet, allocated_claim
from tests.kube_api.server import FakeKubeAPI

NODE = "node-a-1"
LINKS = ["lo", "eth0", "eth1.100"]


@pytest.fixture
def kube_api() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as api:
        yield api


@pytest.fixture
def node(kube_api: FakeKubeAPI, tmp_path: Path) -> Iterator[tuple[Kubelet, StateDir]]:
    """The plugin serving on its sockets, and a kubelet that registered it."""
    api = api_client(kube_api.write_kubeconfig(tmp_path / "kubeconfig"), retries=0)
    state = StateDir(str(tmp_path / "state"))
    plugin = kubelet_plugin.KubeletPlugin(node=NODE, state=state,
                                          read_claim=partial(fetch_claim, api),
                                          local_interfaces=lambda: LINKS)
    serving = kubelet_plugin.serve(plugin, str(tmp_path / "registry"), str(tmp_path / "plugin"))
    try:
        kubelet = Kubelet(tmp_path / "registry")
        kubelet.register()
        yield kubelet, state
    finally:
        serving.stop()


def seed(kube_api: FakeKubeAPI, **claim: object) -> dict:
    namespace = str(claim.pop("namespace", "shop"))
    name = str(claim.pop("name", "web-bandwidth"))
    claim.setdefault("node", NODE)
    claim.setdefault("device", "eth0")
    claim.setdefault("consumed", {"egress": "4G", "ingress": "1G"})
    return kube_api.seed(CLAIMS.format(namespace=namespace),
                         allocated_claim(namespace, name, **claim))  # type: ignore[arg-type]


def test_registration_answers_what_the_kubelet_checks(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """GetInfo: type DRAPlugin, the driver's name, the DRA socket as endpoint, and the v1
    service the kubelet picks; the kubelet's verdict is logged."""
    state = StateDir(str(tmp_path / "state"))
    plugin = kubelet_plugin.KubeletPlugin(NODE, state, read_claim=lambda ns, n: None,  # type: ignore[arg-type,return-value]
                                          local_interfaces=lambda: LINKS)
    serving = kubelet_plugin.serve(plugin, str(tmp_path / "registry"), str(tmp_path / "plugin"))
    try:
        registration_socket = tmp_path / "registry" / "netsched.io-reg.sock"
        assert registration_socket.is_socket()
        assert registration_socket.stat().st_mode & 0o777 == 0o600
        with caplog.at_level(logging.INFO, "netsched.cni.kubelet_plugin"):
            info = Kubelet(tmp_path / "registry").register()
        assert (info.type, info.name) == ("DRAPlugin", DRIVER)
        assert info.endpoint == str(tmp_path / "plugin" / "dra.sock")
        assert list(info.supported_versions) == ["v1.DRAPlugin"]
        assert "the kubelet registered DRA driver netsched.io" in caplog.text
    finally:
        serving.stop()
    assert not registration_socket.exists() and not (tmp_path / "plugin" / "dra.sock").exists()


def test_prepare_records_the_allocation_and_unprepare_drops_it(
        kube_api: FakeKubeAPI, node: tuple[Kubelet, StateDir]) -> None:
    kubelet, state = node
    claim = seed(kube_api, consumed={"egress": "4G", "ingress": "1500M"})
    response = kubelet.prepare(claim)
    answer = response.claims[claim["metadata"]["uid"]]
    assert answer.error == ""
    (device,) = answer.devices
    assert (list(device.request_names), device.pool_name, device.device_name) == (
        ["bandwidth"], NODE, "eth0")
    assert list(device.cdi_device_ids) == []
    prepared = state.prepared_claim("shop", "web-bandwidth")
    assert prepared is not None and prepared.uid == claim["metadata"]["uid"]
    (record,) = prepared.devices
    result = claim["status"]["allocation"]["devices"]["results"][0]
    assert (record.interface, record.egress, record.ingress, record.share_id) == (
        "eth0", 4_000_000_000, 1_500_000_000, result["shareID"])

    kubelet.unprepare(claim)
    assert state.prepared_claim("shop", "web-bandwidth") is None
    assert kubelet.unprepare(claim).claims[claim["metadata"]["uid"]].error == "", "idempotent"


def test_a_device_named_after_an_interface_that_is_no_dns_label(
        kube_api: FakeKubeAPI, node: tuple[Kubelet, StateDir]) -> None:
    """The publisher names eth1.100's device with contract.dra.device_name; Prepare finds
    the interface back from that name."""
    kubelet, state = node
    claim = seed(kube_api, device=device_name("eth1.100"), consumed={"egress": "10M", "ingress": "0"})
    assert kubelet.prepare(claim).claims[claim["metadata"]["uid"]].error == ""
    prepared = state.prepared_claim("shop", "web-bandwidth")
    assert prepared is not None
    assert (prepared.devices[0].interface, prepared.devices[0].ingress) == ("eth1.100", 0)


FIELD = "status.allocation.devices.results[0]"


@pytest.mark.parametrize(("claim", "error"), [
    ({"node": "node-b-2"},
     f"{FIELD}.pool: 'node-b-2' is not this node 'node-a-1' (netsched's pool of a node is the "
     "node's name)"),
    ({"device": "eth9"}, f"{FIELD}.device: 'eth9' is no interface of node 'node-a-1' (it has "
     "eth0, eth1.100, lo)"),
    ({"consumed": {"egress": "fast", "ingress": "1G"}},
     f"{FIELD}.consumedCapacity.egress: 'fast' is not a Kubernetes quantity"),
    ({"consumed": {"egress": "1G", "ingress": "20T"}},
     f"{FIELD}.consumedCapacity.ingress: '20T' exceeds the 10T (10 Tbit/s) limit"),
    ({"consumed": {"egress": "500", "ingress": "1G"}},
     f"{FIELD}.consumedCapacity.egress: '500' is below 1k (1 kbit/s)"),
    ({"consumed": None}, f"{FIELD}.consumedCapacity: missing"),
    ({"driver": "gpu.example.com"},
     "status.allocation.devices.results: no device of driver netsched.io"),
])
def test_a_claim_netsched_cannot_enforce_gets_an_error_naming_field_and_value(
        kube_api: FakeKubeAPI, node: tuple[Kubelet, StateDir], claim: dict, error: str) -> None:
    """Each answer names the claim, the field and the value; the kubelet then keeps the
    pod from starting and asks again. A good claim in the same call is still prepared."""
    kubelet, state = node
    bad = seed(kube_api, name="bad", **claim)
    good = seed(kube_api, name="good")
    response = kubelet.prepare(bad, good)
    said = response.claims[bad["metadata"]["uid"]]
    assert said.error.startswith(f"ResourceClaim shop/bad: {error}"), said.error
    assert not said.devices
    assert response.claims[good["metadata"]["uid"]].error == ""
    assert state.prepared_claim("shop", "bad") is None
    assert state.prepared_claim("shop", "good") is not None


def test_a_claim_not_allocated_or_gone_or_replaced(kube_api: FakeKubeAPI,
                                                   node: tuple[Kubelet, StateDir]) -> None:
    kubelet, state = node
    pending = seed(kube_api, name="pending")
    stored = kube_api.get(f"{CLAIMS.format(namespace='shop')}/pending")
    assert stored is not None
    kube_api.delete(f"{CLAIMS.format(namespace='shop')}/pending")
    stored.pop("metadata")
    stored["status"] = {}
    kube_api.seed(CLAIMS.format(namespace="shop"), {"metadata": {"name": "unallocated",
                                                                 "namespace": "shop"},
                                                    "spec": stored["spec"]})
    unallocated = kube_api.get(f"{CLAIMS.format(namespace='shop')}/unallocated")
    assert unallocated is not None
    answers = kubelet.prepare(pending, unallocated).claims
    assert answers[pending["metadata"]["uid"]].error == (
        "ResourceClaim shop/pending: not found (API answered 404)")
    assert answers[unallocated["metadata"]["uid"]].error == (
        "ResourceClaim shop/unallocated: status.allocation: missing (the claim is not allocated)")

    replaced = seed(kube_api, name="pending")  # same name, a new claim: another UID
    old = {**pending, "metadata": {**replaced["metadata"], "uid": pending["metadata"]["uid"]}}
    assert kubelet.prepare(old).claims[pending["metadata"]["uid"]].error == (
        f"ResourceClaim shop/pending: metadata.uid: {replaced['metadata']['uid']!r} is not the "
        f"claim the kubelet prepares ({pending['metadata']['uid']!r}): it was replaced")
    assert state.prepared_claim("shop", "pending") is None


def test_unprepare_of_an_older_claim_keeps_the_newer_ones_record(
        kube_api: FakeKubeAPI, node: tuple[Kubelet, StateDir]) -> None:
    """The kubelet unprepares a deleted claim after a new one of the same name was prepared
    (a pod re-created from its template): the newer record stays."""
    kubelet, state = node
    first = seed(kube_api)
    kube_api.delete(f"{CLAIMS.format(namespace='shop')}/web-bandwidth")
    second = seed(kube_api)
    assert kubelet.prepare(second).claims[second["metadata"]["uid"]].error == ""
    kubelet.unprepare(first)
    prepared = state.prepared_claim("shop", "web-bandwidth")
    assert prepared is not None and prepared.uid == second["metadata"]["uid"]


def test_an_unreachable_api_is_a_per_claim_error(kube_api: FakeKubeAPI,
                                                 node: tuple[Kubelet, StateDir]) -> None:
    kubelet, _ = node
    claim = seed(kube_api)
    kube_api.pause()
    error = kubelet.prepare(claim).claims[claim["metadata"]["uid"]].error
    assert error.startswith("ResourceClaim shop/web-bandwidth: cannot be read (API unreachable)")
