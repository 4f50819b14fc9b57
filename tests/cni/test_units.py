"""The plugin's pure parts: config parsing, validation, bucket sizing, names, result formats."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from cni.config import Environment, Result, parse_netconf
from cni.errors import CNIError
from cni.main import run
from cni.segments import segment_name
from cni.shaping import ifb_name, plan_bucket
from cni.validate import validate_attachments, vxlan_group
from contract.reservation import AttachmentReservation
from tests.cni.runner import netsched_cni_binary

BASE = {"cniVersion": "1.0.0", "name": "net", "type": "netsched-cni"}


def att(**fields) -> AttachmentReservation:
    body = {"network": "s", "interface": "net1", "mode": "vxlan", "vni": 10, "parent": "eth1",
            "mac": "02:00:00:00:00:01", "ip": "10.0.0.2/24"}
    return AttachmentReservation.model_validate({**body, **fields})


def test_netconf_errors_name_the_field_and_value() -> None:
    with pytest.raises(CNIError) as failure:
        parse_netconf(json.dumps({**BASE, "runtimeConfig": {"bandwidth": {"ingressRate": -1}}}))
    assert failure.value.code == 7
    assert failure.value.msg.startswith("runtimeConfig.bandwidth.ingressRate: -1")
    with pytest.raises(CNIError) as failure:
        parse_netconf(b"{not json")
    assert failure.value.code == 6
    with pytest.raises(CNIError) as failure:
        parse_netconf(json.dumps({**BASE, "cniVersion": "0.2.0"}))
    assert failure.value.code == 1
    with pytest.raises(CNIError) as failure:
        parse_netconf(json.dumps({**BASE, "maxQueueMs": 0}))
    assert failure.value.msg.startswith("maxQueueMs: 0")


@pytest.mark.parametrize(("fields", "message"), [
    ({"mode": "vlan", "vlan": 5000}, "x[0].vlan: 5000"),
    ({"mode": "vlan", "vlan": None}, "x[0].vlan: None"),
    ({"vni": 0}, "x[0].vni: 0"),
    ({"vni": 16_777_216}, "x[0].vni: 16777216"),
    ({"port": 70000}, "x[0].port: 70000"),
    ({"group": "10.0.0.1"}, "x[0].group: '10.0.0.1'"),
    ({"group": "ff05::100"}, "x[0].group: 'ff05::100'"),
    ({"mac": "02:00:00:00:00"}, "x[0].mac: '02:00:00:00:00'"),
    ({"mac": "00:00:00:00:00:00"}, "x[0].mac: '00:00:00:00:00:00'"),
    ({"ip": "10.0.0.2"}, "x[0].ip: '10.0.0.2'"),
    ({"ip": "10.0.0.999/24"}, "x[0].ip: '10.0.0.999/24'"),
    ({"interface": "eth0"}, "x[0].interface: 'eth0'"),
    ({"interface": "a-name-far-too-long"}, "x[0].interface: 'a-name-far-too-long'"),
    ({"parent": "bad name"}, "x[0].parent: 'bad name'"),
    ({"mtu": 20}, "x[0].mtu: 20"),
])
def test_attachment_validation(fields: dict, message: str) -> None:
    with pytest.raises(CNIError) as failure:
        validate_attachments([att(**fields)], "eth0", "x")
    assert failure.value.msg.startswith(message)
    assert failure.value.code == 7


@pytest.mark.parametrize("fields", [
    {"mode": "vlan", "vlan": 1}, {"mode": "vlan", "vlan": 4094},
    {"vni": 1}, {"vni": 16_777_215}, {"port": 1}, {"port": 65535}, {"group": "239.1.2.3"},
    {"mtu": 68}, {"mtu": 65535}, {"ip": "10.0.0.255/23"}, {"ip": "10.0.0.1/31"},
    {"mac": "02:00:00:00:00:00"}, {"mode": "macvlan", "vni": None, "ip": None},
])
def test_valid_attachments_pass(fields: dict) -> None:
    """A validator accepts by raising nothing, so "nothing raised" is the claim here: each
    case is one value at the edge of a range whose other side ``test_attachment_validation``
    refuses (VLAN 1 and 4094, VNI 1 and 16,777,215, MTU 68, a /23 host ending in .255...)."""
    assert validate_attachments([att(**fields)], "eth0", "x") is None


def test_bucket_is_bounded_by_the_queue_time() -> None:
    containerd = plan_bucket(10_000_000, 2**32 - 1, 25, 1500)
    assert containerd.limit_bytes == 31_250  # 25 ms at 10 Mbit/s
    assert containerd.burst_bytes == 31_250 and containerd.burst_clamped
    default = plan_bucket(1_000_000_000, 0, 25, 1500)
    assert default.burst_bytes == 3_125_000 and not default.burst_clamped  # 25 ms at 1 Gbit/s
    small = plan_bucket(1_000_000_000, 2_000_000, 25, 1500)  # 2 ms asked: 25 ms given
    assert small.burst_bytes == 3_125_000 and small.burst_clamped
    tight = plan_bucket(1_000_000_000, 0, 5, 1500)
    assert tight.limit_bytes == tight.burst_bytes == 625_000
    slow = plan_bucket(100_000, 0, 25, 1500)
    assert slow.limit_bytes == slow.burst_bytes == 2 * 1514  # never below two frames
    assert slow.describe()["queueMs"] == pytest.approx(242.24)
    fast = plan_bucket(40_000_000_000, 0, 25, 1500)  # past tbf's 32-bit rate: RATE64
    assert fast.rate_bytes == 5_000_000_000 and fast.limit_bytes == 125_000_000
    fastest = plan_bucket(10**13, 0, 25, 1500)  # 31 GB of queue: capped at the 32-bit limit
    assert fastest.limit_bytes == fastest.burst_bytes == 2**32 - 1


def test_names_are_deterministic_and_short() -> None:
    assert ifb_name("abc", "eth0") == ifb_name("abc", "eth0") != ifb_name("abc", "net1")
    assert len(ifb_name("x" * 64, "eth0")) <= 15
    assert segment_name(att(vni=16_777_215)) == "nsx16777215"
    assert segment_name(att(mode="vlan", vlan=7, parent="eth1")) == "eth1.7"
    long_parent = segment_name(att(mode="vlan", vlan=4094, parent="enp0s31f6uplnk"))
    assert long_parent is not None and long_parent.startswith("nsv4094-") and len(long_parent) <= 15
    assert segment_name(att(mode="macvlan")) is None
    assert vxlan_group(100) == "239.0.0.100" and vxlan_group(16_777_215) == "239.255.255.255"


def test_result_formats() -> None:
    result = Result.model_validate({"cniVersion": "0.4.0", "interfaces": [{"name": "eth0",
                                    "mtu": 1500, "sandbox": "/x"}],
                                    "ips": [{"version": "4", "address": "10.0.0.2/24"},
                                            {"address": "fd00::2/64"}],
                                    "dns": {}, "custom": 1})
    legacy = result.render("0.3.1")
    assert [ip["version"] for ip in legacy["ips"]] == ["4", "6"]
    assert "mtu" not in legacy["interfaces"][0] and legacy["custom"] == 1
    current = result.render("1.0.0")
    assert all("version" not in ip for ip in current["ips"])
    assert current["interfaces"][0]["mtu"] == 1500 and current["cniVersion"] == "1.0.0"


def test_environment_validation() -> None:
    good = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/n", "CNI_IFNAME": "eth0",
            "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web;junk"}
    env = Environment.from_environ(good)
    assert env.args == {"IgnoreUnknown": "1", "K8S_POD_NAME": "web"}
    for key, value in [("CNI_CONTAINERID", "../etc"), ("CNI_IFNAME", "a/b"), ("CNI_NETNS", ""),
                       ("CNI_COMMAND", "")]:
        with pytest.raises(CNIError) as failure:
            Environment.from_environ({**good, key: value})
        assert failure.value.code == 4


def test_run_reports_errors_as_json() -> None:
    code, out = run({"CNI_COMMAND": "BOGUS", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0",
                     "CNI_NETNS": "/n"}, json.dumps(BASE).encode())
    assert code == 1
    assert json.loads(out) == {"cniVersion": "1.0.0", "code": 4,
                               "msg": "CNI_COMMAND: 'BOGUS' is not a CNI verb"}
    code, out = run({"CNI_COMMAND": "VERSION"}, b"")
    assert code == 0 and json.loads(out)["cniVersion"] == "1.1.0"


@pytest.mark.parametrize(("argv", "code", "stream"), [(["--help"], 0, "stdout"),
                                                       (["add"], 2, "stderr")])
def test_a_person_gets_the_usage_without_the_plugin_waiting_on_stdin(
        argv: list[str], code: int, stream: str) -> None:
    with subprocess.Popen([str(netsched_cni_binary()), *argv], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as plugin:
        assert plugin.wait(timeout=20) == code  # stdin stays open: it must not be read
        output = getattr(plugin, stream).read()
    assert "netsched-cni daemon" in output and "netsched-cni install" in output


def test_the_applied_shaping_as_the_result_reports_it() -> None:
    """``describe`` is what the CNI result's ``netsched.io/shaping`` entry and the docs show:
    every field by its exact name, the burst in bits, the queue in bytes and milliseconds."""
    bucket = plan_bucket(10_000_000, 2**32 - 1, 25, 1500)
    assert bucket.describe() == {"rate": 10_000_000, "burst": 250_000, "queueBytes": 31_250,
                                 "queueMs": 25.0, "burstClamped": True}
    slow = plan_bucket(300_000, 0, 25, 1500)  # two frames at 300 kbit/s: 80.746666… ms
    assert slow.describe()["queueMs"] == 80.75


def test_what_was_asked_is_kept_and_clamping_compares_whole_bytes() -> None:
    asked = plan_bucket(10_000_000, 2_000_000, 25, 1500)
    assert asked.requested_burst_bits == 2_000_000
    # 250,004 bits is 31,250 whole bytes: exactly the 25 ms bucket, so nothing was clamped
    exact = plan_bucket(10_000_000, 31_250 * 8 + 4, 25, 1500)
    assert exact.burst_bytes == 31_250 and not exact.burst_clamped


def test_an_ifb_name_is_nsb_and_eleven_hex_digits_of_the_container_and_interface() -> None:
    """14 characters: within IFNAMSIZ (15) and the same name at DEL as at ADD."""
    digest = hashlib.sha256(b"abc/eth0").hexdigest()
    assert ifb_name("abc", "eth0") == f"nsb{digest[:11]}"
