"""Names of the annotations that make up netsched's public contract.

What each means for a pod: docs/scheduling.md, "What a pod asks for".
"""

INGRESS_BANDWIDTH = "kubernetes.io/ingress-bandwidth"
EGRESS_BANDWIDTH = "kubernetes.io/egress-bandwidth"
NETWORKS = "netsched.io/networks"
PLACEMENT = "netsched.io/placement"
PEERS = "netsched.io/peers"
RESERVATION = "netsched.io/reservation"

INPUTS = (INGRESS_BANDWIDTH, EGRESS_BANDWIDTH, NETWORKS, PLACEMENT, PEERS)
"""Annotations a pod author sets; a pod with none of them is not netsched's business."""
