"""The TUI end to end against the real session cluster, driven with Textual's pilot.

The app reaches the session's cluster through `SharedBackend`, whose session closes only the
jobs it submitted (never the client or the cluster, which the other tests go on using). Every
wait is bounded: `wait_for` pauses the pilot in a loop until a condition holds or a deadline
passes; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
from cluster_helpers import BLOCKING_TASKS, FAIL_ONCE, until, write_spec
from textual.pilot import Pilot
from textual.widgets import Label, ListView

import ippmon.tracker as tracker_module
import ippmon.ui.screens.monitor as monitor_module
from ippmon.clusterwatch import ClusterWatcher
from ippmon.connect import ClientSession
from ippmon.job import Job
from ippmon.jobspec import Catalog, JobSpec, load_catalog
from ippmon.model import Phase, TaskState
from ippmon.protocols import ClusterChoice, ConnectError
from ippmon.records import read_results
from ippmon.ui import IppmonApp
from ippmon.ui.screens.job_picker import JobItem, JobPickerScreen
from ippmon.ui.screens.leave import LeaveScreen
from ippmon.ui.screens.monitor import MonitorScreen
from ippmon.ui.widgets.output_log import OutputLog
from ippmon.ui.widgets.summary_panel import SummaryPanel

pytestmark = pytest.mark.cluster

SIZE = (100, 30)
POLL_INTERVAL = 0.1

# -- the session cluster, shared with the app --------------------------------------------------


class SharedSession:
    """The `cluster` fixture's session as the app sees it: `close()` flushes the jobs submitted
    through it and leaves the client and the cluster alone."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session
        self.info = session.info
        self.jobs: list[Job] = []
        self.watches: list[ClusterWatcher] = []
        self.closed = threading.Event()
        self.close_errors: list[BaseException] = []

    def submit(self, spec: JobSpec, runs_dir: str | None = None) -> Job:
        job = self._session.submit(spec, runs_dir)
        with contextlib.suppress(ValueError):  # ours to close, not the fixture's
            self._session.jobs.remove(job)
        self.jobs.append(job)
        return job

    def attach(self, folder: Path) -> Job:
        job = self._session.attach(folder)
        with contextlib.suppress(ValueError):  # ours to close, not the fixture's
            self._session.jobs.remove(job)
        self.jobs.append(job)
        return job

    def engine_ids(self) -> list[int]:
        return self._session.engine_ids()

    def watch(self) -> ClusterWatcher:
        watch = self._session.watch()
        with contextlib.suppress(ValueError):  # ours to close, not the fixture's
            self._session.watches.remove(watch)
        self.watches.append(watch)
        return watch

    def close(self) -> None:
        for watch in self.watches:
            watch.close()
        for job in self.jobs:
            try:
                job.close()
            except Exception as error:  # the real session suppresses these: record them
                self.close_errors.append(error)
        self.closed.set()


class SharedBackend:
    """Backend protocol: the command line "named" the session cluster."""

    def __init__(self, session: ClientSession) -> None:
        self.session = SharedSession(session)

    def target_given(self) -> bool:
        return True

    def discover(self) -> list[ClusterChoice]:
        return []

    def connect(self, choice: ClusterChoice | None = None) -> SharedSession:
        return self.session

    def start_local(self, n: int) -> SharedSession:
        raise ConnectError("the tests use the session cluster")


def make_app(cluster: ClientSession, catalog: Catalog, runs_dir: str) -> IppmonApp:
    app = IppmonApp(SharedBackend(cluster), catalog, runs_dir=runs_dir, poll_interval=POLL_INTERVAL)
    app.animation_level = "none"
    return app


def shared(app: IppmonApp) -> SharedSession:
    backend = app.backend
    assert isinstance(backend, SharedBackend)
    return backend.session


@pytest.fixture(autouse=True)
def idle_cluster_after(client) -> Iterator[None]:
    """Leave the cluster as found: every task this test sent has come back."""
    yield
    assert until(lambda: not client.outstanding, timeout=30), (
        f"tasks still on the cluster: {len(client.outstanding)}"
    )


# -- waiting and reading the screen -------------------------------------------------------------


async def wait_for(
    pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = 30.0
) -> None:
    """Pause the app until `condition()` is true, or fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s: {what}")
        await pilot.pause(0.05)


def plain(widget: Label) -> str:
    content = widget.content
    return getattr(content, "plain", None) or str(content)


def monitor_of(app: IppmonApp) -> MonitorScreen:
    monitor = app.monitor()
    assert monitor is not None, f"no monitor; the screen is {app.screen!r}"
    return monitor


def phase(app: IppmonApp) -> Phase | None:
    monitor = app.monitor()
    snapshot = monitor.snapshot if monitor is not None else None
    return snapshot.phase if snapshot is not None else None


def finished(app: IppmonApp, attempt: int = 1) -> bool:
    monitor = app.monitor()
    snapshot = monitor.snapshot if monitor is not None else None
    return snapshot is not None and snapshot.phase is Phase.FINISHED and snapshot.attempt == attempt


def output_lines(app: IppmonApp) -> list[str]:
    return list(monitor_of(app).query_one(OutputLog).lines)


async def open_picker(pilot: Pilot) -> JobPickerScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, JobPickerScreen), "the job picker")
    screen = app.screen
    assert isinstance(screen, JobPickerScreen)
    return screen


async def submit_from_picker(pilot: Pilot, name: str) -> MonitorScreen:
    """Move the picker's highlight to `name` with the keys (Home, then j) and press Enter."""
    picker = await open_picker(pilot)
    jobs = picker.query_one("#jobs", ListView)
    names = [item.job_name for item in jobs.query_children(JobItem)]
    assert name in names, names
    await pilot.press("home", *["j"] * names.index(name))
    spec = picker.highlighted_spec()
    assert spec is not None and spec.name == name
    await pilot.press("enter")
    app = pilot.app
    await wait_for(
        pilot,
        lambda: app.monitor() is not None and monitor_of(app).job is not None,
        f"the monitor of {name} with its job submitted",
    )
    return monitor_of(app)


def catalog_from(tmp_path: Path, toml: str, files: dict[str, str] | None = None) -> Catalog:
    catalog = load_catalog(write_spec(tmp_path / "spec", toml, files))
    assert not catalog.errors and catalog.file_error is None, catalog.errors or catalog.file_error
    return catalog


# -- the tests ----------------------------------------------------------------------------------


async def test_submit_from_the_picker_and_watch_the_job_finish(
    cluster: ClientSession, runs_dir: str, tmp_path: Path
) -> None:
    catalog = catalog_from(
        tmp_path,
        """
        [jobs.small]
        description = "8 quick squares"
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 8] }
        kwargs = { delay = 0.2, steps = 2 }
        """,
    )
    app = make_app(cluster, catalog, runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        picker = await open_picker(pilot)
        names = [item.job_name for item in picker.query(JobItem)]
        assert {"squares", "flaky", "chatty", "stragglers", "small"} <= set(names)
        await pilot.press("end")  # the spec file's job comes after the built-ins
        spec = picker.highlighted_spec()
        assert spec is not None and spec.name == "small"
        await pilot.press("enter")
        await wait_for(pilot, lambda: finished(app), "the job FINISHED")
        await pilot.pause()
        monitor = monitor_of(app)
        snapshot = monitor.snapshot
        assert snapshot is not None and snapshot.succeeded
        assert snapshot.count(TaskState.OK) == 8 and snapshot.total == 8
        progress = plain(monitor.query_one("#progress-text", Label))
        assert re.match(r"8 / 8\b", progress), progress
        assert plain(monitor.query_one("#counts", Label)).startswith("queued 0  running 0  ok 8  ")
        assert monitor.query_one(SummaryPanel).border_title == "finished · all 8 tasks ok"
        lines = output_lines(app)
        steps = [line for line in lines if re.fullmatch(r"\[e\d #\d\] square \d: step \d/2", line)]
        assert len(steps) == 8 * 2, lines
        assert {line.split("] ", 1)[1] for line in steps} == {
            f"square {x}: step {s}/2" for x in range(8) for s in (1, 2)
        }
        assert monitor.job is not None
        folder = monitor.job.record.folder
        app.exit()
    records = read_results(folder)
    assert len(records) == 8
    assert sorted((r["index"], r["status"], r["result"]) for r in records) == [
        (x, "ok", x * x) for x in range(8)
    ]
    assert shared(app).closed.is_set() and not shared(app).close_errors


async def test_output_lines_show_while_the_tasks_still_run(
    cluster: ClientSession, runs_dir: str, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    catalog = catalog_from(
        tmp_path,
        f"""
        [jobs.blocking]
        function = "tasks.py:wait_for_flag"
        inputs = {{ range = [0, 4] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"tasks.py": BLOCKING_TASKS},
    )
    app = make_app(cluster, catalog, runs_dir)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await submit_from_picker(pilot, "blocking")

            def waiting_lines() -> list[str]:
                return [line for line in output_lines(app) if re.search(r"task \d waiting", line)]

            await wait_for(pilot, waiting_lines, "a 'task N waiting' line in the output")
            snapshot = monitor_of(app).snapshot
            assert snapshot is not None and snapshot.phase is not Phase.FINISHED
            assert snapshot.count(TaskState.RUNNING) >= 1 and snapshot.count(TaskState.OK) == 0
            assert not flag.exists()
            flag.touch()
            await wait_for(pilot, lambda: finished(app), "the job FINISHED after the flag")
            snapshot = monitor_of(app).snapshot
            assert snapshot is not None and snapshot.succeeded
            assert sorted(re.search(r"task (\d)", s)[1] for s in waiting_lines()) == list("0123")
            app.exit()
    finally:
        flag.touch()


@pytest.mark.parametrize("how", ["quit-key", "app-exit"])
async def test_quitting_with_a_job_running_stops_the_polling_thread_at_once(
    cluster: ClientSession,
    runs_dir: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """`q` answered with "leave it running" (the user's way), or `app.exit()` (what SIGHUP does):
    the poll loop has returned by the time the app has, although the job goes on."""
    polls: list[dict] = []
    real_poll_job = monitor_module.poll_job

    def recording_poll_job(*args: object, **kwargs: object) -> int:
        entry: dict = {"thread": threading.current_thread(), "ended": None}
        polls.append(entry)
        try:
            return real_poll_job(*args, **kwargs)
        finally:
            entry["ended"] = time.monotonic()

    monkeypatch.setattr(monitor_module, "poll_job", recording_poll_job)
    flag = tmp_path / "go"
    catalog = catalog_from(
        tmp_path,
        f"""
        [jobs.blocking]
        function = "tasks.py:wait_for_flag"
        inputs = {{ range = [0, 4] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"tasks.py": BLOCKING_TASKS},
    )
    app = make_app(cluster, catalog, runs_dir)
    try:
        async with app.run_test(size=SIZE) as pilot:
            monitor = await submit_from_picker(pilot, "blocking")
            await wait_for(
                pilot,
                lambda: (
                    monitor.snapshot is not None and monitor.snapshot.count(TaskState.RUNNING) == 2
                ),
                "both engines running a task",
            )
            assert polls and polls[-1]["ended"] is None, "the poll loop should be running"
            job = monitor.job
            assert job is not None
            if how == "quit-key":
                await pilot.press("q")
                await wait_for(pilot, lambda: app.screen is not monitor, "the quit dialog")
                # A cluster ippmon did not start: leave the tasks running, cancel them, or stay.
                assert isinstance(app.screen, LeaveScreen), app.screen
                asked = time.monotonic()
                await pilot.press("l")
            else:
                asked = time.monotonic()
                app.exit()
        returned = time.monotonic()
        ended = [entry["ended"] for entry in polls]
        assert None not in ended, "a poll loop was still running when the app had exited"
        stopped_after = max(ended) - asked
        print(
            f"\n[{how}] poll loop returned {stopped_after * 1000:.0f} ms after the quit; "
            f"run_test returned after {(returned - asked) * 1000:.0f} ms"
        )
        still_polling = [
            ident for ident, frame in sys._current_frames().items() if _in_poll_job(frame)
        ]
        assert not still_polling, still_polling
        assert shared(app).closed.is_set() and not shared(app).close_errors
        run = job.record.read_run()
        assert run["state"] == "detached", run["state"]
    finally:
        flag.touch()


def _in_poll_job(frame: FrameType | None) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_name == "poll_job" and code.co_filename.endswith("poller.py"):
            return True
        frame = frame.f_back
    return False


async def test_cancel_from_the_keyboard_then_the_next_job_runs(
    cluster: ClientSession, runs_dir: str, tmp_path: Path
) -> None:
    catalog = catalog_from(
        tmp_path,
        """
        [jobs.many]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 40] }
        kwargs = { delay = 1.0, steps = 1 }

        [jobs.after]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 4] }
        kwargs = { delay = 0.2, steps = 1 }
        """,
    )
    app = make_app(cluster, catalog, runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = await submit_from_picker(pilot, "many")
        await wait_for(
            pilot,
            lambda: monitor.snapshot is not None and monitor.snapshot.count(TaskState.RUNNING) == 2,
            "both engines running a task",
        )
        await pilot.press("c")
        await wait_for(pilot, lambda: app.screen is not monitor, "the cancel dialog")
        assert type(app.screen).__name__ == "CancelConfirm", app.screen
        cancelled_at = time.monotonic()
        await pilot.press("y")
        await wait_for(pilot, lambda: finished(app), "the cancelled job FINISHED", timeout=10)
        took = time.monotonic() - cancelled_at
        print(f"\ncancel → FINISHED in {took:.2f} s")
        snapshot = monitor.snapshot
        assert snapshot is not None
        ok, cancelled = snapshot.count(TaskState.OK), snapshot.count(TaskState.CANCELLED)
        assert cancelled >= 30 and ok + cancelled == 40, snapshot.counts
        assert snapshot.count(TaskState.ERROR) == 0 and snapshot.count(TaskState.LOST) == 0
        assert not snapshot.succeeded
        assert monitor.job is not None
        cancelled_run = monitor.job.record.folder
        title = monitor.query_one(SummaryPanel).border_title
        assert title == f"finished · {ok} of 40 tasks ok", title

        await pilot.press("escape")  # back to the picker, then the next job
        after = await submit_from_picker(pilot, "after")
        assert after is not monitor
        await wait_for(pilot, lambda: finished(app), "the next job FINISHED")
        snapshot = after.snapshot
        assert snapshot is not None and snapshot.succeeded and snapshot.count(TaskState.OK) == 4
        app.exit()
    # (Also complete at FINISHED, while the app runs: see
    # test_the_run_record_is_complete_while_the_finished_job_is_shown.)
    records = read_results(cancelled_run)
    assert len(records) == 40
    assert sum(r["status"] == "cancelled" for r in records) == cancelled
    assert all(r["result"] == r["index"] ** 2 for r in records if r["status"] == "ok")


async def test_resubmit_from_the_keyboard_runs_attempt_2_without_failures(
    cluster: ClientSession, runs_dir: str, tmp_path: Path
) -> None:
    marker = tmp_path / "seen"
    marker.mkdir()
    catalog = catalog_from(
        tmp_path,
        f"""
        [jobs.transient]
        function = "tasks.py:fail_once"
        inputs = {{ range = [0, 8] }}
        kwargs = {{ folder = "{marker}" }}
        """,
        {"tasks.py": FAIL_ONCE},
    )
    app = make_app(cluster, catalog, runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = await submit_from_picker(pilot, "transient")
        await wait_for(pilot, lambda: finished(app), "attempt 1 FINISHED")
        snapshot = monitor.snapshot
        assert snapshot is not None
        assert snapshot.count(TaskState.ERROR) == 3 and snapshot.count(TaskState.OK) == 5
        assert monitor.check_action("resubmit", ()) is True
        await pilot.press("r")
        await wait_for(pilot, lambda: finished(app, attempt=2), "attempt 2 FINISHED")
        await pilot.pause()
        snapshot = monitor.snapshot
        assert snapshot is not None and snapshot.succeeded, snapshot.counts
        assert snapshot.count(TaskState.OK) == 8 and snapshot.count(TaskState.ERROR) == 0
        assert monitor.query_one(SummaryPanel).border_title == "finished · all 8 tasks ok"
        assert monitor.check_action("resubmit", ()) is None  # nothing left to resubmit
        assert monitor.job is not None
        folder = monitor.job.record.folder
        app.exit()
    records = read_results(folder)
    assert len(records) == 8 + 3
    second = sorted((r["index"], r["status"], r["result"]) for r in records if r["attempt"] == 2)
    assert second == [(x, "ok", x * 10) for x in (0, 3, 6)]


async def test_resubmit_follows_attempt_2_when_sending_is_slow(
    cluster: ClientSession,
    runs_dir: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As `test_resubmit_from_the_keyboard...`, with the sender thread slowed by 0.5 s (as when
    a big function is shipped by value, or the controller is slow to take the messages).

    Regression: the monitor used to draw job.snapshot() before attempt 2's chunks were
    registered; the tracker still said attempt 1 FINISHED, so the monitor never polled again
    and stayed on attempt 1 (fixed in d6173ab: `Tracker.begin_submission`; the monitor now
    polls after every resubmit)."""
    real_send = Job._send

    def slow_send(self: Job, indices: list[int], attempt: int) -> None:
        if attempt > 1:
            threading.Event().wait(0.5)
        real_send(self, indices, attempt)

    monkeypatch.setattr(Job, "_send", slow_send)
    marker = tmp_path / "seen"
    marker.mkdir()
    catalog = catalog_from(
        tmp_path,
        f"""
        [jobs.transient]
        function = "tasks.py:fail_once"
        inputs = {{ range = [0, 8] }}
        kwargs = {{ folder = "{marker}" }}
        """,
        {"tasks.py": FAIL_ONCE},
    )
    app = make_app(cluster, catalog, runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = await submit_from_picker(pilot, "transient")
        await wait_for(pilot, lambda: finished(app), "attempt 1 FINISHED")
        await pilot.press("r")
        await wait_for(pilot, lambda: finished(app, attempt=2), "attempt 2 FINISHED")
        snapshot = monitor.snapshot
        assert snapshot is not None and snapshot.succeeded, snapshot.counts
        app.exit()


async def test_the_run_record_is_complete_while_the_finished_job_is_shown(
    cluster: ClientSession, runs_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engines' "output complete" notices are dropped, as if they never came: every
    finished chunk then waits OUTPUT_WAIT_S (1 s here) before it is recorded, saying so.

    Regression: the monitor's poller stops at Phase.FINISHED, which the tracker used to report
    once every task was done but before the last chunks were recorded; their results.jsonl
    lines and run.json's "finished" then waited until the app exited."""
    monkeypatch.setattr(Job, "_on_output", lambda self, key, future: None)
    monkeypatch.setattr(tracker_module, "OUTPUT_WAIT_S", 1.0)
    catalog = catalog_from(
        tmp_path,
        """
        [jobs.small]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 4] }
        kwargs = { delay = 0.1, steps = 1 }
        """,
    )
    app = make_app(cluster, catalog, runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        monitor = await submit_from_picker(pilot, "small")
        await wait_for(pilot, lambda: finished(app), "the job FINISHED")
        job = monitor.job
        assert job is not None
        folder = job.record.folder

        def recorded() -> bool:
            run = json.loads((folder / "run.json").read_text())
            return len(read_results(folder)) == 4 and run["state"] == "finished"

        assert recorded(), "FINISHED on screen, but the run record is not complete"
        notes = {line.get("output_incomplete") for line in read_results(folder)}
        assert notes == {"output may be incomplete: its end had not arrived 1 s after the result"}
        snapshot = monitor.snapshot
        assert snapshot is not None and snapshot.succeeded
        app.exit()
