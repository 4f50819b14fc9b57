"""A small in-memory Kubernetes API server for tests, speaking the real REST paths.

Any resource works without registration: ``/api/v1/<plural>[/<name>[/status]]``,
``/api/v1/namespaces/<ns>/<plural>/...`` and the same under ``/apis/<group>/<version>``.
It keeps what a client depends on: one ``resourceVersion`` counter for all writes (as
etcd's revision), ``uid``/``creationTimestamp``/``generation``, 404 NotFound, 409
AlreadyExists and 409 Conflict on a stale ``resourceVersion``, JSON merge patch, strategic
merge patch (approximated as merge patch, and refused with 415 for custom resources, as
the real server does), and the status subresource rule: writes to an object ignore its
``status``, writes to ``/status`` change nothing but ``status``. Errors are ``Status``
objects. Lists and watches honour ``labelSelector`` and ``fieldSelector`` (``selectors.py``;
a field the real server does not select on is a 400). It does not do field managers or
admission. Pods have the
``eviction`` subresource with PodDisruptionBudgets (``eviction.py``).

Watches (``?watch=true``) stream one JSON event per line in a chunked HTTP/1.1 body, as
the real server does: ``ADDED``/``MODIFIED``/``DELETED`` from the given
``resourceVersion`` on (a watch without one first lists what exists as ``ADDED``),
``BOOKMARK`` every ``bookmark_interval`` seconds with ``allowWatchBookmarks``, and the
stream ends cleanly after ``timeoutSeconds``. History can be compacted (``compact()``):
open watches still get every event, and a watch opened from before the compaction
answers an ``ERROR`` event with a ``410 Expired`` Status, and
a list ``continue`` token from before it is ``410 Gone``. Lists of namespaced resources
without a namespace span all namespaces and honour ``limit``/``continue``. Pods have
the ``binding`` subresource (UID and resourceVersion preconditions; 409 for a pod being
deleted, already bound or with scheduling gates; the Binding's annotations merged into the
pod and the PodScheduled condition set, not appended, in the same write). Faults for
tests: ``fault`` (a callable that may answer any request with an ``ApiError``),
``drop_watches()`` (streams cut mid-way, without their last chunk) and
``expire_watches()`` (history compacted, open streams told ``410``).

Connections stay open between requests (HTTP/1.1 keep-alive), as kube-apiserver's do:
the official client's pool reuses them, so a client meets what it meets in a cluster,
a pooled connection the server has since closed included (``pause()`` closes them all).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.kube_api.selectors import Selection, SelectorRefused, selection

from tests.kube_api import eviction

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
TOPOLOGY_LABELS = ("topology.kubernetes.io/zone", "topology.kubernetes.io/region")
"""Node labels the API server copies onto a pod when it is bound (PodTopologyLabels admission)."""


class ApiError(Exception):
    """An error the server answers with a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            # StatusDetails' fields are ``omitempty``: the core group ("") is not sent.
            "details": {key: value for key, value in self.details.items() if value != ""},
            "code": self.code,
        }


@dataclass(frozen=True)
class ResourcePath:
    """A request path split the way the API server routes it."""

    group: str  # "" for the core group
    version: str
    namespace: str | None
    plural: str
    name: str | None
    subresource: str | None

    @property
    def collection(self) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{prefix}{scope}/{self.plural}"

    @classmethod
    def parse(cls, path: str) -> ResourcePath:
        parts = [p for p in urlsplit(path).path.split("/") if p]
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({path})"
            )
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(
                404, "NotFound", f"the server could not find the requested resource ({path})"
            )
        return cls(group, version, namespace, rest[0], *(rest[1:] + [None, None])[:2])


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    content_type: str | None
    body: Any


class WatchEvent(dict[str, Any]):
    """``{"type", "object"}`` as a watch sends it, with its JSON line encoded at most once.

    kube-apiserver's watch cache encodes an event once for all the watchers it goes to
    (``cachingObject``, KEP-1152 "Less object serializations"): a second watcher of pods
    costs the server a write, not an encoding. The stream sends ``line()``."""

    _line: bytes | None = None

    def line(self) -> bytes:
        if self._line is None:
            self._line = json.dumps(self).encode() + b"\n"
        return self._line


@dataclass(frozen=True)
class _Event:
    """One change in the store's history, at the revision it created."""

    revision: int
    where: ResourcePath
    type: str
    object: dict[str, Any]
    sent: dict[str, WatchEvent] = field(default_factory=dict, compare=False)
    """The event as watches send it, by type (a selection may send a MODIFIED as ADDED or
    DELETED): one object per type, shared by every watcher."""

    def as_sent(self, type_: str) -> WatchEvent:
        sent = self.sent.get(type_)
        if sent is None:
            sent = self.sent.setdefault(type_, WatchEvent(type=type_, object=self.object))
        return sent


class WatchDropped(Exception):
    """The stream is cut without its closing chunk (a broken connection, as seen by the client)."""


@dataclass(eq=False)
class _OpenWatch:
    where: ResourcePath
    since: int = 0
    """The revision up to which history has been looked at for this watch."""
    cut: str | None = None  # "drop" or "expire"
    events: list[WatchEvent] = field(default_factory=list)
    """Events due to the client before anything newer from history."""
    selection: Selection = field(default_factory=Selection)
    known: set[tuple[str, str]] = field(default_factory=set)
    """(namespace, name) of the selected objects the client has been told about."""

    def through_selection(self, event: _Event) -> WatchEvent | None:
        """The event as this watch sends it: as is, turned into ADDED or DELETED where the
        object enters or leaves the selection, or None where it stays outside it.

        The object is the history's own: ``_record`` stored a copy nobody changes, and the
        event is encoded once for every watch that sends it (``WatchEvent``)."""
        obj, key = event.object, _sort_key(event.object)
        if not self.selection.requirements:
            return event.as_sent(event.type)
        held = key in self.known
        if event.type != "DELETED" and self.selection.matches(obj):
            self.known.add(key)
            return event.as_sent("MODIFIED" if held else "ADDED")
        if not held:
            return None
        self.known.discard(key)
        return event.as_sent("DELETED")


def _same_resource(a: ResourcePath, b: ResourcePath) -> bool:
    return (a.group, a.version, a.plural) == (b.group, b.version, b.plural)


def _selection(where: ResourcePath, query: dict[str, str]) -> Selection:
    try:
        return selection(where.plural, query)
    except SelectorRefused as refused:
        raise ApiError(400, "BadRequest", str(refused)) from None


def _query(path: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(path).query).items()}


def _is_watch(path: str) -> bool:
    return _query(path).get("watch", "").lower() in ("true", "1")


class FakeKubeAPI:
    """The server and its store. Use as a context manager; ``url`` is its base URL.

    ``custom_groups`` are API groups served as custom resources (no strategic merge
    patch). ``pause()``/``resume()`` take the API away and back on the same port.
    """

    def __init__(self, custom_groups: frozenset[str] = frozenset({"netsched.io"})) -> None:
        self.custom_groups = custom_groups
        self.requests: list[RecordedRequest] = []
        self._objects: dict[str, dict[str, dict[str, Any]]] = {}
        self._revision = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._history: list[_Event] = []
        self._compacted = 0
        self._changed: dict[tuple[str, str, str], threading.Condition] = {}
        """One condition per resource (group, version, plural), all on ``_lock``: a change
        wakes only the watches of its resource, as kube-apiserver's watch cache (one per
        resource) dispatches an event only to that resource's watchers."""
        self._watches: set[_OpenWatch] = set()
        self._connections: set[socket.socket] = set()
        """Client connections open now (kept alive between requests); guarded by ``_lock``."""
        self.connections_accepted = 0
        """Client connections accepted since the server was made."""
        self.bookmark_interval = 1.0
        """Seconds between BOOKMARK events on watches that allow them."""
        self.fault: Callable[[str, str], ApiError | None] | None = None
        """Called with (method, path) before serving; an ``ApiError`` it returns is the answer."""

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> Self:
        self.resume()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pause()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def resume(self) -> None:
        """Start serving (again, on the same port once one was chosen)."""
        if self._server is not None:
            return
        self._server = _Listener(("127.0.0.1", self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-kube-api", daemon=True
        )
        self._thread.start()

    def pause(self) -> None:
        """Stop listening: clients get "connection refused" until :meth:`resume`.
        Open watch streams are cut and kept-alive connections closed, as a server going
        away would: a client's pooled connection is dead from then on."""
        if self._server is None:
            return
        self.drop_watches()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_now = list(self._connections)
        for connection in open_now:
            with contextlib.suppress(OSError):  # the client may have closed it already
                connection.shutdown(socket.SHUT_RDWR)
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
            self.connections_accepted += 1

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig file pointing at this server (JSON is valid YAML)."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                }
            )
        )
        return path

    # -- direct access for tests ------------------------------------------------------

    def seed(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` (status included) as if created; returns the stored copy."""
        with self._lock:
            return copy.deepcopy(
                self._create(ResourcePath.parse(collection), obj, keep_status=True)
            )

    def get(self, path: str) -> dict[str, Any] | None:
        where = ResourcePath.parse(path)
        with self._lock:
            obj = self._objects.get(where.collection, {}).get(where.name or "")
            return copy.deepcopy(obj)

    def delete(self, path: str) -> None:
        self.handle("DELETE", path, None, None)

    @property
    def revision(self) -> int:
        """The newest resourceVersion handed out (etcd's revision)."""
        return self._revision

    def list_objects(self, collection: str) -> list[dict[str, Any]]:
        """Every object of a collection (all namespaces when it names none)."""
        with self._lock:
            return copy.deepcopy(self._items(ResourcePath.parse(collection)))

    # -- watch faults -------------------------------------------------------------------

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    def drop_watches(self) -> None:
        """Cut every open watch stream mid-way (no closing chunk)."""
        with self._lock:
            for watch in self._watches:
                watch.cut = "drop"
            self._wake_all()

    def compact(self) -> None:
        """Forget history up to now: older resourceVersions are gone (410) for watches
        and list continuations, as after an etcd compaction."""
        with self._lock:
            self._compact()

    def _changes_of(self, where: ResourcePath) -> threading.Condition:
        """The condition the watches of ``where``'s resource wait on; the caller holds ``_lock``."""
        resource = (where.group, where.version, where.plural)
        condition = self._changed.get(resource)
        if condition is None:
            condition = self._changed[resource] = threading.Condition(self._lock)
        return condition

    def _wake_all(self) -> None:
        for condition in self._changed.values():
            condition.notify_all()

    def _compact(self) -> None:
        # The real server's watch cache has already dispatched every event into each open
        # watcher's channel: compacting etcd takes nothing from a watch that is open. Only
        # a watch opened (or resumed) from before the compaction is told 410.
        for watch in self._watches:
            if watch.cut is None:
                watch.events.extend(self._unsent(watch))
        self._compacted = self._revision
        self._history.clear()

    def expire_watches(self) -> None:
        """Compact, and tell every open watch ``410 Expired`` (its window is gone)."""
        with self._lock:
            self._compact()
            for watch in self._watches:
                watch.cut = "expire"
            self._wake_all()

    # -- the API ----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, content_type: str | None, body: Any
    ) -> tuple[int, Any]:
        """Serve one request; returns (HTTP status, JSON body)."""
        self.requests.append(RecordedRequest(method, path, content_type, body))
        try:
            self._check_fault(method, path)
            where = ResourcePath.parse(path)
            if where.subresource == "binding" and where.plural == "pods" and method == "POST":
                with self._lock:
                    return 201, self._bind(where, body)
            if where.subresource == "eviction" and where.plural == "pods" and method == "POST":
                with self._lock:
                    return 201, self._evict(where, body)
            if where.subresource not in (None, "status"):
                raise ApiError(404, "NotFound", f"subresource {where.subresource!r} is not served")
            with self._lock:
                return self._dispatch(method, where, content_type, body, _query(path))
        except ApiError as error:
            return error.code, error.status()

    def _check_fault(self, method: str, path: str) -> None:
        fault = self.fault
        error = fault(method, path) if fault is not None else None
        if error is not None:
            raise error

    def open_watch(self, path: str) -> Iterator[WatchEvent]:
        """Start a watch: raises ``ApiError`` at once (answered as a plain error), else
        returns the stream of events. The stream raises ``WatchDropped`` when cut."""
        self.requests.append(RecordedRequest("GET", path, None, None))
        self._check_fault("GET", path)
        where = ResourcePath.parse(path)
        if where.name is not None:
            raise ApiError(405, "MethodNotAllowed", "watch a collection, not one object")
        query = _query(path)
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        chosen = _selection(where, query)
        watch = _OpenWatch(where, selection=chosen)
        with self._lock:
            wanted = query.get("resourceVersion", "")
            if wanted in ("", "0"):
                # "Any" version: what exists now, as ADDED, then changes from here on.
                selected = [o for o in self._items(where) if chosen.matches(o)]
                watch.events = [WatchEvent(type="ADDED", object=o) for o in selected]
                watch.known = {_sort_key(o) for o in selected}
                since = self._revision
            else:
                try:
                    since = int(wanted)
                except ValueError:
                    raise ApiError(
                        400, "BadRequest", f"invalid resourceVersion {wanted!r}"
                    ) from None
                if since < self._compacted:
                    watch.events = [_expired(since, self._compacted)]
                    watch.cut = "ended"
                watch.known = self._selected_at(where, chosen, since)
            watch.since = since
            self._watches.add(watch)
        return self._stream(watch, time.monotonic() + timeout, bookmarks)

    def _selected_at(self, where: ResourcePath, chosen: Selection, since: int) -> set[tuple[str, str]]:
        """(namespace, name) of the objects ``chosen`` selected at revision ``since``: what a
        client watching from there holds, so that later changes are sent as the watch cache
        sends them (leaving the selection: DELETED; entering it: ADDED)."""
        if not chosen.requirements:
            return set()
        latest: dict[tuple[str, str], _Event] = {}
        for event in self._history:
            if event.revision > since:
                break
            if _same_resource(event.where, where) and where.namespace in (None, event.where.namespace):
                latest[_sort_key(event.object)] = event
        held = {key for key, event in latest.items()
                if event.type != "DELETED" and chosen.matches(event.object)}
        unchanged_since = (  # older than the history kept, and not changed after ``since``
            o for o in self._items(where, copies=False)
            if _sort_key(o) not in latest and int(o["metadata"]["resourceVersion"]) <= since
        )
        return held | {_sort_key(o) for o in unchanged_since if chosen.matches(o)}

    def _unsent(self, watch: _OpenWatch) -> list[WatchEvent]:
        """The events of history after ``watch.since`` that the watch sends; moves it on."""
        where = watch.where
        start = bisect.bisect_right(self._history, watch.since, key=lambda event: event.revision)
        watch.since = self._revision
        return [
            seen
            for event in self._history[start:]
            if _same_resource(event.where, where)
            and where.namespace in (None, event.where.namespace)
            and (seen := watch.through_selection(event)) is not None
        ]

    def _stream(self, watch: _OpenWatch, deadline: float, bookmarks: bool
                ) -> Iterator[WatchEvent]:
        where = watch.where
        try:
            last_sent = time.monotonic()
            while True:
                with self._lock:
                    while True:
                        batch, watch.events = watch.events, []
                        if batch or watch.cut is not None:
                            break
                        batch = self._unsent(watch)
                        if batch:
                            break
                        now = time.monotonic()
                        if now >= deadline:
                            return
                        if bookmarks and now - last_sent >= self.bookmark_interval:
                            batch = [_bookmark(where, watch.since)]
                            break
                        wait = deadline - now
                        if bookmarks:
                            wait = min(wait, last_sent + self.bookmark_interval - now)
                        self._changes_of(where).wait(max(wait, 0.001))
                    cut = watch.cut
                yield from batch
                last_sent = time.monotonic()
                if cut == "drop":
                    raise WatchDropped()
                if cut == "expire":
                    yield _expired(watch.since, self._compacted)
                    return
                if cut == "ended":
                    return
        finally:
            with self._lock:
                self._watches.discard(watch)

    def _dispatch(
        self,
        method: str,
        where: ResourcePath,
        content_type: str | None,
        body: Any,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        if where.name is None:
            if method == "GET":
                return 200, self._list(where, query)
            if method == "POST":
                _require_object(body)
                return 201, copy.deepcopy(self._create(where, body, keep_status=False))
        else:
            if method == "GET":
                return 200, copy.deepcopy(self._stored(where))
            if method == "PUT":
                _require_object(body)
                return 200, copy.deepcopy(self._write(where, body))
            if method == "PATCH":
                return 200, copy.deepcopy(self._patch(where, content_type, body))
            if method == "DELETE":
                obj = self._stored(where)
                del self._objects[where.collection][where.name]
                self._revision += 1
                gone = copy.deepcopy(obj)
                gone["metadata"]["resourceVersion"] = str(self._revision)
                self._record(where, "DELETED", gone)
                return 200, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": where.name,
                        "group": where.group,
                        "kind": where.plural,
                        "uid": obj["metadata"].get("uid"),
                    },
                }
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {where.collection}")

    def _list(self, where: ResourcePath, query: dict[str, str] | None = None) -> dict[str, Any]:
        query = query or {}
        chosen = _selection(where, query)
        items = [o for o in self._items(where, copies=False) if chosen.matches(o)]  # copied below
        revision = self._revision
        token = query.get("continue")
        if token:
            # The real server serves the rest of the snapshot at the first page's revision;
            # this one serves the rest of the current state, stamped with that revision, so
            # a client that watches from it sees every later change again (harmless).
            try:
                state = json.loads(base64.urlsafe_b64decode(token))
                revision, after = int(state["rv"]), tuple(state["after"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "invalid continue token") from None
            if revision < self._compacted:
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter.",
                )
            items = [o for o in items if _sort_key(o) > after]
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        limit = int(query.get("limit") or 0)
        if 0 < limit < len(items):
            remaining = len(items) - limit
            items = items[:limit]
            after = list(_sort_key(items[-1]))
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": revision, "after": after}).encode()
            ).decode()
            metadata["remainingItemCount"] = remaining
        kind = (items[0].get("kind", "") if items else "") + "List"
        return {
            "apiVersion": _api_version(where),
            "kind": kind,
            "metadata": metadata,
            "items": [copy.deepcopy(o) for o in items],
        }

    def _items(self, where: ResourcePath, copies: bool = True) -> list[dict[str, Any]]:
        """Objects of a collection, sorted by namespace and name; a namespaced resource
        listed without a namespace spans them all."""
        if where.namespace is not None:
            found = list(self._objects.get(where.collection, {}).values())
        else:
            found = [
                obj
                for collection, objects in self._objects.items()
                if _same_resource(ResourcePath.parse(collection), where)
                for obj in objects.values()
            ]
        ordered = sorted(found, key=_sort_key)
        return [copy.deepcopy(o) for o in ordered] if copies else ordered

    def _record(self, where: ResourcePath, type_: str, obj: dict[str, Any]) -> None:
        """Append a change to the history that watches stream, and wake them."""
        self._history.append(_Event(self._revision, where, type_, copy.deepcopy(obj)))
        self._changes_of(where).notify_all()

    def _bind(self, where: ResourcePath, body: Any) -> dict[str, Any]:
        """``POST pods/<name>/binding``, as kube-apiserver's ``BindingREST`` does it.

        One write under the Binding's ``uid``/``resourceVersion`` preconditions: it sets
        ``spec.nodeName`` once, merges the Binding's ``metadata.annotations`` into the
        pod's, and copies the target node's ``topology.kubernetes.io/zone`` and
        ``/region`` labels onto the pod (the PodTopologyLabels admission). A node that
        does not exist is not an error (201), as on the real server.
        """
        _require_object(body)
        metadata = body.get("metadata") or {}
        if metadata.get("name", where.name) != where.name:
            raise ApiError(400, "BadRequest", "name in URL does not match name in Binding object")
        target = (body.get("target") or {}).get("name")
        if not target:
            raise ApiError(422, "Invalid", "Binding.target.name: Required value")
        pod_path = ResourcePath(
            where.group, where.version, where.namespace, "pods", where.name, None
        )
        pod = self._stored(pod_path)
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted, actual = metadata.get(key), pod["metadata"].get(key)
            if wanted and wanted != actual:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on pods "{where.name}": StorageError: invalid '
                    f"object, Code: 4, Key: /registry/pods/{where.namespace}/{where.name}, "
                    f"ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: {label} in "
                    f"precondition: {wanted}, {label} in object meta: {actual}",
                    {"name": where.name, "kind": "pods"},
                )
        # BindingREST's checks, in its order (pkg/registry/core/pod/storage), each a 409
        # Conflict on pods/binding: being deleted, already bound, still gated.
        spec = pod.get("spec") or {}
        refusal = None
        if pod["metadata"].get("deletionTimestamp"):
            refusal = f"pod {where.name} is being deleted, cannot be assigned to a host"
        elif spec.get("nodeName"):
            refusal = f'pod {where.name} is already assigned to node "{spec["nodeName"]}"'
        elif spec.get("schedulingGates"):
            refusal = f"pod {where.name} has non-empty .spec.schedulingGates"
        if refusal is not None:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{where.name}": {refusal}',
                {"name": where.name, "kind": "pods/binding"},
            )
        updated = copy.deepcopy(pod)
        updated.setdefault("spec", {})["nodeName"] = target
        merged = updated["metadata"]
        merged["annotations"] = {**(merged.get("annotations") or {}), **(metadata.get("annotations") or {})}
        node = self._objects.get("/api/v1/nodes", {}).get(target)
        node_labels = ((node or {}).get("metadata") or {}).get("labels") or {}
        topology = {key: node_labels[key] for key in TOPOLOGY_LABELS if key in node_labels}
        if topology:
            merged["labels"] = {**(merged.get("labels") or {}), **topology}
        _set_pod_scheduled(updated.setdefault("status", {}))
        self._revision += 1
        updated["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[pod_path.collection][where.name or ""] = updated
        self._record(pod_path, "MODIFIED", updated)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    def _evict(self, where: ResourcePath, body: Any) -> dict[str, Any]:
        """``POST pods/<name>/eviction``: budgets first, then a graceful deletion (eviction.py)."""
        pod_path = ResourcePath(where.group, where.version, where.namespace, "pods", where.name, None)
        now = datetime.now(UTC)
        try:
            options = eviction.validate(body, where.name or "")
            pod = self._stored(pod_path)
            if not eviction.ignores_budgets(pod):
                self._use_budget(pod, now)
        except eviction.EvictionRefused as refused:
            raise ApiError(refused.code, refused.reason, refused.message, refused.details) from None
        going = eviction.gracefully_deleted(pod, options, now)
        if going is None:
            self._dispatch("DELETE", pod_path, None, None)
        elif going is not pod:
            self._revision += 1
            going["metadata"]["resourceVersion"] = str(self._revision)
            self._objects[pod_path.collection][where.name or ""] = going
            self._record(pod_path, "MODIFIED", going)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _use_budget(self, pod: dict[str, Any], now: datetime) -> None:
        """The one PodDisruptionBudget covering ``pod`` lets it go (and is used up) or refuses."""
        namespace = pod["metadata"].get("namespace")
        budgets = ResourcePath.parse(eviction.PDB_COLLECTION.format(namespace=namespace))
        covering = [
            pdb for pdb in self._objects.get(budgets.collection, {}).values()
            if eviction.selector_matches(
                (pdb.get("spec") or {}).get("selector"), pod["metadata"].get("labels") or {}
            )
        ]
        if len(covering) > 1:
            raise eviction.EvictionRefused(
                500, "InternalError", "This pod has more than one PodDisruptionBudget, which the "
                "eviction subresource does not support.", {},
            )
        if covering:
            (pdb,) = covering
            status = eviction.check_budget(pdb, pod, now)
            if status is not None:
                self._write(
                    replace(budgets, name=pdb["metadata"]["name"], subresource="status"),
                    {**pdb, "status": status},
                )

    def _stored(self, where: ResourcePath) -> dict[str, Any]:
        obj = self._objects.get(where.collection, {}).get(where.name or "")
        if obj is None:
            details = {"name": where.name, "group": where.group, "kind": where.plural}
            if not where.group:
                del details["group"]  # the core group is "", which the real server omits
            raise ApiError(404, "NotFound", f'{where.plural} "{where.name}" not found', details)
        return obj

    def _create(
        self, where: ResourcePath, body: dict[str, Any], keep_status: bool
    ) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        metadata = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = metadata
        name = metadata.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{where.plural}: metadata.name: Required value")
        if where.name is not None and where.subresource is None and where.name != name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        store = self._objects.setdefault(where.collection, {})
        if name in store:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{where.plural} "{name}" already exists',
                {"name": name, "group": where.group, "kind": where.plural},
            )
        if not keep_status:
            obj.pop("status", None)  # the status subresource is written through /status only
        self._revision += 1
        metadata.update(
            {
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(self._revision),
                "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "generation": 1,
            }
        )
        if where.namespace:
            metadata["namespace"] = where.namespace
        store[name] = obj
        self._record(where, "ADDED", obj)
        return obj

    def _write(self, where: ResourcePath, new: dict[str, Any]) -> dict[str, Any]:
        """Replace an object (or, on /status, its status) with optimistic concurrency."""
        old = self._stored(where)
        wanted_version = (new.get("metadata") or {}).get("resourceVersion")
        if wanted_version and wanted_version != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {where.plural} "{where.name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
                {"name": where.name, "group": where.group, "kind": where.plural},
            )
        wanted_uid = (new.get("metadata") or {}).get("uid")
        if wanted_uid and wanted_uid != old["metadata"].get("uid"):
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {wanted_uid}, "
                f"UID in object meta: {old['metadata'].get('uid')}",
                {"name": where.name, "group": where.group, "kind": where.plural},
            )
        if (new.get("metadata") or {}).get("name", where.name) != where.name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        if where.subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = copy.deepcopy(new["status"])
        else:
            result = copy.deepcopy(new)
            result["status"] = copy.deepcopy(old.get("status"))
            if result["status"] is None:
                result.pop("status")
            result["metadata"] = {
                **result.get("metadata", {}),
                **{
                    key: old["metadata"][key]
                    for key in ("uid", "creationTimestamp", "namespace", "generation")
                    if key in old["metadata"]
                },
            }
        if result == old or _same_but_version(result, old):
            return old  # a no-op write does not bump resourceVersion
        if _spec_changed(old, result):
            result["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        self._revision += 1
        result["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[where.collection][where.name or ""] = result
        self._record(where, "MODIFIED", result)
        return result

    def _patch(self, where: ResourcePath, content_type: str | None, patch: Any) -> dict[str, Any]:
        kind = (content_type or "").split(";")[0].strip()
        if kind == STRATEGIC_MERGE_PATCH and where.group in self.custom_groups:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {JSON_PATCH}, {MERGE_PATCH}, application/apply-patch+yaml",
            )
        if kind not in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"this fake API serves {MERGE_PATCH} and "
                f"{STRATEGIC_MERGE_PATCH} patches, not {kind or 'no content type'}",
            )
        _require_object(patch)
        old = self._stored(where)
        patched = merge_patch(old, patch)
        # A patch without resourceVersion is unconditional; one with it is a precondition.
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        patched["metadata"]["resourceVersion"] = wanted or old["metadata"]["resourceVersion"]
        return self._write(where, patched)


def _sort_key(obj: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name): the order of lists, and an object's identity within a resource."""
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace") or "", metadata.get("name") or ""


def _set_pod_scheduled(status: dict[str, Any]) -> None:
    """``podutil.UpdatePodCondition`` with PodScheduled=True: the condition is replaced, not
    appended (one per type); its lastTransitionTime moves only when the status changes."""
    conditions = status.setdefault("conditions", [])
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": now}
    for index, condition in enumerate(conditions):
        if condition.get("type") == "PodScheduled":
            if condition.get("status") == "True":
                scheduled["lastTransitionTime"] = condition.get("lastTransitionTime")
            conditions[index] = scheduled
            return
    conditions.append(scheduled)


def _expired(since: int, compacted: int) -> WatchEvent:
    error = ApiError(410, "Expired", f"too old resource version: {since} ({compacted})")
    return WatchEvent(type="ERROR", object=error.status())


def _bookmark(where: ResourcePath, revision: int) -> WatchEvent:
    kind = where.plural[:-1].capitalize() if where.plural.endswith("s") else where.plural
    return WatchEvent(
        type="BOOKMARK",
        object={
            "kind": kind,
            "apiVersion": _api_version(where),
            "metadata": {"resourceVersion": str(revision)},
        },
    )


def _api_version(where: ResourcePath) -> str:
    return f"{where.group}/{where.version}" if where.group else where.version


def _require_object(body: Any) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body must be a JSON object")


def _same_but_version(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = lambda o: {
        **o,
        "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"},
    }
    return strip(a) == strip(b)


def _spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    ignored = ("metadata", "status")
    return {k: v for k, v in old.items() if k not in ignored} != {
        k: v for k, v in new.items() if k not in ignored
    }


class _Listener(ThreadingHTTPServer):
    """Go's ``net.Listen`` (kube-apiserver) takes the kernel's full backlog; socketserver's
    default of 5 resets connections when dozens of clients connect at once."""

    request_queue_size = socket.SOMAXCONN


def _handler_for(api: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1: a connection serves request after request until either side closes it.
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Go's net package turns Nagle's algorithm off on every TCP connection: a reply's
            # header and body, written apart, go out at once, not after the client's delayed ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            api._opened(self.connection)

        def finish(self) -> None:
            api._closed(self.connection)
            super().finish()

        def _serve(self) -> None:
            if self.command == "GET" and _is_watch(self.path):
                self._serve_watch()
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                code, reply = (
                    400,
                    ApiError(400, "BadRequest", "the request body is not JSON").status(),
                )
            else:
                code, reply = api.handle(
                    self.command, self.path, self.headers.get("Content-Type"), body
                )
            data = json.dumps(reply).encode()
            self.send_response(code, HTTPStatus(code).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve_watch(self) -> None:
            try:
                events = api.open_watch(self.path)
            except ApiError as error:
                data = json.dumps(error.status()).encode()
                self.send_response(error.code, HTTPStatus(error.code).phrase)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            # A watch is a chunked HTTP/1.1 stream, one JSON event per line.
            self.send_response(200, "OK")
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in events:
                    line = event.line()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.write(b"0\r\n\r\n")
            except WatchDropped:
                self.close_connection = True
                with contextlib.suppress(OSError):  # the client had already gone (ENOTCONN)
                    self.connection.shutdown(socket.SHUT_RDWR)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away
            finally:
                events.close()  # type: ignore[attr-defined]

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Requests are in ``api.requests``; stderr stays quiet."""

    return Handler
