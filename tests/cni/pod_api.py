"""A tiny API server that answers ``GET /api/v1/namespaces/{ns}/pods/{name}`` with Pod JSON.

Enough for the CNI's one read: the official kubernetes client talks to it over a real
socket with a real kubeconfig, so the plugin's kubeconfig path is tested end to end.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import yaml

from tests.cni.lab import inside

_POD_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/?]+)$")


def pod_json(namespace: str, name: str, annotations: dict[str, str], *,
             scheduler: str = "netsched-scheduler", node: str = "node-a-1") -> dict[str, Any]:
    """A Pod as the API server returns it (defaults, status and all), with ``annotations``,
    bound to ``node`` by ``scheduler``."""
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                     "resourceVersion": "4711", "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"app": name}, "annotations": annotations,
                     "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
        "spec": {"containers": [{"name": "app", "image": "busybox", "resources": {},
                                 "terminationMessagePolicy": "File",
                                 "imagePullPolicy": "IfNotPresent"}],
                 "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "nodeName": node,
                 "schedulerName": scheduler, "priority": 0},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


class PodAPI:
    """Serves ``pods`` ({(namespace, name): Pod JSON}) on a loopback port while entered.

    With ``netns``, the listening socket is made in that namespace (the node's).
    """

    def __init__(self, netns: str | None = None) -> None:
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                match = _POD_PATH.match(self.path.split("?")[0])
                pod = api.pods.get((match[1], match[2])) if match else None
                if pod is None:
                    status, body = 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                         "reason": "NotFound", "code": 404,
                                         "message": f"{self.path} not found"}
                else:
                    status, body = 200, pod
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        if netns is None:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        else:  # on the node's loopback, where the plugin runs
            with inside(netns):
                self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "cni", "user": {"token": "netsched-cni-test"}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "cni"}}],
        }))
        return path
