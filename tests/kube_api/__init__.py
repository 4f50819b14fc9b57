"""A reusable in-memory Kubernetes API server for tests (see ``server.py``).

Import the fixtures into a test module or conftest (``from tests.kube_api import
kube_api, kube_client``) or use ``FakeKubeAPI`` directly as a context manager.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.kube_api.server import ApiError, FakeKubeAPI, RecordedRequest, ResourcePath, merge_patch


@pytest.fixture
def kube_api() -> Iterator[FakeKubeAPI]:
    """A fresh fake API server on a free loopback port, stopped after the test."""
    with FakeKubeAPI() as api:
        yield api


@pytest.fixture
def kube_client(kube_api: FakeKubeAPI) -> Iterator[client.ApiClient]:
    """The official client pointed at ``kube_api``, without retries (as netsched's parts)."""
    configuration = client.Configuration(host=kube_api.url)
    configuration.retries = 0
    with client.ApiClient(configuration) as api_client:
        yield api_client


__all__ = [
    "ApiError", "FakeKubeAPI", "RecordedRequest", "ResourcePath", "kube_api", "kube_client",
    "merge_patch",
]
