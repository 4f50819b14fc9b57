"""Publishing the report as the node's ``NodeNetwork`` through the Kubernetes client.

The object is created once (owned by its Node, so deleting the Node deletes it) and
then only its ``status`` subresource is patched, with a JSON merge patch carrying the
whole status: lists are replaced, so a vanished interface disappears from the API too.
The kubernetes package is imported here only, so ``--once`` without an API stays light.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from topology.models import API_GROUP, NodeNetwork

log = logging.getLogger(__name__)

VERSION = "v1alpha1"
PLURAL = "nodenetworks"


class PublishError(RuntimeError):
    """The API server could not be reached or refused the report; retried with backoff."""


def api_client(kubeconfig: Path | None) -> client.ApiClient:
    """A client from ``kubeconfig``, else the pod's service account, else ``~/.kube/config``."""
    configuration = client.Configuration()
    try:
        if kubeconfig is not None:
            kube_config.load_kube_config(
                config_file=str(kubeconfig), client_configuration=configuration
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            kube_config.load_kube_config(client_configuration=configuration)
    except (ConfigException, OSError) as error:
        raise PublishError(f"no Kubernetes API configuration: {error}") from error
    # No retries inside urllib3: the reporter's own backoff decides when to try again.
    configuration.retries = 0
    return client.ApiClient(configuration)


class KubePublisher:
    """Reads the Node's labels and writes its ``NodeNetwork``."""

    def __init__(self, api: client.ApiClient, node_name: str, timeout: float) -> None:
        self.node_name = node_name
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._timeout = timeout
        self._exists = False
        self._owner: dict[str, Any] | None = None

    def node_labels(self) -> dict[str, str]:
        """The Node's labels (zone, switch); remembers its uid to own the NodeNetwork."""
        node = self._call(self._core.read_node, self.node_name)
        self._owner = {
            "apiVersion": "v1",
            "kind": "Node",
            "name": node.metadata.name,
            "uid": node.metadata.uid,
        }
        return dict(node.metadata.labels or {})

    def publish(self, report: NodeNetwork) -> None:
        """Create the object if needed, then replace its status. Raises :class:`PublishError`."""
        status = {"status": report.status.model_dump(mode="json", by_alias=True)}
        if not self._exists:
            self._create(report)
        try:
            self._patch_status(status)
        except _NotFound:
            # Deleted behind our back (an admin, or the Node's garbage collection).
            self._exists = False
            self._create(report)
            self._patch_status(status)

    def _patch_status(self, status: dict[str, Any]) -> None:
        self._call(
            self._custom.patch_cluster_custom_object_status,
            API_GROUP,
            VERSION,
            PLURAL,
            self.node_name,
            status,
        )

    def _create(self, report: NodeNetwork) -> None:
        metadata: dict[str, Any] = {"name": self.node_name}
        if self._owner is not None:
            metadata["ownerReferences"] = [self._owner]
        body = {"apiVersion": report.api_version, "kind": report.kind, "metadata": metadata}
        try:
            self._call(self._custom.create_cluster_custom_object, API_GROUP, VERSION, PLURAL, body)
            log.info("created NodeNetwork %s", self.node_name)
        except _Conflict:
            pass  # it already exists: the status patch that follows is all we need
        self._exists = True

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args, _request_timeout=self._timeout)
        except ApiException as error:
            if error.status == 404:
                raise _NotFound(str(error.reason)) from error
            if error.status == 409:
                raise _Conflict(str(error.reason)) from error
            raise PublishError(
                f"API server answered {error.status} {error.reason}: {_message(error)}"
            ) from error
        except (HTTPError, OSError) as error:
            raise PublishError(f"API server unreachable: {error}") from error


class _NotFound(PublishError):
    pass


class _Conflict(PublishError):
    pass


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message", ""))
    except ValueError:
        return (error.body or "")[:200]


@dataclass
class Backoff:
    """Exponential backoff with jitter between publish attempts while the API is away."""

    initial: float = 0.5
    maximum: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    _next: float = 0.0

    def reset(self) -> None:
        self._next = 0.0

    def next_delay(self) -> float:
        self._next = min(self.maximum, self._next * 2 if self._next else self.initial)
        # Half fixed, half random: many nodes losing the API together do not return in step.
        return self._next / 2 + self.rng.uniform(0, self._next / 2)
