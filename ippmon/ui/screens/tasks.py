"""Every task of one job as a table: filter by state, straggling, text or a duration range
(a bar of the durations histogram above the table), sort by duration, open one.

A job can have tens of thousands of tasks, so the table never holds more than `LIMIT` rows: a
thread worker reads `job.task_rows()` (O(total)), filters, sorts and cuts (`select_tasks`), and
the screen draws that page in a `LineTable`, which redraws only the rows that changed (a
DataTable took ~80 ms to take in 500 rows and 30-90 ms to redraw after each refresh).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Static

from ippmon.model import DurationBar, Durations, TaskRow, TaskState, format_duration
from ippmon.protocols import JobHandle
from ippmon.ui.screens.task_detail import TaskDetailScreen
from ippmon.ui.widgets.durations import DurationChart
from ippmon.ui.widgets.line_table import Cell, Column, LineTable
from ippmon.ui.widgets.states import STATE_CLASSES, state_rules
from ippmon.ui.widgets.text import set_content, text_style
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed

LIMIT = 500  # rows in the table at most: a page of the current filter and sort

FAILED = (TaskState.ERROR, TaskState.LOST)


class Filter(NamedTuple):
    name: str
    states: tuple[TaskState, ...] | None  # None: every state
    stragglers: bool = False  # only running tasks flagged as stragglers


FILTERS: tuple[Filter, ...] = (
    Filter("all", None),
    Filter("failed or lost", FAILED),
    Filter("cancelled", (TaskState.CANCELLED,)),
    Filter("running", (TaskState.RUNNING,)),
    Filter("stragglers", (TaskState.RUNNING,), stragglers=True),
    Filter("queued", (TaskState.QUEUED,)),
    Filter("ok", (TaskState.OK,)),
)


@dataclass(frozen=True)
class TaskQuery:
    """What the table shows: `FILTERS[state]`, rows whose line contains `text` and whose
    duration is in the range of the histogram bar `duration`, in which order."""

    state: int = 0
    text: str = ""
    longest_first: bool = False
    duration: DurationBar | None = None

    @property
    def states(self) -> tuple[TaskState, ...] | None:
        return FILTERS[self.state].states

    @property
    def describe(self) -> str:
        order = "longest first" if self.longest_first else "index"
        parts = [f"state: {FILTERS[self.state].name}", f"sort: {order}"]
        if self.duration is not None:
            parts.append(f"duration: {self.duration.label}")
        if self.text:
            parts.append(f"text: “{self.text}”")
        return " · ".join(parts)


@dataclass(frozen=True)
class TaskPage:
    query: TaskQuery
    rows: tuple[TaskRow, ...]  # at most the limit
    matched: int  # rows that passed the filter
    total: int  # tasks in the job
    durations: Durations | None = None  # the job's durations histogram, as the rows were read

    @property
    def summary(self) -> str:
        shown, matched = len(self.rows), self.matched
        noun = "task" if self.total == 1 else "tasks"
        if matched > shown:
            return f"showing {shown:,} of {matched:,} {noun} (filter or sort to narrow)"
        if matched == self.total:
            return f"{self.total:,} {noun}"
        return f"{matched:,} of {self.total:,} {noun}"


@dataclass
class TasksRead(Message):
    """The read worker's answer: a page of the tasks table."""

    bubble = False

    page: TaskPage


def select_tasks(
    rows: Iterable[TaskRow], query: TaskQuery, total: int, limit: int = LIMIT
) -> TaskPage:
    """Filter by straggling, duration range and text, sort, keep the first `limit`: what the
    table shows for `query`. (`rows` are already of the query's states.) Longest first puts
    unknown durations last."""
    needle = query.text.casefold()
    kept = [row for row in rows if needle in row.line.casefold()] if needle else list(rows)
    if FILTERS[query.state].stragglers:
        kept = [row for row in kept if row.straggler]
    if query.duration is not None:
        kept = [row for row in kept if query.duration.contains(row.duration_s)]
    if query.longest_first:
        kept.sort(key=lambda r: (r.duration_s is None, -(r.duration_s or 0.0), r.index))
    return TaskPage(query, tuple(kept[:limit]), len(kept), max(total, len(kept)))


COLUMNS: tuple[Column, ...] = (  # the line takes the rest of the width
    Column("index", "task", 4, right=True),  # or the width of the largest index
    Column("state", "state", 9),
    Column("engine", "engine", 6, right=True),
    Column("attempt", "attempt", 7, right=True),
    Column("duration", "duration", 8, right=True),
    Column("line", "output / error"),
)


class TaskTable(LineTable):
    """The tasks table: Enter opens the task under the cursor."""


class TasksScreen(AnswersFromWorkers, Screen[None]):
    """Dismisses with None (Escape). Enter opens the highlighted task's `TaskDetailScreen`."""

    BINDINGS = [
        Binding("s", "state(1)", "State", id="state"),
        Binding("S", "state(-1)", "Previous state", id="state-back", show=False),
        Binding(
            "h",
            "duration(1)",
            "Durations",
            id="duration",
            tooltip="Only the tasks of the next bar of the histogram (longer)",
        ),
        Binding(
            "H",
            "duration(-1)",
            "Shorter",
            id="duration-back",
            show=False,
            tooltip="Only the tasks of the previous bar of the histogram (shorter)",
        ),
        Binding("a", "all", "All", id="all"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter"),
        Binding("d", "sort", "Sort", id="sort"),
        Binding("escape", "back", "Back", key_display="esc", id="back"),
    ]

    COMPONENT_CLASSES = {f"tasks--{name}" for name in STATE_CLASSES.values()} | {
        "tasks--muted",
        "tasks--straggler",
    }

    DEFAULT_CSS = """
    TasksScreen #tasks-count { height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; }
    TasksScreen #tasks-count.-capped { color: $text-warning; }
    TasksScreen #tasks-count.-error { color: $text-error; text-style: bold; }
    TasksScreen #tasks-filter { display: none; height: 1; border: none; padding: 0 1; }
    TasksScreen #tasks-filter:focus { background: $primary-muted; }
    TasksScreen.-filtering #tasks-filter { display: block; }
    TasksScreen #tasks-table {
        width: 1fr;
        height: 1fr;
        margin: 0 1;
        border: round $panel-lighten-2;
        border-title-style: bold;
        scrollbar-gutter: stable;
    }
    TasksScreen #tasks-table:focus { border: round $primary; }
    TasksScreen > .tasks--muted { color: $text-muted; }
    TasksScreen > .tasks--straggler { color: $text-warning; text-style: bold; }
    TasksScreen #tasks-durations { background: $boost; }
    """ + state_rules("TasksScreen > .tasks--{}", bold=[TaskState.ERROR])

    def __init__(
        self,
        job: JobHandle,
        *,
        refresh_interval: float = 1.0,
        limit: int = LIMIT,
        clock: Callable[[], float] = time.time,
        tz: dt.tzinfo | None = None,
    ) -> None:
        """`refresh_interval` 0 reads the tasks once (tests); `clock` and `tz` go to the task
        view (None: local time)."""
        super().__init__()
        self.job = job
        self.clock = clock
        self.refresh_interval = refresh_interval
        self.limit = limit
        self.tz = tz
        self.query_state = TaskQuery()
        self.page: TaskPage | None = None
        self._shown: list[TaskRow] = []
        self._timer: Timer | None = None

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading tasks…", id="tasks-count", markup=False)
        yield DurationChart(id="tasks-durations")
        yield Input(placeholder="/ text in the output or error line", id="tasks-filter")
        table = TaskTable(COLUMNS, id="tasks-table")
        table.border_title = f"{self.job.name} tasks"
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.job.name} · tasks"
        self._table.focus()
        self._table.border_subtitle = self.query_state.describe
        self.reload()
        if self.refresh_interval > 0:
            self._timer = self.set_interval(self.refresh_interval, self.reload)
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    @property
    def _table(self) -> TaskTable:
        return self.query_one("#tasks-table", TaskTable)

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
            self.reload()

    def _columns(self, total: int) -> tuple[Column, ...]:
        """The index column as wide as the largest index."""
        first = COLUMNS[0]
        width = max(first.width, len(str(max(total - 1, 0))))
        return (replace(first, width=width), *COLUMNS[1:])

    def _theme_changed(self, _theme: object) -> None:
        if self.is_attached and self.page is not None:
            self._draw(self.page)  # the state colours come from the theme

    # -- reading the tasks ----------------------------------------------------------------------

    def reload(self) -> None:
        """Read the tasks again now (the timer does it every `refresh_interval`)."""
        self._read(self.query_state)

    @work(thread=True, exclusive=True, group="tasks", exit_on_error=False, description="task_rows")
    def _read(self, query: TaskQuery) -> TasksRead:
        rows = self.job.task_rows(query.states)
        snapshot = self.job.snapshot()
        page = select_tasks(rows, query, snapshot.total, self.limit)
        return TasksRead(replace(page, durations=snapshot.durations))

    def on_tasks_read(self, message: TasksRead) -> None:
        if self.is_attached and message.page.query == self.query_state:
            self._draw(message.page)

    def worker_failed(self, failure: WorkerFailed) -> None:
        if self.is_attached:
            count = self.query_one("#tasks-count", Static)
            count.update(f"cannot read the tasks: {failure.text}")
            count.add_class("-error")

    # -- drawing --------------------------------------------------------------------------------

    def _cells(self, row: TaskRow) -> tuple[Cell, ...]:
        muted = text_style(self, "tasks--muted")
        state = text_style(self, f"tasks--{STATE_CLASSES[row.state]}")
        label = row.state.label
        if row.straggler:
            label, state = "straggler", text_style(self, "tasks--straggler")
        engine = "-" if row.engine is None else str(row.engine)
        return (
            str(row.index),
            ((label, state),),
            ((engine, muted),) if row.engine is None else engine,
            str(row.attempt or "-"),
            format_duration(row.duration_s),
            row.line,
        )

    def _draw(self, page: TaskPage) -> None:
        """Show `page`, keeping the cursor on its task through a refresh, and back at the top
        when the filter or sort changed."""
        new_query = self.page is not None and self.page.query != page.query
        current = None if new_query else self._current_index()
        self.page = page
        self.query_one(DurationChart).apply(page.durations, page.query.duration)
        count = self.query_one("#tasks-count", Static)
        set_content(count, page.summary)
        count.set_class(page.matched > len(page.rows), "-capped").remove_class("-error")
        table = self._table
        table.columns = self._columns(page.total)
        table.set_rows([self._cells(row) for row in page.rows])
        self._shown = list(page.rows)
        if not page.rows:
            return
        keys = [r.index for r in page.rows]
        if new_query:
            table.move_cursor(0)
        elif current in keys:
            table.move_cursor(keys.index(current))

    def _current_index(self) -> int | None:
        table = self._table
        if not self._shown or not 0 <= table.cursor_row < len(self._shown):
            return None
        return self._shown[table.cursor_row].index

    def _set_query(self, **changes: object) -> None:
        query = TaskQuery(**{**self.query_state.__dict__, **changes})
        if query != self.query_state:
            self.query_state = query
            self._table.border_subtitle = query.describe
            self.refresh_bindings()
            self.reload()

    # -- keys -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "all":
            query = self.query_state
            return query.state != 0 or bool(query.text) or query.duration is not None or None
        if action == "duration":
            return bool(self._bars()) or None
        return True

    def _bars(self) -> list[DurationBar]:
        """The histogram's bars that hold tasks (those `h` and `H` step through)."""
        durations = self.page.durations if self.page is not None else None
        bars = self.query_one(DurationChart).bars if durations is not None else []
        return [bar for bar in bars if bar.count]

    def action_duration(self, step: int) -> None:
        """The next (1) or previous (-1) bar of the histogram, then none again."""
        bars = self._bars()
        if not bars:
            return
        choices: list[DurationBar | None] = [None, *bars]
        current = self.query_state.duration
        at = next((i for i, b in enumerate(choices) if b is not None and b == current), 0)
        self._set_query(duration=choices[(at + step) % len(choices)])

    @on(DurationChart.Picked)
    def _bar_picked(self, event: DurationChart.Picked) -> None:
        self._set_query(duration=event.bar)

    @on(LineTable.Selected, "#tasks-table")
    def _open(self, event: LineTable.Selected) -> None:
        event.stop()
        index = self._current_index()
        if index is not None:
            self.app.push_screen(TaskDetailScreen(self.job, index, clock=self.clock, tz=self.tz))

    def action_state(self, step: int) -> None:
        self._set_query(state=(self.query_state.state + step) % len(FILTERS))

    def action_all(self) -> None:
        self._close_filter(clear=True)
        self._set_query(state=0, text="", duration=None)

    def action_sort(self) -> None:
        self._set_query(longest_first=not self.query_state.longest_first)

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one("#tasks-filter", Input).focus()

    @on(Input.Changed, "#tasks-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_query(text=event.value.strip())

    @on(Input.Submitted, "#tasks-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self._close_filter(clear=False)

    def _close_filter(self, *, clear: bool) -> None:
        """Back to the table; the filter line stays shown while it holds text."""
        filter_input = self.query_one("#tasks-filter", Input)
        if clear:
            filter_input.value = ""  # Input.Changed clears the query's text
        self.set_class(bool(filter_input.value.strip()), "-filtering")
        self._table.focus()

    def action_back(self) -> None:
        if self.query_one("#tasks-filter", Input).has_focus:  # esc in the filter: drop the text
            self._close_filter(clear=True)
        else:
            self.dismiss(None)
