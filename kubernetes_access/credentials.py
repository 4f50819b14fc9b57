"""Which credentials reach the API server: the one rule every part follows.

A kubeconfig named on the command line (or in the CNI config) wins; else, inside a pod
(``KUBERNETES_SERVICE_HOST`` set, as kubelet sets it in every container), the pod's
service account; else the user's kubeconfig (``$KUBECONFIG``, else ``~/.kube/config``),
as ``kubectl`` does. Where the rule looks (:class:`Places`: the environment, the service
account's files, the home folder) is passed in, so tests exercise every branch on temporary
paths without touching the process's own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from kubernetes_access.errors import NoConfiguration

SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
"""Set by kubelet in every container: this process runs in a pod."""
KUBECONFIG_ENV = "KUBECONFIG"

_LOADER_ERRORS = (ConfigException, OSError, yaml.YAMLError, TypeError, ValueError, KeyError,
                  AttributeError)
"""What the client's loaders raise for one cause, a file that is missing or not a usable
kubeconfig: a YAML list where a mapping belongs is a ``TypeError``, unparsable YAML a
``YAMLError``, a directory an ``OSError``, a context naming no cluster a ``ConfigException``."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The files kubelet mounts into a pod for its service account."""

    token: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")


@dataclass(frozen=True, slots=True)
class Places:
    """Where the rule looks; the defaults are this process's own."""

    environ: Mapping[str, str] | None = None
    """The environment; None: the process's."""
    service_account: ServiceAccount = ServiceAccount()
    home: Path | None = None
    """The user's home folder; None: the process user's."""


def load_configuration(
    kubeconfig: str | os.PathLike[str] | None, places: Places = Places()
) -> client.Configuration:
    """The client configuration the rule picks (see the module's docstring).

    Raises :class:`NoConfiguration`, naming what was tried, when the chosen source is
    missing or unusable; the rule does not fall through to the next source (a broken
    kubeconfig given on purpose must not quietly become another cluster).
    """
    environ = os.environ if places.environ is None else places.environ
    service_account = places.service_account
    configuration = client.Configuration()
    where = ""
    try:
        if kubeconfig:
            where = f"kubeconfig {os.fspath(kubeconfig)}"
            kube_config.load_kube_config(
                config_file=os.fspath(kubeconfig), client_configuration=configuration
            )
        elif environ.get(SERVICE_HOST_ENV):
            where = f"service account ({service_account.token})"
            InClusterConfigLoader(
                token_filename=str(service_account.token),
                cert_filename=str(service_account.ca),
                environ=environ,
            ).load_and_set(configuration)
        else:
            path = environ.get(KUBECONFIG_ENV) or str((places.home or Path.home()) / ".kube" / "config")
            where = f"kubeconfig {path}"
            kube_config.load_kube_config(config_file=path, client_configuration=configuration)
    except _LOADER_ERRORS as error:
        raise NoConfiguration(where, str(error) or type(error).__name__) from error
    # Both loaders apply their settings again before every request (the client's
    # ``refresh_api_key_hook``, there for tokens that expire), and each time they set
    # ``host`` the client looks for a proxy in the whole environment
    # (``urllib.request.getproxies``): 50-72 µs a request with 39 variables, 378-388 µs
    # with 389 (``benchmarks/client_requests.py``), and a pod has many: kubelet adds
    # variables for every Service in its namespace. The environment does not change
    # while the process runs, so the proxy it names for this host is fixed here; a
    # kubeconfig's own ``proxy-url`` is set by the loader and still applies.
    configuration.proxy = configuration.proxy
    return configuration


def api_client(
    kubeconfig: str | os.PathLike[str] | None,
    *,
    pool_size: int | None = None,
    retries: int | None = 0,
    places: Places = Places(),
) -> client.ApiClient:
    """A client for the API server the rule picks.

    ``retries`` are urllib3's own, off by default: the callers back off themselves
    (:class:`~kubernetes_access.Backoff`), and retries below them would multiply their
    waits. ``None`` keeps urllib3's default (three retries of a failed connection), for a
    caller with no retry loop of its own (the CNI plugin: one ADD, retried by kubelet).
    ``pool_size`` is the number of connections kept to the server: one per request that
    may be in flight at once (a watch holds one for its whole life).
    """
    configuration = load_configuration(kubeconfig, places)
    if retries is not None:
        configuration.retries = retries
    if pool_size is not None:
        configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


__all__ = [
    "KUBECONFIG_ENV", "SERVICE_HOST_ENV", "Places", "ServiceAccount", "api_client",
    "load_configuration",
]
