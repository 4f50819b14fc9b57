"""A reusable in-memory Kubernetes API server for tests (see ``server.py``).

Import the fixture into a test module (``from tests.kube_api import kube_api``) or use
``FakeKubeAPI`` directly as a context manager.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kube_api.server import ApiError, FakeKubeAPI, RecordedRequest, ResourcePath, merge_patch


@pytest.fixture
def kube_api() -> Iterator[FakeKubeAPI]:
    """A fresh fake API server on a free loopback port, stopped after the test."""
    with FakeKubeAPI() as api:
        yield api


__all__ = ["ApiError", "FakeKubeAPI", "RecordedRequest", "ResourcePath", "kube_api", "merge_patch"]
