"""``netsched simulate``: pods arriving and leaving a simulated cluster, placed by kube-scheduler
alone (bandwidth-blind), by kube-scheduler with netsched, through the extender's own code,
and by kube-scheduler allocating bandwidth itself as DRA claims, with and without netsched's scores.

The names of the compared policies, the shipped extender weight and the defaults of a run are
here, in the package itself, because ``netsched``'s parser offers them on every command it builds, ``netsched
reporter`` on a node included, where numpy (which the simulation's modules import) is not
installed.
"""

from dataclasses import dataclass
from enum import StrEnum


class PolicyName(StrEnum):
    BLIND = "bandwidth-blind"
    """kube-scheduler's default profile alone."""
    RESERVED_ONLY = "netsched-reservations-only"
    """As ``SPREAD``, with observed load off: reservations alone bound what is free."""
    SPREAD = "netsched-spread"
    """kube-scheduler with netsched; every pod annotated ``netsched.io/placement: spread``."""
    PACK = "netsched-pack"
    """kube-scheduler with netsched; every pod annotated ``netsched.io/placement: pack``."""
    DRA = "dra"
    """kube-scheduler allocating each pod's bandwidth as a DRA claim on netsched's devices
    (consumable capacity), with its default scores alone; no extender."""
    DRA_SCORED = "dra-netsched-scoring"
    """As ``DRA``, with netsched's prioritize (zones, peers, headroom) as a score-only
    extender, its filter left out: the DRA scheduler configuration."""


SHIPPED_EXTENDER_WEIGHT = 5
"""The extender weight deploy/ gives kube-scheduler (tests/simulator checks they agree)."""


SEED = 1
"""The arrivals' random seed when a run names none."""
REPORT_INTERVAL = 10.0
"""The node reporter's default interval (``ReporterConfig.interval``)."""


@dataclass(frozen=True, slots=True)
class ClusterShape:
    """How the simulated cluster is laid out: zones, and nodes under each switch."""

    zones: int = 4
    nodes_per_switch: int = 25

    def for_nodes(self, nodes: int) -> tuple[int, int, int]:
        """(zones, switches per zone, nodes per switch) closest to ``nodes`` nodes."""
        zones = max(1, min(self.zones, nodes))
        per_switch = max(1, min(self.nodes_per_switch, nodes // zones))
        switches = max(1, round(nodes / (zones * per_switch)))
        return zones, switches, per_switch
