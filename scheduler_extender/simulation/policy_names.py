"""The compared policies' names, importable without the extender's web stack (for the CLI parser)."""

from enum import StrEnum


class PolicyName(StrEnum):
    BLIND = "bandwidth-blind"
    """kube-scheduler's default profile alone."""
    SPREAD = "netsched-spread"
    """kube-scheduler with netsched; every pod annotated ``netsched.io/placement: spread``."""
    PACK = "netsched-pack"
    """kube-scheduler with netsched; every pod annotated ``netsched.io/placement: pack``."""
