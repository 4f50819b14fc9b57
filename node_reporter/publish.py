"""Publishing the report as the node's ``NodeNetwork`` through the Kubernetes client.

The object is created once (owned by its Node, so deleting the Node deletes it) and
then only its ``status`` subresource is patched, with a JSON merge patch carrying the
whole status: lists are replaced, so a vanished interface disappears from the API too.
The kubernetes package (through ``kubernetes_access``) is imported here only, so
``--once`` without an API stays light. A failed call raises the access layer's
:class:`~kubernetes_access.ApiFailure`; the daemon backs off on it.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from contract.group import GROUP, NODE_NETWORK, VERSION
from contract.objects import NodeNetwork
from kubernetes_access import Conflict, NotFound, api_errors

log = logging.getLogger(__name__)


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
        """Create the object if needed, then replace its status. Raises ``ApiFailure``."""
        status = {"status": report.status.model_dump(mode="json", by_alias=True)}
        if not self._exists:
            self._create(report)
        try:
            self._patch_status(status)
        except NotFound:
            # Deleted behind our back (an admin, or the Node's garbage collection).
            self._exists = False
            self._create(report)
            self._patch_status(status)

    def _patch_status(self, status: dict[str, Any]) -> None:
        self._call(
            self._custom.patch_cluster_custom_object_status,
            GROUP,
            VERSION,
            NODE_NETWORK.plural,
            self.node_name,
            status,
        )

    def _create(self, report: NodeNetwork) -> None:
        metadata: dict[str, Any] = {"name": self.node_name}
        if self._owner is not None:
            metadata["ownerReferences"] = [self._owner]
        body = {"apiVersion": report.api_version, "kind": report.kind, "metadata": metadata}
        try:
            self._call(self._custom.create_cluster_custom_object, GROUP, VERSION,
                       NODE_NETWORK.plural, body)
            log.info("created NodeNetwork %s", self.node_name)
        except Conflict:
            pass  # it already exists: the status patch that follows is all we need
        self._exists = True

    def _call(self, method: Any, *args: Any) -> Any:
        with api_errors():
            return method(*args, _request_timeout=self._timeout)
