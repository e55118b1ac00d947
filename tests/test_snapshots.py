"""What a person sees, pinned: every screen of ippmon at 80×24 and 160×48, on recorded state.

Snapshots run the real app on `ui_fakes` (fixed clock, no animation, no polling thread), so each
SVG under `__snapshots__/` is one exact picture. Accept a deliberate change with
`pytest tests/test_snapshots.py --snapshot-update`, after looking at the new pictures.
The pilot tests below pin the behaviour behind the keys.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import pytest
import ui_fakes as fx
from textual.pilot import Pilot
from textual.widgets import Label, Log

from ippmon.model import OutputLine, Phase
from ippmon.ui.messages import JobUpdate
from ippmon.ui.poller import poll_job
from ippmon.ui.screens.confirm import CancelConfirm, ResubmitAllConfirm
from ippmon.ui.screens.connecting import ConnectingScreen
from ippmon.ui.screens.job_picker import JobPickerScreen
from ippmon.ui.screens.leave import LeaveScreen
from ippmon.ui.screens.monitor import MonitorScreen
from ippmon.ui.screens.runs import RunsScreen
from ippmon.ui.screens.tasks import TasksScreen
from ippmon.ui.widgets.engine_panel import EngineTable
from ippmon.ui.widgets.output_log import OutputLog

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


# -- the states -------------------------------------------------------------------------------


@dataclass
class State:
    """An app on recorded state plus what to do before the picture is taken."""

    build: Callable[[], fx.IppmonApp]
    press: tuple[str, ...] = ()
    before: Callable[[Pilot], Awaitable[None]] = fx.settle
    gate: threading.Event | None = field(default=None)


def connecting() -> State:
    gate = threading.Event()
    backend = fx.FakeBackend(target=True, gate=gate)

    def build() -> fx.IppmonApp:
        app = fx.make_app(backend)
        fx.release_on_exit(app, gate)
        return app

    async def before(pilot: Pilot) -> None:
        await fx.until(pilot, backend.entered.is_set)
        await pilot.pause()

    return State(build, before=before, gate=gate)


def closing() -> State:
    """`ippmon --local 2`, quit: stopping the cluster ippmon started takes a while."""
    gate = threading.Event()
    session = fx.FakeSession(gate=gate)

    def build() -> fx.IppmonApp:
        app = fx.make_app(fx.FakeBackend(session), local_engines=2)
        fx.release_on_exit(app, gate)
        return app

    async def before(pilot: Pilot) -> None:
        await fx.settle(pilot)
        await pilot.press("q")
        await fx.until(pilot, session.closing.is_set)
        await pilot.pause()

    return State(build, before=before, gate=gate)


def pressing(*keys: str) -> Callable[[Pilot], Awaitable[None]]:
    """Settle, press `keys`, settle again (a key may start a worker or open a screen)."""

    async def before(pilot: Pilot) -> None:
        await fx.settle(pilot)
        await pilot.press(*keys)
        await fx.settle(pilot)

    return before


def local_job_app() -> fx.IppmonApp:
    """`ippmon --local 2 --job squares`: the cluster is ippmon's own, and stops with it."""
    session = fx.FakeSession(lambda spec: fx.FakeJob(fx.mid_run(), fx.output_lines()))
    return fx.make_app(fx.FakeBackend(session), job_name="squares", local_engines=2)


STATES: dict[str, Callable[[], State]] = {
    "job_picker": lambda: State(lambda: fx.make_app(fx.FakeBackend(target=True))),
    "job_picker_file_error": lambda: State(
        lambda: fx.make_app(fx.FakeBackend(target=True), catalog_=fx.catalog(file_error=True))
    ),
    "cluster_picker": lambda: State(lambda: fx.make_app(fx.FakeBackend(choices=fx.CHOICES))),
    "no_cluster": lambda: State(lambda: fx.make_app(fx.FakeBackend(choices=[]))),
    "connecting": connecting,
    "connect_failed": lambda: State(
        lambda: fx.make_app(fx.FakeBackend(target=True, error=fx.CONNECT_ERROR))
    ),
    "submitting": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.submitting(), fx.output_lines(12)))
    ),
    "monitor_mid_run": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.mid_run(), fx.output_lines()))
    ),
    "monitor_64_engines": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.many_engines(), fx.output_lines(engines=64)))
    ),
    "finished_with_failures": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.finished(), fx.output_lines()))
    ),
    "engine_gone_task_lost": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.engine_gone(), fx.engine_gone_lines()))
    ),
    "controller_gone": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.controller_gone(), fx.output_lines()))
    ),
    "attached": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.detached_run(), fx.output_lines()), attached=True)
    ),
    "help": lambda: State(lambda: fx.make_app(fx.FakeBackend(target=True)), press=("?",)),
    "leave_on_quit": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.mid_run(), fx.output_lines())), press=("q",)
    ),
    "quit_confirm_local_cluster": lambda: State(local_job_app, press=("q",)),
    "cancel_confirm": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.mid_run(), fx.output_lines())), press=("c",)
    ),
    "resubmit_all_confirm": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.finished(), fx.output_lines())), press=("R",)
    ),
    "resubmitted_attempt_2": lambda: State(
        lambda: fx.watch_app(fx.FakeJob(fx.resubmitted(), fx.output_lines()))
    ),
    "runs_from_the_picker": lambda: State(
        lambda: fx.make_app(fx.FakeBackend(target=True)), before=pressing("a")
    ),
    "closing_local_cluster": closing,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", STATES)
def test_screen(snap_compare, name: str, size: str) -> None:
    state = STATES[name]()
    assert snap_compare(
        state.build(), press=state.press, terminal_size=SIZES[size], run_before=state.before
    )


# -- messages and the poller ------------------------------------------------------------------


def lines(first: int, last: int) -> list[OutputLine]:
    return [OutputLine(seq, seq, 1, "stdout", f"line {seq}") for seq in range(first, last + 1)]


def test_a_replaced_update_hands_its_lines_to_the_newer_one() -> None:
    older = JobUpdate(fx.mid_run(), lines(1, 3), dropped=2)
    newer = JobUpdate(fx.mid_run(), lines(4, 5), dropped=1)
    assert older.can_replace(newer)
    assert [line.seq for line in newer.lines] == [1, 2, 3, 4, 5]
    assert newer.dropped == 3
    assert older.can_replace(newer)  # asking again changes nothing
    assert [line.seq for line in newer.lines] == [1, 2, 3, 4, 5]
    assert newer.dropped == 3


def test_merging_works_whichever_message_is_asked() -> None:
    a, b, c = (JobUpdate(fx.mid_run(), lines(i * 10, i * 10 + 1)) for i in (1, 2, 3))
    assert b.can_replace(a) and c.can_replace(b)
    assert [line.seq for line in c.lines] == [10, 11, 20, 21, 30, 31]


def test_an_update_does_not_replace_other_messages() -> None:
    from ippmon.ui.messages import PollFailed

    assert not JobUpdate(fx.mid_run()).can_replace(PollFailed("x"))


def test_poller_stops_when_the_job_finishes_and_keeps_every_line() -> None:
    job = fx.FakeJob(fx.mid_run(), fx.output_lines(5), script=[fx.mid_run(), fx.finished()])
    posted: list[object] = []
    last = poll_job(job, posted.append, threading.Event(), interval=0)
    assert job.polls == 2
    assert isinstance(posted[-1], JobUpdate) and posted[-1].snapshot.phase is Phase.FINISHED
    assert [line.seq for m in posted for line in m.lines] == [1, 2, 3, 4, 5]
    assert last == 5


def test_poller_reports_a_failing_poll_and_goes_on() -> None:
    class Broken(fx.FakeJob):
        def poll(self):  # noqa: ANN202
            self.polls += 1
            if self.polls == 1:
                raise OSError("controller unreachable\nmore detail")
            return fx.finished()

    posted: list[object] = []
    poll_job(Broken(fx.mid_run()), posted.append, threading.Event(), interval=0)
    assert [type(m).__name__ for m in posted] == ["PollFailed", "JobUpdate"]
    assert posted[0].error == "OSError: controller unreachable"


# -- the app, driven by keys ------------------------------------------------------------------


async def test_enter_on_the_picker_submits_the_highlighted_spec_never_a_broken_one() -> None:
    backend = fx.FakeBackend(target=True)
    app = fx.make_app(backend)
    async with app.run_test(size=(100, 30)) as pilot:
        await fx.settle(pilot)
        picker = app.screen
        assert isinstance(picker, JobPickerScreen)
        titles = [command.title for command in app.get_system_commands(picker)]
        assert "Submit job: squares" in titles and "Submit job: broken" not in titles
        await pilot.press("j")
        assert picker.highlighted_spec().name == "flaky"
        await pilot.press("down", "down", "down", "down")  # the broken one is skipped
        assert picker.highlighted_spec().name == "sweep"
        await pilot.press("home")
        assert picker.highlighted_spec().name == "squares"
        await pilot.press("end", "enter")
        await fx.settle(pilot)
        assert [spec.name for spec, _ in backend.session.submitted] == ["sweep"]
        assert backend.session.submitted[0][1] == "/tmp/ippmon-test-runs"
        assert isinstance(app.screen, MonitorScreen)


async def test_quit_during_a_job_asks_what_becomes_of_its_tasks_and_leave_closes_it() -> None:
    job = fx.FakeJob(fx.mid_run(), fx.output_lines())
    session = fx.FakeSession(lambda spec: job)
    app = fx.make_app(fx.FakeBackend(session), job_name="squares")
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        monitor = app.screen
        titles = [command.title for command in app.get_system_commands(monitor)]
        assert {"Cancel job", "Show tasks", "Toggle follow", "Help", "Quit"} <= set(titles)
        assert {"Resubmit failed tasks", "Resubmit all tasks"} <= set(titles)  # some failed
        assert "Back to the jobs" not in titles
        await pilot.press("t")
        await fx.settle(pilot)
        assert isinstance(app.screen, TasksScreen) and app.screen.job is job
        await pilot.press("escape")
        assert app.screen is monitor
        await pilot.press("escape")  # back is greyed out while the job runs
        assert app.screen is monitor
        await pilot.press("q")
        dialog = app.screen
        assert isinstance(dialog, LeaveScreen) and dialog.run_id == fx.RUN_ID
        assert dialog.remaining == 42
        await pilot.press("escape")  # stay
        assert app.screen is monitor
        await pilot.press("q", "l")  # leave the tasks running
        await fx.settle(pilot)
    assert app.return_value == 1  # tasks were left running
    assert job.calls == ["close"]  # the run record says detached; nothing was cancelled
    assert session.closed and session.jobs_closed_first


async def test_quit_after_a_job_with_failures_returns_1() -> None:
    session = fx.FakeSession(lambda spec: fx.FakeJob(fx.finished()))
    app = fx.make_app(fx.FakeBackend(session), job_name="flaky")
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("q")
    assert app.return_value == 1
    assert session.closed and session.jobs_closed_first


async def test_escape_after_the_job_returns_to_the_picker_and_quit_returns_0() -> None:
    session = fx.FakeSession(lambda spec: fx.FakeJob(fx.succeeded()))
    app = fx.make_app(fx.FakeBackend(session), job_name="squares")
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        assert app.screen.check_action("resubmit", ()) is None  # nothing failed
        assert app.screen.check_action("resubmit_all", ()) is True  # all can run again
        await pilot.press("escape")
        assert isinstance(app.screen, JobPickerScreen)
        await pilot.press("q")
    assert app.return_value == 0
    assert session.closed and session.jobs_closed_first


async def test_cancel_asks_first_and_cancels_off_the_ui_loop_also_when_quitting() -> None:
    job = fx.FakeJob(fx.submitting(), fx.output_lines(12))
    app = fx.monitor_app(job)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        screen = app.screen
        assert screen.check_action("resubmit", ()) is None  # still sending: not yet
        assert screen.check_action("resubmit_all", ()) is None
        await pilot.press("c")
        assert isinstance(app.screen, CancelConfirm)
        await pilot.press("n")
        assert app.screen is screen and job.calls == []
        await pilot.press("c", "y")
        await fx.settle(pilot)
        assert job.calls == ["cancel"]
        await pilot.press("q", "c")  # quit: cancel the tasks, then quit
        await fx.settle(pilot)
    assert job.calls == ["cancel", "cancel", "close"]
    assert threading.main_thread() not in job.cancel_threads
    assert app.return_value == 1


async def test_no_line_is_lost_when_updates_replace_each_other_and_f_pauses_following() -> None:
    app = fx.monitor_app(fx.FakeJob(fx.mid_run()))
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        screen = app.screen
        for i in range(200):  # queued faster than handled: most replace their predecessor
            screen.post_message(JobUpdate(fx.mid_run(), lines(i * 3 + 1, i * 3 + 3)))
        await pilot.pause()
        log = screen.query_one(OutputLog)
        assert log.line_count == 600
        assert log.lines[-1].endswith("line 600")
        assert log.follow and log.scroll_y == log.max_scroll_y
        await pilot.press("f")
        assert not log.follow and "paused" in str(log.border_subtitle)
        await pilot.press("k", "k")  # scrolled back, it stays put while paused
        assert log.scroll_y == log.max_scroll_y - 2
        await pilot.press("f")
        await pilot.pause()
        assert log.follow and log.scroll_y == log.max_scroll_y


async def test_the_engine_table_scrolls_with_its_cursor_and_redraws_only_changed_rows() -> None:
    snapshot = fx.many_engines(64)
    app = fx.watch_app(fx.FakeJob(snapshot))
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        table = app.screen.query_one(EngineTable)
        table.focus()
        await pilot.press(*["j"] * 30)
        assert table.cursor_row == 30
        top = table.scroll_offset.y
        assert 0 < top <= 30 < top + table.size.height - 1  # the cursor row is on screen
        await pilot.press("end")
        assert table.cursor_row == 63 and table.scroll_y == table.max_scroll_y
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_y == 0

        refreshed: list[object] = []
        table.refresh_line = refreshed.append  # type: ignore[method-assign]
        engines = list(snapshot.engines)
        engines[5] = replace(engines[5], tasks_done=13, last_line="frame 1005: pass 3")
        table.apply(tuple(engines))
        assert refreshed == [6]  # row 5 is line 6, under the header
        assert table.row_texts(5) == ("▶ e5", "#1005", "0.5s", "13", "92%", "frame 1005: pass 3")


async def test_an_update_that_changes_nothing_lays_nothing_out_and_redraws_nothing() -> None:
    app = fx.watch_app(fx.FakeJob(fx.mid_run(), fx.output_lines()))
    async with app.run_test(size=(100, 30)) as pilot:
        await fx.settle(pilot)
        screen = app.screen
        screen.post_message(JobUpdate(fx.mid_run(), []))
        await pilot.pause()
        await pilot.pause()
        dirty: list[tuple[str, bool]] = []
        for widget in screen.query("*"):
            original = widget.refresh

            def spy(*regions, _widget=widget, _refresh=original, **kwargs):  # noqa: ANN002, ANN003, ANN202
                dirty.append((type(_widget).__name__, bool(kwargs.get("layout"))))
                return _refresh(*regions, **kwargs)

            widget.refresh = spy  # type: ignore[method-assign]
        screen.post_message(JobUpdate(fx.mid_run(), []))
        await pilot.pause()
        assert dirty == []
        more = fx.output_lines(3, start_task=90)
        more = [replace(line, seq=100 + line.seq) for line in more]
        screen.post_message(JobUpdate(fx.mid_run(), more))
        await pilot.pause()
        assert not any(layout for _, layout in dirty), dirty  # new lines: no layout pass
        assert {name for name, _ in dirty} <= {"OutputLog", "ScrollBar"}, dirty


async def test_connection_failure_offers_retry_and_quit_returns_3() -> None:
    backend = fx.FakeBackend(target=True, error=fx.CONNECT_ERROR)
    app = fx.make_app(backend)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        assert isinstance(app.screen, ConnectingScreen) and app.screen.failed
        backend.error = None
        await pilot.press("r")
        await fx.settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
    assert [name for name, _ in backend.calls] == ["connect", "connect"]
    failing = fx.make_app(fx.FakeBackend(target=True, error=fx.CONNECT_ERROR))
    async with failing.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        await pilot.press("q")
    assert failing.return_value == 3


async def test_no_cluster_starts_a_local_one_with_the_chosen_engine_count() -> None:
    backend = fx.FakeBackend(choices=[])
    app = fx.make_app(backend)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        await pilot.press("+", "+", "enter")
        await fx.settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
    assert backend.calls == [("discover", None), ("start_local", 4)]


def test_the_poll_thread_ends_as_soon_as_the_app_exits() -> None:
    """With a 60 s poll interval, only a poller that waits on the cancel event lets asyncio.run
    return (it joins the worker threads) in well under a second."""
    job = fx.FakeJob(fx.mid_run(), fx.output_lines())

    async def scenario() -> None:
        app = fx.monitor_app(job, poll_interval=60.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await fx.until(pilot, job.polled.is_set)
            await pilot.press("q", "l")

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 10
    (thread,) = job.poll_threads
    assert not thread.is_alive()
    assert job.polls == 1


async def test_the_poller_drives_the_monitor_to_the_end_of_the_job() -> None:
    job = fx.FakeJob(
        fx.mid_run(), fx.output_lines(), script=[fx.mid_run(), fx.mid_run(), fx.finished()]
    )
    app = fx.monitor_app(job, poll_interval=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.until(pilot, lambda: app.screen.phase is Phase.FINISHED)
        await fx.settle(pilot)
        assert job.polls == 3
        log = app.screen.query_one(Log)
        assert log.line_count == 40  # read once, never twice
        assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y  # followed to the end
        assert app.screen.check_action("back", ()) is True


async def test_a_job_named_on_the_command_line_that_is_broken_stays_on_the_picker() -> None:
    backend = fx.FakeBackend(target=True)
    app = fx.make_app(backend, job_name="broken")
    told: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: (told.append(message), notify(message, **kw))[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
        assert backend.session.submitted == []
        assert any("numpyy" in text for text in told), told


async def test_an_app_for_one_job_watches_it_and_leaves_after_it() -> None:
    job = fx.FakeJob(fx.succeeded(), fx.output_lines(5))
    app = fx.IppmonApp.for_job(job, clock=fx.fixed_clock, poll_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("escape")
        await fx.settle(pilot)
    assert app.return_value == 0


async def test_a_on_the_picker_attaches_to_the_chosen_run_and_watches_it() -> None:
    run_id = fx.ATTACHED_RUN_ID
    job = fx.FakeJob(fx.detached_run(), fx.output_lines())
    runs = fx.FakeRuns(jobs={run_id: job})
    app = fx.make_app(fx.FakeBackend(target=True), runs=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        await pilot.press("a")
        await fx.settle(pilot)
        assert isinstance(app.screen, RunsScreen) and runs.listed == [fx.RUNS_DIR]
        await pilot.press("j", "enter")  # the newest one has no record: cannot attach
        await fx.settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
        assert "Cannot attach" in {n.title for n in app._notifications}
        await pilot.press("a")
        await fx.settle(pilot)
        await pilot.press("j", "j", "enter")
        await fx.settle(pilot)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.job is job and monitor.attached
        assert "attached" in str(monitor.query_one("#phase-detail", Label).render())
        folder, client, info = runs.attached[-1]
        assert folder.name == run_id and client is None and info == fx.CLUSTER
        assert threading.main_thread() not in runs.threads
        await pilot.press("q", "l")
        await fx.settle(pilot)
    assert job.closed and not job.cancelled


async def test_r_then_big_r_resubmit_and_the_same_monitor_watches_each_attempt() -> None:
    job = fx.FakeJob(fx.finished(), fx.output_lines(), retry=[7, 12, 21, 28, 35])
    app = fx.monitor_app(job)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.settle(pilot)
        screen = app.screen
        assert screen.check_action("cancel", ()) is None  # greyed out once finished
        await pilot.press("c")
        assert app.screen is screen
        assert screen.check_action("resubmit", ()) is True
        assert job.retryable_calls == 0  # the key is decided from the snapshot's counts
        await pilot.press("r")
        await fx.settle(pilot)
        assert job.resubmitted == [7, 12, 21, 28, 35]  # exactly what job.retryable() said
        assert threading.main_thread() not in job.submit_threads
        assert screen.phase is Phase.RUNNING and not screen.has_class("-finished")
        assert "attempt 2" in str(screen.query_one("#phase-detail", Label).render())
        assert screen.check_action("resubmit", ()) is None  # none failed since
        assert screen.check_action("cancel", ()) is True
        await pilot.press("r")
        await fx.settle(pilot)
        assert job.calls == ["submit"]
        await pilot.press("R")
        assert isinstance(app.screen, ResubmitAllConfirm)
        await pilot.press("n")
        assert app.screen is screen and job.calls == ["submit"]
        await pilot.press("R", "y")
        await fx.settle(pilot)
        assert job.resubmitted == list(range(50))
        assert app.screen is screen and screen.job is job and screen.snapshot.attempt == 3
        await pilot.press("x")
        await fx.settle(pilot)
        assert job.exported == "csv"
        assert threading.main_thread() not in job.export_threads
        told = [n.message for n in app._notifications]
        assert f"results written to {fx.RUNS_DIR}/{fx.RUN_ID}/results.csv" in told


async def test_after_r_the_monitor_follows_the_new_attempt_before_the_job_reports_it() -> None:
    """`job.submit` returns before the sender registers attempt 2: until then the job still
    reports attempt 1 FINISHED, and the monitor must go on polling anyway."""
    job = fx.FakeJob(fx.finished(), lag=True)
    app = fx.monitor_app(job, poll_interval=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        await fx.until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        screen = app.screen
        await fx.until(pilot, lambda: screen.phase is Phase.FINISHED)
        await pilot.press("r")
        await fx.until(pilot, lambda: job.polls > 0)
        await fx.until(pilot, lambda: screen.phase is Phase.RUNNING)
        assert screen.snapshot.attempt == 2
        await pilot.press("q", "l")
