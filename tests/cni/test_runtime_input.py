"""Runtime input as each runtime writes it, bad input as a CNI error, rates across their range.

Key matching follows Go's encoding/json (exact, else case-insensitive by simple folding),
which is how the reference plugins read what containerd writes from Go structs without
json tags (``IngressRate``); CRI-O (ocicni) and Multus write the tagged ``ingressRate``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cni.config import cni_arg, go_fold, parse_cni_args, parse_netconf
from cni.errors import CNIError
from cni.main import run
from tests.cni.lab import Lab, link_names, qdiscs
from tests.cni.runner import PluginError, netsched_cni_binary
from tests.cni.topologies import GBIT, MBIT, lone_node

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cni" / "containerd-1.6"
CONTAINERD = json.loads((FIXTURES / "add.json").read_text())["stdin"]
BASE = {"cniVersion": "1.0.0", "name": "net", "type": "netsched-cni"}
DEEP = b'{"cniVersion": "1.0.0", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def bandwidth_of(conf: dict) -> tuple[int, int, int, int]:
    bw = parse_netconf(json.dumps(conf).encode()).runtime_config.bandwidth
    assert bw is not None
    return bw.ingress_rate, bw.ingress_burst, bw.egress_rate, bw.egress_burst


@pytest.mark.parametrize(("runtime", "bandwidth"), [
    ("containerd (Go struct, no json tags)", {"IngressRate": 50_000_000, "IngressBurst": 2**32 - 1,
                                              "EgressRate": 20_000_000, "EgressBurst": 2**32 - 1}),
    ("CRI-O / Multus (json tags)", {"ingressRate": 50_000_000, "ingressBurst": 2**32 - 1,
                                    "egressRate": 20_000_000, "egressBurst": 2**32 - 1}),
    ("any case Go accepts", {"INGRESSRATE": 50_000_000, "ingressburst": 2**32 - 1,
                             "EgReSsRaTe": 20_000_000, "egreſsBurst": 2**32 - 1}),
])
def test_bandwidth_keys_match_as_in_go(runtime: str, bandwidth: dict) -> None:
    conf = {**BASE, "runtimeConfig": {"Bandwidth": bandwidth}}
    assert bandwidth_of(conf) == (50_000_000, 2**32 - 1, 20_000_000, 2**32 - 1), runtime


def test_the_captured_containerd_config_reads_its_rates() -> None:
    assert bandwidth_of(CONTAINERD) == (50_000_000, 2**32 - 1, 20_000_000, 2**32 - 1)


def test_go_folding_is_simple_folding() -> None:
    assert go_fold("IngressRate") == go_fold("ingressrate") == go_fold("INGRESSRATE")
    assert go_fold("\u212aubeconfig") == go_fold("kubeconfig")  # Kelvin sign folds to k
    assert go_fold("ingreßRate") != go_fold("ingressRate")  # ß has no one-letter upper case
    conf = parse_netconf(json.dumps({**BASE, "StateDir": "/x", "MAXQUEUEMS": 5}).encode())
    assert (conf.state_dir, conf.max_queue_ms) == ("/x", 5)


def test_cni_args_keys_match_ignoring_case() -> None:
    args = parse_cni_args("IgnoreUnknown=1;k8s_pod_namespace=shop;K8S_POD_NAME=web")
    assert cni_arg(args, "K8S_POD_NAMESPACE") == "shop"
    assert cni_arg(args, "K8S_POD_NAME") == "web"
    assert cni_arg(args, "K8S_POD_UID") == ""


@pytest.mark.parametrize(("bandwidth", "says"), [
    ({"IngresRate": 50_000_000}, "runtimeConfig.bandwidth.IngresRate: 50000000 is not a key"),
    ({"ingressRate": "50M"}, "runtimeConfig.bandwidth.ingressRate: '50M'"),
    ({"ingressRate": 5e7}, "runtimeConfig.bandwidth.ingressRate: 50000000.0"),
    ({"egressRate": -1}, "runtimeConfig.bandwidth.egressRate: -1"),
    ({"egressRate": True}, "runtimeConfig.bandwidth.egressRate: True"),
    ({"IngressRate": 7}, "runtimeConfig.bandwidth.ingressRate: 7 is below 1k"),
    ({"egressRate": 10**13 + 1}, "runtimeConfig.bandwidth.egressRate: 10000000000001 exceeds"),
    ("50M", "runtimeConfig.bandwidth: '50M'"),
])
def test_an_unreadable_bandwidth_object_is_an_error_naming_the_key(bandwidth, says) -> None:
    """Never exit 0 having shaped nothing because a key or a type was not understood."""
    with pytest.raises(CNIError) as failure:
        parse_netconf(json.dumps({**BASE, "runtimeConfig": {"bandwidth": bandwidth}}).encode())
    assert failure.value.code == 7
    assert failure.value.msg.startswith(says), failure.value.msg


def test_unknown_attachment_keys_are_refused() -> None:
    from cni.config import parse_attachments

    item = {"network": "s", "interface": "net1", "mode": "macvlan", "parent": "eth1",
            "mac": "02:00:00:00:00:01", "Ingres": 5_000_000}
    with pytest.raises(CNIError) as failure:
        parse_attachments([item])
    assert failure.value.msg.startswith("attachments[0].Ingres: 5000000 is not a key")


def test_deeply_nested_stdin_is_a_decode_error_not_a_traceback() -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/n", "CNI_IFNAME": "eth0"}
    code, out = run(env, DEEP)
    assert code == 1 and json.loads(out)["code"] == 6
    done = subprocess.run([str(netsched_cni_binary())], input=DEEP, capture_output=True,
                          env={**os.environ, **env}, timeout=60, check=False)
    assert done.returncode == 1 and json.loads(done.stdout)["code"] == 6
    assert b"Traceback" not in done.stderr



@pytest.mark.kernel
def test_deeply_nested_stdin_through_the_daemon(lab: Lab) -> None:
    from tests.cni.runner import running_daemon

    node = lone_node(lab)
    path = lab.workdir / "run" / "cni.sock"
    with running_daemon(node.netns, path) as daemon:
        env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/n",
               "CNI_IFNAME": "eth0"}
        config = DEEP[:-1] + f', "socket": "{path}"}}'.encode()
        done = subprocess.run([str(netsched_cni_binary())], input=config, capture_output=True,
                              env=env, timeout=60, check=False)
        assert done.returncode == 1 and json.loads(done.stdout)["code"] == 6, done.stdout
        assert b"Traceback" not in done.stderr
        # the request itself nested past any parser's depth
        from cni.client import exchange

        answer = json.loads(exchange(str(path), b"[" * 100_000))
        assert json.loads(answer["stdout"])["code"] == 6
        assert daemon.process.poll() is None
    assert "Traceback" not in daemon.process.stderr.read()


@pytest.mark.kernel
@pytest.mark.parametrize("rate", [1_000, 40 * GBIT, 10**13], ids=["1k", "40G", "10T"])
def test_every_rate_in_the_range_is_enforced_as_asked(lab: Lab, rate: int) -> None:
    """tc's 64-bit rate: what the extender accepts (1k-10T) the kernel gets, read back."""
    node = lone_node(lab)
    runtime = node.runtime()
    pod, cid, _ = node.pod(runtime, runtime_config={"bandwidth": {"egressRate": rate,
                                                                  "ingressRate": rate}})
    (tbf,) = [q for q in qdiscs(pod, "eth0") if q["kind"] == "tbf"]
    assert tbf["options"]["rate"] * 8 == rate
    ifb = next(n for n in link_names(pod) if n.startswith("nsb"))
    (ifb_tbf,) = [q for q in qdiscs(pod, ifb) if q["kind"] == "tbf"]
    assert ifb_tbf["options"]["rate"] * 8 == rate
    assert ifb_tbf["options"]["burst"] >= 2 * 1514, "a full frame always fits the bucket"
    runtime.check(cid, lab.path(pod))
    runtime.delete(cid, lab.path(pod))


@pytest.mark.kernel
def test_netns_that_is_no_pod_namespace_is_refused(lab: Lab, tmp_path: Path) -> None:
    node = lone_node(lab)
    runtime = node.runtime()
    regular, directory = tmp_path / "file", tmp_path / "dir"
    regular.write_text("")
    directory.mkdir()
    for path, says in ((regular, "is not a network namespace"),
                       (directory, "is not a network namespace"),
                       (Path(lab.path(node.netns)), "is the node's own network namespace")):
        with pytest.raises(PluginError) as failure:
            runtime.invoke("netsched-cni", "ADD", {
                **runtime.conflist["plugins"][-1], "cniVersion": "1.0.0",
                "name": runtime.conflist["name"],
                "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}]},
                "runtimeConfig": {"bandwidth": {"egressRate": 10 * MBIT}}},
                "ctr-netns", str(path), "eth0")
        assert failure.value.code == 4, failure.value.error
        assert failure.value.error["msg"] == f"CNI_NETNS: {str(path)!r} {says}"
        assert "Traceback" not in failure.value.stderr
    assert not {q["kind"] for q in qdiscs(node.netns, "lo")} & {"tbf", "ingress"}


@pytest.mark.kernel
def test_del_of_another_container_leaves_this_ones_shaping(lab: Lab) -> None:
    node = lone_node(lab)
    runtime = node.runtime()
    rates = {"bandwidth": {"ingressRate": 50 * MBIT, "egressRate": 20 * MBIT}}
    pod, cid, result = node.pod(runtime, runtime_config=rates)
    conf = runtime._plugin_conf(runtime.conflist["plugins"][-1], rates, result)
    # netsched-cni's DEL alone: the bridge's DEL removes eth0 whoever asks
    assert runtime.invoke("netsched-cni", "DEL", conf, "ctr-someone-else", lab.path(pod),
                          "eth0") is None
    assert {q["kind"] for q in qdiscs(pod, "eth0")} >= {"tbf", "ingress"}
    assert len([n for n in link_names(pod) if n.startswith("nsb")]) == 1
    runtime.check(cid, lab.path(pod))


@pytest.mark.parametrize(("ip", "gateway", "says"), [
    ("10.20.0.0/24", None, "is the network address of 10.20.0.0/24"),
    ("10.20.0.255/24", None, "is the broadcast address of 10.20.0.0/24"),
    ("10.20.1.255/23", None, "is the broadcast address of 10.20.0.0/23"),
    ("10.20.0.1/24", "10.20.0.1", "is the gateway's address 10.20.0.1"),
    ("fd00::/64", None, "is the network address of fd00::/64"),
])
def test_static_ips_kubernetes_would_refuse_are_refused(ip, gateway, says) -> None:
    from cni.validate import validate_attachments
    from contract.reservation import AttachmentReservation

    attachment = AttachmentReservation.model_validate({
        "network": "s", "interface": "net1", "mode": "macvlan", "parent": "eth1",
        "mac": "02:00:00:00:00:01", "ip": ip, "gateway": gateway})
    with pytest.raises(CNIError) as failure:
        validate_attachments([attachment], "eth0", "reservation.attachments")
    assert failure.value.msg == f"reservation.attachments[0].ip: {ip!r} {says}"
    # the neighbours of each refused address are hosts
    for fine in ("10.20.0.2/24", "10.20.0.254/24", "10.20.0.255/23", "10.20.0.0/31"):
        validate_attachments([attachment.model_copy(update={"ip": fine})], "eth0", "x")
