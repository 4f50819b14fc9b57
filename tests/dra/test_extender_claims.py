"""The extender beside kube-scheduler's DRA allocator: one ledger, never over-committed.

kube-scheduler allocates a netsched claim counting only DRA allocations; annotation
reservations are invisible to it. So the extender refuses in filter the nodes where no
interface has room for a claim's ask beside everything else, re-checks at bind the
allocation kube-scheduler wrote in PreBind (its DRA plugin runs before the extender's
bind) under the ledger lock, and refuses a pod that asks both ways.
"""

from __future__ import annotations

import json

import pytest

from bandwidth_accounting.fit import Cause
from contract import annotations as ann
from contract.dra import ResourceClaim
from contract.group import SCHEDULER_NAME
from contract.objects import Pod
from scheduler_extender import scheduler as scheduler_module
from scheduler_extender.file_source import FileClusterSource
from scheduler_extender.scheduler import BindError
from tests.dra.ledger_objects import (  # noqa: F401 - fixtures
    allocated_claim,
    allocation,
    bound_annotation_pod,
    claim_object,
    extender,
    pod,
    source,
)
from tests.interleaving import Schedule

G = 1_000_000_000


def claim(source: FileClusterSource, obj: dict) -> ResourceClaim:
    return source.apply(ResourceClaim.model_validate(obj))  # type: ignore[return-value]


def refused_bind(extender, source: FileClusterSource, name: str, node: str) -> str:
    """Bind pod ``default/name`` to ``node``, which must refuse and leave it unbound; the reason."""
    with pytest.raises(BindError) as refused:
        extender.scheduler.bind("default", name, f"uid-{name}", node)
    assert source.get(Pod, f"default/{name}").spec.node_name is None
    return str(refused.value)


def test_an_annotation_pod_counts_dra_allocations_as_used(extender, source):
    claim(source, allocated_claim("held", "node-x", egress="6G", ingress="0"))
    result = extender.scheduler.filter(pod("web", annotations={ann.EGRESS_BANDWIDTH: "4G"}), ["node-x", "node-y"])
    assert result.passed == ["node-y"]
    assert result.failed == {}
    assert result.unresolvable == {"node-x": "eth0 egress: 6G reserved (6G of it by DRA claims) of 9G usable, asks 4G"}


def test_filter_refuses_nodes_without_room_for_the_claim_beside_reservations(extender, source):
    bound_annotation_pod(extender, source, "annotated", "node-x", "6G")
    claim(source, claim_object("fast", egress="4G", ingress="1G"))
    result = extender.scheduler.filter(pod("dra", claim="fast"), ["node-x", "node-y"])
    assert result.passed == ["node-y"]
    assert result.unresolvable == {
        "node-x": "claim default/fast request bandwidth: eth0 egress: 6G reserved of 9G usable, asks 4G"
    }
    assert [r.cause for r in result.refusals["node-x"]] == [Cause.BANDWIDTH]


def test_a_claim_made_from_a_template_is_found_through_the_pod_status(extender, source):
    bound_annotation_pod(extender, source, "annotated", "node-x", "6G")
    claim(source, claim_object("dra-bandwidth-x7k2p", egress="4G"))
    # the claim controller made the claim from the template and wrote its name into the pod's status
    asking = Pod.model_validate({
        "metadata": {"name": "dra", "namespace": "default", "uid": "uid-dra"},
        "spec": {"schedulerName": SCHEDULER_NAME,
                 "resourceClaims": [{"name": "bandwidth", "resourceClaimTemplateName": "bandwidth-4g"}]},
        "status": {"resourceClaimStatuses": [{"name": "bandwidth", "resourceClaimName": "dra-bandwidth-x7k2p"}]},
    })
    assert extender.scheduler.filter(asking, ["node-x", "node-y"]).passed == ["node-y"]


def test_a_pod_asking_both_ways_is_refused_everywhere_naming_both(extender, source):
    claim(source, claim_object("fast"))
    result = extender.scheduler.filter(
        pod("twice", claim="fast", annotations={ann.EGRESS_BANDWIDTH: "1G"}), ["node-x", "node-y"]
    )
    assert result.passed == []
    message = (
        "bandwidth asked both ways: annotation kubernetes.io/egress-bandwidth and ResourceClaim default/fast "
        "(DeviceClass bandwidth.netsched.io); ask by one of them"
    )
    assert result.unresolvable == {"node-x": message, "node-y": message}
    assert result.refusals["node-x"][0].cause is Cause.CLAIM


def test_bind_refuses_an_allocation_that_would_over_commit_beside_reservations(extender, source):
    bound_annotation_pod(extender, source, "annotated", "node-x", "6G")
    source.apply(pod("dra", claim="fast"))
    # kube-scheduler's PreBind wrote the allocation: its allocator saw 9G free on eth0
    claim(source, allocated_claim("fast", "node-x", egress="4G", ingress="1G"))
    assert refused_bind(extender, source, "dra", "node-x") == (
        "default/dra: ResourceClaim default/fast would over-commit node-x beside its reservations: "
        "eth0 egress: 6G reserved of 9G usable, asks 4G"
    )


def test_bind_admits_an_allocation_that_fits_and_the_ledger_holds_it_once(extender, source):
    bound_annotation_pod(extender, source, "annotated", "node-x", "4G")
    source.apply(pod("dra", claim="fast"))
    claim(source, allocated_claim("fast", "node-x", egress="4G", ingress="1G"))
    assert extender.scheduler.bind("default", "dra", "uid-dra", "node-x") is None
    assert source.get(Pod, "default/dra").spec.node_name == "node-x"
    assert extender.state.ledger.reserved("node-x", "eth0") == (1 * G, 8 * G)
    assert "netsched.io/reservation" not in source.get(Pod, "default/dra").metadata.annotations


def test_an_allocation_and_a_reservation_binding_at_once_cannot_both_take_the_link(extender, source, monkeypatch):
    """The DRA bind stops between its check and its record; the annotation bind must wait for
    the ledger lock, then see the allocation and be refused. Without the lock both would
    fit the 9G link alone and take 5G + 6G of it together."""
    schedule = Schedule()
    extender.state.ledger._lock = schedule.lock()

    check = scheduler_module.overcommits

    def checked_then_pause(*args, **kwargs):
        found = check(*args, **kwargs)
        schedule.point("checked")
        return found

    monkeypatch.setattr(scheduler_module, "overcommits", checked_then_pause)
    source.apply(pod("dra", claim="fast"))
    claim(source, claim_object("fast"))
    source.apply(pod("annotated", annotations={ann.EGRESS_BANDWIDTH: "6G"}))
    # kube-scheduler's PreBind writes the allocation; the watch has not shown it yet
    current = source.read_claim("default", "fast")
    allocated = current.model_copy(update={"status": ResourceClaim.model_validate(
        {**claim_object("fast"), "status": allocation("node-x", egress="5G", ingress="0")}
    ).status})
    source._objects[("ResourceClaim", "default/fast")] = allocated  # the API has it, the state not yet
    # as after its filter: requirements read, topology built (the bind then waits on no state lock)
    extender.scheduler.filter(source.get(Pod, "default/annotated"), ["node-x"])
    bind = extender.scheduler.bind
    schedule.stop("dra", at="checked")
    schedule.start("dra", bind, "default", "dra", "uid-dra", "node-x")
    assert schedule.next_event("dra") == "paused"
    schedule.start("annotated", bind, "default", "annotated", "uid-annotated", "node-x")
    annotated_did = schedule.next_event("annotated")
    schedule.finish()
    ledger = extender.state.ledger
    assert ledger.reserved("node-x", "eth0")[1] <= ledger.usable("node-x", "eth0")[1]
    assert "dra" in schedule.results and "annotated" in schedule.errors
    assert "eth0 egress: 5G reserved (5G of it by DRA claims) of 9G usable, asks 6G" in str(schedule.errors["annotated"])
    assert annotated_did == "blocked"


def test_an_allocation_bind_refused_keeps_its_node_refused_with_the_reason(extender, source):
    """After a refused bind the claim stays allocated (Unreserve only removes the pod from
    reservedFor) and the watch counts it: filter then says why the pod cannot go there."""
    bound_annotation_pod(extender, source, "annotated", "node-x", "6G")
    source.apply(pod("dra", claim="fast"))
    claim(source, allocated_claim("fast", "node-x", egress="4G", ingress="1G"))
    with pytest.raises(BindError):
        extender.scheduler.bind("default", "dra", "uid-dra", "node-x")
    result = extender.scheduler.filter(source.get(Pod, "default/dra"), ["node-x", "node-y"])
    assert result.passed == ["node-y"]  # kube-scheduler sends only node-x, the allocation's node
    assert result.unresolvable == {
        "node-x": "claim default/fast (allocated here): eth0 egress: 6G reserved of 9G usable, asks 4G"
    }


def test_a_claim_asking_a_rate_netsched_cannot_shape_is_refused_naming_the_field(extender, source):
    # kube-apiserver takes any quantity; the deploy's request policy rounds up to 1k steps,
    # but a class without it would let "500" (bits/s) through
    claim(source, claim_object("tiny", egress="500"))
    result = extender.scheduler.filter(pod("dra", claim="tiny"), ["node-x"])
    assert result.unresolvable == {
        "node-x": "ResourceClaim default/tiny: spec.devices.requests[0].exactly.capacity.requests.egress: "
        "'500' is below 1k (1 kbit/s), the least Kubernetes shapes"
    }
    assert result.refusals["node-x"][0].cause is Cause.CLAIM


def test_bind_refuses_a_pod_asking_both_ways_naming_both(extender, source):
    """Filter refuses such a pod everywhere; bind checks again, reading the claims from the
    API: kube-scheduler may have filtered the pod before its claim was allocated."""
    networks = json.dumps([{"name": "storage", "egress": "1G"}])
    source.apply(pod("twice", claim="fast", annotations={ann.NETWORKS: networks}))
    claim(source, allocated_claim("fast", "node-x", egress="4G", ingress="1G"))
    assert refused_bind(extender, source, "twice", "node-x") == (
        "bandwidth asked both ways: annotation netsched.io/networks and ResourceClaim default/fast "
        "(DeviceClass bandwidth.netsched.io); ask by one of them"
    )
    assert extender.state.ledger.holding("uid-twice") is None  # the claim's allocation is kube-scheduler's fact
