"""A small in-memory Kubernetes API server for tests, speaking the real REST paths.

Any resource works without registration: ``/api/v1/<plural>[/<name>[/status]]``,
``/api/v1/namespaces/<ns>/<plural>/...`` and the same under ``/apis/<group>/<version>``.
It keeps what a client depends on: one ``resourceVersion`` counter for all writes (as
etcd's revision), ``uid``/``creationTimestamp``/``generation``, 404 NotFound, 409
AlreadyExists and 409 Conflict on a stale ``resourceVersion``, JSON merge patch, strategic
merge patch (approximated as merge patch, and refused with 415 for custom resources, as
the real server does), and the status subresource rule: writes to an object ignore its
``status``, writes to ``/status`` change nothing but ``status``. Errors are ``Status``
objects. It does not do watches, label selectors, field managers or admission.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


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
            "details": self.details,
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
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-kube-api", daemon=True
        )
        self._thread.start()

    def pause(self) -> None:
        """Stop listening: clients get "connection refused" until :meth:`resume`."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = self._thread = None

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

    # -- the API ----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, content_type: str | None, body: Any
    ) -> tuple[int, Any]:
        """Serve one request; returns (HTTP status, JSON body)."""
        self.requests.append(RecordedRequest(method, path, content_type, body))
        try:
            where = ResourcePath.parse(path)
            if where.subresource not in (None, "status"):
                raise ApiError(404, "NotFound", f"subresource {where.subresource!r} is not served")
            with self._lock:
                return self._dispatch(method, where, content_type, body)
        except ApiError as error:
            return error.code, error.status()

    def _dispatch(
        self, method: str, where: ResourcePath, content_type: str | None, body: Any
    ) -> tuple[int, Any]:
        if where.name is None:
            if method == "GET":
                return 200, self._list(where)
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

    def _list(self, where: ResourcePath) -> dict[str, Any]:
        items = [
            copy.deepcopy(o) for _, o in sorted(self._objects.get(where.collection, {}).items())
        ]
        kind = (items[0].get("kind", "") if items else "") + "List"
        return {
            "apiVersion": _api_version(where),
            "kind": kind,
            "metadata": {"resourceVersion": str(self._revision)},
            "items": items,
        }

    def _stored(self, where: ResourcePath) -> dict[str, Any]:
        obj = self._objects.get(where.collection, {}).get(where.name or "")
        if obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'{where.plural} "{where.name}" not found',
                {"name": where.name, "group": where.group, "kind": where.plural},
            )
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


def _handler_for(api: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so pause() really takes the API away.
        protocol_version = "HTTP/1.0"

        def _serve(self) -> None:
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

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Requests are in ``api.requests``; stderr stays quiet."""

    return Handler
