"""What every engine is doing: a grid of small panels for a few engines, a table for many.

A panel is five rows tall, so past `GRID_MAX` engines the board switches to one table row per
engine (updated cell by cell through row keys), which stays usable at 64 engines on 80×24.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Grid
from textual.content import Content
from textual.events import Click, Resize
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

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
RIGHT = {"for", "done", "busy"}  # numbers line up on the right
PAD = 1  # blank cells each side of a column


def table_cells(engine: EngineView) -> tuple[str, ...]:
    """A table row: mark and id, task, for how long, tasks done, busy %, last output line."""
    return (
        f"{engine_mark(engine)} e{engine.id}",
        *engine_task(engine),
        f"{engine.tasks_done:,}",
        f"{engine.busy_pct:.0f}%",
        engine.last_line,
    )


def _fit(text: str, width: int, right: bool = False) -> str:
    text = text.replace("\t", " ")
    if cell_len(text) > width:
        return set_cell_size(text[: width * 2], width - 1) + "…" if width > 1 else text[:width]
    gap = " " * (width - cell_len(text))
    return gap + text if right else text + gap


class EngineTable(ScrollView, can_focus=True):
    """One line per engine under a header that stays put, drawn with Textual's line API: a tick
    redraws only the rows whose text changed. (A DataTable redrew every visible cell whenever
    any cell changed: ~100 ms a tick for 64 engines at 160x48, a visible lag for every key.)
    The last-output column takes whatever width is left."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move(-1000000)", "First", show=False),
        Binding("end", "move(1000000)", "Last", show=False),
    ]

    COMPONENT_CLASSES = {
        "engine-table--header",
        "engine-table--even-row",
        "engine-table--cursor",
        "engine-table--running",
        "engine-table--gone",
    }

    DEFAULT_CSS = """
    EngineTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus {
            background-tint: $foreground 5%;
            & > .engine-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .engine-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .engine-table--even-row { background: $surface-lighten-1 50%; }
        &:dark > .engine-table--even-row { background: $surface-darken-1 40%; }
        & > .engine-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .engine-table--running { color: $success; }
        & > .engine-table--gone { color: $text-muted; }
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rows: list[tuple[str, ...]] = []
        self._alive: list[bool] = []
        self.cursor = 0
        self._strips: dict[tuple, Strip] = {}

    # -- data -----------------------------------------------------------------------------------

    def apply(self, engines: tuple[EngineView, ...]) -> None:
        rows = [table_cells(engine) for engine in engines]
        if len(rows) != len(self._rows):
            self._rows, self._alive = rows, [e.alive for e in engines]
            self.cursor = min(self.cursor, max(0, len(rows) - 1))
            self.virtual_size = Size(self.size.width, len(rows) + 1)
            self.refresh()
            return
        for i, row in enumerate(rows):
            if row != self._rows[i]:
                self._rows[i] = row
                self._alive[i] = engines[i].alive
                self.refresh_line(i + 1)
        if len(self._strips) > 8 * len(rows) + 64:  # rows that changed since: drop them
            self._strips.clear()

    def row_text(self, index: int) -> tuple[str, ...]:
        """The cells of row `index` as shown (for tests)."""
        return self._rows[index]

    # -- keys -----------------------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        self._set_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * max(1, self.size.height - 2))

    def _set_cursor(self, row: int) -> None:
        row = max(0, min(row, len(self._rows) - 1))
        if row == self.cursor:
            return
        old, self.cursor = self.cursor, row
        visible = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False, immediate=True)
        self.refresh_line(old + 1)
        self.refresh_line(row + 1)

    def on_click(self, event: Click) -> None:
        if event.y >= 1:
            self._set_cursor(self.scroll_offset.y + event.y - 1)

    def on_focus(self) -> None:
        self._strips.clear()  # the cursor's style follows focus
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def on_resize(self, event: Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self._rows) + 1)

    # -- drawing --------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._strip(("header", width), width, None)
        index = self.scroll_offset.y + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        return self._strip(
            (self._rows[index], width, index == self.cursor, index % 2, self._alive[index]),
            width,
            index,
        )

    def _strip(self, key: tuple, width: int, index: int | None) -> Strip:
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._draw(width, index)
        return strip

    def _draw(self, width: int, index: int | None) -> Strip:
        fixed = sum(w + 2 * PAD for _, w in COLUMNS)
        last = max(4, width - fixed - 2 * PAD)
        style = self.rich_style
        if index is None:
            style += self.get_component_rich_style("engine-table--header")
            cells = [label for label, _ in COLUMNS] + ["last output"]
        else:
            cells = list(self._rows[index])
            if index % 2 == 1:
                style += self.get_component_rich_style("engine-table--even-row")
            if not self._alive[index]:
                style += self.get_component_rich_style("engine-table--gone")
            if index == self.cursor:
                style += self.get_component_rich_style("engine-table--cursor")
        pad = " " * PAD
        segments = []
        widths = [w for _, w in COLUMNS] + [last]
        names = [name for name, _ in COLUMNS] + ["last output"]
        for n, (name, cell, w) in enumerate(zip(names, cells, widths, strict=True)):
            text = _fit(cell, w, right=name in RIGHT)
            if n == 0 and index is not None and text[:1] == RUNNING and index != self.cursor:
                mark = style + self.get_component_rich_style("engine-table--running")
                segments += [Segment(pad, style), Segment(text[0], mark)]
                segments.append(Segment(text[1:] + pad, style))
            else:
                segments.append(Segment(pad + text + pad, style))
        return Strip(segments).adjust_cell_length(width, style)


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
