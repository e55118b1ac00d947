"""What a person sees, pinned: every screen of ippmon at 80×24 and 160×48, on recorded state.

Snapshots run the real app on the `fakes` (fixed clock, no animation, no polling thread), so each
SVG under `__snapshots__/` is one exact picture. Accept a deliberate change with
`pytest tests/test_app_screens.py --snapshot-update`, after looking at the new pictures.
The pilot tests below pin the behaviour behind the keys.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import pytest
from fakes import recorded as rec
from fakes.backends import FakeBackend, FakeJob, FakeSession
from fakes.pilot import make_app, monitor_app, release_on_exit, settle, until, watch_app
from textual.content import Content
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Label, Log

from ippmon.model import OutputBatch, OutputLine, Phase
from ippmon.ui import IppmonApp
from ippmon.ui.messages import JobUpdate
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

    build: Callable[[], IppmonApp]
    press: tuple[str, ...] = ()
    before: Callable[[Pilot], Awaitable[None]] = settle
    gate: threading.Event | None = field(default=None)


def connecting() -> State:
    gate = threading.Event()
    backend = FakeBackend(target=True, gate=gate)

    def build() -> IppmonApp:
        app = make_app(backend)
        release_on_exit(app, gate)
        return app

    async def before(pilot: Pilot) -> None:
        await until(pilot, backend.entered.is_set)
        await pilot.pause()

    return State(build, before=before, gate=gate)


def closing() -> State:
    """`ippmon --local 2`, quit: stopping the cluster ippmon started takes a while."""
    gate = threading.Event()
    session = FakeSession(gate=gate)

    def build() -> IppmonApp:
        app = make_app(FakeBackend(session), local_engines=2)
        release_on_exit(app, gate)
        return app

    async def before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("q")
        await until(pilot, session.closing.is_set)
        await pilot.pause()

    return State(build, before=before, gate=gate)


def pressing(*keys: str) -> Callable[[Pilot], Awaitable[None]]:
    """Settle, press `keys`, settle again (a key may start a worker or open a screen)."""

    async def before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return before


def local_job_app() -> IppmonApp:
    """`ippmon --local 2 --job squares`: the cluster is ippmon's own, and stops with it."""
    session = FakeSession(lambda spec: FakeJob(rec.mid_run(), rec.output_lines()))
    return make_app(FakeBackend(session), job_name="squares", local_engines=2)


STATES: dict[str, Callable[[], State]] = {
    "job_picker": lambda: State(lambda: make_app(FakeBackend(target=True))),
    "job_picker_file_error": lambda: State(
        lambda: make_app(FakeBackend(target=True), catalog_=rec.catalog(file_error=True))
    ),
    "cluster_picker": lambda: State(lambda: make_app(FakeBackend(choices=rec.CHOICES))),
    "no_cluster": lambda: State(lambda: make_app(FakeBackend(choices=[]))),
    "connecting": connecting,
    "connect_failed": lambda: State(
        lambda: make_app(FakeBackend(target=True, error=rec.CONNECT_ERROR))
    ),
    "submitting": lambda: State(lambda: watch_app(FakeJob(rec.submitting(), rec.output_lines(12)))),
    "monitor_mid_run": lambda: State(lambda: watch_app(FakeJob(rec.mid_run(), rec.output_lines()))),
    "monitor_64_engines": lambda: State(
        lambda: watch_app(FakeJob(rec.many_engines(), rec.output_lines(engines=64)))
    ),
    "finished_with_failures": lambda: State(
        lambda: watch_app(FakeJob(rec.finished(), rec.output_lines()))
    ),
    "engine_gone_task_lost": lambda: State(
        lambda: watch_app(FakeJob(rec.engine_gone(), rec.engine_gone_lines()))
    ),
    "controller_gone": lambda: State(
        lambda: watch_app(FakeJob(rec.controller_gone(), rec.output_lines()))
    ),
    "attached": lambda: State(
        lambda: watch_app(FakeJob(rec.detached_run(), rec.output_lines()), attached=True)
    ),
    "help": lambda: State(lambda: make_app(FakeBackend(target=True)), press=("?",)),
    "leave_on_quit": lambda: State(
        lambda: watch_app(FakeJob(rec.mid_run(), rec.output_lines())), press=("q",)
    ),
    "quit_confirm_local_cluster": lambda: State(local_job_app, press=("q",)),
    "cancel_confirm": lambda: State(
        lambda: watch_app(FakeJob(rec.mid_run(), rec.output_lines())), press=("c",)
    ),
    "resubmit_all_confirm": lambda: State(
        lambda: watch_app(FakeJob(rec.finished(), rec.output_lines())), press=("R",)
    ),
    "resubmitted_attempt_2": lambda: State(
        lambda: watch_app(FakeJob(rec.resubmitted(), rec.output_lines()))
    ),
    "runs_from_the_picker": lambda: State(
        lambda: make_app(FakeBackend(target=True)), before=pressing("a")
    ),
    "closing_local_cluster": closing,
    "engines_joined": lambda: State(
        lambda: watch_app(FakeJob(rec.engines_joined(), rec.output_lines(12, engines=3)))
    ),
    "engine_left": lambda: State(
        lambda: watch_app(FakeJob(rec.engine_left(), rec.output_lines(12, engines=2)))
    ),
    "finished_with_advice": lambda: State(
        lambda: monitor_app(FakeJob(rec.finished_with_advice()), job_name="squares")
    ),
    "nasty_output": lambda: State(
        lambda: watch_app(FakeJob(rec.nasty_mid_run(), rec.nasty_output_lines()))
    ),
    "straggler_flagged": lambda: State(
        lambda: watch_app(FakeJob(rec.stragglers_running(), rec.output_lines(12, engines=2)))
    ),
    "finished_with_durations": lambda: State(
        lambda: watch_app(FakeJob(rec.succeeded(), rec.output_lines()))
    ),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", STATES)
def test_screen(snap_compare, name: str, size: str) -> None:
    state = STATES[name]()
    assert snap_compare(
        state.build(), press=state.press, terminal_size=SIZES[size], run_before=state.before
    )


# -- the app, driven by keys ------------------------------------------------------------------


def lines(first: int, last: int) -> OutputBatch:
    made = [OutputLine(seq, seq, 1, "stdout", f"line {seq}") for seq in range(first, last + 1)]
    return OutputBatch.of(made, 0, first - 1)


async def test_enter_on_the_picker_submits_the_highlighted_spec_never_a_broken_one() -> None:
    backend = FakeBackend(target=True)
    app = make_app(backend)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
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
        await pilot.press("G")  # the list keys: g and G as home and end
        assert picker.highlighted_spec().name == "sweep"
        await pilot.press("g")
        assert picker.highlighted_spec().name == "squares"
        await pilot.press("end", "enter")
        await settle(pilot)
        assert [spec.name for spec, _ in backend.session.submitted] == ["sweep"]
        assert backend.session.submitted[0][1] == "/tmp/ippmon-test-runs"
        assert isinstance(app.screen, MonitorScreen)


async def test_quit_during_a_job_asks_what_becomes_of_its_tasks_and_leave_closes_it() -> None:
    job = FakeJob(rec.mid_run(), rec.output_lines())
    session = FakeSession(lambda spec: job)
    app = make_app(FakeBackend(session), job_name="squares")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        monitor = app.screen
        titles = [command.title for command in app.get_system_commands(monitor)]
        assert {"Cancel job", "Show tasks", "Toggle follow", "Help", "Quit"} <= set(titles)
        assert {"Resubmit failed tasks", "Resubmit all tasks"} <= set(titles)  # some failed
        assert "Back to the jobs" not in titles
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TasksScreen) and app.screen.job is job
        await pilot.press("escape")
        assert app.screen is monitor
        await pilot.press("escape")  # back is greyed out while the job runs
        assert app.screen is monitor
        await pilot.press("q")
        dialog = app.screen
        assert isinstance(dialog, LeaveScreen) and dialog.run_id == rec.RUN_ID
        assert dialog.remaining == 42
        await pilot.press("escape")  # stay
        assert app.screen is monitor
        await pilot.press("q", "l")  # leave the tasks running
        await settle(pilot)
    assert app.return_value == 1  # tasks were left running
    assert job.calls == ["close"]  # the run record says detached; nothing was cancelled
    assert session.closed and session.jobs_closed_first


async def test_quit_after_a_job_with_failures_returns_1() -> None:
    session = FakeSession(lambda spec: FakeJob(rec.finished()))
    app = make_app(FakeBackend(session), job_name="flaky")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("q")
    assert app.return_value == 1
    assert session.closed and session.jobs_closed_first


async def test_escape_after_the_job_returns_to_the_picker_and_quit_returns_0() -> None:
    session = FakeSession(lambda spec: FakeJob(rec.succeeded()))
    app = make_app(FakeBackend(session), job_name="squares")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.check_action("resubmit", ()) is None  # nothing failed
        assert app.screen.check_action("resubmit_all", ()) is True  # all can run again
        await pilot.press("escape")
        assert isinstance(app.screen, JobPickerScreen)
        await pilot.press("q")
    assert app.return_value == 0
    assert session.closed and session.jobs_closed_first


async def test_cancel_asks_first_and_cancels_off_the_ui_loop_also_when_quitting() -> None:
    job = FakeJob(rec.submitting(), rec.output_lines(12))
    app = monitor_app(job)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.check_action("resubmit", ()) is None  # still sending: not yet
        assert screen.check_action("resubmit_all", ()) is None
        await pilot.press("c")
        assert isinstance(app.screen, CancelConfirm)
        await pilot.press("n")
        assert app.screen is screen and job.calls == []
        await pilot.press("c", "y")
        await settle(pilot)
        assert job.calls == ["cancel"]
        await pilot.press("q", "c")  # quit: cancel the tasks, then quit
        await settle(pilot)
    assert job.calls == ["cancel", "cancel", "close"]
    assert threading.main_thread() not in job.cancel_threads
    assert app.return_value == 1


async def test_no_line_is_lost_when_updates_replace_each_other_and_f_pauses_following() -> None:
    app = monitor_app(FakeJob(rec.mid_run()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        for i in range(200):  # queued faster than handled: most replace their predecessor
            screen.post_message(JobUpdate(rec.mid_run(), lines(i * 3 + 1, i * 3 + 3)))
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
    snapshot = rec.many_engines(64)
    app = watch_app(FakeJob(snapshot))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
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
    app = watch_app(FakeJob(rec.mid_run(), rec.output_lines()))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.post_message(JobUpdate(rec.mid_run()))
        await pilot.pause()
        await pilot.pause()
        dirty = spy_on_refreshes(screen)
        screen.post_message(JobUpdate(rec.mid_run()))
        await pilot.pause()
        assert dirty == []
        more = rec.output_lines(3, start_task=90)
        more = [replace(line, seq=100 + line.seq) for line in more]
        screen.post_message(JobUpdate(rec.mid_run(), OutputBatch.of(more, 0, 100)))
        await pilot.pause()
        assert not any(layout for _, layout in dirty), dirty  # new lines: no layout pass
        assert {name for name, _ in dirty} <= {"OutputLog", "ScrollBar"}, dirty


def spy_on_refreshes(screen: Screen) -> list[tuple[str, bool]]:
    """(widget class, whether it asked for layout) for every refresh of a widget from now on."""
    dirty: list[tuple[str, bool]] = []
    for widget in screen.query("*"):
        original = widget.refresh

        def spy(*regions, _widget=widget, _refresh=original, **kwargs):  # noqa: ANN002, ANN003, ANN202
            dirty.append((type(_widget).__name__, bool(kwargs.get("layout"))))
            return _refresh(*regions, **kwargs)

        widget.refresh = spy  # type: ignore[method-assign]
    return dirty


async def test_counts_that_gain_or_lose_a_digit_and_a_longer_status_lay_nothing_out() -> None:
    """A layout pass re-arranges and redraws the whole screen (the longest stalls of a busy
    job): counts changing width (queued 39 -> 0, running 3 -> 10, done 58 -> 190) and the
    status detail changing length do not need one."""
    first = replace(rec.mid_run(), total=1000)
    app = watch_app(FakeJob(first))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        dirty = spy_on_refreshes(screen)
        later = replace(first, counts=rec.counts(queued=0, running=10, ok=187, failed=3), attempt=2)
        screen.post_message(JobUpdate(later))
        await pilot.pause()
        assert "Label" in {name for name, _ in dirty}  # the labels did change
        assert not any(layout for _, layout in dirty), dirty
        counts = str(screen.query_one("#counts", Label).render())
        assert counts.startswith("queued 0  running 10  ok 187  failed 3")
        assert " 190 / 1,000 " in str(screen.query_one("#progress-text", Label).render())
        assert "attempt 2" in str(screen.query_one("#phase-detail", Label).render())


async def test_connection_failure_offers_retry_and_quit_returns_3() -> None:
    backend = FakeBackend(target=True, error=rec.CONNECT_ERROR)
    app = make_app(backend)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ConnectingScreen) and app.screen.failed
        backend.error = None
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
    assert [name for name, _ in backend.calls] == ["connect", "connect"]
    failing = make_app(FakeBackend(target=True, error=rec.CONNECT_ERROR))
    async with failing.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("q")
    assert failing.return_value == 3


async def test_no_cluster_starts_a_local_one_with_the_chosen_engine_count() -> None:
    backend = FakeBackend(choices=[])
    app = make_app(backend)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("+", "+", "enter")
        await settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
    assert backend.calls == [("discover", None), ("start_local", 4)]


def test_the_poll_thread_ends_as_soon_as_the_app_exits() -> None:
    """With a 60 s poll interval, only a poller that waits on the cancel event lets asyncio.run
    return (it joins the worker threads) in well under a second."""
    job = FakeJob(rec.mid_run(), rec.output_lines())

    async def scenario() -> None:
        app = monitor_app(job, poll_interval=60.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, job.polled.is_set)
            await pilot.press("q", "l")

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 10
    (thread,) = job.poll_threads
    assert not thread.is_alive()
    assert job.polls == 1


async def test_the_poller_drives_the_monitor_to_the_end_of_the_job() -> None:
    job = FakeJob(
        rec.mid_run(), rec.output_lines(), script=[rec.mid_run(), rec.mid_run(), rec.finished()]
    )
    app = monitor_app(job, poll_interval=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.phase is Phase.FINISHED)
        await settle(pilot)
        assert job.polls == 3
        log = app.screen.query_one(Log)
        assert log.line_count == 40  # read once, never twice
        assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y  # followed to the end
        assert app.screen.check_action("back", ()) is True


async def test_a_job_named_on_the_command_line_that_is_broken_stays_on_the_picker() -> None:
    backend = FakeBackend(target=True)
    app = make_app(backend, job_name="broken")
    told: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: (told.append(message), notify(message, **kw))[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
        assert backend.session.submitted == []
        assert any("numpyy" in text for text in told), told


async def test_an_app_for_one_job_watches_it_and_leaves_after_it() -> None:
    job = FakeJob(rec.succeeded(), rec.output_lines(5))
    app = IppmonApp.for_job(job, clock=rec.fixed_clock, poll_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MonitorScreen)
        await pilot.press("escape")
        await settle(pilot)
    assert app.return_value == 0


async def test_a_on_the_picker_attaches_to_the_chosen_run_and_watches_it() -> None:
    run_id = rec.ATTACHED_RUN_ID
    job = FakeJob(rec.detached_run(), rec.output_lines())
    session = FakeSession(runs={run_id: job})
    app = make_app(FakeBackend(session, target=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen) and app.runs_read == [rec.RUNS_DIR]
        await pilot.press("j", "enter")  # the second one has no record: cannot attach
        await settle(pilot)
        assert isinstance(app.screen, JobPickerScreen)
        assert "Cannot attach" in {n.title for n in app._notifications}
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("j", "j", "enter")
        await settle(pilot)
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.job is job and monitor.attached
        assert "attached" in str(monitor.query_one("#phase-detail", Label).render())
        assert [folder.name for folder in session.attached] == ["20251231-231500-9f3c", run_id]
        assert threading.main_thread() not in session.attach_threads
        await pilot.press("q", "l")
        await settle(pilot)
    assert job.closed and not job.cancelled


async def test_r_then_big_r_resubmit_and_the_same_monitor_watches_each_attempt() -> None:
    job = FakeJob(rec.finished(), rec.output_lines(), retry=[7, 12, 21, 28, 35])
    app = monitor_app(job)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.check_action("cancel", ()) is None  # greyed out once finished
        await pilot.press("c")
        assert app.screen is screen
        assert screen.check_action("resubmit", ()) is True
        assert job.retryable_calls == 0  # the key is decided from the snapshot's counts
        await pilot.press("r")
        await settle(pilot)
        assert job.resubmitted == [7, 12, 21, 28, 35]  # exactly what job.retryable() said
        assert threading.main_thread() not in job.submit_threads
        assert screen.phase is Phase.RUNNING and not screen.has_class("-finished")
        assert "attempt 2" in str(screen.query_one("#phase-detail", Label).render())
        assert screen.check_action("resubmit", ()) is None  # none failed since
        assert screen.check_action("cancel", ()) is True
        await pilot.press("r")
        await settle(pilot)
        assert job.calls == ["submit"]
        await pilot.press("R")
        assert isinstance(app.screen, ResubmitAllConfirm)
        await pilot.press("n")
        assert app.screen is screen and job.calls == ["submit"]
        await pilot.press("R", "y")
        await settle(pilot)
        assert job.resubmitted == list(range(50))
        assert app.screen is screen and screen.job is job and screen.snapshot.attempt == 3
        await pilot.press("x")
        await settle(pilot)
        assert job.exported == "csv"
        assert threading.main_thread() not in job.export_threads
        told = [n.message for n in app._notifications]
        assert f"results written to {rec.RUNS_DIR}/{rec.RUN_ID}/results.csv" in told


async def test_after_r_the_monitor_follows_the_new_attempt_before_the_job_reports_it() -> None:
    """`job.submit` returns before the sender registers attempt 2: until then the job still
    reports attempt 1 FINISHED, and the monitor must go on polling anyway."""
    job = FakeJob(rec.finished(), lag=True)
    app = monitor_app(job, poll_interval=0.01)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        screen = app.screen
        await until(pilot, lambda: screen.phase is Phase.FINISHED)
        await pilot.press("r")
        await until(pilot, lambda: job.polls > 0)
        await until(pilot, lambda: screen.phase is Phase.RUNNING)
        assert screen.snapshot.attempt == 2
        await pilot.press("q", "l")


def finished_monitor(app: IppmonApp) -> bool:
    monitor = app.monitor()
    return monitor is not None and monitor.phase is Phase.FINISHED


async def test_a_finished_job_with_chunksize_advice_reruns_with_it_on_a() -> None:
    first, second = FakeJob(rec.finished_with_advice()), FakeJob(rec.submitting())
    jobs = iter([first, second])
    session = FakeSession(lambda spec: next(jobs))
    app = make_app(FakeBackend(session), job_name="squares")
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot, lambda: app.monitor() is not None and app.monitor().phase is Phase.FINISHED
        )
        await settle(pilot)
        advice = str(app.screen.query_one("#summary-advice").render())
        assert "chunksize = 2500 (a reruns with it)" in advice
        await pilot.press("a")
        await until(pilot, lambda: len(session.submitted) == 2)
        spec, _runs_dir = session.submitted[1]
        assert spec.name == "squares" and spec.chunksize == 2500
        assert session.submitted[0][0].chunksize is None  # the first run kept its own spec
        await until(pilot, lambda: app.monitor() is not None and app.monitor().job is second)


async def test_without_advice_a_does_nothing() -> None:
    session = FakeSession(lambda spec: FakeJob(rec.succeeded()))
    app = make_app(FakeBackend(session), job_name="squares")
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot, lambda: app.monitor() is not None and app.monitor().phase is Phase.FINISHED
        )
        await pilot.press("a")
        await settle(pilot)
        assert len(session.submitted) == 1


async def test_the_output_pane_is_as_wide_as_its_widest_line_at_once() -> None:
    app = monitor_app(FakeJob(rec.mid_run()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.screen.query_one(OutputLog)
        log.write_texts(["[e0 #1] " + "x" * 292, "short"])
        assert log.virtual_size.width == 300  # measured in the batch, not in a worker later
        log.write_texts(["[e0 #2] " + "漢字" * 100])  # two cells a character
        assert log.virtual_size.width == 8 + 400
        log.write_texts(["[e0 #3] \x1b[31m" + "y" * 500 + "\x1b[0m"])  # colours take no cell
        assert log.virtual_size.width == 508
        await pilot.press("end")
        assert log.max_scroll_x == 508 - log.scrollable_content_region.width


async def test_the_counts_take_the_new_themes_colours() -> None:
    app = watch_app(FakeJob(rec.mid_run()))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        counts = app.screen.query_one("#counts", Label)

        def colours() -> list[str]:
            content = counts.content
            assert isinstance(content, Content)
            return [str(span.style) for span in content.spans]

        before = colours()
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        assert colours() != before
        assert str(counts.render()).startswith("queued 39  running 3  ok 55  failed 3")
