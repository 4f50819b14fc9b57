"""The peer counts kept per selector (``PeerCounts``) answer what matching every placed pod
of the namespace answers, whatever pods come, move, change their labels, finish or go."""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bandwidth_accounting.requirements import LabelRequirement, LabelSelector
from contract.objects import Pod
from scheduler_extender.cluster import ClusterSnapshot
from scheduler_extender.state import ClusterState, holds_reservation

NAMESPACES = ("default", "team")
NODES = ("n1", "n2", "n3")
SELECTORS = (
    LabelSelector((LabelRequirement("app", "=", "web"),)),
    LabelSelector((LabelRequirement("app", "!=", "web"), LabelRequirement("tier", "exists"))),
    LabelSelector((LabelRequirement("tier", "!exists"),)),
)

labels = st.fixed_dictionaries({}, optional={"app": st.sampled_from(("web", "db")), "tier": st.just("x")})


def pod(uid: int, namespace: str, node: str | None, pod_labels: dict[str, str], phase: str) -> Pod:
    return Pod.model_validate({
        "metadata": {"name": f"p{uid}", "namespace": namespace, "uid": f"u{uid}", "labels": pod_labels},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase},
    })


class PeerCountsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = ClusterState()

    @rule(uid=st.integers(0, 7), namespace=st.sampled_from(NAMESPACES), node=st.none() | st.sampled_from(NODES),
          pod_labels=labels, phase=st.sampled_from(("Pending", "Running", "Running", "Succeeded")))
    def pod_comes_or_changes(self, uid, namespace, node, pod_labels, phase):
        known = self.state.pod(f"u{uid}")
        if known is not None:
            namespace = known.metadata.effective_namespace  # a pod never changes namespace
        self.state.upsert(pod(uid, namespace, node, pod_labels, phase))

    @rule(uid=st.integers(0, 7))
    def pod_goes(self, uid):
        known = self.state.pod(f"u{uid}")
        if known is not None:
            self.state.delete(known)

    @rule()
    def relist(self):
        self.state.reset(ClusterSnapshot(pods=self.state.pods()))

    @invariant()
    def counts_are_those_of_a_full_scan(self):
        """The first check (and the first after a relist) counts by a scan; the selectors
        are kept from then on, and each later check reads counts the changes moved."""
        for namespace in NAMESPACES:
            for selector in SELECTORS:
                for excluding in ("", "u0", "u1"):
                    scanned = Counter(
                        other.spec.node_name for other in self.state.pods()
                        if holds_reservation(other) and other.metadata.effective_namespace == namespace
                        and other.metadata.uid != excluding and selector.matches(other.metadata.labels)
                    )
                    assert self.state.peer_nodes(namespace, selector, excluding) == dict(scanned)


TestPeerCounts = PeerCountsMachine.TestCase
TestPeerCounts.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
