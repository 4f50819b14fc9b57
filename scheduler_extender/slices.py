"""Keeping one ``ResourceSlice`` per node for driver ``netsched.io`` (``--publish-resource-slices``).

Why the extender and not each node's reporter publishes: a device's capacity must be the
usable capacity the ledger counts (the cluster's headroom, the node's
``netsched.io/headroom``), and its zone, switch and the Networks that reach it come from
Node labels and Network objects: cluster knowledge the extender already follows and the
reporter does not have. One writer per slice: only the leader writes (``may_write``).

Every few seconds, when the cluster picture changed (``ClusterState.generation``), the
leader builds each node's slice (``bandwidth_accounting.devices``), compares it with what
the API holds (listed when it starts writing, after a failure and every ten minutes; its
own writes in between) and writes only the differences: a new node's slice is
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

from bandwidth_accounting.devices import NodeDevices, node_devices, node_inputs
from contract import dra
from kubernetes_access import ApiFailure, Conflict, NotFound, Refused, api_errors
from scheduler_extender.state import ClusterState

log = logging.getLogger(__name__)

SYNC_SECONDS = 5.0
RELIST_SECONDS = 600.0
"""List the API's slices again this often even when nothing failed (someone deleted one): a
list of 5,000 slices costs seconds (benchmarks/resource_slices.py)."""
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


def _resource_version(written: dict[str, Any]) -> str | None:
    return (written.get("metadata") or {}).get("resourceVersion")


def _content(resource_slice: dra.ResourceSlice) -> dict[str, Any]:
    """What a slice says, less the pool generation that counts its changes."""
    return {
        "owners": resource_slice.metadata.owner_references,
        "spec": resource_slice.spec.model_dump(mode="json", exclude_none=True, exclude={"pool": {"generation"}}),
    }


@dataclass(slots=True)
class _Held:
    """A slice as the API holds it, as far as this writer knows (listed, or written by it)."""

    content: dict[str, Any]
    generation: int
    resource_version: str | None


@dataclass(slots=True)
class _Built:
    inputs: tuple[object, ...]
    node_devices: NodeDevices | None
    content: dict[str, Any] | None


class SlicePublisher:
    """Writes what ``bandwidth_accounting.devices`` builds from the state, where it differs.

    What the API holds is listed when this replica starts writing, after a failed write, and
    every ``RELIST_SECONDS``; in between, the writer's own record of its writes stands for
    it. A node's slice is rebuilt only when its inputs (``devices.node_inputs``) changed:
    at 5,000 nodes a change anywhere costs the inputs of every node, not every slice."""

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
        self._held: dict[str, _Held] | None = None
        """Slice name → what the API holds; None: not known, list it."""
        self._listed_at = -math.inf
        self._built: dict[str, _Built] = {}
        """node → its slice and the inputs it was built from."""
        self._problem: str | None = None
        """The last failure logged, so that a failure lasting many syncs is said once."""

    # -- one round -----------------------------------------------------------------------

    def due(self) -> bool:
        return (
            self._held is None
            or self._synced != self.state.generation
            or self._clock() - self._listed_at >= RELIST_SECONDS
        )

    def sync(self) -> SyncResult | None:
        """Make the API's slices of our driver the ones the state builds; None when this
        replica may not write (not the leader) or nothing changed since the last sync.

        Raises ``ApiAbsent`` (404 on the group) and ``ApiFailure`` for a failed list."""
        if self.may_write is not None and not self.may_write():
            self._held = None  # a replica that becomes leader starts from a fresh list
            return None
        if not self.due():
            return None
        generation = self.state.generation
        if self._held is None or self._clock() - self._listed_at >= RELIST_SECONDS:
            listed_at = self._clock()
            self._held = self._list()
            self._listed_at = listed_at
        held = self._held
        desired = self._desired()
        created = updated = deleted = conflicts = 0
        failed: list[str] = []
        for name, (wanted, content) in desired.items():
            have = held.get(name)
            try:
                if have is None:
                    written = self._call(self._slices.create_resource_slice, self._body(wanted))
                    created += 1
                elif have.content != content:
                    wanted = wanted.model_copy(deep=True)
                    wanted.spec.pool.generation = have.generation + 1
                    wanted.metadata.resource_version = have.resource_version
                    written = self._call(self._slices.replace_resource_slice, name, self._body(wanted))
                    updated += 1
                else:
                    continue
                held[name] = _Held(content, wanted.spec.pool.generation, _resource_version(written))
            except Conflict as error:
                log.info("ResourceSlice %s: %s; writing it again at the next sync", name, error.message)
                conflicts += 1
            except ApiFailure as error:  # this node's slice only: the others are still written
                failed.append(f"{name}: {error}")
        for name in held.keys() - desired.keys():
            try:
                self._call(self._slices.delete_resource_slice, name)
                deleted += 1
            except NotFound:
                pass  # gone already (the garbage collector, after its Node)
            except ApiFailure as error:
                failed.append(f"deleting {name}: {error}")
                continue
            held.pop(name, None)
        if conflicts or failed:
            self._held, self._synced = None, None  # list again, then write what is still different
        else:
            self._synced = generation
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

    def _desired(self) -> dict[str, tuple[dra.ResourceSlice, dict[str, Any]]]:
        """Slice name → (the slice, its content), rebuilding only nodes whose inputs changed."""
        topology, capacity = self.state.topology, self.state.capacity
        desired = {}
        built: dict[str, _Built] = {}
        for node in sorted(topology.nodes):
            inputs = node_inputs(topology, node, capacity)
            cached = self._built.get(node)
            if cached is None or cached.inputs != inputs:
                made = node_devices(topology, node, capacity)
                if made is not None and made.left_out and (
                    cached is None or cached.node_devices is None or cached.node_devices.left_out != made.left_out
                ):
                    log.warning("ResourceSlice of node %s leaves out: %s", node, "; ".join(made.left_out))
                cached = _Built(inputs, made, _content(made.slice) if made is not None else None)
            built[node] = cached
            if cached.node_devices is not None and cached.content is not None:
                desired[cached.node_devices.slice.metadata.name] = (cached.node_devices.slice, cached.content)
        self._built = built
        return desired

    def _list(self) -> dict[str, _Held]:
        """Our driver's slices by name (``spec.driver`` is a field the API server selects on)."""
        found: dict[str, _Held] = {}
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
                found[parsed.metadata.name] = _Held(
                    _content(parsed), parsed.spec.pool.generation, parsed.metadata.resource_version
                )
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
