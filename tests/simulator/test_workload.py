"""Workload files: the bundled ones load, bad ones fail naming the field and the value."""

from __future__ import annotations

import itertools
import random

import pytest
import yaml

from bandwidth_accounting.requirements import parse_requirements
from simulator.arrivals import PEER_GROUP_LABEL, arrival_rate, draw_arrivals
from simulator.workload import (
    Bandwidth,
    Workload,
    WorkloadError,
    bundled_workloads,
    load_workload,
)
from tests.simulator.conftest import HOT


def test_bundled_workloads_load() -> None:
    assert bundled_workloads() == ["mixed", "noisy-neighbours", "peer-chatty", "storage-heavy"]
    for name in bundled_workloads():
        workload = load_workload(name)
        assert workload.name == name
        assert workload.networks() <= {"storage", "replication", "tenant"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"pods_per_node": 0}, "pods_per_node"),
        ({"templates": []}, "templates"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_workload_fields_are_named(tmp_path, change, expected) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**HOT, **change}))
    with pytest.raises(WorkloadError, match=expected) as error:
        load_workload(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"egress": "fast"}, "'fast'"),
        ({"egress": {"uniform": ["2G", "1G"]}}, "low 2000000000.0 is above high"),
        ({"egress": {"normal": "1G"}}, "normal"),
        ({"cpu": "lots"}, "'lots' is not a CPU quantity"),
        ({"memory": {"choice": ["1Gi", "-2Gi"]}}, "must not be negative"),
        ({"peers": "app==="}, "netsched.io/peers"),
        ({"peers": "app=x", "peer_group_size": 3}, "not both"),
        ({"lifetime": None}, "lifetime"),
        ({"annotated": False, "networks": [{"network": "storage"}]}, "cannot attach networks"),
    ],
)
def test_bad_template_values_are_named(template, expected) -> None:
    document = {**HOT, "templates": [{**HOT["templates"][0], **template}]}
    with pytest.raises(ValueError, match=expected):
        Workload.model_validate(document)


def test_missing_workload_lists_the_bundled_ones() -> None:
    with pytest.raises(WorkloadError, match="bundled workloads: mixed, noisy-neighbours, peer-chatty, storage-heavy"):
        load_workload("no-such-workload")


def test_distributions_sample_within_their_bounds() -> None:
    rng = random.Random(3)
    uniform = Bandwidth.model_validate({"uniform": ["1G", "2G"]})
    assert all(1e9 <= uniform.sample(rng) <= 2e9 for _ in range(200))
    choice = Bandwidth.model_validate({"choice": ["1G", "4G"]})
    assert {choice.sample(rng) for _ in range(100)} == {1e9, 4e9}
    lognormal = Bandwidth.model_validate({"lognormal": {"median": "1G", "sigma": 0.5}})
    draws = sorted(lognormal.sample(rng) for _ in range(2001))
    assert draws[1000] == pytest.approx(1e9, rel=0.1)


def test_arrivals_carry_valid_annotations_and_peer_groups(hot_workload: Workload) -> None:
    arrivals = draw_arrivals(hot_workload, nodes=10, pods=400, seed=5)
    assert [a.index for a in arrivals] == list(range(400))
    assert all(b.time > a.time for a, b in itertools.pairwise(arrivals))
    # Little's law sets the rate: 10 nodes × 8 pods per node over the mean lifetime
    assert arrival_rate(hot_workload, 10) == pytest.approx(80 / hot_workload.mean_lifetime)
    groups: dict[str, int] = {}
    for arrival in arrivals:
        requirements = parse_requirements(arrival.annotations)
        if arrival.template == "worker":
            group = arrival.labels[PEER_GROUP_LABEL]
            groups[group] = groups.get(group, 0) + 1
            assert requirements.peers is not None and requirements.peers.matches(arrival.labels)
        if arrival.template == "writer":
            assert requirements.attachments[0].network == "storage"
            assert requirements.attachments[0].egress_bps > 0
        if arrival.template == "batch":
            assert not requirements.annotated
    assert groups and all(size <= 4 for size in groups.values())
    assert sorted(groups.values(), reverse=True)[:-1] == [4] * (len(groups) - 1)  # only the last group may be partial
    assert draw_arrivals(hot_workload, nodes=10, pods=400, seed=5) == arrivals
