"""The parts of `ippmon top`: the totals line, what this controller cannot tell, the jobs of
every client, and every engine (a grid of panels for a few, one table row each beyond).

Each renders a `TopSnapshot` it is handed (`apply`); every number comes from the snapshot.
Names from other clients (labels, users, output) are shown as text, never as markup.
"""

from __future__ import annotations

from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.content import Content
from textual.events import Resize
from textual.widgets import Static

from ippmon.model import TaskState, format_duration
from ippmon.topmodel import TopEngine, TopJob, TopSnapshot, short_msg_id
from ippmon.ui.widgets.engine_panel import GONE, GRID_MAX, IDLE, RUNNING, PanelGrid
from ippmon.ui.widgets.line_table import Cell, Column, LineTable
from ippmon.ui.widgets.states import state_rules
from ippmon.ui.widgets.text import set_content

BAR_FULL, BAR_EMPTY = "━", "─"


WIDE = 110  # columns from which the long forms fit


def totals_text(snap: TopSnapshot, *, wide: bool = True) -> Content:
    """`engines 2 busy 0 idle │ queue 5 · running 2 · done 10 · failed 3 · 4.2 tasks/s`: done
    and failed since watching (`wide`: says since when; narrow: shorter words)."""
    gone = snap.engine_count("gone")
    rate = f"{snap.tasks_per_s:.1f}" if snap.tasks_per_s > 0 else "--"
    if wide:
        head, run = "engines ", "running"
        tail = " [dim]since watching $since[/dim] · $rate tasks/s"
    else:
        head, run, tail = "", "run", " · $rate/s"
    return Content.from_markup(
        head + "[b]$busy[/b] busy [b]$idle[/b] idle$gone [dim]│[/dim] queue [b]$queue[/b]"
        f" · {run} [b]$running[/b] · done [b $text-success]$done[/] · failed "
        "[b $text-error]$failed[/]" + tail,
        busy=str(snap.engine_count("busy")),
        idle=str(snap.engine_count("idle")),
        gone=f" {gone} gone" if gone else "",
        queue=f"{snap.unassigned:,}",
        running=f"{snap.running:,}",
        done=f"{snap.done:,}",
        failed=f"{snap.failed:,}",
        rate=rate,
        since=format_duration(snap.watching_s),
    )


class TopStatus(Static):
    """The totals since watching, in one line."""

    DEFAULT_CSS = """
    TopStatus { height: 1; padding: 0 1; background: $boost; text-wrap: nowrap;
                text-overflow: ellipsis; }
    """

    def apply(self, snap: TopSnapshot) -> None:
        set_content(self, totals_text(snap, wide=self.size.width >= WIDE))


class Limits(Static):
    """What this controller does not let the view know: the first in one line, all on `i`."""

    DEFAULT_CSS = """
    Limits { height: auto; max-height: 1; padding: 0 1; color: $text-warning;
             text-wrap: nowrap; text-overflow: ellipsis; }
    Limits.-all { max-height: 8; text-wrap: wrap; }
    Limits.-none { display: none; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.limits: tuple[str, ...] = ()
        self.expanded = False

    def apply(self, snap: TopSnapshot) -> None:
        self.limits = snap.limits
        self._show()

    def toggle(self) -> None:
        self.expanded = not self.expanded
        self._show()

    def _show(self) -> None:
        self.set_class(not self.limits, "-none")
        self.set_class(self.expanded, "-all")
        if not self.limits:
            return
        if self.expanded:
            text = "\n".join(f"cannot know: {limit}" for limit in self.limits)
        else:
            more = len(self.limits) - 1
            text = f"cannot know: {self.limits[0]}"
            if more:
                text = f"(i: {more} more) {text}"
        set_content(self, Content(text))


# -- jobs -------------------------------------------------------------------------------------


def job_columns(wide: bool) -> tuple[Column, ...]:
    """The jobs table's columns; narrow ones cut long names and users shorter (and the bar,
    left a few cells, goes without its label)."""
    return (
        Column("job", "job", 6, fit=True, most=28 if wide else 14),
        Column("user", "user", 4, fit=True, most=12 if wide else 8),
        Column("age", "age", 5, right=True, fit=True),
        Column("bar", "progress" if wide else ""),
        Column("done", "done/all", 4, right=True, fit=True),
        Column("queued", "queued", 3, right=True, fit=True),
        Column("running", "run", 3, right=True, fit=True),
        Column("failed", "failed", 3, right=True, fit=True),
        Column("rate", "/s", 3, right=True, fit=True),
        Column("eta", "ETA", 3, right=True, fit=True),
    )


BAR = 3  # the progress column: as wide as the others leave


def job_bar(job: TopJob, width: int, ok: Style | None, bad: Style | None) -> Cell:
    """Finished tasks as a bar `width` cells wide: succeeded, then failed, then what is left."""
    if width <= 0 or job.submitted <= 0:
        return ""
    done = round(width * job.done / job.submitted)
    failed = min(width - done, round(width * job.failed / job.submitted))
    if job.failed and not failed and done:  # a failure is always visible
        done, failed = done - 1, 1
    left = width - done - failed
    return ((BAR_FULL * done, ok), (BAR_FULL * failed, bad), (BAR_EMPTY * left, None))


def job_cells(
    job: TopJob,
    now: float,
    bar: Cell,
    ippmon: Style | None = None,
    *,
    wide: bool = True,
    name: str | None = None,
) -> tuple[Cell, ...]:
    """A job's row, named `name` (default: its title); an ippmon job's name is marked so
    (`wide`: there is room for the mark)."""
    name = job.title if name is None else name
    title: Cell = ((name, None), (" ippmon", ippmon)) if job.ippmon and wide else name
    age = format_duration(now - job.first_seen) if job.first_seen else "--"
    rate = f"{job.tasks_per_s:.1f}" if job.tasks_per_s > 0 else "--"
    return (
        title,
        job.user,
        age,
        bar,
        f"{job.finished:,}/{job.submitted:,}",
        f"{job.queued:,}",
        f"{job.running:,}",
        f"{job.failed:,}",
        rate,
        format_duration(job.eta_s) if job.eta_s is not None else "--",
    )


class JobTable(LineTable):
    """A row per job (client session and label); Enter on a row filters the view to it."""

    COMPONENT_CLASSES = LineTable.COMPONENT_CLASSES | {
        "job-table--ok",
        "job-table--error",
        "job-table--ippmon",
    }
    BINDINGS = [
        Binding(
            "enter",
            "select",
            "Only this job",
            id="top-job",
            tooltip="Only the highlighted job's engines and output (again: every job)",
        )
    ]
    DEFAULT_CSS = (
        state_rules("JobTable > .job-table--{}", states=(TaskState.OK, TaskState.ERROR))
        + """
    JobTable > .job-table--ippmon { color: $text-accent; }
    """
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(job_columns(wide=False), **kwargs)
        self.jobs: tuple[TopJob, ...] = ()
        self.names: list[str] = []
        self.now = 0.0

    def apply(self, snap: TopSnapshot) -> None:
        self.jobs, self.now = snap.jobs, snap.taken
        self.names = [snap.title_of(job.id) for job in snap.jobs]
        self._show()

    def job_at(self, row: int) -> TopJob | None:
        return self.jobs[row] if 0 <= row < len(self.jobs) else None

    def on_resize(self, event: Resize) -> None:
        super().on_resize(event)
        self._show()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.jobs:
            self._show()  # the bar's colours come from the theme

    def _show(self) -> None:
        ok = self.get_component_rich_style("job-table--ok", partial=True)
        bad = self.get_component_rich_style("job-table--error", partial=True)
        mine = self.get_component_rich_style("job-table--ippmon", partial=True)
        width = self.scrollable_content_region.width
        wide = width >= WIDE
        self.columns = job_columns(wide)
        rows = [
            job_cells(job, self.now, "", mine, wide=wide, name=name)
            for job, name in zip(self.jobs, self.names, strict=True)
        ]
        self.set_rows(rows)  # measures the fit columns: the bar takes what they leave
        width = self.widths(width)[BAR]
        rows = [
            (*row[:BAR], job_bar(job, width, ok, bad), *row[BAR + 1 :])
            for job, row in zip(self.jobs, rows, strict=True)
        ]
        self.set_rows(rows)


# -- engines ----------------------------------------------------------------------------------


def engine_mark(engine: TopEngine) -> str:
    return {"busy": RUNNING, "gone": GONE}.get(engine.state, IDLE)


def engine_doing(engine: TopEngine, snap: TopSnapshot) -> tuple[str, str, str]:
    """(job title, short msg_id, running for) of a busy engine; ("gone" | "idle", "", "")."""
    if engine.state != "busy":
        return engine.state, "", ""
    since = format_duration(engine.running_for_s) if engine.running_for_s is not None else "--"
    return snap.title_of(engine.job) or "?", short_msg_id(engine.msg_id), since


class TopEnginePanel(Static):
    """One engine: its task (job, msg_id, for how long), done and failed, busy %, last line."""

    DEFAULT_CSS = """
    TopEnginePanel {
        height: 5;
        border: round $panel-lighten-2;
        border-title-align: left;
        border-subtitle-align: right;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TopEnginePanel.-busy { border: round $success; }
    TopEnginePanel.-gone { border: round $error; color: $text-muted; }
    """

    def __init__(self, engine_id: int) -> None:
        super().__init__(id=f"top-engine-{engine_id}", classes="-idle")
        self.border_title = f"e{engine_id}"

    def apply(self, engine: TopEngine, snap: TopSnapshot) -> None:
        self.set_classes(f"-{engine.state}")
        self.border_subtitle = f"{engine.busy_pct:.0f}% busy"
        job, task, since = engine_doing(engine, snap)
        if engine.state == "gone":
            state = "[b]gone[/b]"
        elif engine.state == "idle":
            state = "idle"
        else:
            state = "[b]▶ $job[/b] $task for $time"
        set_content(
            self,
            Content.from_markup(
                state + "\n$done done · $failed failed\n[dim]$line[/dim]",
                job=job,
                task=task,
                time=since,
                done=f"{engine.done:,}",
                failed=f"{engine.failed:,}",
                line=engine.last_line or "-",
            ),
        )


class TopEngineGrid(PanelGrid):
    def apply(self, engines: tuple[TopEngine, ...], snap: TopSnapshot) -> None:
        panels = self.place([e.id for e in engines], TopEnginePanel)
        for engine, panel in zip(engines, panels):
            assert isinstance(panel, TopEnginePanel)
            panel.apply(engine, snap)


ENGINE_COLUMNS = (
    Column("engine", "engine", 6),
    Column("job", "job", 4, fit=True, most=16),
    Column("task", "task", 7),
    Column("for", "for", 6, right=True),
    Column("done", "done", 5, right=True, fit=True),
    Column("failed", "failed", 6, right=True),
    Column("busy", "busy", 5, right=True),
    Column("line", "last output"),
)


class TopEngineTable(LineTable):
    """One row per engine, for many engines."""

    COMPONENT_CLASSES = LineTable.COMPONENT_CLASSES | {"top-engines--busy"}
    DEFAULT_CSS = """
    TopEngineTable > .top-engines--busy { color: $success; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(ENGINE_COLUMNS, **kwargs)
        self.engines: tuple[TopEngine, ...] = ()
        self.snap: TopSnapshot | None = None

    def apply(self, engines: tuple[TopEngine, ...], snap: TopSnapshot) -> None:
        self.engines, self.snap = engines, snap
        self._show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "select"  # nothing to open: no Enter in the footer

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.snap is not None:
            self._show()

    def _show(self) -> None:
        snap = self.snap
        if snap is None:
            return
        busy = self.get_component_rich_style("top-engines--busy", partial=True)
        rows: list[tuple[Cell, ...]] = []
        for e in self.engines:
            mark = engine_mark(e)
            job, task, since = engine_doing(e, snap)
            rows.append(
                (
                    ((mark, busy if mark == RUNNING else None), (f" e{e.id}", None)),
                    job,
                    task,
                    since,
                    f"{e.done:,}",
                    f"{e.failed:,}",
                    f"{e.busy_pct:.0f}%",
                    e.last_line,
                )
            )
        self.set_rows(rows, muted=[e.state == "gone" for e in self.engines])


class TopEngineBoard(Container):
    """The grid or the table, by how many engines the cluster has (not how many are shown:
    filtering to a job does not switch between them)."""

    DEFAULT_CSS = """
    TopEngineBoard { height: auto; }
    TopEngineBoard.-table { height: 1fr; min-height: 4; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._board: TopEngineGrid | TopEngineTable = TopEngineGrid()

    def compose(self) -> ComposeResult:
        yield self._board

    def apply(self, snap: TopSnapshot, job: str | None = None) -> None:
        """Every engine, or (`job`) those running that job's tasks now."""
        as_table = len(snap.engines) > GRID_MAX
        if as_table != isinstance(self._board, TopEngineTable):
            self._board.remove()
            self._board = TopEngineTable() if as_table else TopEngineGrid()
            self.mount(self._board)
            self.set_class(as_table, "-table")
        engines = snap.engines if job is None else tuple(e for e in snap.engines if e.job == job)
        self._board.apply(engines, snap)
