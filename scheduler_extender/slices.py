"""Keeping one ``ResourceSlice`` per node for driver ``netsched.io`` (``--publish-resource-slices``).

Why the extender and not each node's reporter publishes: a device's capacity must be the
usable capacity the ledger counts (the cluster's headroom, the node's
``netsched.io/headroom``), and its zone, switch and the Networks that reach it come from
Node labels and Network objects: cluster knowledge the extender already follows and the
reporter does not have. One writer per slice: only the leader writes (``may_write``).

Every few seconds, when the cluster picture changed (``ClusterState.generation``) or a
minute has passed, the leader lists the slices of its driver, builds each node's slice
(``bandwidth_accounting.devices``) and writes only the differences: a new node's slice is
created, a changed one replaced under its resourceVersion with the pool's generation
bumped (DRA consumers use the pool's highest generation), one of a node or report that is
gone deleted (the Node's ownerReference also has the garbage collector do that). A write
that loses a race (409) is simply tried again at the next sync, from a new list.

An API server without ``resource.k8s.io/v1`` (before Kubernetes 1.34, or the group
disabled) answers 404: that is said once, plainly, and looked at again every few
minutes; nothing crashes and nothing else of the extender is affected.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from kubernetes import client
from pydantic import ValidationError

from bandwidth_accounting.devices import node_devices
from contract import dra
from kubernetes_access import ApiFailure, Conflict, NotFound, Refused, api_errors
from scheduler_extender.state import ClusterState

log = logging.getLogger(__name__)

SYNC_SECONDS = 5.0
RELIST_SECONDS = 60.0
"""Look at the API's slices this often even when nothing changed here (someone deleted one)."""
ABSENT_SECONDS = 300.0
"""How often to look again for ``resource.k8s.io/v1`` when the API server does not serve it."""
PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class SyncResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    conflicts: int = 0
    """Writes that lost a race (409); tried again at the next sync."""
    failed: int = 0
    """Writes the API server refused or did not answer; tried again at the next sync."""


class ApiAbsent(RuntimeError):
    """The API server does not serve ``resource.k8s.io/v1`` resourceslices (404)."""


def _content(resource_slice: dra.ResourceSlice) -> dict[str, Any]:
    """What a slice says, less the pool generation that counts its changes."""
    return {
        "owners": resource_slice.metadata.owner_references,
        "spec": resource_slice.spec.model_dump(mode="json", exclude_none=True, exclude={"pool": {"generation"}}),
    }


class SlicePublisher:
    """Writes what ``bandwidth_accounting.devices`` builds from the state, where it differs."""

    def __init__(
        self,
        state: ClusterState,
        api: client.ApiClient,
        may_write: Callable[[], bool] | None = None,
        request_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.may_write = may_write
        self._slices = client.ResourceV1Api(api)
        self._timeout = request_timeout
        self._clock = clock
        self._synced: int | None = None
        """``state.generation`` of the last sync that wrote everything it had to."""
        self._listed_at = -math.inf
        self._said: dict[str, tuple[str, ...]] = {}
        """node → what was left out of its slice, as last logged (logged again on change)."""
        self._problem: str | None = None
        """The last failure logged, so that a failure lasting many syncs is said once."""

    # -- one round -----------------------------------------------------------------------

    def due(self) -> bool:
        return self._synced != self.state.generation or self._clock() - self._listed_at >= RELIST_SECONDS

    def sync(self) -> SyncResult | None:
        """Make the API's slices of our driver the ones the state builds; None when this
        replica may not write (not the leader) or nothing changed since the last sync.

        Raises ``ApiAbsent`` (404 on the group) and ``ApiFailure`` for a failed list."""
        if self.may_write is not None and not self.may_write():
            self._synced = None  # a replica that becomes leader starts from a full look
            return None
        if not self.due():
            return None
        generation = self.state.generation
        listed_at = self._clock()
        existing = self._list()
        desired = self._desired()
        created = updated = deleted = conflicts = 0
        failed: list[str] = []
        for name, wanted in desired.items():
            have = existing.get(name)
            try:
                if have is None:
                    self._call(self._slices.create_resource_slice, self._body(wanted))
                    created += 1
                elif _content(have) != _content(wanted):
                    wanted.spec.pool.generation = have.spec.pool.generation + 1
                    wanted.metadata.resource_version = have.metadata.resource_version
                    self._call(self._slices.replace_resource_slice, name, self._body(wanted))
                    updated += 1
            except Conflict as error:
                log.info("ResourceSlice %s: %s; writing it again at the next sync", name, error.message)
                conflicts += 1
            except ApiFailure as error:  # this node's slice only: the others are still written
                failed.append(f"{name}: {error}")
        for name in existing.keys() - desired.keys():
            try:
                self._call(self._slices.delete_resource_slice, name)
                deleted += 1
            except NotFound:
                pass  # gone already (the garbage collector, after its Node)
            except ApiFailure as error:
                failed.append(f"deleting {name}: {error}")
        self._listed_at = listed_at
        self._synced = generation if not (conflicts or failed) else None
        if failed:
            self._say(f"writing ResourceSlices failed: {'; '.join(failed)}")
        elif self._problem is not None:
            log.info("publishing ResourceSlices works again")
            self._problem = None
        if created or updated or deleted:
            log.info("ResourceSlices: %d created, %d updated, %d deleted", created, updated, deleted)
        return SyncResult(created, updated, deleted, conflicts, len(failed))

    def run(self, stopping: threading.Event, interval: float = SYNC_SECONDS) -> None:
        """Sync until ``stopping`` is set; failures are logged (each once) and retried."""
        wait = 0.0
        while not stopping.wait(wait):
            wait = interval
            try:
                self.sync()
            except ApiAbsent as error:
                self._say(f"{error}; looking again every {ABSENT_SECONDS:.0f}s")
                wait = ABSENT_SECONDS
            except Refused as error:
                self._say(
                    f"the API server refused ResourceSlices ({error}): does the extender's "
                    "ServiceAccount have deploy/dra/'s ClusterRole?"
                )
            except ApiFailure as error:
                self._say(f"publishing ResourceSlices failed: {error}")
            except Exception:  # a bug here must not end the loop, nor the extender
                log.exception("publishing ResourceSlices failed")

    # -- pieces --------------------------------------------------------------------------

    def _desired(self) -> dict[str, dra.ResourceSlice]:
        topology = self.state.topology
        desired = {}
        for node in sorted(topology.nodes):
            built = node_devices(topology, node, self.state.capacity)
            if built is None:
                continue
            desired[built.slice.metadata.name] = built.slice
            if self._said.get(node, ()) != built.left_out:
                if built.left_out:
                    log.warning("ResourceSlice of node %s leaves out: %s", node, "; ".join(built.left_out))
                self._said[node] = built.left_out
        return desired

    def _list(self) -> dict[str, dra.ResourceSlice]:
        """Our driver's slices by name (``spec.driver`` is a field the API server selects on)."""
        found: dict[str, dra.ResourceSlice] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"field_selector": f"spec.driver={dra.DRIVER}", "limit": PAGE_SIZE}
            if token:
                kwargs["_continue"] = token
            try:
                page = self._call(self._slices.list_resource_slice, **kwargs)
            except NotFound:
                raise ApiAbsent(
                    f"the API server does not serve {dra.GROUP_VERSION} {dra.RESOURCE_SLICES} (404: Kubernetes "
                    "before 1.34, or the API disabled): netsched's NICs are not published as DRA devices"
                ) from None
            for raw in page.get("items") or []:
                try:
                    parsed = dra.ResourceSlice.model_validate(raw)
                except ValidationError as error:
                    # Not one netsched wrote (or a newer form): replaced by ours, or deleted.
                    log.warning("ResourceSlice %s is unreadable: %s", (raw.get("metadata") or {}).get("name"), error)
                    parsed = dra.ResourceSlice.model_validate({
                        "metadata": raw.get("metadata") or {"name": ""},
                        "spec": {"driver": dra.DRIVER, "pool": {"name": "", "generation": 0, "resourceSliceCount": 0}},
                    })
                found[parsed.metadata.name] = parsed
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return found

    @staticmethod
    def _body(resource_slice: dra.ResourceSlice) -> dict[str, Any]:
        return resource_slice.model_dump(mode="json", exclude_none=True)

    def _call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        with api_errors():
            response = call(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            try:
                data = response.data
            finally:
                response.release_conn()
        return orjson.loads(data) if data else {}

    def _say(self, problem: str) -> None:
        if problem != self._problem:
            log.warning("%s", problem)
            self._problem = problem


__all__ = ["ABSENT_SECONDS", "ApiAbsent", "SlicePublisher", "SyncResult"]
