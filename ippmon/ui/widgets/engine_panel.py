"""What every engine is doing: a grid of small panels for a few engines, a table for many.

A panel is five rows tall, so past `GRID_MAX` engines the board switches to one table row per
engine (updated cell by cell through row keys), which stays usable at 64 engines on 80×24.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Grid
from textual.content import Content
from textual.events import Resize
from textual.widgets import DataTable, Static

from ippmon.model import EngineView, JobSnapshot, TaskState, format_duration
from ippmon.ui.widgets.text import set_content

GRID_MAX = 8
RUNNING, IDLE, GONE = "▶", "·", "✗"


def engine_task(engine: EngineView) -> tuple[str, str]:
    """What a person reads in the table: ("gone", ""), ("idle", ""), or ("#17", "3.2s")."""
    if not engine.alive:
        return "gone", ""
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
        return "-gone"
    return "-idle" if engine.task is None else "-running"


def engine_mark(engine: EngineView) -> str:
    if not engine.alive:
        return GONE
    return IDLE if engine.task is None else RUNNING


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
    EnginePanel.-gone { border: round $error; color: $text-muted; }
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
        if not engine.alive:
            state = "[b]gone[/b]" + (f" · #{lost} lost" if lost is not None else "")
        elif engine.task is None:
            state = "idle"
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


class EngineGrid(Grid):
    """Panels for up to `GRID_MAX` engines; the column count is chosen in the stylesheet."""

    DEFAULT_CSS = """
    EngineGrid { height: auto; grid-size: 4; grid-rows: 5; grid-gutter: 0 1; }
    EngineGrid.-n1 { grid-size: 1; }
    EngineGrid.-n2 { grid-size: 2; }
    EngineGrid.-n3 { grid-size: 3; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._panels: dict[int, EnginePanel] = {}

    def apply(self, engines: tuple[EngineView, ...], lost: dict[int, int] | None = None) -> None:
        new = []
        lost = lost or {}
        for engine in engines:
            panel = self._panels.get(engine.id)
            if panel is None:
                panel = self._panels[engine.id] = EnginePanel(engine.id)
                new.append(panel)
            panel.apply(engine, lost.get(engine.id))
        if new:
            self.mount_all(new)
        self.set_classes(f"-n{min(len(engines), GRID_MAX)}")


COLUMNS = (("engine", 6), ("task", 7), ("for", 6), ("done", 6), ("busy", 5))
LINE = "line"


class EngineTable(DataTable):
    """One row per engine, keyed by engine id; only the cells that changed are updated.
    The last-output column takes whatever width is left."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    EngineTable { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._rows: dict[int, tuple[str, ...]] = {}
        self._engines: tuple[EngineView, ...] = ()
        self._line_width = 30
        for label, width in COLUMNS:
            self.add_column(label, width=width, key=label)
        self.add_column("last output", width=self._line_width, key=LINE)

    def apply(self, engines: tuple[EngineView, ...]) -> None:
        self._engines = engines
        keys = [key for key, _ in COLUMNS] + [LINE]
        for engine in engines:
            cells = (
                f"{engine_mark(engine)} e{engine.id}",
                *engine_task(engine),
                f"{engine.tasks_done:,}",
                f"{engine.busy_pct:.0f}%",
                engine.last_line,
            )
            old = self._rows.get(engine.id)
            if old is None:
                # Content, not str: a str cell would be parsed as markup.
                self.add_row(*(Content(c) for c in cells), key=str(engine.id))
            else:
                for key, before, after in zip(keys, old, cells, strict=True):
                    if before != after:
                        self.update_cell(str(engine.id), key, Content(after))
            self._rows[engine.id] = cells

    def on_resize(self, event: Resize) -> None:
        fixed = sum(width + 2 * self.cell_padding for _, width in COLUMNS)
        scrollbar = 2
        width = max(10, event.size.width - fixed - 2 * self.cell_padding - scrollbar)
        if width != self._line_width:
            self._line_width = width
            self.remove_column(LINE)
            self.add_column("last output", width=width, key=LINE, default=Content(""))
            self._rows = {id_: cells[:-1] + ("",) for id_, cells in self._rows.items()}
            self.apply(self._engines)


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
