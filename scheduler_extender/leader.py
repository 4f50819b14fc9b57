"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go does it.

Several extender replicas run; the one holding the Lease answers ``/bind`` and reports
ready, so the Service sends kube-scheduler to it. A replica takes the Lease when it is
free, released, or when its holder has not renewed it for ``leaseDurationSeconds`` as
observed on this replica's own clock (no trust in other clocks). Every write carries
the Lease's resourceVersion, so two replicas racing for it cannot both win.

A new leader first runs ``prepare`` (the source's full rebuild from the API) and only
then counts as leader. A leader that cannot renew within ``renew_deadline`` stops
counting as leader on its own, before any other replica may take over
(``renew_deadline < lease_duration``): two replicas never bind at the same time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from kubernetes import client

from kubernetes_access import ApiFailure, Conflict, NotFound, api_errors
from scheduler_extender.settings import LeaseSettings

log = logging.getLogger(__name__)


def _micro_time(moment: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires and renews the Lease in a thread; ``is_leader`` is the readiness hook."""

    def __init__(
        self,
        api: client.ApiClient,
        settings: LeaseSettings,
        prepare: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        problems = settings.problems()
        if problems:
            raise ValueError("leader election: " + "; ".join(problems))
        self.settings = settings
        self._leases = client.CoordinationV1Api(api)
        self._prepare = prepare
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._term = 0
        """Bumped whenever leadership starts or ends; a prepare from an old term is void."""
        self._leading = False
        self._prepared = False
        self._renewed_at = -math.inf
        self._observed: dict[str, Any] | None = None
        self._observed_at = -math.inf
        self.transitions = 0

    # -- public --------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """Holding a Lease renewed within the deadline, and rebuilt from the API."""
        with self._lock:
            fresh = self._clock() - self._renewed_at < self.settings.renew_deadline
            return self._leading and self._prepared and fresh

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; a leader hands the Lease back (``release``) so that another
        replica takes over at once instead of after the lease duration."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            was_leading = self._leading
            self._step_down_locked()
        if release and was_leading:
            self._release()

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = self._clock()
            try:
                held = self._try_acquire_or_renew()
            except (ApiFailure, ValueError) as error:  # ValueError: an answer that is not JSON
                log.warning("lease %s: %s", self.settings.name, error)
                held = False
            with self._lock:
                if held:
                    self._renewed_at = started
                    if not self._leading:
                        self._leading = True
                        self._term += 1
                        self.transitions += 1
                        log.info(
                            "%s leads (lease %s/%s); rebuilding from the API",
                            self.settings.identity,
                            self.settings.namespace,
                            self.settings.name,
                        )
                        threading.Thread(
                            target=self._prepare_term,
                            args=(self._term,),
                            name="leader-prepare",
                            daemon=True,
                        ).start()
                elif self._leading and (
                    self._holder_is_other()
                    or self._clock() - self._renewed_at >= self.settings.renew_deadline
                ):
                    log.warning("%s lost the lease", self.settings.identity)
                    self._step_down_locked()
            self._stopping.wait(self.settings.retry_period)

    def _prepare_term(self, term: int) -> None:
        """Run ``prepare`` until it succeeds or the term ends; then the leader is ready."""
        delay = 0.2
        while not self._stopping.is_set():
            with self._lock:
                if self._term != term:
                    return
            try:
                self._prepare()
            except Exception as error:  # noqa: BLE001 - any failure: try again while leading
                log.warning(
                    "rebuilding as the new leader failed (%s); retrying in %.1fs", error, delay
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, self.settings.retry_period)
                continue
            with self._lock:
                if self._term == term and self._leading:
                    self._prepared = True
                    log.info("%s is ready to bind", self.settings.identity)
            return

    def _step_down_locked(self) -> None:
        if self._leading:
            self._term += 1
        self._leading = False
        self._prepared = False

    def _holder_is_other(self) -> bool:
        holder = (self._observed or {}).get("holderIdentity")
        return bool(holder) and holder != self.settings.identity

    # -- the Lease -----------------------------------------------------------------------

    def _try_acquire_or_renew(self) -> bool:
        settings, now = self.settings, datetime.now(UTC)
        try:
            lease = self._call(
                self._leases.read_namespaced_lease, settings.name, settings.namespace
            )
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": settings.name, "namespace": settings.namespace},
                "spec": self._spec(now, acquired=now, transitions=0),
            }
            return self._write(self._leases.create_namespaced_lease, settings.namespace, body)
        spec = lease.get("spec") or {}
        with self._lock:
            if spec != self._observed:
                self._observed, self._observed_at = spec, self._clock()
        holder = spec.get("holderIdentity")
        if holder and holder != settings.identity:
            duration = spec.get("leaseDurationSeconds") or math.ceil(settings.lease_duration)
            if self._clock() < self._observed_at + duration:
                return False  # held, and renewed recently enough as far as we can tell
        mine = holder == settings.identity
        acquired = spec.get("acquireTime") if mine else _micro_time(now)
        transitions = (spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(now, acquired=acquired, transitions=transitions)
        return self._write(
            self._leases.replace_namespaced_lease, settings.name, settings.namespace, lease
        )

    def _spec(
        self, now: datetime, acquired: datetime | str | None, transitions: int
    ) -> dict[str, Any]:
        return {
            "holderIdentity": self.settings.identity,
            "leaseDurationSeconds": math.ceil(self.settings.lease_duration),
            "acquireTime": _micro_time(acquired) if isinstance(acquired, datetime) else acquired,
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }

    def _write(self, call: Callable[..., Any], *args: Any) -> bool:
        try:
            written = self._call(call, *args)
        except Conflict:
            return False  # someone else wrote first (AlreadyExists or Conflict)
        with self._lock:
            self._observed, self._observed_at = written.get("spec"), self._clock()
        return True

    def _release(self) -> None:
        """Leave the Lease free (no holder, 1 s duration), if it is still ours."""
        settings = self.settings
        try:
            lease = self._call(
                self._leases.read_namespaced_lease, settings.name, settings.namespace
            )
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != settings.identity:
                return
            lease["spec"] = {
                **spec,
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": _micro_time(datetime.now(UTC)),
            }
            self._call(
                self._leases.replace_namespaced_lease, settings.name, settings.namespace, lease
            )
            log.info("%s released the lease", settings.identity)
        except ApiFailure as error:
            log.warning("releasing the lease failed: %s", error)

    def _call(self, call: Callable[..., Any], *args: Any) -> dict[str, Any]:
        timeout = max(self.settings.retry_period, 1.0)
        with api_errors():
            response = call(*args, _preload_content=False, _request_timeout=timeout)
            try:
                data = response.data
            finally:
                response.release_conn()
        return orjson.loads(data)


__all__ = ["LeaderElector"]
