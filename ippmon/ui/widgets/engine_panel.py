"""What every engine is doing: a grid of small panels for a few engines, a table for many.

A panel is five rows tall, so past `GRID_MAX` engines the board switches to one table row per
engine (updated cell by cell through row keys), which stays usable at 64 engines on 80×24.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Container, Grid
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from ippmon.model import EngineView, JobSnapshot, TaskState, format_duration
from ippmon.ui.widgets.line_table import Cell, Column, LineTable
from ippmon.ui.widgets.text import set_content

GRID_MAX = 8
RUNNING, IDLE, GONE, LEFT, STRAGGLER = "▶", "·", "✗", "–", "!"


def engine_task(engine: EngineView) -> tuple[str, str]:
    """What a person reads in the table: ("gone", ""), ("left", ""), ("idle", ""), or
    ("#17", "3.2s"). An engine that unregistered while idle has left; one that took a task with
    it is gone."""
    if not engine.alive:
        return ("left" if engine.left else "gone"), ""
    if engine.task is None:
        return "idle", ""
    return f"#{engine.task}", format_duration(engine.running_for_s)


def lost_tasks(snapshot: JobSnapshot) -> dict[int, int]:
    """Engine id -> the task that was lost with it, among the recent failures the snapshot
    carries (a gone engine's panel says which task went with it)."""
    return {
        f.engine: f.index
        for f in snapshot.failures
        if f.state is TaskState.LOST and f.engine is not None
    }


def engine_class(engine: EngineView) -> str:
    if not engine.alive:
        return "-left" if engine.left else "-gone"
    if engine.task is None:
        return "-idle"
    return "-running -straggler" if engine.straggler else "-running"


def engine_mark(engine: EngineView) -> str:
    if not engine.alive:
        return LEFT if engine.left else GONE
    if engine.task is None:
        return IDLE
    return STRAGGLER if engine.straggler else RUNNING


class EnginePanel(Static):
    """One engine: state, tasks done, busy %, last output line (never parsed as markup)."""

    DEFAULT_CSS = """
    EnginePanel {
        height: 5;
        border: round $panel-lighten-2;
        border-title-align: left;
        border-subtitle-align: right;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    EnginePanel.-running { border: round $success; }
    EnginePanel.-running > .engine--state { color: $success; }
    EnginePanel.-straggler { border: round $warning; }
    EnginePanel.-gone { border: round $error; color: $text-muted; }
    EnginePanel.-left { color: $text-muted; }
    """

    def __init__(self, engine_id: int) -> None:
        super().__init__(id=f"engine-{engine_id}", classes="-idle")
        self.border_title = f"e{engine_id}"
        self._last: tuple[EngineView, int | None] | None = None

    def apply(self, engine: EngineView, lost: int | None = None) -> None:
        """`lost`: the task lost with this engine, when known."""
        if (engine, lost) == self._last:
            return
        self._last = (engine, lost)
        self.set_classes(engine_class(engine))
        self.border_subtitle = f"{engine.busy_pct:.0f}% busy"
        if engine.left:
            state = "[b]left[/b]"
        elif not engine.alive:
            state = "[b]gone[/b]" + (f" · #{lost} lost" if lost is not None else "")
        elif engine.task is None:
            state = "idle"
        elif engine.straggler:
            state = "[b]▶ #$task[/b] for $time [b $text-warning]straggler[/]"
        else:
            state = "[b]▶ #$task[/b] for $time"
        set_content(
            self,
            Content.from_markup(
                state + "\n$done done\n[dim]$line[/dim]",
                task=str(engine.task),
                time=format_duration(engine.running_for_s),
                done=f"{engine.tasks_done:,}",
                line=engine.last_line or "-",
            ),
        )


class PanelGrid(Grid):
    """A panel per engine, for up to `GRID_MAX` engines (the column count is chosen in the
    stylesheet): panels of new engines are mounted, those of engines no longer given removed."""

    DEFAULT_CSS = """
    PanelGrid { height: auto; grid-size: 4; grid-rows: 5; grid-gutter: 0 1; }
    PanelGrid.-n1 { grid-size: 1; }
    PanelGrid.-n2 { grid-size: 2; }
    PanelGrid.-n3 { grid-size: 3; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._panels: dict[int, Widget] = {}

    def place(self, ids: list[int], make: Callable[[int], Widget]) -> list[Widget]:
        """The panels of engines `ids`, in that order (made with `make` when new)."""
        for eid in [eid for eid in self._panels if eid not in ids]:
            self._panels.pop(eid).remove()
        new, panels = [], []
        for eid in ids:
            panel = self._panels.get(eid)
            if panel is None:
                panel = self._panels[eid] = make(eid)
                new.append(panel)
            panels.append(panel)
        if new:
            self.mount_all(new)
        self.set_classes(f"-n{max(1, min(len(ids), GRID_MAX))}")
        return panels


class EngineGrid(PanelGrid):
    def apply(self, engines: tuple[EngineView, ...], lost: dict[int, int] | None = None) -> None:
        lost = lost or {}
        panels = self.place([e.id for e in engines], EnginePanel)
        for engine, panel in zip(engines, panels):
            assert isinstance(panel, EnginePanel)
            panel.apply(engine, lost.get(engine.id))


COLUMNS = (
    Column("engine", "engine", 6),
    Column("task", "task", 7),
    Column("for", "for", 6, right=True),
    Column("done", "done", 6, right=True),
    Column("busy", "busy", 5, right=True),
    Column("line", "last output"),
)


class EngineTable(LineTable):
    """One row per engine (for many engines), redrawn row by row as they change."""

    COMPONENT_CLASSES = LineTable.COMPONENT_CLASSES | {
        "engine-table--running",
        "engine-table--straggler",
    }
    DEFAULT_CSS = """
    EngineTable > .engine-table--running { color: $success; }
    EngineTable > .engine-table--straggler { color: $text-warning; text-style: bold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(COLUMNS, **kwargs)
        self.engines: tuple[EngineView, ...] = ()

    def apply(self, engines: tuple[EngineView, ...]) -> None:
        self.engines = engines
        self._show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "select"  # nothing to open: no Enter in the footer

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.engines:
            self._show()  # the mark's colour comes from the theme

    def _show(self) -> None:
        running = self.get_component_rich_style("engine-table--running", partial=True)
        straggler = self.get_component_rich_style("engine-table--straggler", partial=True)
        self.set_rows(
            [table_cells(engine, running, straggler) for engine in self.engines],
            muted=[not engine.alive for engine in self.engines],
        )


def table_cells(
    engine: EngineView, running: Style | None = None, straggler: Style | None = None
) -> tuple[Cell, ...]:
    """A table row: mark and id, task, for how long, tasks done, busy %, last output line. A
    straggler's mark is `!` and its task and time are in the straggler style."""
    mark = engine_mark(engine)
    style = {RUNNING: running, STRAGGLER: straggler}.get(mark)
    task, since = engine_task(engine)
    if mark == STRAGGLER:
        return (
            ((mark, style), (f" e{engine.id}", None)),
            ((task, straggler),),
            ((since, straggler),),
            f"{engine.tasks_done:,}",
            f"{engine.busy_pct:.0f}%",
            engine.last_line,
        )
    return (
        ((mark, style), (f" e{engine.id}", None)),
        task,
        since,
        f"{engine.tasks_done:,}",
        f"{engine.busy_pct:.0f}%",
        engine.last_line,
    )


class EngineBoard(Container):
    """Holds the grid or the table, whichever fits the engine count."""

    DEFAULT_CSS = """
    EngineBoard { height: auto; }
    EngineBoard.-table { height: 1fr; min-height: 6; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._board: EngineGrid | EngineTable = EngineGrid()

    def compose(self) -> ComposeResult:
        yield self._board

    def apply(self, snapshot: JobSnapshot) -> None:
        engines = snapshot.engines
        as_table = len(engines) > GRID_MAX
        if as_table != isinstance(self._board, EngineTable):
            self._board.remove()
            self._board = EngineTable() if as_table else EngineGrid()
            self.mount(self._board)
            self.set_class(as_table, "-table")
        if isinstance(self._board, EngineGrid):
            self._board.apply(engines, lost_tasks(snapshot))
        else:
            self._board.apply(engines)
