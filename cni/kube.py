"""What the plugin reads from the API server: the pod an ADD is for (its
``netsched.io/reservation`` annotation and its ResourceClaims' names), and, for the DRA
kubelet plugin, a ResourceClaim.

Only used when the config names a kubeconfig (or the daemon serves the kubelet plugin);
the kubernetes client (with ``kubernetes_access``) is imported here, lazily, because
importing it costs more than a whole ADD without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cni.config import DEFAULT_SCHEDULER_NAMES, cni_arg
from cni.errors import CNIError, ErrorCode
from contract.annotations import RESERVATION
from contract.dra import GROUP_VERSION, RESOURCE_CLAIMS, ResourceClaim
from contract.reservation import Reservation

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

API_TIMEOUT_S = 5

log = logging.getLogger("netsched.cni")


def pod_identity(args: dict[str, str]) -> tuple[str, str]:
    """(namespace, name) from ``CNI_ARGS``, as kubelet/containerd pass them."""
    namespace, name = cni_arg(args, "K8S_POD_NAMESPACE"), cni_arg(args, "K8S_POD_NAME")
    if not namespace or not name:
        raise CNIError(ErrorCode.INVALID_ENVIRONMENT,
                       "CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME are needed with a kubeconfig",
                       f"got namespace={namespace!r} name={name!r}")
    return namespace, name


def fetch_pod(kubeconfig: str, namespace: str, name: str) -> dict[str, Any]:
    """The pod an ADD is for, as the API server has it (plain JSON: only a few fields are read)."""
    from kubernetes import client

    from kubernetes_access import ApiFailure, NoConfiguration, NotFound, api_client, api_errors

    try:
        # urllib3's own retries kept (retries=None): the plugin has no retry loop of its own.
        api = client.CoreV1Api(api_client(kubeconfig, retries=None))
    except NoConfiguration as exc:
        raise CNIError(ErrorCode.INVALID_CONFIG, f"kubeconfig: cannot load {kubeconfig!r}",
                       exc.detail) from exc
    try:
        with api_errors():
            response = api.read_namespaced_pod(name, namespace, _preload_content=False,
                                               _request_timeout=API_TIMEOUT_S)
            body = response.data
        pod = json.loads(body)
    except ApiFailure as exc:  # a pod not there yet: unavailable; anything else: try again
        code = ErrorCode.RESERVATION_UNAVAILABLE if isinstance(exc, NotFound) else (
            ErrorCode.TRY_AGAIN_LATER)
        said = f"API answered {exc.status}" if exc.status else "API unreachable"
        raise CNIError(code, f"pod {namespace}/{name}: {said}", str(exc)) from exc
    except ValueError as exc:
        raise CNIError(ErrorCode.TRY_AGAIN_LATER, f"pod {namespace}/{name}: API answer is not JSON",
                       str(exc)) from exc
    if not isinstance(pod, dict):
        raise CNIError(ErrorCode.TRY_AGAIN_LATER, f"pod {namespace}/{name}: API answer is not "
                       "an object", repr(pod)[:200])
    return pod


def reservation_of(pod: dict[str, Any], this_node: str | None = None,
                   scheduler_names: Sequence[str] = DEFAULT_SCHEDULER_NAMES,
                   ) -> Reservation | None:
    """The pod's reservation, or None when the pod has none (netsched did not place it).

    A reservation is enforced only when it passes :func:`check_trust`.
    """
    metadata = pod.get("metadata") or {}
    raw = (metadata.get("annotations") or {}).get(RESERVATION)
    if raw is None:
        return None
    try:
        reservation = Reservation.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise CNIError(ErrorCode.INVALID_CONFIG,
                       f"annotation {RESERVATION}: {field or '(value)'}: {first['msg']}",
                       f"value {first.get('input')!r}") from exc
    check_trust(reservation, pod.get("spec") or {},
                f"{metadata.get('namespace')}/{metadata.get('name')}", this_node, scheduler_names)
    return reservation


def fetch_claim(api: ApiClient, namespace: str, name: str) -> ResourceClaim:
    """One ResourceClaim (``resource.k8s.io/v1``); raises ``kubernetes_access.ApiFailure``."""
    from kubernetes import client

    from kubernetes_access import api_errors

    group, version = GROUP_VERSION.split("/")
    with api_errors():
        response = client.CustomObjectsApi(api).get_namespaced_custom_object(
            group, version, namespace, RESOURCE_CLAIMS, name, _preload_content=False,
            _request_timeout=API_TIMEOUT_S)
        body = response.data
    return ResourceClaim.model_validate_json(body)


def check_trust(reservation: Reservation, spec: dict, pod: str, this_node: str | None,
                scheduler_names: Sequence[str]) -> None:
    """Refuse a reservation netsched cannot have made for this pod on this node.

    Checks that hold without any admission control (docs/cni.md, "Which reservations are
    enforced"): the pod names a netsched scheduler, and the reservation's node is the
    pod's ``spec.nodeName`` and the node this plugin runs on. A refusal fails the ADD,
    and is logged (the daemon's log, or the runtime's log of the plugin's stderr).
    """
    scheduler = spec.get("schedulerName")
    node = spec.get("nodeName")
    if scheduler not in scheduler_names:
        why = (f"the pod's schedulerName {scheduler!r} is not a netsched scheduler "
               f"({', '.join(scheduler_names)})")
    elif reservation.node != node:
        why = f"its node {reservation.node!r} is not the pod's spec.nodeName {node!r}"
    elif this_node is None:
        why = "this node's name is unknown (set nodeName in the config, or NODE_NAME)"
    elif reservation.node != this_node:
        why = f"its node {reservation.node!r} is not this node {this_node!r}"
    else:
        return
    log.warning("rejected %s of pod %s: %s", RESERVATION, pod, why)
    raise CNIError(ErrorCode.RESERVATION_REJECTED,
                   f"annotation {RESERVATION} of pod {pod} rejected: {why}",
                   "netsched-cni enforces only reservations netsched's scheduler made for "
                   "this pod on this node")
