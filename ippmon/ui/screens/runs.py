"""The recorded runs, newest first: pick one to attach to.

Reading the run folders (`runs.list_runs`) opens every `results.jsonl`, so a callable source is
read in a thread worker. The table has a column per task state on wide terminals only; the box
under it shows every count of the highlighted run, and a finished run with failures is in red.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from ippmon.model import RunState, TaskState, format_duration
from ippmon.runs import UNREADABLE, RunSummary
from ippmon.terminal import plain
from ippmon.ui.messages import RunsRead
from ippmon.ui.widgets.line_table import Cell, Column, LineTable
from ippmon.ui.widgets.states import STATE_CLASSES, state_rules, text_colour
from ippmon.ui.widgets.text import text_style
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed

WIDE = 120  # columns from which every count gets its own column
COUNTS = (("ok", "ok"), ("error", "failed"), ("cancelled", "cancelled"), ("lost", "lost"))
"""A run's counts shown: the key in `RunSummary.counts` (a TaskState value), and its column."""
JOB_WIDTH = 24  # the job column at most; it gives way first when the terminal is narrow


def columns(wide: bool) -> tuple[Column, ...]:
    """The run id, job, state, done, [a column per count,] created: each as wide as it needs."""
    counts = [Column(key, label, len(label), right=True, fit=True) for key, label in COUNTS]
    return (
        Column("run", "run id", len("run id"), fit=True),
        Column("job", "job", fit=True, most=JOB_WIDTH),
        Column("state", "state", len("state"), fit=True),
        Column("done", "done", len("done"), right=True, fit=True),
        *(counts if wide else ()),
        Column("age", "created", len("created"), right=True, fit=True),
    )


STATE_CLASS = {  # a run's state -> the suffix of its component class (runs--finished, ...)
    RunState.RUNNING: "running",
    RunState.DETACHED: "detached",
    RunState.FINISHED: "finished",
}


def state_class(state: str) -> str:
    """The component class suffix of a run's state ("muted" for one ippmon does not know)."""
    try:
        return STATE_CLASS[RunState(state)]
    except ValueError:
        return "muted"


def age(created: float | None, now: float) -> str:
    """'3m05s ago' (or '--' when the run does not say when it was created)."""
    if created is None:
        return "--"
    return f"{format_duration(max(0.0, now - created))} ago"


class RunTable(LineTable):
    """The runs table; its Enter binding is named so the Footer shows it."""

    BINDINGS = [Binding("enter", "select", "Attach", id="open")]


class RunsScreen(AnswersFromWorkers, Screen["RunSummary | None"]):
    """Dismisses with the highlighted RunSummary (Enter), or None (Escape / q)."""

    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="reload"),
        Binding("escape,q", "back", "Back", key_display="esc", id="back"),
    ]

    COMPONENT_CLASSES = {
        "runs--running",
        "runs--detached",
        "runs--finished",
        "runs--error",
        "runs--muted",
    } | {f"runs--task-{name}" for name in STATE_CLASSES.values()}

    DEFAULT_CSS = (
        """
    RunsScreen #runs-table {
        width: 1fr;
        height: 1fr;
        margin: 0 1;
        border: round $panel-lighten-2;
        border-title-style: bold;
        scrollbar-gutter: stable;
    }
    RunsScreen #runs-table:focus { border: round $primary; }
    RunsScreen #runs-detail {
        height: auto;
        margin: 0 1;
        padding: 0 1;
        border: round $panel-lighten-2;
        border-title-style: bold;
    }
    RunsScreen #runs-empty { display: none; margin: 1 2; color: $text-muted; }
    RunsScreen.-empty #runs-empty { display: block; }
    RunsScreen.-empty #runs-table, RunsScreen.-empty #runs-detail { display: none; }
    RunsScreen > .runs--detached { color: $text-warning; }
    RunsScreen > .runs--muted { color: $text-muted; }
    RunsScreen > .runs--running { text-style: bold; }
    """
        + "\n".join(  # a run's state in the colour of its tasks' (a run with failures: failed)
            f"RunsScreen > .runs--{name} {{ color: {text_colour(state)}; }}"
            for name, state in (
                ("running", TaskState.RUNNING),
                ("finished", TaskState.OK),
                ("error", TaskState.ERROR),
            )
        )
        + "\n"
        + state_rules("RunsScreen > .runs--task-{}")
    )

    def __init__(
        self,
        runs: Sequence[RunSummary] | Callable[[], Sequence[RunSummary]],
        *,
        clock: Callable[[], float] = time.time,
        where: str = "",
    ) -> None:
        """`runs` as a list, or a callable read in a worker (e.g. `lambda: list_runs(dir)`);
        `where` names the runs folder for the empty message."""
        super().__init__()
        self.source = runs if callable(runs) else None
        self.runs: list[RunSummary] = [] if callable(runs) else list(runs)
        self.clock = clock
        self.where = where
        self.loaded = not callable(runs)
        self._wide: bool | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        table = RunTable(columns(wide=False), id="runs-table")
        table.border_title = "runs"
        yield table
        yield Static(id="runs-detail")
        where = f" in {self.where}" if self.where else ""
        yield Static(
            Text(f"No runs recorded yet{where}. Every job ippmon submits records one."),
            id="runs-empty",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "runs"
        self._table.focus()
        if self.source is not None:
            self.action_reload()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._build())

    @property
    def _table(self) -> RunTable:
        return self.query_one("#runs-table", RunTable)

    def on_resize(self, event: Resize) -> None:
        wide = event.size.width >= WIDE
        if wide != self._wide:  # the table sizes its columns itself; only the counts come or go
            self._wide = wide
            self._build()

    # -- loading --------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False, description="list_runs")
    def _read(self) -> RunsRead:
        assert self.source is not None
        return RunsRead(list(self.source()))

    def on_runs_read(self, message: RunsRead) -> None:
        if self.is_attached:
            self.runs, self.loaded = message.runs, True
            self._build()

    def worker_failed(self, failure: WorkerFailed) -> None:
        if self.is_attached:
            self.loaded = True
            self._table.border_subtitle = f"cannot read the runs: {failure.text}"
            self.refresh_bindings()

    # -- drawing --------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return text_style(self, f"runs--{name}")

    def _count(self, n: int, name: str) -> Cell:
        return ((f"{n:,}", self._style(name if n else "muted")),)

    def _cells(self, run: RunSummary, now: float) -> tuple[Cell, ...]:
        counts = run.counts
        bad = sum(counts.get(s, 0) for s in ("error", "cancelled", "lost"))
        finished = run.state == RunState.FINISHED
        style = "error" if finished and bad else state_class(run.state)
        cells: list[Cell] = [  # names read from files: plain text, never markup or escapes
            plain(run.run_id),
            plain(run.job),
            ((run.state, self._style(style)),),
            "--" if run.state == UNREADABLE else f"{run.done:,}/{run.total:,}",
        ]
        if self._wide:
            cells += [self._count(counts.get(key, 0), f"task-{key}") for key, _ in COUNTS]
        cells.append(age(run.created, now))
        return tuple(cells)

    def _build(self) -> None:
        if self._wide is None or not self.is_attached:
            return
        table = self._table
        now = self.clock()
        rows = [self._cells(run, now) for run in self.runs]
        wanted = columns(self._wide)
        if table.columns != wanted:  # the counts come or go: no row may outlive its columns
            row = table.cursor_row
            table.set_rows([])
            table.columns = wanted
            table.set_rows(rows)
            table.move_cursor(row)
        else:
            table.set_rows(rows)
        self.set_class(self.loaded and not self.runs, "-empty")
        self._show_detail()
        self.refresh_bindings()

    def _show_detail(self) -> None:
        run = self.selected
        detail = self.query_one("#runs-detail", Static)
        if run is None:
            detail.update("")
            return
        label = self._style("muted")
        counts = [
            (f"{run.counts.get(key, 0):,} {name}", self._style(f"task-{key}"))
            for key, name in COUNTS
        ]
        queued = run.total - run.done
        parts: list[tuple[str, Style] | str] = [("cluster ", label), run.cluster or "?", "   "]
        for text, style in counts:
            parts += [(text, style if not text.startswith("0 ") else label), "  "]
        if queued:
            parts.append((f"{queued:,} not finished", label))
        body = Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
        if run.state == UNREADABLE:  # a damaged record: what is wrong with it, not its counts
            body = Text(no_wrap=True)
            body.append(plain(run.problem), style=self._style("error"))
        elif run.problem:
            body.append("\n")
            body.append(plain(run.problem), style=label)
        body.append("\n")
        body.append_text(
            Text.assemble(("folder  ", label), str(run.folder), no_wrap=True, overflow="ellipsis")
        )
        detail.update(body)
        detail.border_title = f"{plain(run.job)} · {plain(run.run_id)}"
        detail.border_subtitle = f"ippmon attach {run.run_id}"

    @property
    def selected(self) -> RunSummary | None:
        row = self._table.cursor_row
        return self.runs[row] if self.runs and 0 <= row < len(self.runs) else None

    @on(LineTable.Highlighted, "#runs-table")
    def _highlighted(self, event: LineTable.Highlighted) -> None:
        self._show_detail()

    @on(LineTable.Selected, "#runs-table")
    def _row_selected(self, event: LineTable.Selected) -> None:
        event.stop()
        self.action_open()

    # -- keys -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open":
            return bool(self.runs) or None
        if action == "reload":
            if self.source is None:
                return False  # a fixed list: nothing to reload, so not in the footer
            return not any(w.group == "runs" and w.is_running for w in self.workers) or None
        return True

    def action_open(self) -> None:
        run = self.selected
        if run is not None:
            self.dismiss(run)

    def action_reload(self) -> None:
        if self.source is not None:
            self._read()
            self.refresh_bindings()

    def action_back(self) -> None:
        self.dismiss(None)
