"""The extender's own settings that its command line sets: the Lease timings of leader election.

Apart from ``scheduler_extender.leader``, which needs the kubernetes client, so that
``netsched serve``'s flags read their defaults from here without loading it (every
``netsched`` command builds every command's parser).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    name: str = "netsched-extender"
    namespace: str = "kube-system"
    identity: str = ""
    lease_duration: float = 15.0
    """Seconds a holder's lease is honoured after its last renewal."""
    renew_deadline: float = 10.0
    """Seconds a leader keeps trying to renew before it steps down."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew."""

    def problems(self) -> list[str]:
        found = []
        if not self.identity:
            found.append("the identity must not be empty")
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            found.append(
                f"need 0 < retry period ({self.retry_period}s) < renew deadline "
                f"({self.renew_deadline}s) < lease duration ({self.lease_duration}s)"
            )
        return found
