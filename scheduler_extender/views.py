"""Read-only views of the cluster for people and tools (``/api/v1/...``, the CLI, the dashboard)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from bandwidth_accounting.ledger import Holding
from bandwidth_accounting.requirements import InvalidAnnotation, parse_requirements
from contract import annotations
from contract.objects import BandwidthPolicySpec, InterfaceRole, NetworkSpec, Pod
from contract.reservation import Rates, Reservation
from contract.wire import DefinitionMode
from scheduler_extender.scheduler import Decision, Scheduler
from scheduler_extender.state import ClusterState
from topology.attachment_definitions import DefinitionNetwork
from topology.graph import Topology


class InterfaceView(BaseModel):
    name: str
    role: InterfaceRole
    kind: str
    speed_mbps: int
    oper_state: str
    networks: list[str]
    usable: Rates
    reserved: Rates = Field(description="Held by annotation reservations and DRA claims together.")
    claimed: Rates = Field(default_factory=Rates, description="The part of reserved that DRA claims hold.")
    observed: Rates


class NodeView(BaseModel):
    name: str
    region: str
    zone: str
    switch: str
    heartbeat_time: datetime | None
    interfaces: list[InterfaceView]


class NetworkView(BaseModel):
    name: str
    spec: NetworkSpec
    nodes: int = Field(description="Nodes where the network is reachable.")


class DefinitionView(BaseModel):
    """A Multus NetworkAttachmentDefinition as netsched reads its CNI config."""

    name: str = Field(description="namespace/name, as pods' k8s.v1.cni.cncf.io/networks name it.")
    mode: DefinitionMode
    master: str | None = Field(description="Host link it rides (macvlan/ipvlan/vlan master, bridge, device).")
    vlan: int | None
    subnet: str | None = Field(description="The IPAM range's subnet, when its IPAM hands out a pool.")
    plugins: list[str] = Field(description="CNI types of its conflist, in chain order.")
    shaped: bool = Field(description="netsched-cni is chained in it, so its attachments are shaped.")
    problem: str | None = Field(description="Why its reach is unknown (then the pod interface is charged).")
    nodes: int = Field(description="Nodes where the network is reachable.")

    @classmethod
    def of(cls, definition: DefinitionNetwork, nodes: int) -> DefinitionView:
        return cls(
            name=definition.key, mode=definition.mode, master=definition.master, vlan=definition.vlan,
            subnet=str(definition.subnet) if definition.subnet else None, plugins=list(definition.plugins),
            shaped=definition.shaped, problem=definition.problem, nodes=nodes,
        )


class ClaimShareView(BaseModel):
    """A DRA allocation result: kube-scheduler took this from the device's capacity."""

    namespace: str
    name: str
    request: str
    device: str
    share_id: str | None = Field(description="kube-scheduler's shareID of the allocation on the shared device.")


class ReservationView(BaseModel):
    uid: str = Field(description="The pod's uid; for a DRA claim, the ledger key (claim uid and shareID).")
    pod: str = Field(description="namespace/name of the pod; for a DRA claim, of the pods it is reserved for "
                     "(or the claim's, while none).")
    priority: int
    reservation: Reservation
    foreign: bool = Field(default=False, description="Placed by another scheduler (or holding no reservation netsched trusts): its bandwidth annotations, which the runtime shapes; no attachments.")
    claim: ClaimShareView | None = Field(default=None, description="Set when a DRA ResourceClaim holds it.")

    @classmethod
    def of(cls, holding: Holding) -> ReservationView:
        share = holding.claim
        return cls(
            uid=holding.uid, pod=holding.pod, priority=holding.priority, reservation=holding.reservation,
            foreign=holding.foreign,
            claim=None if share is None else ClaimShareView(
                namespace=share.namespace, name=share.name, request=share.request, device=share.device,
                share_id=share.share_id,
            ),
        )


class ClaimProblemView(BaseModel):
    """Part of a DRA allocation not counted as written (bandwidth_accounting.claims)."""

    claim: str
    reason: str
    field: str
    value: str
    outcome: str


class PolicyView(BaseModel):
    """A BandwidthPolicy with what its namespace's pods hold now (live, not its written status)."""

    namespace: str
    name: str
    spec: BandwidthPolicySpec
    used: Rates = Field(description="Reserved by the namespace's pods, all interfaces, bits/s.")


class RejectedReservationView(BaseModel):
    uid: str
    pod: str
    reason: str
    detail: str


class TopologyView(BaseModel):
    nodes: list[NodeView]
    networks: list[NetworkView]
    definitions: list[DefinitionView] = Field(
        default_factory=list, description="Multus NetworkAttachmentDefinitions, networks like the others."
    )
    reservations: list[ReservationView]
    policies: list[PolicyView] = Field(default_factory=list)
    rejected_reservations: list[RejectedReservationView] = Field(
        default_factory=list,
        description="Reservations on bound pods that the ledger does not count (docs/security.md).",
    )
    claim_problems: list[ClaimProblemView] = Field(
        default_factory=list,
        description="DRA allocations not counted as written: unknown node or device, unreadable quantity.",
    )


class DecisionView(BaseModel):
    time: datetime
    verb: str
    pod: str
    node: str | None
    passed: int
    refused: dict[str, str]
    error: str


def _rates(pair: tuple[int, int]) -> Rates:
    ingress, egress = pair
    return Rates(ingress=ingress, egress=egress)


def topology_view(state: ClusterState) -> TopologyView:
    topology, ledger = state.topology, state.ledger
    nodes = []
    for name in sorted(topology.nodes.keys() | topology.node_networks.keys()):
        location = topology.location(name)
        report = topology.node_networks.get(name)
        carried = topology.networks_by_interface(name)
        interfaces = [
            InterfaceView(
                name=iface.name,
                role=iface.role,
                kind=iface.kind,
                speed_mbps=iface.speed_mbps,
                oper_state=iface.oper_state,
                networks=carried.get(iface.name, []),
                usable=_rates(ledger.usable(name, iface.name)),
                reserved=_rates(ledger.reserved(name, iface.name)),
                claimed=_rates(ledger.claimed(name, iface.name)),
                observed=_rates((iface.rx_bps, iface.tx_bps)),
            )
            for iface in topology.interfaces(name).values()
        ]
        nodes.append(
            NodeView(
                name=name,
                region=location.region,
                zone=location.zone,
                switch=location.switch,
                heartbeat_time=report.status.heartbeat_time if report else None,
                interfaces=interfaces,
            )
        )
    networks = [
        NetworkView(name=name, spec=network.spec, nodes=len(topology.nodes_reaching(name)))
        for name, network in sorted(topology.networks.items())
    ]
    definitions = [
        DefinitionView.of(definition, len(topology.nodes_reaching(name)))
        for name, definition in sorted(topology.definitions.items())
    ]
    rejected = [
        RejectedReservationView(uid=r.uid, pod=r.pod, reason=r.reason.value, detail=r.detail)
        for r in state.rejected_reservations()
    ]
    problems = [
        ClaimProblemView(claim=p.claim, reason=p.kind.value, field=p.field, value=p.value, outcome=p.outcome)
        for p in state.claim_problems()
    ]
    return TopologyView(
        nodes=nodes, networks=networks, definitions=definitions, reservations=reservation_views(state),
        policies=policy_views(state), rejected_reservations=rejected, claim_problems=problems,
    )


def policy_views(state: ClusterState, namespace: str | None = None) -> list[PolicyView]:
    """BandwidthPolicies (all, or ``namespace``'s) by namespace and name."""
    views = []
    for policy in state.bandwidth_policies(namespace):
        ns = policy.metadata.effective_namespace
        ingress, egress = state.ledger.namespace_reserved(ns)
        views.append(PolicyView(namespace=ns, name=policy.metadata.name, spec=policy.spec,
                                used=Rates(ingress=ingress, egress=egress)))
    return sorted(views, key=lambda view: (view.namespace, view.name))


def reservation_views(state: ClusterState, node: str | None = None) -> list[ReservationView]:
    """Pods holding reservations (all, or those on ``node``), by pod name."""
    ledger = state.ledger
    holdings = ledger.holdings() if node is None else ledger.holdings_on(node)
    return [ReservationView.of(h) for h in sorted(holdings, key=lambda h: (h.pod, h.uid))]


def decision_views(decisions: list[Decision]) -> list[DecisionView]:
    return [
        DecisionView(
            time=d.time, verb=d.verb, pod=d.pod, node=d.node, passed=d.passed, refused=dict(d.refused), error=d.error
        )
        for d in reversed(decisions)
    ]


# -- explain -------------------------------------------------------------------------------


class RefusalView(BaseModel):
    cause: str
    message: str
    resolvable: bool = Field(description="Whether evicting lower-priority pods could cure it.")


class NodeVerdict(BaseModel):
    node: str
    zone: str
    switch: str
    fits: bool
    score: int | None = Field(description="Prioritize score 0-10 where the pod fits.")
    reasons: list[RefusalView]


class ExplainView(BaseModel):
    pod: str
    bound_to: str | None = Field(description="Node the pod is bound to, if any; its own reservation counts.")
    annotations: dict[str, str] = Field(description="The pod's netsched annotations, as written.")
    policies: list[PolicyView] = Field(
        default_factory=list, description="Its namespace's BandwidthPolicies: defaults it gets, limits it meets."
    )
    fits: int
    nodes: list[NodeVerdict] = Field(description="Nodes that fit first, best score first; then the rest.")
    rejected_reservation: str | None = Field(
        default=None, description="Why the pod's recorded reservation is not counted, if it is not."
    )
    definitions: list[str] = Field(
        default_factory=list,
        description="The NetworkAttachmentDefinitions the pod asks for, as netsched reads them "
        "(mode, link, VLAN, subnet, or why their reach is unknown).",
    )
    claims: list[str] = Field(
        default_factory=list,
        description="namespace/name of the pod's ResourceClaims of DeviceClass bandwidth.netsched.io.",
    )


class PodNotFound(LookupError):
    pass


def find_pod(state: ClusterState, reference: str) -> Pod:
    """A pod by ``namespace/name`` (or ``name`` in namespace ``default``)."""
    namespace, _, name = reference.rpartition("/")
    key = f"{namespace or 'default'}/{name}"
    for pod in state.pods():
        if pod.key == key:
            return pod
    raise PodNotFound(f"pod {key} is not in the cluster")


def explain_view(scheduler: Scheduler, pod: Pod) -> ExplainView:
    """For every node: does ``pod`` fit, with which score, and if not, every reason why.

    It runs the webhook's own filter and prioritize on a throwaway ``Scheduler`` over
    the same state, so the answer is exactly what kube-scheduler would be told, while
    the live scheduler's decision log and plan cache stay untouched (read-only).
    """
    probe = Scheduler(scheduler.state, scheduler.source, scheduler.settings, scheduler.clock)
    state = scheduler.state
    names = state.node_names()
    filtered = probe.filter(pod, names)
    passed = filtered.passed
    scores = dict(zip(passed, probe.prioritize(pod, passed), strict=True)) if passed else {}
    topology = state.topology
    verdicts = []
    for name in names:
        location = topology.location(name)
        reasons = [
            RefusalView(cause=r.cause.value, message=r.message, resolvable=r.resolvable)
            for r in filtered.refusals.get(name, [])
        ]
        verdicts.append(
            NodeVerdict(
                node=name,
                zone=location.zone if location else "",
                switch=location.switch if location else "",
                fits=not reasons,
                score=scores.get(name) if not reasons else None,
                reasons=reasons,
            )
        )
    verdicts.sort(key=lambda v: (not v.fits, -(v.score or 0), v.node))
    uid = pod.metadata.uid or pod.key
    rejected = next((r.detail for r in state.rejected_reservations() if r.uid == uid), None)
    return ExplainView(
        pod=pod.key,
        bound_to=pod.spec.node_name,
        annotations={k: v for k, v in pod.metadata.annotations.items() if k in annotations.INPUTS},
        policies=policy_views(state, pod.metadata.effective_namespace),
        fits=len(filtered.passed),
        nodes=verdicts,
        rejected_reservation=rejected,
        definitions=_asked_definitions(pod, topology),
        claims=list(scheduler.claims_of(pod).keys),
    )


def _asked_definitions(pod: Pod, topology: Topology) -> list[str]:
    """One line per NetworkAttachmentDefinition the pod names (nothing if it names none, or
    its annotations do not parse: the refusal on every node says why)."""
    try:
        requirements = parse_requirements(pod.metadata.annotations, pod.metadata.effective_namespace)
    except InvalidAnnotation:
        return []
    return [
        definition.describe() if (definition := topology.definitions.get(a.network)) is not None
        else f"NetworkAttachmentDefinition {a.network}: not in the cluster"
        for a in requirements.attachments if "/" in a.network
    ]
