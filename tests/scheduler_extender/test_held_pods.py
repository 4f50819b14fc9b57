"""What the extender's state holds of each pod: the pods that kube-apiserver's watch
delivers, with the parts equal pods have in common held once.

The pods are the one a real kube-scheduler v1.36 sent (``tests/fixtures/extender``), bound
as the watch brings them back: a node name, a phase.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contract import annotations
from contract.objects import Pod

KUBE_SCHEDULER_POD = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "extender" / "kube-scheduler-v1.36" / "nodecache-filter.json").read_text()
)["Pod"]


def watched(index: int, node: str | None, phase: str = "Running", **spec: Any) -> Pod:
    """The fixture pod as the watch delivers it, as the source validates an event."""
    raw = json.loads(json.dumps(KUBE_SCHEDULER_POD))
    raw["metadata"].update(name=f"pod-{index}", uid=f"uid-{index}")
    raw["spec"].update(nodeName=node, **spec)
    raw["status"] = {"phase": phase}
    return Pod.model_validate(raw)


def test_pods_on_a_node_share_one_spec_and_pods_in_a_phase_one_status(extender):
    state = extender.state
    for index in range(6):
        state.upsert(watched(index, ("node-a-1", "node-a-2")[index % 2]))
    held = [state.pod(f"uid-{index}") for index in range(6)]
    assert held[0].spec is held[2].spec is held[4].spec
    assert held[1].spec is held[3].spec is not held[0].spec
    assert [pod.spec.node_name for pod in held] == ["node-a-1", "node-a-2"] * 3
    assert len({id(pod.status) for pod in held}) == 1
    assert len({id(pod.metadata) for pod in held}) == 6


def test_a_pod_that_changes_gets_its_own_parts_and_the_others_keep_theirs(extender):
    state = extender.state
    for index in range(2):
        state.upsert(watched(index, "node-a-1"))
    state.upsert(watched(0, "node-a-1", phase="Succeeded", priority=5))
    changed, unchanged = state.pod("uid-0"), state.pod("uid-1")
    assert (changed.status.phase, changed.spec.priority) == ("Succeeded", 5)
    assert (unchanged.status.phase, unchanged.spec.priority) == ("Running", 0)
    with pytest.raises(ValidationError, match="frozen"):
        unchanged.spec.node_name = "node-a-2"  # shared by every pod like it: a new object, never an edit
    with pytest.raises(ValidationError, match="frozen"):
        unchanged.status.phase = "Failed"


def test_a_spec_naming_claims_is_the_pod_s_own(extender):
    """Claim names are per pod (or per template instance): shared, such specs would only
    fill the table."""
    state = extender.state
    claims = [{"name": "bandwidth", "resourceClaimName": "shared-claim"}]
    for index in range(2):
        state.upsert(watched(index, "node-a-1", resourceClaims=claims))
    first, second = state.pod("uid-0"), state.pod("uid-1")
    assert first.spec == second.spec
    assert first.spec is not second.spec
    assert first.claim_names() == ["shared-claim"]


def test_a_held_pod_keeps_only_the_annotations_netsched_reads(extender, source):
    """kubectl's last-applied configuration (the fixture pod has one), Multus's network
    status or 200 KB from a controller are each pod's own and as large as their writers
    make them: the state keeps what the pod asks of netsched and the reservation. The
    cluster (here the in-memory one) keeps the pod as applied."""
    state, scheduler = extender.state, extender.scheduler
    pod = watched(0, None, phase="Pending", schedulerName="netsched-scheduler")
    asks = {annotations.EGRESS_BANDWIDTH: "50M", annotations.NETWORKS: '[{"name": "storage"}]'}
    others = {"k8s.v1.cni.cncf.io/network-status": "[]", "example.com/blob": "x" * 200_000}
    pod.metadata.annotations.update({**asks, **others})
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod.metadata.annotations
    source.apply(pod)
    assert state.pod("uid-0").metadata.annotations == asks
    reservation = scheduler.bind("default", "pod-0", "uid-0", "node-a-1")
    assert reservation.attachments[0].network == "storage"
    assert state.pod("uid-0").metadata.annotations.keys() == {*asks, annotations.RESERVATION}
    assert len(source.get(Pod, "default/pod-0").metadata.annotations["example.com/blob"]) == 200_000


@pytest.mark.parametrize(("kind", "most"), [("plain", 7), ("netsched", 13)])
def test_a_held_pod_costs_a_few_objects_for_the_cyclic_collector(extender, kind, most):
    """Each object the state holds per pod is memory and work for every full collection,
    which stops the extender: at 5,000 nodes and 150,000 pods held, 1.4 s for plain pods and
    2.4 s for pods bound through netsched when each pod held its own spec, status and rates
    (14 and 24 objects; ``benchmarks/extender_memory.py``). A plain pod is bound by another
    scheduler; a netsched pod is bound through ``Scheduler.bind`` and comes back with the
    reservation it wrote, as the benchmark's."""
    state, scheduler, source = extender.state, extender.scheduler, extender.source
    written: dict[str, str] = {}
    source.bind = lambda _pod, _node, recorded: written.update(recorded)  # the API's part: the watch below
    nodes = state.node_names()
    pods = 2000
    gc.collect()
    before = len(gc.get_objects())
    for index in range(pods):
        node = nodes[index % len(nodes)]
        if kind == "plain":
            state.upsert(watched(index, node))
            continue
        pending = watched(index, None, phase="Pending", schedulerName="netsched-scheduler")
        pending.metadata.annotations[annotations.EGRESS_BANDWIDTH] = "50M"
        state.upsert(pending)
        scheduler.bind("default", f"pod-{index}", f"uid-{index}", node)
        bound = watched(index, node, schedulerName="netsched-scheduler")
        bound.metadata.annotations.update({annotations.EGRESS_BANDWIDTH: "50M", **written})
        state.upsert(bound)
    gc.collect()
    assert sum(1 for pod in state.pods() if pod.spec.node_name) == pods
    assert (len(gc.get_objects()) - before) / pods <= most
