"""The in-test API server (``tests/kube_api``) and the official client pointed at it."""

from tests.kube_api import kube_api, kube_client  # noqa: F401 - re-exported fixtures
