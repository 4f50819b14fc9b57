"""Reaching the Kubernetes API: credentials, what a failed call means, how long to wait.

The extender's cluster source, its leader election, its preemption and requeue, the node
reporter and the CNI plugin all talk to the same API server with the official
``kubernetes`` client, and each needs the same three things: which credentials to use,
what a failed call means (the object is not there, someone else wrote first, the
history is gone, the server is away, or it said no for good) and how long to wait
before trying again. They are written here, once.

Why a top-level package of its own, beside the ones it serves:

- It cannot live in ``topology/`` or ``bandwidth_accounting/``: those are pure (no I/O),
  and the contract layer depends on pydantic alone, while this one is I/O.
- It cannot live in ``scheduler_extender/``: the reporter and the CNI run on every node
  with the node extras only, and must never import the extender (nor FastAPI, numpy,
  networkx or orjson, which this package does not use either).
- It cannot live in ``node_reporter/`` or ``cni/``: the extender would then import a
  node part.

So it depends on the ``kubernetes`` client (a base dependency of every part) and the
standard library, and nothing of the project's: every part may import it, and it
imports none of them. Importing it loads the client, which is not cheap: the parts that
stay light without an API (``reporter --once``, the CNI without a kubeconfig) import it
where they first need the API, as they did the client itself.
"""

from __future__ import annotations

from kubernetes_access.backoff import Backoff
from kubernetes_access.credentials import Places, ServiceAccount, api_client, load_configuration
from kubernetes_access.errors import (
    ApiFailure,
    Conflict,
    Gone,
    KubeError,
    NoConfiguration,
    NotFound,
    Refused,
    Unavailable,
    api_errors,
    describe,
    failure,
)

__all__ = [
    "ApiFailure",
    "Backoff",
    "Conflict",
    "Gone",
    "KubeError",
    "NoConfiguration",
    "NotFound",
    "Places",
    "Refused",
    "ServiceAccount",
    "Unavailable",
    "api_client",
    "api_errors",
    "describe",
    "failure",
    "load_configuration",
]
