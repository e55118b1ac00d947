"""The tasks, task, runs and leave screens, each shown on its own over recorded data.

Snapshots at 80×24 and 160×48 (accept a deliberate change with
`pytest tests/test_tasks_runs_screens.py --snapshot-update`, after looking at the pictures), then
pilot tests for the keys: opening a task, the state and text filters, the duration sort, a
20,000-task job that never puts more than 500 rows in the table, and the leave dialog's answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import pytest
from fakes import recorded as rec
from fakes import recorded_tasks as tasks_rec
from fakes.backends import FakeJob
from fakes.pilot import ScreenApp, settle
from textual.pilot import Pilot
from textual.widgets import Log, Static

from ippmon.model import TaskRow, TaskState
from ippmon.ui.screens.leave import LeaveScreen
from ippmon.ui.screens.runs import RunsScreen, RunTable
from ippmon.ui.screens.task_detail import TaskDetailScreen
from ippmon.ui.screens.tasks import LIMIT, TaskQuery, TasksScreen, TaskTable, select_tasks

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


def tasks(job: FakeJob | None = None, **kwargs: object) -> ScreenApp:
    job = job or tasks_rec.flaky_job()
    return ScreenApp(lambda: TasksScreen(job, refresh_interval=0, tz=rec.UTC, **kwargs))


def detail(index: int, job: FakeJob | None = None) -> ScreenApp:
    job = job or tasks_rec.flaky_job()
    return ScreenApp(
        lambda: TaskDetailScreen(job, index, clock=rec.fixed_clock, tz=rec.UTC, refresh_interval=0)
    )


def runs(source: object = None) -> ScreenApp:
    return ScreenApp(lambda: RunsScreen(source or rec.listed_runs(), clock=rec.fixed_clock))


def leave() -> ScreenApp:
    return ScreenApp(lambda: LeaveScreen(42, rec.RUN_ID, job_name="flaky"))


def pressing(*keys: str) -> Callable[[Pilot], Awaitable[None]]:
    """Settle, press `keys`, settle again (a key may start a worker)."""

    async def before(pilot: Pilot) -> None:
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)

    return before


@dataclass
class Shot:
    build: Callable[[], ScreenApp]
    before: Callable[[Pilot], Awaitable[None]] = pressing()


SHOTS: dict[str, Callable[[], Shot]] = {
    "tasks_all": lambda: Shot(tasks),
    "tasks_failed": lambda: Shot(tasks, pressing("s")),
    "tasks_longest_first": lambda: Shot(tasks, pressing("d")),
    "tasks_stragglers": lambda: Shot(tasks, pressing("s", "s", "s", "s")),
    "tasks_longest_durations_bar": lambda: Shot(tasks, pressing("H")),
    "tasks_20000": lambda: Shot(lambda: tasks(tasks_rec.big_job())),
    "task_failed_traceback": lambda: Shot(lambda: detail(7)),
    "task_ok_with_output": lambda: Shot(lambda: detail(3)),
    "runs": lambda: Shot(runs),
    "tasks_nasty_output": lambda: Shot(lambda: tasks(tasks_rec.nasty_job())),
    "task_nasty_output": lambda: Shot(lambda: detail(3, tasks_rec.nasty_job())),
    "runs_with_a_damaged_one": lambda: Shot(
        lambda: runs(rec.runs_with_a_damaged_one()), pressing("j")
    ),
    "leave": lambda: Shot(leave),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SHOTS)
def test_screen(snap_compare, name: str, size: str) -> None:
    shot = SHOTS[name]()
    assert snap_compare(shot.build(), terminal_size=SIZES[size], run_before=shot.before)


# -- choosing the rows ------------------------------------------------------------------------


def row(index: int, duration: float | None, line: str = "") -> TaskRow:
    return TaskRow(index, TaskState.OK, 0, 1, duration, line)


def test_longest_first_puts_unknown_durations_last_and_ties_by_index() -> None:
    rows = [row(0, 1.0), row(1, None), row(2, 5.0), row(3, 1.0)]
    page = select_tasks(rows, TaskQuery(longest_first=True), total=4)
    assert [r.index for r in page.rows] == [2, 0, 3, 1]


def test_a_page_keeps_the_limit_and_counts_what_matched() -> None:
    rows = [row(i, float(i), f"Frame {i}") for i in range(1000)]
    page = select_tasks(rows, TaskQuery(text="frame 1"), total=1000, limit=50)
    assert page.matched == 111  # 1, 10-19, 100-199: matched case-insensitively
    assert len(page.rows) == 50
    assert page.summary == "showing 50 of 111 tasks (filter or sort to narrow)"
    assert select_tasks(rows[:3], TaskQuery(), total=1000).summary == "3 of 1,000 tasks"


# -- the tasks screen, by keys ----------------------------------------------------------------


def shown(app: ScreenApp) -> list[int]:
    table = app.screen.query_one(TaskTable)
    return [int(table.row_texts(y)[0]) for y in range(table.row_count)]


async def test_enter_opens_the_highlighted_task_and_escape_comes_back() -> None:
    recorded = tasks_rec.flaky_tasks()
    job = tasks_rec.tasks_job("flaky", recorded)
    app = tasks(job)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s", "j")  # failed or lost: 7, 21, 28, 35; down to 21
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TaskDetailScreen) and app.screen.index == 21
        assert recorded.task_calls == [21]
        outcome = app.screen.query_one("#task-outcome", Log)
        assert outcome.border_title == "traceback"
        await pilot.press("escape")
        assert isinstance(app.screen, TasksScreen)
        assert shown(app) == [7, 21, 28, 35]


async def test_state_keys_and_the_text_filter_change_the_rows() -> None:
    app = tasks()
    async with app.run_test(size=(100, 30)) as pilot:

        async def press(*keys: str) -> list[int]:
            await pilot.press(*keys)
            await settle(pilot)
            return shown(app)

        await settle(pilot)
        assert shown(app) == list(range(40))
        assert app.screen.check_action("all", ()) is None  # nothing to clear yet
        assert await press("s") == [7, 21, 28, 35]
        assert await press("s") == [12]
        assert await press("s") == [30, 31, 32, 33]
        assert await press("S") == [12]
        assert await press("a") == list(range(40))
        assert await press("slash", *"squared 1") == [1, 10, 11, *range(13, 20)]  # 12: no line
        assert app.screen.query_one("#tasks-table").border_subtitle.endswith("“squared 1”")
        assert await press("escape") == list(range(40))  # esc in the filter drops the text
        assert isinstance(app.screen, TasksScreen)
        await pilot.press("escape")
        assert app.results == [None]


async def test_d_sorts_longest_first_and_back_to_index_order() -> None:
    recorded = tasks_rec.flaky_tasks()
    job = tasks_rec.tasks_job("flaky", recorded)
    app = tasks(job)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        durations = {r.index: r.duration_s for r in recorded.rows}
        order = shown(app)
        timed = [durations[i] for i in order if durations[i] is not None]
        assert timed == sorted(timed, reverse=True)
        assert all(durations[i] is None for i in order[len(timed) :])
        await pilot.press("d")
        await settle(pilot)
        assert shown(app) == list(range(40))


async def test_a_20000_task_job_shows_500_rows_and_says_so() -> None:
    recorded = tasks_rec.big_tasks()
    job = tasks_rec.tasks_job("render-frames", recorded)
    app = tasks(job)
    started = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        opened = time.perf_counter() - started
        table = app.screen.query_one(TaskTable)
        count = str(app.screen.query_one("#tasks-count", Static).render())
        print(f"\n20,000 tasks: table open with {table.row_count} rows in {opened:.2f} s")
        assert table.row_count == LIMIT
        assert count == "showing 500 of 20,000 tasks (filter or sort to narrow)"
        assert threading.main_thread() not in recorded.threads  # task_rows ran in a worker
        await pilot.press("s")
        await settle(pilot)
        assert shown(app) == [i for i in range(700, 7651, 701)]
        assert str(app.screen.query_one("#tasks-count", Static).render()) == "10 of 20,000 tasks"


async def test_a_refresh_updates_changed_cells_without_rebuilding_the_table() -> None:
    recorded = tasks_rec.flaky_tasks()
    job = tasks_rec.tasks_job("flaky", recorded)
    app = tasks(job)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        table = screen.query_one(TaskTable)
        redrawn: list[int] = []
        table.refresh_line = redrawn.append  # type: ignore[method-assign]
        await pilot.press("j", "j")
        redrawn.clear()
        rows = recorded.rows
        rows[30] = replace(rows[30], state=TaskState.OK, duration_s=9.5, line="done")
        screen.reload()
        await settle(pilot)
        row = shown(app).index(30)
        assert table.row_texts(row)[1] == "ok" and table.row_texts(row)[4] == "9.5s"
        assert redrawn == [row + 1]  # that row alone (line 0 is the header)
        assert table.cursor_row == 2


async def test_the_tasks_are_read_again_each_interval_but_not_under_the_task_view() -> None:
    recorded = tasks_rec.flaky_tasks()
    job = tasks_rec.tasks_job("flaky", recorded)
    app = ScreenApp(lambda: TasksScreen(job, refresh_interval=0.1))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.5)
        assert recorded.row_calls >= 3
        await pilot.press("enter")
        assert isinstance(app.screen, TaskDetailScreen)
        await pilot.pause(0.1)
        hidden = recorded.row_calls
        await pilot.pause(0.5)
        assert recorded.row_calls == hidden
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert recorded.row_calls > hidden


# -- the runs list ----------------------------------------------------------------------------


async def test_enter_dismisses_with_the_highlighted_run_and_escape_with_none() -> None:
    app = runs()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.screen.check_action("reload", ()) is False  # a fixed list: nothing to reload
        await pilot.press("j", "enter")
    assert [r.run_id for r in app.results] == ["20251231-231500-9f3c"]
    app = runs()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("escape")
    assert app.results == [None]


async def test_runs_from_a_callable_are_read_in_a_worker_and_reloaded_with_ctrl_r() -> None:
    threads: list[threading.Thread] = []

    def source() -> list:
        threads.append(threading.current_thread())
        return rec.listed_runs()[: len(threads)]

    app = runs(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.screen.query_one(RunTable).row_count == 1
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.screen.query_one(RunTable).row_count == 2
    assert len(threads) == 2 and threading.main_thread() not in threads


async def test_runs_columns_are_as_wide_as_their_cells_and_the_job_gives_way_when_narrow() -> None:
    for size, job_width in (
        ((160, 48), len("nightly-regression-suite")),
        ((80, 24), 14),  # what the other columns leave
    ):
        app = runs()
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            table = app.screen.query_one(RunTable)
            widths = dict(
                zip(
                    (c.key for c in table.columns),
                    table.widths(table.scrollable_content_region.width),
                    strict=True,
                )
            )
            assert widths["run"] == len("20251231-231500-9f3c")
            assert widths["done"] == len("7,651/20,000")
            assert widths["age"] == len("36h00m ago")
            assert widths["job"] == job_width, size
            assert ("ok" in widths) is (size[0] >= 120)  # a column per count when wide


# -- the task view ----------------------------------------------------------------------------


async def test_a_traceback_is_shown_as_plain_text() -> None:
    app = detail(7)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = "\n".join(app.screen.query_one("#task-outcome", Log).lines)
        assert "\x1b" not in text and "[red]not markup[/red]" in text
        head = str(app.screen.query_one("#task-head", Static).render())
        assert "TransientError: flaky failure on input 7 [red]not markup[/red]" in head


# -- the leave dialog -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "answer"),
    [(("l",), "leave"), (("c",), "cancel"), (("escape",), "stay"), (("enter",), "stay")],
)
async def test_leave_dialog_answers(keys: tuple[str, ...], answer: str) -> None:
    app = leave()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(*keys)
        await pilot.pause()
    assert app.results == [answer]
