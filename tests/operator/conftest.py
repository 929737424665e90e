"""Operator fixtures: a real kube-apiserver v1.20.2 + etcd on loopback, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.kube import KubeApiServer


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeApiServer]:
    """The API server, up and ready; built first when the cache has none. A failure errors every test that
    needs it (no skip)."""
    with KubeApiServer() as server:
        yield server
