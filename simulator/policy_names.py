"""The compared policies' names, importable without the extender's web stack (for the CLI parser)."""

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
