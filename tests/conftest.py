"""Shared fixtures. The real local cluster is started once per test process (pytest-xdist runs
two), only when one of its tests asks."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ippmon.connect import ClientSession, start_local

# What the test SSH server's network calls the cluster's head node: a name only it resolves.
CLUSTER_HEAD = "cluster-head.invalid"

TEST_ENGINES = 2


# The snapshot SVGs are pictures of what these exact versions draw (pinned in the `test` extra).
SNAPSHOT_VERSIONS = {"textual": "8.2.8", "rich": "15.0.0"}


def _snapshot_versions_differ() -> str:
    from importlib.metadata import version

    found = {name: version(name) for name in SNAPSHOT_VERSIONS}
    if found == SNAPSHOT_VERSIONS:
        return ""
    return ", ".join(f"{n} {found[n]} (snapshots: {v})" for n, v in SNAPSHOT_VERSIONS.items())


def pytest_configure(config: pytest.Config) -> None:
    """Keep tests away from the user's own profiles and clusters: a private IPYTHONDIR that the
    engines inherit too. Refuse to rewrite snapshots with other Textual or Rich versions than
    the ones they were made with."""
    import tempfile

    os.environ["IPYTHONDIR"] = tempfile.mkdtemp(prefix="ippmon-test-ipython-")
    differ = _snapshot_versions_differ()
    if differ and config.getoption("--snapshot-update", default=False):
        raise pytest.UsageError(f"refusing --snapshot-update with {differ}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Snapshot tests compare pictures: skip them (saying why) under other versions."""
    differ = _snapshot_versions_differ()
    if not differ:
        return
    skip = pytest.mark.skip(reason=f"snapshots were made with other versions: {differ}")
    for item in items:
        if "snap_compare" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def ssh_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real SSH server in this process (127.0.0.1, key login only) playing the cluster's login
    node, and a config for the real `ssh` client (`SshSetup`, tests/ssh_server.py)."""
    if shutil.which("ssh") is None:
        pytest.skip(
            "the OpenSSH client `ssh` is not installed (Debian: apt-get install openssh-client)"
        )
    from ssh_server import SshSetup

    setup = SshSetup(Path(tmp_path_factory.mktemp("ssh")), {CLUSTER_HEAD: "127.0.0.1"})
    try:
        yield setup
    finally:
        setup.close()
