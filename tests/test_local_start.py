"""Starting a private cluster (`--local`, and the tests' own clusters): a controller that lost
one of its ports to another process as it started is found and replaced.

A controller picks free ports, lets them go, then binds them in its scheduler processes: a
controller starting at the same time may take one in between (1 start pair in 60 here). The
scheduler that cannot bind dies, the hub goes on, and the cluster runs without, say, its iopub
relay: no output and no busy/idle from any engine, for everyone."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from ippmon.connect import ConnectError, start_checked, stop_cluster, unbound_ports

LISTEN = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); \
print(s.getsockname()[1], flush=True); time.sleep(120)"


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.fixture()
def listener() -> Iterator[tuple[psutil.Popen, int]]:
    """A process listening on a port (a controller, for `unbound_ports`), and that port."""
    proc = psutil.Popen([sys.executable, "-c", LISTEN], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc, int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()


def test_unbound_ports_names_each_port_of_the_files_no_process_of_the_cluster_listens_on(
    tmp_path: Path, listener: tuple[psutil.Popen, int]
) -> None:
    proc, own = listener
    elsewhere = listening()  # taken, but by this process: not the cluster's
    free = listening()
    free_port = free.getsockname()[1]
    free.close()
    taken = elsewhere.getsockname()[1]
    security = tmp_path / "security"
    security.mkdir()
    files = {
        "client": {"key": "k", "registration": own, "iopub": taken, "location": "here"},
        "engine": {"registration": own, "hb_ping": own, "broadcast": [own, free_port]},
    }
    for side, info in files.items():
        (security / f"ipcontroller-c-{side}.json").write_text(json.dumps(info))
    cluster = SimpleNamespace(
        profile_dir=str(tmp_path), cluster_id="c", controller=proc, engines={}
    )
    try:
        assert unbound_ports(cluster) == [
            f"client iopub {taken}",
            f"engine broadcast {free_port}",
        ]
    finally:
        elsewhere.close()


def iopub_relay_taken(taken: int) -> list[str]:
    """Controller arguments that give it fixed free ports with `taken` where ipyparallel 9.2
    binds the client side of its iopub relay (the 13th port it draws, in a scheduler
    process)."""
    socks = [listening() for _ in range(15)]
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    ports[12] = taken
    return [f"--IPController.ports={p}" for p in ports]


def gone(cluster: Any) -> bool:
    """No process of this cluster's controller left (none was started, or it is reaped)."""
    launcher = cluster.controller
    if launcher is None:
        return True
    try:
        return launcher.process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture()
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Say sooner that a port stays unbound (a healthy controller binds all within ~1 s)."""
    from ippmon import connect

    monkeypatch.setattr(connect, "PORTS_BOUND_S", 3.0)


@pytest.mark.cluster
@pytest.mark.usefixtures("quick")
def test_a_controller_that_lost_its_iopub_port_is_replaced_and_the_new_one_relays_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ipyparallel as ipp

    from ippmon import connect

    holder = listening()
    taken = holder.getsockname()[1]
    made: list[Any] = []
    found: dict[str, list[str]] = {}

    def make() -> Any:
        args = iopub_relay_taken(taken) if not made else []
        cluster_id = f"ippmon-test-taken-{len(made)}"
        made.append(ipp.Cluster(n=1, cluster_id=cluster_id, controller_args=args, log_level=40))
        return made[-1]

    def recorded(cluster: Any) -> list[str]:
        found[cluster.cluster_id] = missing = unbound_ports(cluster)
        return missing

    monkeypatch.setattr(connect, "unbound_ports", recorded)
    try:
        cluster, client = start_checked(make, 1, timeout=60)
    finally:
        holder.close()
    try:
        # the relay process binds both its sides: it died at the first, the other went with it
        assert found["ippmon-test-taken-0"][0] == f"client iopub {taken}"
        assert [m.rsplit(" ", 1)[0] for m in found["ippmon-test-taken-0"]] == [
            "client iopub",
            "engine iopub",
        ]
        assert found["ippmon-test-taken-1"] == []
        assert made[1] is cluster and gone(made[0])
        ar = client[:].apply_async(print, "relayed")
        ar.get(timeout=30)
        ar.wait_for_output(timeout=10)
        assert ar.stdout == ["relayed\n"]
    finally:
        client.close()
        stop_cluster(cluster)


@pytest.mark.cluster
@pytest.mark.usefixtures("quick")
def test_a_controller_that_cannot_listen_on_its_ports_is_one_line_naming_the_port() -> None:
    import ipyparallel as ipp

    holder = listening()
    taken = holder.getsockname()[1]
    made: list[Any] = []

    def make() -> Any:
        cluster_id = f"ippmon-test-never-{len(made)}"
        args = iopub_relay_taken(taken)
        made.append(ipp.Cluster(n=1, cluster_id=cluster_id, controller_args=args, log_level=40))
        return made[-1]

    try:
        with pytest.raises(ConnectError) as caught:
            start_checked(make, 1, timeout=60, attempts=2)
    finally:
        holder.close()
    assert re.fullmatch(
        "could not start a local cluster of 1 engines: its controller could not listen on "
        rf"client iopub {taken}, engine iopub \d+ \(another process took the port\) \(2 tries\)",
        str(caught.value),
    ), caught.value
    assert len(made) == 2 and all(gone(cluster) for cluster in made)


@pytest.mark.cluster
def test_a_job_on_a_cluster_whose_iopub_relay_died_ends_with_its_results_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a user's cluster that lost its relay port does: results come, output never does.
    The job does not wait the ten-minute last resort for it: it says why and ends."""
    import ipyparallel as ipp

    from ippmon import job as job_module
    from ippmon.connect import ClientSession
    from ippmon.jobspec import load_catalog
    from ippmon.model import ClusterInfo, Phase
    from ippmon.records import read_results

    monkeypatch.setattr(job_module, "IOPUB_SILENT_S", 2.0)
    holder = listening()
    cluster = ipp.Cluster(
        n=1,
        cluster_id="ippmon-test-no-relay",
        controller_args=iopub_relay_taken(holder.getsockname()[1]),
        log_level=40,
    )
    try:
        client = cluster.start_and_connect_sync()
        client.wait_for_engines(1, timeout=60)
        info = ClusterInfo(profile="default", cluster_id=cluster.cluster_id, engines=1)
        with ClientSession(client, info, cluster=cluster) as session:
            spec = load_catalog(None).get("squares")
            spec = type(spec)(**{**spec.__dict__, "kwargs": {"delay": 0.0}})
            job = session.submit(spec, runs_dir=str(tmp_path / "runs"))
            assert job.wait(timeout=60), job.poll().message
            snap = job.poll()
            assert snap.phase is Phase.FINISHED and snap.done == 100
            assert "the controller's iopub relay is down" in snap.message
            recorded = read_results(job.record.folder)
            assert sorted(r["result"] for r in recorded) == [i * i for i in range(100)]
            assert {r["output_incomplete"] for r in recorded} == {
                "output may be incomplete: none came through the controller's iopub relay"
            }
    finally:
        holder.close()
        stop_cluster(cluster)
