"""Where each pod's peers are when it is placed, and the traffic it sends them.

Traffic model for peers: a pod with ``netsched.io/peers`` sends its primary egress
rate to the peers (pods matching the selector, same namespace) that are running when
it is placed, split evenly among them, for its whole lifetime. Its bytes cross zones
in the share of those peers that sit in another zone. "Hops between peers" is the
mean, over those bytes, of the hops they travel through the switch tree (same node 0,
same switch 2, same zone 4, other zone 6): a pod's bytes travel the mean hops to its peers.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from bandwidth_accounting.requirements import LabelSelector, PodRequirements
from simulator.policies import Placed
from topology.graph import Topology


class PeerIndex:
    def __init__(self, topology: Topology) -> None:
        self.rows = topology.rows
        self.position = self.rows.position
        self.running: dict[str, tuple[int, dict[str, str]]] = {}
        self.by_label: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.pairs = 0
        self.byte_hops = 0.0
        self.bytes = 0.0
        self.cross_zone_bytes = 0.0

    def placed(self, placed: Placed, requirements: PodRequirements) -> None:
        """Count the new pod's peer pairs and traffic, then make it a peer for later pods."""
        row = self.position[placed.node_name]
        if requirements.peers is not None:
            peers = self._rows_matching(requirements.peers)
            if len(peers):
                self.pairs += len(peers)
                sent = requirements.egress_bps / 8 * placed.arrival.lifetime
                self.byte_hops += sent * float(self.rows.hops_between(peers, row).mean())
                self.bytes += sent
                self.cross_zone_bytes += sent * float(np.mean(self.rows.zone[peers] != self.rows.zone[row]))
        uid = placed.arrival.uid
        labels = placed.arrival.labels
        self.running[uid] = (row, labels)
        for item in labels.items():
            self.by_label[item].add(uid)

    def departed(self, placed: Placed) -> None:
        uid = placed.arrival.uid
        if self.running.pop(uid, None) is None:
            return
        for item in placed.arrival.labels.items():
            self.by_label[item].discard(uid)

    def _rows_matching(self, selector: LabelSelector) -> np.ndarray:
        equal = next((term for term in selector.terms if term.operator == "="), None)
        uids = self.running if equal is None else self.by_label.get((equal.key, equal.value or ""), ())
        rows = [self.running[uid][0] for uid in uids if selector.matches(self.running[uid][1])]
        return np.array(sorted(rows), dtype=np.int64)
