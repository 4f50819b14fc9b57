"""Names of the annotations that make up netsched's public contract, and their size caps.

What each means for a pod: docs/scheduling.md, "What a pod asks for". Why each value
is capped, and what the caps stop: docs/security.md.
"""

HEADROOM = "netsched.io/headroom"
"""Node annotation overriding the cluster's headroom, as a fraction (0.2) or percent (20%)."""

INGRESS_BANDWIDTH = "kubernetes.io/ingress-bandwidth"
EGRESS_BANDWIDTH = "kubernetes.io/egress-bandwidth"
NETWORKS = "netsched.io/networks"
PLACEMENT = "netsched.io/placement"
PEERS = "netsched.io/peers"
RESERVATION = "netsched.io/reservation"
MULTUS_NETWORKS = "k8s.v1.cni.cncf.io/networks"
"""Multus's network-selection annotation (Network Plumbing WG spec): read, never written."""

INPUTS = (INGRESS_BANDWIDTH, EGRESS_BANDWIDTH, NETWORKS, MULTUS_NETWORKS, PLACEMENT, PEERS)
"""Annotations a pod author sets; a pod with none of them is not netsched's business."""

MAX_ATTACHMENTS = 16
"""Extra networks one pod may ask for: more than any workload needs, few enough that
checking a pod stays cheap on every node."""

MAX_LENGTH: dict[str, int] = {
    INGRESS_BANDWIDTH: 64,
    EGRESS_BANDWIDTH: 64,
    NETWORKS: 16 * 1024,
    MULTUS_NETWORKS: 16 * 1024,
    PLACEMENT: 16,
    PEERS: 4 * 1024,
    RESERVATION: 64 * 1024,
}
"""Characters of each annotation netsched reads. Every value is refused above its cap
before it is parsed, so the work a pod can cause is bounded; the caps sit far above
legitimate values (16 attachments with every field set take about 4 KiB)."""

QUOTED_CHARACTERS = 128
"""How much of a refused value a message repeats: enough to recognise it, never enough
for a large value to make a large answer."""


def quoted(value: object) -> str:
    """``value`` for a message: its repr, cut to a short prefix with the full length noted."""
    if isinstance(value, str) and len(value) > QUOTED_CHARACTERS:
        return f"{value[:QUOTED_CHARACTERS]!r}… ({len(value)} characters)"
    text = repr(value)
    if len(text) > QUOTED_CHARACTERS:
        return f"{text[:QUOTED_CHARACTERS]}… ({len(text)} characters)"
    return text


def oversized(name: str, value: str) -> str | None:
    """Why ``value`` is too long for annotation ``name``, or None when it is within the cap."""
    cap = MAX_LENGTH.get(name)
    if cap is None or len(value) <= cap:
        return None
    return f"is {len(value)} characters long; the limit is {cap}"
