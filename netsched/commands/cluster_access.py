"""How the admin commands (``topology``, ``explain``, ``reservations``) reach a cluster.

Either a running extender, through its read-only JSON API (``--server URL``), or a
cluster file (``--cluster FILE``) loaded into the same ``ClusterState`` and
``Scheduler`` the extender runs, so both paths give the same answers. Not a
subcommand itself: it holds what the three share, including plain-text tables.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, TypeAdapter, ValidationError

from contract.objects import Pod

if TYPE_CHECKING:  # the views load the scheduler (numpy): only when a command runs
    from scheduler_extender.views import ExplainView, ReservationView, TopologyView

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "NETSCHED_SERVER"


class AccessError(Exception):
    """Something the user must fix (unreachable server, unknown pod, bad file); said plainly."""


class ClusterAccess(Protocol):
    def topology(self) -> TopologyView: ...

    def reservations(self, node: str | None = None) -> list[ReservationView]: ...

    def explain(self, reference: str) -> ExplainView:
        """Explain the pod ``namespace/name`` (or ``name`` in ``default``) that the cluster holds."""

    def explain_pod(self, pod: Pod) -> ExplainView:
        """Explain a pod given in full (it need not exist in the cluster)."""


def add_access_arguments(parser: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    from netsched.commands.serve import add_placement_arguments

    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--server",
        metavar="URL",
        help=f"a running netsched extender (default ${SERVER_ENV} or {DEFAULT_SERVER})",
    )
    where.add_argument(
        "--cluster", metavar="FILE", help="a YAML file of Nodes, NodeNetworks, Networks and Pods"
    )
    parser.add_argument("--cacert", metavar="FILE", help="CA bundle to trust for an https --server")
    add_placement_arguments(parser, note="with --cluster: ")
    parser.add_argument(
        "-o",
        "--output",
        choices=formats,
        default=formats[0],
        help="output format (default %(default)s)",
    )


def open_access(args: argparse.Namespace) -> ClusterAccess:
    if args.cluster:
        return FileAccess.load(args)
    server = args.server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER
    return ApiAccess(server, cacert=args.cacert)


class ApiAccess:
    """The extender's ``/api/v1`` endpoints over HTTP(S)."""

    def __init__(self, url: str, cacert: str | None = None, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise AccessError(f"--server {url!r}: expected an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.context = (
            ssl.create_default_context(cafile=cacert) if parsed.scheme == "https" else None
        )

    def topology(self) -> TopologyView:
        from scheduler_extender.views import TopologyView

        return TopologyView.model_validate(self._call("GET", "/api/v1/topology"))

    def reservations(self, node: str | None = None) -> list[ReservationView]:
        from scheduler_extender.views import ReservationView

        query = f"?{urllib.parse.urlencode({'node': node})}" if node else ""
        return TypeAdapter(list[ReservationView]).validate_python(
            self._call("GET", f"/api/v1/reservations{query}")
        )

    def explain(self, reference: str) -> ExplainView:
        from scheduler_extender.views import ExplainView

        namespace, _, name = reference.rpartition("/")
        query = urllib.parse.urlencode({"namespace": namespace or "default", "name": name})
        return ExplainView.model_validate(self._call("GET", f"/api/v1/explain?{query}"))

    def explain_pod(self, pod: Pod) -> ExplainView:
        from scheduler_extender.views import ExplainView

        return ExplainView.model_validate(
            self._call("POST", "/api/v1/explain", pod.model_dump(mode="json"))
        )

    def _call(self, method: str, path: str, body: object = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.context
            ) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise AccessError(
                f"{method} {self.url}{path}: HTTP {error.code}: {_detail(error)}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise AccessError(
                f"cannot reach the netsched extender at {self.url}: {reason}"
            ) from None
        except ValueError as error:
            raise AccessError(
                f"{method} {self.url}{path}: the answer is not JSON ({error})"
            ) from None


class FileAccess:
    """A cluster file loaded into the extender's own state and scheduler, in this process."""

    def __init__(self, extender) -> None:
        self.extender = extender

    @classmethod
    def load(cls, args: argparse.Namespace) -> FileAccess:
        from netsched.commands.serve import extender_from_args
        from scheduler_extender.file_source import ClusterFileError, FileClusterSource

        try:
            source = FileClusterSource.from_yaml(args.cluster)
        except (OSError, ClusterFileError, ValueError) as error:
            raise AccessError(f"--cluster {args.cluster}: {error}") from None
        extender = extender_from_args(args, source)
        source.start(extender.state)
        return cls(extender)

    def topology(self) -> TopologyView:
        from scheduler_extender.views import topology_view

        return topology_view(self.extender.state)

    def reservations(self, node: str | None = None) -> list[ReservationView]:
        from scheduler_extender.views import reservation_views

        return reservation_views(self.extender.state, node)

    def explain(self, reference: str) -> ExplainView:
        from scheduler_extender.views import PodNotFound, explain_view, find_pod

        try:
            pod = find_pod(self.extender.state, reference)
        except PodNotFound as error:
            raise AccessError(str(error)) from None
        return explain_view(self.extender.scheduler, pod)

    def explain_pod(self, pod: Pod) -> ExplainView:
        from scheduler_extender.views import explain_view

        return explain_view(self.extender.scheduler, pod)


def load_pod_manifest(path: str) -> Pod:
    """A Pod from a YAML or JSON manifest (``-f pod.yaml``)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise AccessError(f"-f {path}: {error}") from None
    if not isinstance(document, dict) or document.get("kind", "Pod") != "Pod":
        raise AccessError(f"-f {path}: expected one Pod manifest")
    try:
        return Pod.model_validate(document)
    except ValidationError as error:
        raise AccessError(f"-f {path}: not a valid Pod: {error}") from None


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows under headers, columns padded to their widest cell (like ``kubectl get``)."""
    cells = [[str(c) for c in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def print_json(data: BaseModel | Sequence[BaseModel]) -> None:
    """Machine output: the API's own JSON shapes, so scripts work against either source."""
    if isinstance(data, BaseModel):
        emit(data.model_dump_json(indent=2))
    else:
        emit(json.dumps([item.model_dump(mode="json") for item in data], indent=2))


def emit(text: str) -> None:
    """Print, and stop quietly when the reader went away (``netsched ... | head``)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Point stdout at /dev/null so that the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.load(error)
    except ValueError:
        return error.reason
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return detail if isinstance(detail, str) else json.dumps(detail)
