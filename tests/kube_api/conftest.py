"""Makes the ``kube_api`` fixture available to this directory's tests, with a client for it."""

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.kube_api import FakeKubeAPI, kube_api  # noqa: F401 - re-exported fixture


@pytest.fixture
def kube_client(kube_api: FakeKubeAPI) -> Iterator[client.ApiClient]:  # noqa: F811
    """The official client pointed at ``kube_api``, without retries."""
    configuration = client.Configuration(host=kube_api.url)
    configuration.retries = 0
    with client.ApiClient(configuration) as api_client:
        yield api_client
