"""Makes the ``kube_api`` fixture available to this directory's tests."""

from tests.kube_api import kube_api  # noqa: F401 - re-exported fixture
