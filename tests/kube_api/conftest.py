"""Makes the ``kube_api`` fixture and a client for it available to this directory's tests."""

from tests.kube_api import kube_api, kube_client  # noqa: F401 - re-exported fixtures
