"""The pods of one simulation run, drawn once from the workload and a seed.

Every policy sees the same pods arriving at the same simulated times with the same
requests and lifetimes; only where they land differs. Arrivals are a Poisson process
whose rate keeps ``pods_per_node`` pods alive per node on average (Little's law:
rate = nodes × pods_per_node / mean lifetime).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from contract import annotations
from simulator.workload import PodTemplate, Workload

PEER_GROUP_LABEL = "peer-group"


@dataclass(frozen=True, slots=True)
class Arrival:
    index: int
    time: float
    """Simulated seconds since the start."""
    template: str
    cpu: float
    """Cores requested."""
    memory: float
    """Bytes requested."""
    lifetime: float
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    """netsched annotations as a pod author would write them (placement left to the policy)."""
    ingress_bps: int = 0
    egress_bps: int = 0
    """What the pod sends on its primary interface, annotated or not."""

    @property
    def noisy(self) -> bool:
        """Sends traffic on its primary interface that it did not annotate."""
        return bool(self.ingress_bps or self.egress_bps) and not (
            annotations.INGRESS_BANDWIDTH in self.annotations or annotations.EGRESS_BANDWIDTH in self.annotations
        )

    @property
    def name(self) -> str:
        return f"{self.template}-{self.index}"

    @property
    def uid(self) -> str:
        return f"sim-{self.index:08d}"


def arrival_rate(workload: Workload, nodes: int) -> float:
    """Pods per simulated second."""
    return nodes * workload.pods_per_node / workload.mean_lifetime


def draw_arrivals(workload: Workload, nodes: int, pods: int, seed: int) -> list[Arrival]:
    rng = random.Random(seed)
    rate = arrival_rate(workload, nodes)
    weights = [template.weight for template in workload.templates]
    group_counters = {template.name: 0 for template in workload.templates}
    now = 0.0
    result = []
    for index in range(pods):
        now += rng.expovariate(rate)
        template = rng.choices(workload.templates, weights)[0]
        labels = {"app": template.name}
        ingress, egress = (_kilobits(rate.sample(rng)) * 1000 if rate is not None else 0
                           for rate in (template.ingress, template.egress))
        pod_annotations = _annotations(template, rng, ingress, egress)
        if template.peer_group_size is not None:
            group = f"{template.name}-{group_counters[template.name] // template.peer_group_size}"
            group_counters[template.name] += 1
            labels[PEER_GROUP_LABEL] = group
            pod_annotations[annotations.PEERS] = f"{PEER_GROUP_LABEL}={group}"
        elif template.peers is not None:
            pod_annotations[annotations.PEERS] = template.peers
        result.append(
            Arrival(
                index=index,
                time=now,
                template=template.name,
                cpu=template.cpu.sample(rng),
                memory=template.memory.sample(rng),
                lifetime=template.lifetime.sample(rng),
                labels=labels,
                annotations=pod_annotations,
                ingress_bps=ingress,
                egress_bps=egress,
            )
        )
    return result


def _annotations(template: PodTemplate, rng: random.Random, ingress: int, egress: int) -> dict[str, str]:
    """The pod author's annotations: the primary rates (when annotated) and the networks."""
    result = {}
    if template.annotated:
        for name, rate in ((annotations.INGRESS_BANDWIDTH, ingress), (annotations.EGRESS_BANDWIDTH, egress)):
            if bps := _bps(rate):
                result[name] = bps
    entries: list[dict[str, object]] = []
    elements: list[dict[str, object]] = []
    for attachment in template.networks:
        rates = {key: rate.sample(rng) for key, rate in (("ingress", attachment.ingress),
                                                          ("egress", attachment.egress)) if rate is not None}
        namespace, slash, name = attachment.network.partition("/")
        if slash:  # a NetworkAttachmentDefinition, asked as a Multus user asks it
            bandwidth = {f"{key}Rate": _kilobits(value) * 1000 for key, value in rates.items()
                         if _kilobits(value) > 0}
            elements.append({"name": name, "namespace": namespace}
                            | ({"bandwidth": bandwidth} if bandwidth else {}))
            continue
        entries.append({"name": attachment.network}
                       | {key: bps for key, value in rates.items() if (bps := _bps(value))})
    if entries:
        result[annotations.NETWORKS] = json.dumps(entries)
    if elements:
        result[annotations.MULTUS_NETWORKS] = json.dumps(elements)
    return result


def _kilobits(value: float) -> int:
    return round(value / 1000)


def _bps(value: float) -> str:
    """A rate as an annotation value, in whole kilobits per second ('' when it rounds to 0)."""
    kilobits = _kilobits(value)
    return f"{kilobits}k" if kilobits > 0 else ""
