"""``netsched simulate``: pods arriving and leaving a simulated cluster, placed by kube-scheduler
alone (bandwidth-blind) and by kube-scheduler with netsched, through the extender's own code.

The names of the compared policies and the shipped extender weight are here, in the package
itself, because ``netsched``'s parser offers them on every command it builds, ``netsched
reporter`` on a node included, where numpy (which the simulation's modules import) is not
installed.
"""

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


SHIPPED_EXTENDER_WEIGHT = 5
"""The extender weight deploy/ gives kube-scheduler (tests/simulator checks they agree)."""
