"""What one extender process holds, apart from how it is served.

``Extender`` bundles the cluster state, the source that feeds it, the scheduler and the
metrics. It imports no web framework: the FastAPI app (``app``) serves one, and the
simulator drives the same scheduler in-process without FastAPI installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from contract.objects import Pod
from scheduler_extender.cluster import ClusterSource
from scheduler_extender.metrics import ExtenderMetrics
from scheduler_extender.scheduler import FilterResult, Scheduler
from scheduler_extender.state import ClusterState


class RefusalListener(Protocol):
    def refused(self, pod: Pod, result: FilterResult) -> None:
        """``result`` refused some nodes for ``pod``; called on the event loop: do no I/O."""


@dataclass(slots=True)
class Extender:
    """Everything one extender process holds; built once, passed to the app."""

    state: ClusterState
    source: ClusterSource
    scheduler: Scheduler
    metrics: ExtenderMetrics
    is_ready: Callable[[], bool] | None = None
    """Extra readiness condition (e.g. holding the leader Lease)."""
    refusal_listeners: list[RefusalListener] = field(default_factory=list)
    """Told of every filter outcome that refused nodes (preemption, retries)."""

    @classmethod
    def build(cls, source: ClusterSource, state: ClusterState | None = None, **scheduler_args) -> Extender:
        state = state or ClusterState()
        return cls(
            state=state,
            source=source,
            scheduler=Scheduler(state, source, **scheduler_args),
            metrics=ExtenderMetrics(state),
        )
