"""Every task of one job as a table: filter by state or text, sort by duration, open one.

A job can have tens of thousands of tasks, and a DataTable costs ~1.9 s per 10k rows, so the
table never holds more than `LIMIT` rows: a thread worker reads `job.task_rows()` (O(total)),
filters, sorts and cuts (`select_tasks`), and the screen draws that page. A refresh that brings the
same tasks in the same order only updates the cells that changed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.worker import Worker, WorkerState

from ippmon.model import TaskRow, TaskState, format_duration
from ippmon.session import JobHandle
from ippmon.ui.screens.task_detail import STATE_CLASSES, TaskDetailScreen, one_line, text_style
from ippmon.ui.widgets.text import set_content

LIMIT = 500  # rows in the table at most: a page of the current filter and sort

FAILED = (TaskState.ERROR, TaskState.LOST)
FILTERS: tuple[tuple[str, tuple[TaskState, ...] | None], ...] = (
    ("all", None),
    ("failed or lost", FAILED),
    ("cancelled", (TaskState.CANCELLED,)),
    ("running", (TaskState.RUNNING,)),
    ("queued", (TaskState.QUEUED,)),
    ("ok", (TaskState.OK,)),
)


@dataclass(frozen=True)
class TaskQuery:
    """What the table shows: `FILTERS[state]`, rows whose line contains `text`, in which order."""

    state: int = 0
    text: str = ""
    longest_first: bool = False

    @property
    def states(self) -> tuple[TaskState, ...] | None:
        return FILTERS[self.state][1]

    @property
    def describe(self) -> str:
        order = "longest first" if self.longest_first else "index"
        parts = [f"state: {FILTERS[self.state][0]}", f"sort: {order}"]
        if self.text:
            parts.append(f"text: “{self.text}”")
        return " · ".join(parts)


@dataclass(frozen=True)
class TaskPage:
    query: TaskQuery
    rows: tuple[TaskRow, ...]  # at most the limit
    matched: int  # rows that passed the filter
    total: int  # tasks in the job

    @property
    def summary(self) -> str:
        shown, matched = len(self.rows), self.matched
        noun = "task" if self.total == 1 else "tasks"
        if matched > shown:
            return f"showing {shown:,} of {matched:,} {noun} (filter or sort to narrow)"
        if matched == self.total:
            return f"{self.total:,} {noun}"
        return f"{matched:,} of {self.total:,} {noun}"


def select_tasks(
    rows: Iterable[TaskRow], query: TaskQuery, total: int, limit: int = LIMIT
) -> TaskPage:
    """Filter by text, sort, keep the first `limit`: what the table shows for `query`.
    (`rows` are already of the query's states.) Longest first puts unknown durations last."""
    needle = query.text.casefold()
    kept = [row for row in rows if needle in row.line.casefold()] if needle else list(rows)
    if query.longest_first:
        kept.sort(key=lambda r: (r.duration_s is None, -(r.duration_s or 0.0), r.index))
    return TaskPage(query, tuple(kept[:limit]), len(kept), max(total, len(kept)))


COLUMNS: tuple[tuple[str, str, int], ...] = (  # key, label, width (the line takes the rest)
    ("index", "task", 4),  # or the width of the largest index
    ("state", "state", 9),
    ("engine", "engine", 6),
    ("attempt", "attempt", 7),
    ("duration", "duration", 8),
)


class TaskTable(DataTable[Text]):
    """The tasks table: Enter named so the Footer shows it, and vi keys."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open", id="open"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "select_cursor":
            return self.row_count > 0 or None
        return True


class TasksScreen(Screen[None]):
    """Dismisses with None (Escape). Enter opens the highlighted task's `TaskDetailScreen`."""

    BINDINGS = [
        Binding("s", "state(1)", "State", id="state"),
        Binding("S", "state(-1)", "Previous state", id="state-back", show=False),
        Binding("a", "all", "All", id="all"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter"),
        Binding("d", "sort", "Sort", id="sort"),
        Binding("escape", "back", "Back", key_display="esc", id="back"),
    ]

    COMPONENT_CLASSES = {f"tasks--{name}" for name in STATE_CLASSES.values()} | {"tasks--muted"}

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
    TasksScreen > .tasks--ok { color: $text-success; }
    TasksScreen > .tasks--error { color: $text-error; text-style: bold; }
    TasksScreen > .tasks--lost { color: $text-error; }
    TasksScreen > .tasks--cancelled { color: $text-warning; }
    TasksScreen > .tasks--running { color: $text-primary; }
    TasksScreen > .tasks--queued { color: $text-muted; }
    TasksScreen > .tasks--muted { color: $text-muted; }
    """

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
        self._built_widths: list[int] = []  # the column widths the table was built with
        self._timer: Timer | None = None

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading tasks…", id="tasks-count", markup=False)
        yield Input(placeholder="/ text in the output or error line", id="tasks-filter")
        table = TaskTable(id="tasks-table", cursor_type="row", zebra_stripes=True)
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
    def _table(self) -> DataTable[Text]:
        return self.query_one("#tasks-table", DataTable)

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
            self.reload()

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        if self.is_attached and self.page is not None and self._built_widths != self._widths():
            self._draw(self.page, rebuild=True)

    def _widths(self) -> list[int]:
        """The fixed columns' widths, then the line's: what is left of the table's width."""
        table, total = self._table, self.page.total if self.page is not None else 0
        widths = [width for _, _, width in COLUMNS]
        widths[0] = max(widths[0], len(str(max(total - 1, 0))))
        used = sum(widths) + 2 * table.cell_padding * (len(widths) + 1)
        return [*widths, max(12, table.scrollable_content_region.width - used)]

    def _theme_changed(self, _theme: object) -> None:
        if self.is_attached and self.page is not None:
            self._draw(self.page, rebuild=True)

    # -- reading the tasks ----------------------------------------------------------------------

    def reload(self) -> None:
        """Read the tasks again now (the timer does it every `refresh_interval`)."""
        self._read(self.query_state)

    @work(thread=True, exclusive=True, group="tasks", exit_on_error=False, description="task_rows")
    def _read(self, query: TaskQuery) -> TaskPage:
        rows = self.job.task_rows(query.states)
        total = self.job.snapshot().total
        return select_tasks(rows, query, total, self.limit)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "tasks" or not self.is_attached:
            return
        if event.state is WorkerState.ERROR:
            count = self.query_one("#tasks-count", Static)
            count.update(f"cannot read the tasks: {one_line(event.worker.error)}")
            count.add_class("-error")
        elif event.state is WorkerState.SUCCESS:
            page = event.worker.result
            if isinstance(page, TaskPage) and page.query == self.query_state:
                self._draw(page)

    # -- drawing --------------------------------------------------------------------------------

    def _cells(self, row: TaskRow) -> list[Text]:
        muted = text_style(self, "tasks--muted")
        state = text_style(self, f"tasks--{STATE_CLASSES[row.state]}")
        engine = "-" if row.engine is None else str(row.engine)
        return [
            Text(str(row.index), justify="right"),
            Text(row.state.label, style=state),
            Text(engine, style=muted if row.engine is None else "", justify="right"),
            Text(str(row.attempt or "-"), justify="right"),
            Text(format_duration(row.duration_s), justify="right"),
            Text(row.line, no_wrap=True, overflow="ellipsis"),
        ]

    def _draw(self, page: TaskPage, *, rebuild: bool = False) -> None:
        """Show `page`: in place if it holds the same tasks, else anew, keeping the cursor on
        its task through a refresh, and back at the top when the filter or sort changed."""
        new_query = self.page is not None and self.page.query != page.query
        self.page = page
        count = self.query_one("#tasks-count", Static)
        set_content(count, page.summary)
        count.set_class(page.matched > len(page.rows), "-capped").remove_class("-error")
        table = self._table
        same = [r.index for r in page.rows] == [r.index for r in self._shown]
        if same and not rebuild and self._built_widths == self._widths():
            self._update(table, page.rows)
        else:
            self._rebuild(table, page.rows, top=new_query)
        had_rows = bool(self._shown)
        self._shown = list(page.rows)
        if bool(self._shown) != had_rows:  # Enter opens a task only when there is one;
            self.refresh_bindings()  # the footer is rebuilt on each refresh: not every second

    def _update(self, table: DataTable[Text], rows: Sequence[TaskRow]) -> None:
        keys = [key for key, _, _ in COLUMNS] + ["line"]
        for old, new in zip(self._shown, rows):
            if old == new:
                continue
            for key, before, after in zip(keys, self._cells(old), self._cells(new)):
                if before != after:
                    table.update_cell(str(new.index), key, after)

    def _rebuild(self, table: DataTable[Text], rows: Sequence[TaskRow], *, top: bool) -> None:
        current = None if top else self._current_index()
        cursor_row = 0 if top else table.cursor_row
        self._built_widths = widths = self._widths()
        table.clear(columns=True)
        for (key, label, _), width in zip(COLUMNS, widths):
            justify = "left" if key == "state" else "right"
            table.add_column(Text(label, justify=justify), key=key, width=width)
        table.add_column("output / error", key="line", width=widths[-1])
        for row in rows:
            table.add_row(*self._cells(row), key=str(row.index))
        if not rows:
            return
        keys = [r.index for r in rows]
        target = keys.index(current) if current in keys else min(cursor_row, len(rows) - 1)
        table.move_cursor(row=target, animate=False, scroll=True)

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
            return self.query_state.state != 0 or bool(self.query_state.text) or None
        return True

    @on(DataTable.RowSelected, "#tasks-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        index = self._current_index()
        if index is not None:
            self.app.push_screen(TaskDetailScreen(self.job, index, clock=self.clock, tz=self.tz))

    def action_state(self, step: int) -> None:
        self._set_query(state=(self.query_state.state + step) % len(FILTERS))

    def action_all(self) -> None:
        self._close_filter(clear=True)
        self._set_query(state=0, text="")

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
