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
from textual.widgets import DataTable, Footer, Header, Static

from ippmon.model import RunState, format_duration
from ippmon.runs import UNREADABLE, RunSummary
from ippmon.terminal import plain
from ippmon.ui.messages import RunsRead
from ippmon.ui.screens.task_detail import text_style
from ippmon.ui.widgets.list_keys import LIST_KEYS
from ippmon.ui.widgets.states import STATE_CLASSES, state_rules
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed

WIDE = 120  # columns from which every count gets its own column
COUNTS = (("ok", "ok"), ("error", "failed"), ("cancelled", "cancelled"), ("lost", "lost"))
"""A run's counts shown: the key in `RunSummary.counts` (a TaskState value), and its column."""
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


class RunTable(DataTable[Text]):
    """The runs table; its Enter binding is named so the Footer shows it."""

    BINDINGS = [Binding("enter", "select_cursor", "Attach", id="open"), *LIST_KEYS]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "select_cursor":
            return self.row_count > 0 or None
        return True

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=self.row_count - 1)


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

    DEFAULT_CSS = """
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
    RunsScreen > .runs--running { color: $text-primary; text-style: bold; }
    RunsScreen > .runs--detached { color: $text-warning; }
    RunsScreen > .runs--finished { color: $text-success; }
    RunsScreen > .runs--error { color: $text-error; }
    RunsScreen > .runs--muted { color: $text-muted; }
    """ + state_rules("RunsScreen > .runs--task-{}")

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
        table = RunTable(id="runs-table", cursor_type="row", zebra_stripes=True)
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
        self.query_one("#runs-table").focus()
        if self.source is not None:
            self.action_reload()

    def on_resize(self, event: Resize) -> None:
        wide = event.size.width >= WIDE
        if wide != self._wide:
            self._wide = wide
        self.call_after_refresh(self._build)  # once the table has its new width

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
            table = self.query_one("#runs-table", DataTable)
            table.border_subtitle = f"cannot read the runs: {failure.text}"
            self.refresh_bindings()

    # -- drawing --------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return text_style(self, f"runs--{name}")

    def _count(self, n: int, name: str) -> Text:
        return Text(f"{n:,}", style=self._style(name if n else "muted"), justify="right")

    def _cells(self, run: RunSummary, now: float) -> list[Text]:
        counts = run.counts
        bad = sum(counts.get(s, 0) for s in ("error", "cancelled", "lost"))
        finished = run.state == RunState.FINISHED
        style = "error" if finished and bad else state_class(run.state)
        state = Text(run.state, style=self._style(style))
        cells = [  # names read from files: shown as plain text, never as markup or escapes
            Text(plain(run.run_id)),
            Text(plain(run.job), no_wrap=True, overflow="ellipsis"),
            state,
            Text(
                "--" if run.state == UNREADABLE else f"{run.done:,}/{run.total:,}", justify="right"
            ),
        ]
        if self._wide:
            cells += [
                *(self._count(counts.get(key, 0), f"task-{key}") for key, _ in COUNTS),
            ]
        cells.append(Text(age(run.created, now), justify="right"))
        return cells

    def _build(self) -> None:
        if self._wide is None:
            return
        table = self.query_one("#runs-table", DataTable)
        row = table.cursor_row
        now = self.clock()
        rows = [self._cells(run, now) for run in self.runs]
        table.clear(columns=True)
        table.add_column("run id", key="run")
        table.add_column("job", key="job", width=self._job_width(rows))
        table.add_column("state", key="state")
        table.add_column(Text("done", justify="right"), key="done")
        if self._wide:
            for key, label in COUNTS:
                table.add_column(Text(label, justify="right"), key=key)
        table.add_column(Text("created", justify="right"), key="age")
        for run, cells in zip(self.runs, rows):
            table.add_row(*cells, key=run.run_id)
        self.set_class(self.loaded and not self.runs, "-empty")
        if self.runs:
            table.move_cursor(row=min(max(row, 0), len(self.runs) - 1), animate=False)
        self._show_detail()
        self.refresh_bindings()

    def _job_width(self, rows: list[list[Text]]) -> int:
        """What the other columns leave of the table's width, within 8..24."""
        table = self.query_one("#runs-table", DataTable)
        labels = ["run id", "job", "state", "done"]
        labels += [label for _, label in COUNTS] if self._wide else []
        labels.append("created")
        widths = [len(label) for label in labels]
        for cells in rows:
            widths = [max(w, cell.cell_len) for w, cell in zip(widths, cells)]
        other = sum(widths) - widths[1] + 2 * table.cell_padding * len(widths)
        wanted = max(len("job"), widths[1])
        return max(8, min(24, wanted, table.scrollable_content_region.width - other))

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
        row = self.query_one("#runs-table", DataTable).cursor_row
        return self.runs[row] if self.runs and 0 <= row < len(self.runs) else None

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#runs-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
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
