"""Shared fixtures. The real local cluster is started once per session, only when a test asks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ippmon.connect import ClientSession, start_local

TEST_ENGINES = 2


def pytest_configure(config: pytest.Config) -> None:
    """Keep tests away from the user's own profiles and clusters: a private IPYTHONDIR that the
    engines inherit too."""
    import tempfile

    os.environ["IPYTHONDIR"] = tempfile.mkdtemp(prefix="ippmon-test-ipython-")


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClientSession]:
    """A private local cluster of 2 engines for the whole test session, stopped at the end."""
    session = start_local(TEST_ENGINES, timeout=60)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture()
def client(cluster: ClientSession):  # noqa: ANN201 - an ipyparallel Client
    """The session cluster's client, checked to have all its engines before each test."""
    cluster.client.wait_for_engines(TEST_ENGINES, timeout=30)
    return cluster.client


@pytest.fixture()
def runs_dir(tmp_path) -> str:  # noqa: ANN001
    path = tmp_path / "runs"
    return os.fspath(path)
