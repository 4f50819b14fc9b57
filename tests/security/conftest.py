"""The in-test API server and extenders that follow it, as tests/kubernetes has them."""

from tests.kubernetes.conftest import client_for, kube_api, kubeconfig, serve, sources  # noqa: F401
