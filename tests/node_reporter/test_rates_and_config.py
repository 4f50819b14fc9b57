"""Rates from counter samples, and settings merged from file, env and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.objects import InterfaceRole
from node_reporter.config import ConfigError, ReporterConfig, load_config
from node_reporter.main import main
from node_reporter.netlink import Link
from node_reporter.rates import Rate, RateMeter


def link(index: int, rx: int, tx: int, name: str = "eth0") -> Link:
    return Link(
        index=index,
        name=name,
        kind="physical",
        mtu=1500,
        mac=None,
        oper_state="up",
        master=None,
        parent=None,
        rx_bytes=rx,
        tx_bytes=tx,
    )


def test_rate_is_bits_per_second_over_the_window() -> None:
    meter = RateMeter()
    assert meter.update([link(2, 1_000, 0)], at=10.0) == {}
    assert meter.update([link(2, 126_000, 250_000)], at=12.0) == {
        2: Rate(rx_bps=500_000, tx_bps=1_000_000)
    }


def test_counter_reset_counts_from_zero_instead_of_going_negative() -> None:
    meter = RateMeter()
    meter.update([link(2, 10_000_000, 10_000_000)], at=0.0)
    assert meter.update([link(2, 500, 10_000_125)], at=1.0) == {2: Rate(rx_bps=4_000, tx_bps=1_000)}


def test_renamed_link_keeps_its_window_and_vanished_links_are_forgotten() -> None:
    meter = RateMeter()
    meter.update([link(2, 0, 0), link(3, 0, 0, "eth1")], at=0.0)
    rates = meter.update([link(2, 1_000, 0, name="uplink0")], at=1.0)
    assert rates == {2: Rate(8_000, 0)}
    assert meter.update([link(3, 5, 5, "eth1")], at=2.0) == {}, (
        "a link that came back starts a new window"
    )


def test_flags_beat_env_beat_file(tmp_path: Path) -> None:
    file = tmp_path / "reporter.yaml"
    file.write_text("nodeName: from-file\ninterval: 30\nmetrics: {port: 9000}\nzone: z-file\n")
    env = {
        "NETSCHED_REPORTER_INTERVAL": "20",
        "NODE_NAME": "from-env",
        "NETSCHED_REPORTER_METRICS_PORT": "9100",
    }
    config = load_config(file, env, {"interval": 5.0, "nodeName": None})
    assert (config.interval, config.node_name, config.metrics.port, config.zone) == (
        5.0,
        "from-env",
        9100,
        "z-file",
    )


def test_role_rules_first_match_wins_and_default_applies() -> None:
    config = ReporterConfig.model_validate(
        {
            "defaultRole": "control",
            "roles": [
                {"interface": "eth0", "role": "pod"},
                {"vlan": 200, "role": "storage"},
                {"interface": "eth*", "vlan": 300, "role": "pod"},
            ],
        }
    )
    assert config.role_for("eth0", [200]) is InterfaceRole.POD
    assert config.role_for("bond0", [200]) is InterfaceRole.STORAGE
    assert config.role_for("eth1", [300]) is InterfaceRole.POD
    assert config.role_for("bond0", [300]) is InterfaceRole.CONTROL


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("interval: 0\n", "interval = 0: Input should be greater than 0 (from file"),
        ("roles: [{interface: eth0, role: uplink}]\n", 'roles.0.role = "uplink": Input should be'),
        ("roles: [{role: pod}]\n", "a role rule needs 'interface' (name pattern) or 'vlan' (tag)"),
        (
            "interfaces: [{name: eth0, trunkVlans: [5000]}]\n",
            "interfaces.0.trunkVlans.0 = 5000: Input should be less than or equal to 4094",
        ),
        ("interfaces: [{name: eth0, speedMbps: -1}]\n", "interfaces.0.speedMbps = -1"),
        ("intervall: 5\n", "intervall: unknown setting (from file"),
        ("- just a list\n", "the top level must be a mapping"),
        ("a: [unclosed\n", "not valid YAML/JSON"),
    ],
)
def test_bad_settings_name_the_field_the_value_and_the_source(
    tmp_path: Path, content: str, expected: str
) -> None:
    file = tmp_path / "reporter.yaml"
    file.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_config(file, {}, {})
    assert expected in str(error.value)


def test_cli_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETSCHED_REPORTER_METRICS_PORT", "http")
    assert main(["--once", "--interval", "-1"]) == 2
    err = capsys.readouterr().err
    assert "interval = -1.0: Input should be greater than 0 (from flag --interval)" in err
    assert 'metrics.port = "http"' in err and "(from env NETSCHED_REPORTER_METRICS_PORT)" in err
    assert main(["--once", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read it (No such file or directory)" in capsys.readouterr().err
    monkeypatch.delenv("NETSCHED_REPORTER_METRICS_PORT")
    assert main(["--once", "--netns", f"absent{tmp_path.name[-6:]}"]) == 2
    assert "no such network namespace" in capsys.readouterr().err


def test_reporter_never_loads_the_extender_or_its_web_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, node_reporter.main, node_reporter.publish; "
        "print([m for m in sys.modules if m.split('.')[0] in ('scheduler_extender', 'fastapi', 'uvicorn', 'starlette')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_deploy_manifests_hold_a_valid_config_and_the_metrics_port() -> None:
    import yaml

    deploy = Path(__file__).resolve().parents[2] / "deploy" / "reporter"
    configmap = yaml.safe_load((deploy / "configmap.yaml").read_text())
    config = ReporterConfig.model_validate(yaml.safe_load(configmap["data"]["reporter.yaml"]))
    daemonset = yaml.safe_load((deploy / "daemonset.yaml").read_text())
    pod = daemonset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["hostNetwork"] is True
    assert container["ports"][0]["containerPort"] == config.metrics.port
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": config.metrics.port,
    }
    assert {
        "name": "NODE_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
    } in container["env"]


def test_healthz_turns_503_when_cycles_stop() -> None:
    import json
    import urllib.error
    import urllib.request

    from node_reporter.metrics import MetricsServer, ReporterMetrics

    now = [100.0]
    metrics = ReporterMetrics(stale_after=30, clock=lambda: now[0])
    with MetricsServer(metrics, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert reply.status == 200  # starting up: not stale yet
        metrics.record_cycle([], 0.01)
        now[0] += 31
        with pytest.raises(urllib.error.HTTPError) as stale:
            urllib.request.urlopen(url, timeout=5)
        assert stale.value.code == 503
        assert json.loads(stale.value.read())["status"] == "stale"
        metrics.record_cycle([], 0.01)
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert json.loads(reply.read()) == {
                "status": "ok",
                "lastCycleSecondsAgo": 0.0,
                "lastPublishSecondsAgo": None,
            }


def test_taken_metrics_port_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from tests.kube_api import FakeKubeAPI

    kubeconfig = FakeKubeAPI().write_kubeconfig(tmp_path / "kubeconfig")  # never contacted
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                str(port),
                "--kubeconfig",
                str(kubeconfig),
                "--node-name",
                "n1",
            ]
        )
    assert code == 1
    assert f"127.0.0.1:{port}: cannot listen (Address already in use)" in capsys.readouterr().err
