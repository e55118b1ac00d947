"""The cluster side in its own process (`ippmon.cluster_process`): what the TUI gets through the
pipe, what survives a child or a parent that dies, and at what priority the cluster side runs.

Against the real session cluster: the child connects to it by cluster id with its own client,
and closing that client leaves the cluster alone (only a `--local` session stops its cluster).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from cluster_helpers import BLOCKING_TASKS, POINTS, until, write_spec
from textual.pilot import Pilot

from ippmon.cluster_process import (
    ALLOWED,
    BACKEND_ID,
    SLICE,
    TIMEOUT_S,
    Kind,
    RemoteBackend,
    _pack,
    _unpack,
    plain,
)
from ippmon.connect import ClientSession, ConnectOptions
from ippmon.jobspec import Catalog, SpecError, load_catalog
from ippmon.model import OutputLine, Phase, Shown, TaskRow, TaskState
from ippmon.priority import lower_priority
from ippmon.protocols import ConnectError
from ippmon.records import load_sent, read_results
from ippmon.ui import IppmonApp
from ippmon.ui.screens.job_picker import JobPickerScreen
from ippmon.ui.screens.monitor import MonitorScreen
from ippmon.ui.widgets.output_log import OutputLog

pytestmark = pytest.mark.cluster

SIZE = (100, 30)

RESULTS = """
    from fractions import Fraction

    def third(x):
        print(f"making a third of {x}", flush=True)
        return {"third": Fraction(x, 3)}
"""


@pytest.fixture()
def quick(tmp_path: Path) -> Catalog:
    """The built-in `squares` (100 tasks, 3 printed steps each) without its sleeps."""
    spec_file = write_spec(
        tmp_path / "quick",
        """
        [jobs.squares]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 100] }
        kwargs = { delay = 0.005, steps = 3 }
        """,
    )
    return load_catalog(spec_file)


@pytest.fixture()
def remote(cluster: ClientSession) -> Iterator[RemoteBackend]:
    backend = RemoteBackend(ConnectOptions(cluster_id=cluster.info.cluster_id, timeout=10))
    try:
        yield backend
    finally:
        backend.close()


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await pilot.pause(0.1)


def wait_finished(job, timeout: float = 60.0):  # noqa: ANN001, ANN201
    snapshots = []

    def done() -> bool:
        snapshots.append(job.poll())
        return snapshots[-1].phase is Phase.FINISHED

    assert until(done, timeout=timeout, step=0.1), snapshots[-1:]
    return snapshots[-1]


# -- plain functions ----------------------------------------------------------------------------


def test_the_cluster_process_runs_this_ippmon_not_one_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "ippmon"
    other.mkdir()
    (other / "__init__.py").write_text("")
    (other / "cluster_process.py").write_text("raise SystemExit('another ippmon')\n")
    monkeypatch.chdir(tmp_path)
    backend = RemoteBackend(ConnectOptions(profile="no-such-profile", timeout=2))
    try:
        assert backend.discover() == []
    finally:
        backend.close()


def test_plain_data_crosses_as_is_and_other_objects_as_their_text() -> None:
    data = {"a": [1, 2.5, (True, None)], "b": {"nested": "text"}, 3: b"raw"}
    assert plain(data) is data

    class Opaque:
        def __repr__(self) -> str:
            return "Opaque<7>"

    shown = plain({"value": Opaque()})
    assert isinstance(shown, Shown) and repr(shown) == "{'value': Opaque<7>}"

    class Broken:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    broken = plain(Broken())
    assert isinstance(broken, Shown)
    assert repr(broken) == "<Broken: repr failed: no repr>"


def test_long_lists_cross_in_slices_and_come_back_whole() -> None:
    rows = [TaskRow(i, TaskState.OK, i % 4, 1, 0.5, f"line {i}") for i in range(2 * SLICE + 5)]
    parts = _pack(rows)
    assert len(parts) == 4  # an envelope, then 3 slices, each unpickled on its own
    assert _unpack(parts) == rows
    lines = [OutputLine(i, i, 0, "stdout", f"text {i}") for i in range(SLICE + 1)]
    assert len(_pack((lines, 4))) == 3 and _unpack(_pack((lines, 4))) == (lines, 4)
    two = (rows, "between", lines)  # any tuple: each long item in slices of its own
    assert len(_pack(two)) == 6 and _unpack(_pack(two)) == two
    assert len(_pack([1, 2])) == 1 and _unpack(_pack([1, 2])) == [1, 2]
    assert _unpack(_pack(([], 0))) == ([], 0)
    assert _unpack(_pack({"a": [1, 2]})) == {"a": [1, 2]}


def test_a_process_gets_a_lower_priority_and_so_does_its_session() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        target = psutil.Process(proc.pid)
        lower_priority([target], 17)
        assert target.nice() == 17
        autogroup = Path(f"/proc/{proc.pid}/autogroup")
        if autogroup.exists():  # Linux with autogroups: the session's share is lowered too
            assert autogroup.read_text().split()[-1] == "17"
        assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # this process is left alone
        if hasattr(os, "SCHED_IDLE"):  # below 19 the threads keep the normal policy
            assert os.sched_getscheduler(proc.pid) != os.SCHED_IDLE
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_at_the_lowest_priority_every_thread_gives_way_to_the_screen_at_once() -> None:
    """At nice 19 the cluster side runs under SCHED_IDLE, each thread of it, and so do the
    threads it starts afterwards."""
    script = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "print('ready', flush=True)\n"
        "input()\n"
        "t = threading.Thread(target=time.sleep, args=(60,), daemon=True)\n"
        "t.start()\n"
        "print(t.native_id, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        threads = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task")]
        assert len(threads) == 2
        lower_priority([psutil.Process(proc.pid)], 19)
        assert [os.sched_getscheduler(t) for t in threads] == [os.SCHED_IDLE] * 2
        proc.stdin.write("\n")
        proc.stdin.flush()
        later = int(proc.stdout.readline())
        assert os.sched_getscheduler(later) == os.SCHED_IDLE
        assert os.sched_getscheduler(0) != os.SCHED_IDLE  # this process is left alone
    finally:
        proc.kill()
        proc.wait()


def test_the_cluster_process_is_lowered_only_with_a_local_cluster_it_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Below a cluster the user started at normal priority the cluster process fell minutes
    behind it; with a `--local` cluster, which ippmon lowers, it goes down to the same level."""
    import ippmon.priority
    from ippmon.cluster_process import _ChildBackend

    lowered: list[tuple[list[int], int]] = []
    monkeypatch.setattr(
        ippmon.priority,
        "lower_priority",
        lambda procs, nice: lowered.append(([p.pid for p in procs], nice)),
    )
    monkeypatch.setenv("IPPMON_NICE", "17")
    child = _ChildBackend(ConnectOptions(cluster_id="whatever"))

    class Started:
        def start_local(self, n: int) -> str:
            return f"a local cluster of {n}"

        def connect(self, choice: object = None) -> str:
            return "a cluster the user started"

    child._backend = Started()  # type: ignore[assignment]
    assert child.connect() == "a cluster the user started" and lowered == []
    assert child.start_local(2) == "a local cluster of 2"
    assert lowered == [([os.getpid()], 17)]


def test_the_cluster_process_runs_at_normal_priority_in_a_session_of_its_own(
    remote: RemoteBackend,
) -> None:
    remote.connect()
    child = psutil.Process(remote.pid)
    assert child.nice() == 0
    assert os.getsid(remote.pid) == remote.pid != os.getsid(0)


# -- through the child process ------------------------------------------------------------------


def test_a_job_sent_through_the_cluster_process_finishes_with_results_and_output(
    remote: RemoteBackend, runs_dir: str, quick: Catalog
) -> None:
    session = remote.connect()
    spec = quick.get("squares")
    job = session.submit(spec, runs_dir)
    snapshot = wait_finished(job)
    assert snapshot.succeeded and snapshot.count(TaskState.OK) == snapshot.total == 100
    output = job.output_batch(0)
    assert output.dropped == 0 and len(output.texts) == 300  # 3 steps per square
    assert (output.first, output.last) == (1, 300)
    assert sum(text.endswith("] square 7: step 3/3") for text in output.texts) == 1
    detail = job.task(7)
    assert detail.result == 49 and detail.extra["input"] == 7
    assert "square 7: step 3/3" in detail.stdout
    assert job.finished() and job.retryable() == []
    rows = job.task_rows([TaskState.OK])
    assert len(rows) == 100 and {r.index for r in rows} == set(range(100))
    session.close()
    (folder,) = Path(runs_dir).iterdir()
    results = read_results(folder)
    assert sorted((r["index"], r["result"]) for r in results) == [(x, x * x) for x in range(100)]
    assert json.loads((folder / "run.json").read_text())["state"] == "finished"


def test_when_its_last_job_closes_a_grown_cluster_process_is_replaced_and_the_session_goes_on(
    cluster: ClientSession, runs_dir: str, quick: Catalog
) -> None:
    """The child keeps the arenas a job's leftovers pin (~60 MB after 10,000 tasks): once
    nothing is open in it, a fresh child connects and the old one exits. (Grown by 0 MB is
    enough here, so that a 100-task job can show it.)"""
    options = ConnectOptions(cluster_id=cluster.info.cluster_id, timeout=10)
    backend = RemoteBackend(options, renew_above_mb=0.0)
    try:
        session = backend.connect()
        first = session.submit(quick.get("squares"), runs_dir)
        assert wait_finished(first).count(TaskState.OK) == 100
        old = psutil.Process(backend.pid)
        watch = session.watch()
        first.close()
        assert not backend.renew_if_idle()  # the watch is still open in it
        assert backend.pid == old.pid and backend.renewals == 0

        watch.close()  # the last open object: a fresh child takes over a moment later
        assert until(lambda: backend.renewals == 1, timeout=60, step=0.1)
        assert backend.pid != old.pid
        old.wait(timeout=60)  # the old child closed its client and exited
        with pytest.raises(ConnectError, match="replaced by a fresh one"):
            first.poll()  # a job of the old child says so in one line

        second = session.submit(quick.get("squares"), runs_dir)  # the session goes on
        snapshot = wait_finished(second)
        assert snapshot.count(TaskState.OK) == snapshot.total == 100
        output = second.output_batch(0)
        assert output.dropped == 0 and len(output.texts) == 300
        second.close()
    finally:
        backend.close()
    folders = sorted(Path(runs_dir).iterdir())
    assert len(folders) == 2
    for folder in folders:
        assert json.loads((folder / "run.json").read_text())["state"] == "finished"
        assert len(read_results(folder)) == 100


def test_a_cluster_process_that_started_its_cluster_is_never_replaced(
    cluster: ClientSession,
) -> None:
    """A `--local` cluster stops with the session of the child that started it. (The session
    here connected to the test cluster and is marked as started: a real start costs ~10 s.)"""
    options = ConnectOptions(cluster_id=cluster.info.cluster_id, timeout=10)
    backend = RemoteBackend(options, renew_above_mb=0.0)
    try:
        session = backend.connect()
        pid = backend.pid
        session.started_here = True
        assert not backend.renew_if_idle()
        assert backend.pid == pid and backend.renewals == 0
        session.started_here = False  # the same child, connected to a cluster it did not start
        assert backend.renew_if_idle()
        assert backend.pid != pid and backend.renewals == 1
        assert session.engine_ids()
    finally:
        backend.close()


def test_a_result_that_is_not_plain_data_shows_as_its_text(
    remote: RemoteBackend, runs_dir: str, tmp_path: Path
) -> None:
    spec_file = write_spec(
        tmp_path / "spec",
        """
        [jobs.thirds]
        function = "thirds.py:third"
        inputs = { range = [0, 3] }
        """,
        {"thirds.py": RESULTS},
    )
    session = remote.connect()
    job = session.submit(load_catalog(spec_file).get("thirds"), runs_dir)
    assert wait_finished(job).succeeded
    detail = job.task(2)
    # the TUI's process may not be able to import a result's classes: it gets the text
    assert isinstance(detail.result, Shown)
    assert repr(detail.result) == "{'third': Fraction(2, 3)}"
    assert detail.extra["input"] == 2 and detail.stdout == "making a third of 2\n"
    # a class defined in the spec's own file: the engines send it back, the TUI shows its text
    spec_file = write_spec(
        tmp_path / "points",
        """
        [jobs.points]
        function = "points.py:point"
        inputs = { range = [0, 3] }
        """,
        {"points.py": POINTS},
    )
    job = session.submit(load_catalog(spec_file).get("points"), runs_dir)
    assert wait_finished(job).succeeded
    assert repr(job.task(1).result) == "Point(x=1)"
    session.close()


def test_errors_come_back_as_the_same_one_line_exceptions(
    remote: RemoteBackend, runs_dir: str, tmp_path: Path
) -> None:
    spec_file = write_spec(
        tmp_path / "spec",
        """
        [jobs.missing]
        function = "nowhere.py:f"
        inputs = { range = [0, 3] }
        """,
    )
    session = remote.connect()
    with pytest.raises(SpecError) as caught:
        session.submit(load_catalog(spec_file).get("missing"), runs_dir)
    assert caught.value.job == "missing" and caught.value.field == "function"
    assert "\n" not in str(caught.value)
    session.close()

    other = RemoteBackend(ConnectOptions(cluster_id="no-such-cluster", timeout=2))
    try:
        with pytest.raises(ConnectError) as refused:
            other.connect()
        assert "\n" not in str(refused.value) and "no-such-cluster" in str(refused.value)
    finally:
        other.close()


def test_the_cluster_process_answers_only_the_calls_its_protocols_name(
    remote: RemoteBackend, runs_dir: str, quick: Catalog
) -> None:
    assert "poll" in ALLOWED[Kind.JOB] and "submit" in ALLOWED[Kind.SESSION]
    assert "connect" in ALLOWED[Kind.BACKEND]
    for name in ("options", "__class__", "_backend", "target_given"):
        with pytest.raises(AttributeError, match=f"a backend .* has no '{name}'"):
            remote._channel.call(BACKEND_ID, name)
    session = remote.connect()
    job = session.submit(quick.get("squares"), runs_dir)
    for name in ("tracker", "record", "failed", "wait"):  # Job has them; JobHandle does not
        with pytest.raises(AttributeError, match=f"a job .* has no '{name}'"):
            job._call(name)
    assert wait_finished(job).succeeded and job.finished()
    # a closed job is let go of in the child (jobs run one after another do not add up)
    job.close()
    with pytest.raises(LookupError, match="closed object .* already"):
        job.poll()


def test_a_call_the_cluster_process_does_not_answer_in_time_fails_in_one_line_naming_it(
    remote: RemoteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = remote.connect()
    monkeypatch.setitem(TIMEOUT_S, "engine_ids", 1.0)
    os.kill(remote.pid, signal.SIGSTOP)  # a child that hangs (or is starved of CPU)
    try:
        with pytest.raises(ConnectError) as caught:
            session.engine_ids()
    finally:
        os.kill(remote.pid, signal.SIGCONT)
    message = str(caught.value)
    assert "\n" not in message and "did not answer engine_ids within 1 s" in message
    assert session.engine_ids()  # the late answer went nowhere; the next call is answered
    session.close()


def test_a_killed_cluster_process_fails_the_next_call_in_one_line_and_the_results_stay(
    remote: RemoteBackend, runs_dir: str, quick: Catalog
) -> None:
    session = remote.connect()
    job = session.submit(quick.get("squares"), runs_dir)
    assert wait_finished(job).succeeded
    os.kill(remote.pid, signal.SIGKILL)
    with pytest.raises(ConnectError) as caught:
        until(lambda: job.poll() is None, timeout=10)
    message = str(caught.value)
    assert "\n" not in message and f"pid {remote.pid}" in message
    assert "finished results are saved" in message
    (folder,) = Path(runs_dir).iterdir()
    assert len(read_results(folder)) == 100


def test_when_the_tui_process_goes_away_the_tasks_keep_running_and_the_run_says_detached(
    cluster: ClientSession, runs_dir: str, tmp_path: Path
) -> None:
    flag = tmp_path / "release"
    spec_file = write_spec(
        tmp_path / "spec",
        f"""
        [jobs.wait]
        function = "blocking.py:wait_for_flag"
        inputs = {{ range = [0, 2] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"blocking.py": BLOCKING_TASKS},
    )
    # A TUI process that submits, then dies without a word (kill -9).
    script = f"""
import threading
from ippmon.connect import ConnectOptions
from ippmon.jobspec import load_catalog
from ippmon.model import TaskState
from ippmon.cluster_process import RemoteBackend

backend = RemoteBackend(ConnectOptions(cluster_id={cluster.info.cluster_id!r}))
job = backend.connect().submit(load_catalog({str(spec_file)!r}).get("wait"), {runs_dir!r})
pause = threading.Event()
while job.poll().count(TaskState.RUNNING) < 1:
    pause.wait(0.05)
print(backend.pid, flush=True)
pause.wait(120)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(parent.stdout.readline()))  # type: ignore[union-attr]
        parent.kill()
        parent.wait()
        child.wait(timeout=30)  # it noticed, recorded, and left
        (folder,) = Path(runs_dir).iterdir()
        record = json.loads((folder / "run.json").read_text())
        assert record["state"] == "detached"
        msg_ids = [line["msg_id"] for line in load_sent(folder).lines]
        client = cluster.client
        assert msg_ids and client.result_status(msg_ids)["pending"]  # left running
        flag.touch()  # released, they finish on the cluster
        assert until(lambda: not client.result_status(msg_ids)["pending"], timeout=30)
        assert client.result_status(msg_ids)["completed"] == msg_ids
    finally:
        flag.touch()
        if parent.poll() is None:
            parent.kill()


async def test_the_tui_on_the_cluster_process_runs_a_job_from_the_picker(
    remote: RemoteBackend, runs_dir: str, quick: Catalog
) -> None:
    app = IppmonApp(remote, quick, runs_dir=runs_dir, poll_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, JobPickerScreen))
        await pilot.press("enter")  # squares, the first job

        def finished() -> bool:
            screen = app.screen
            snap = screen.snapshot if isinstance(screen, MonitorScreen) else None
            return snap is not None and snap.phase is Phase.FINISHED

        await wait_for(pilot, finished)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.snapshot is not None
        assert monitor.snapshot.succeeded and monitor.snapshot.total == 100
        await pilot.pause()
        lines = [str(line) for line in monitor.query_one(OutputLog).lines]
        assert (
            sum(bool(re.fullmatch(r"\[e\d #\d+\] square \d+: step 3/3", x)) for x in lines) == 100
        )
        app.exit()
