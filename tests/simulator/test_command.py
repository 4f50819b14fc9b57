"""``netsched simulate`` as a user runs it: table, JSON, plot and errors."""

from __future__ import annotations

import json

import pytest
import yaml

from netsched.cli import main
from tests.simulator.conftest import HOT

SMALL = ["--nodes", "16", "--pods", "300", "--zones", "2", "--nodes-per-switch", "4"]


@pytest.fixture
def hot_file(tmp_path):
    path = tmp_path / "hot.yaml"
    path.write_text(yaml.safe_dump(HOT))
    return path


def test_table_and_plot(hot_file, tmp_path, capsys) -> None:
    plot = tmp_path / "utilisation.png"
    assert main(["simulate", *SMALL, "--workload", str(hot_file), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "workload hot: 16 nodes in 2 zones, 300 pods (seed 1), 8 alive per node" in out
    for policy in ("bandwidth-blind", "netsched-reservations-only", "netsched-spread", "netsched-pack",
                   "dra", "dra-netsched-scoring"):
        assert f"\n{policy} " in out
    assert f"plot: {plot}" in out
    data = plot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_json_output_with_chosen_policies(hot_file, capsys) -> None:
    argv = ["simulate", *SMALL, "--workload", str(hot_file), "-o", "json", "--seed", "4",
            "--policies", "netsched-pack", "bandwidth-blind", "--extender-weight", "5"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in report["policies"]] == ["netsched-pack", "bandwidth-blind"]
    assert report["nodes"] == 16 and report["seed"] == 4 and report["extender_weight"] == 5
    assert report["candidates_per_pod"] == 16
    for result in report["policies"]:
        assert result["placed"] + result["refused"] == 300
        assert len(result["utilisation_histogram"]) == len(report["histogram_edges"]) - 1
        assert sum(result["utilisation_histogram"]) > 0


def test_load_override_speeds_up_arrivals(hot_file, capsys) -> None:
    base = ["simulate", *SMALL, "--workload", str(hot_file), "-o", "json", "--policies", "bandwidth-blind"]
    assert main(base) == 0
    normal = json.loads(capsys.readouterr().out)
    assert main([*base, "--pods-per-node", "16"]) == 0
    doubled = json.loads(capsys.readouterr().out)
    assert (normal["pods_per_node"], doubled["pods_per_node"]) == (8, 16)
    assert doubled["simulated_seconds"] == pytest.approx(normal["simulated_seconds"] / 2)


def test_a_bundled_workload_by_name(capsys) -> None:
    assert main(["simulate", *SMALL, "--workload", "peer-chatty", "--policies", "netsched-spread"]) == 0
    assert "workload peer-chatty:" in capsys.readouterr().out


def test_bad_workload_file_is_an_error_not_a_crash(tmp_path, capsys) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({**HOT, "pods_per_node": "many"}))
    assert main(["simulate", *SMALL, "--workload", str(path)]) == 2
    error = capsys.readouterr().err
    assert "pods_per_node" in error and "'many'" in error


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["--nodes", "0"], "'0' must be at least 1"), (["--policies", "fastest"], "fastest"), (["--pods", "x"], "'x'"),
     (["--pods-per-node", "-1"], "'-1' must be above 0")],
)
def test_bad_arguments_are_named(argv, expected, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["simulate", *argv])
    assert stop.value.code == 2
    assert expected in capsys.readouterr().err
