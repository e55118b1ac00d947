"""The seams hold: the real jobs, sessions and backends, the cluster process's proxies and the
test fakes all offer every member of the Protocols the screens use, with the same parameters."""

from __future__ import annotations

import inspect

import pytest
from fakes.backends import FakeBackend, FakeJob, FakeSession, FakeWatch
from test_tui_cluster import SharedBackend, SharedSession

from ippmon.cluster_process import RemoteBackend, RemoteJob, RemoteSession, RemoteWatch
from ippmon.clusterwatch import ClusterWatcher
from ippmon.connect import ClientSession, ClusterBackend
from ippmon.job import Job
from ippmon.protocols import Backend, ClusterWatch, JobHandle, Session

IMPLEMENTATIONS = {
    JobHandle: [Job, RemoteJob, FakeJob],
    Session: [ClientSession, RemoteSession, FakeSession, SharedSession],
    Backend: [ClusterBackend, RemoteBackend, FakeBackend, SharedBackend],
    ClusterWatch: [ClusterWatcher, RemoteWatch, FakeWatch],
}
CASES = [(proto, impl) for proto, impls in IMPLEMENTATIONS.items() for impl in impls]


def members(protocol: type) -> dict[str, object]:
    return {name: value for name, value in vars(protocol).items() if not name.startswith("_")}


def parameters(function: object) -> list[str]:
    return [
        p.name
        for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


@pytest.mark.parametrize(
    ("protocol", "impl"), CASES, ids=[f"{p.__name__}-{i.__name__}" for p, i in CASES]
)
def test_an_implementation_offers_every_member_of_its_protocol(protocol: type, impl: type) -> None:
    for name, wanted in members(protocol).items():
        got = inspect.getattr_static(impl, name, None)
        assert got is not None, f"{impl.__name__} lacks {protocol.__name__}.{name}"
        if callable(wanted):
            assert callable(got), f"{impl.__name__}.{name} is not a method"
            assert parameters(got) == parameters(wanted), (
                f"{impl.__name__}.{name}{inspect.signature(got)} differs from "  # type: ignore[arg-type]
                f"{protocol.__name__}.{name}{inspect.signature(wanted)}"  # type: ignore[arg-type]
            )
    for name in getattr(protocol, "__annotations__", {}):  # plain attributes: name, info
        assert name in _attributes(impl), f"{impl.__name__} lacks the attribute {name}"


def _attributes(impl: type) -> set[str]:
    """Attributes an instance gets in __init__ (self.x = ...) or the class declares."""
    source = inspect.getsource(impl)
    assigned = {
        line.split("self.", 1)[1].split("=")[0].split(":")[0].strip()
        for line in source.splitlines()
        if line.strip().startswith("self.") and "=" in line
    }
    return assigned | set(vars(impl)) | set(getattr(impl, "__annotations__", {}))
