"""``BandwidthPolicy`` status: what a namespace's pods hold beside what it may, as ResourceQuota shows.

The ledger knows each namespace's reservations at every moment; the status is a copy
for ``kubectl get``, refreshed every few seconds and only where it changed. The state's
copy of each policy is what the API last said, so a write that did not land is simply
written again at the next sync.
"""

from __future__ import annotations

import logging
import threading

from bandwidth_accounting.policy import policy_status
from scheduler_extender.cluster import ClusterSource
from scheduler_extender.state import ClusterState

log = logging.getLogger(__name__)

SYNC_SECONDS = 5.0


class PolicyStatusWriter:
    def __init__(self, state: ClusterState, source: ClusterSource) -> None:
        self.state, self.source = state, source

    def sync(self) -> int:
        """Write every status that differs from what the namespace holds; how many it wrote."""
        written = 0
        for policy in self.state.bandwidth_policies():
            used = self.state.ledger.namespace_reserved(policy.metadata.effective_namespace)
            status = policy_status(policy, used)
            if status != policy.status:
                self.source.write_policy_status(policy, status)
                written += 1
        return written

    def run(self, stopping: threading.Event, interval: float = SYNC_SECONDS) -> None:
        """Sync until ``stopping`` is set."""
        while not stopping.wait(interval):
            try:
                self.sync()
            except Exception:  # a status is cosmetic: never let it stop the loop
                log.exception("writing BandwidthPolicy status failed")
