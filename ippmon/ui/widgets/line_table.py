"""A read-only table drawn line by line (Textual's line API), for tables refreshed while a job runs.

A DataTable re-renders every visible cell whenever any cell changes and measures every cell it is
given: with 64 engines at 160x48 a tick cost up to ~110 ms, and building 500 task rows ~80 ms,
all of it on the UI loop. `LineTable` keeps each row as a tuple of cells, caches a drawn line per
(row text, width, cursor, zebra), and on an update redraws only the rows whose cells changed. The
header stays at the top; the column with width 0 takes whatever width is left. A `fit` column is
as wide as its widest cell (a list of a few rows, like the recorded runs, sized by what it holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.events import Click, Resize
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ippmon.ui.widgets.list_keys import LIST_KEYS

Fragment = tuple[str, Style | None]
Cell = str | tuple[Fragment, ...]
"""Plain text, or fragments of text each with its own style (e.g. a coloured state)."""

PAD = 1  # blank cells each side of a column
MIN_REST = 4  # the least the 0-width column keeps


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int = 0  # 0: what is left of the table's width
    right: bool = False  # numbers line up on the right
    fit: bool = False
    """As wide as its widest cell or its label: at least `width`, or for the width-0 column at
    most what is left (measured when the rows change: for tables of a few hundred rows)."""
    most: int = 0  # the widest a fit column gets (0: no limit)


def cell_text(cell: Cell) -> str:
    return cell if isinstance(cell, str) else "".join(text for text, _ in cell)


def _segments(cell: Cell, width: int, right: bool, base: Style) -> list[Segment]:
    text = cell_text(cell).replace("\t", " ")
    length = cell_len(text)
    if length > width:
        cropped = set_cell_size(text, width - 1) + "…" if width > 1 else text[:width]
        return [Segment(cropped, base)]
    gap = Segment(" " * (width - length), base)
    if isinstance(cell, str):
        body = [Segment(text, base)]
    else:
        body = [Segment(part, base + style if style else base) for part, style in cell]
    return [gap, *body] if right else [*body, gap]


class _RowMessage(Message):
    def __init__(self, table: LineTable, row: int) -> None:
        super().__init__()
        self.table = table
        self.row = row

    @property
    def control(self) -> LineTable:
        return self.table


class LineTable(ScrollView, can_focus=True):
    """Rows of cells under a fixed header, with a row cursor; Enter posts `Selected`."""

    class Highlighted(_RowMessage):
        """The cursor moved to row `row`."""

    class Selected(_RowMessage):
        """Enter (or a click on the cursor's row) on row `row`."""

    BINDINGS = [
        Binding("enter", "select", "Open", id="open"),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        *LIST_KEYS,
    ]

    COMPONENT_CLASSES = {
        "line-table--header",
        "line-table--even-row",
        "line-table--cursor",
        "line-table--muted",
    }

    DEFAULT_CSS = """
    LineTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus {
            background-tint: $foreground 5%;
            & > .line-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .line-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .line-table--even-row { background: $surface-lighten-1 50%; }
        &:dark > .line-table--even-row { background: $surface-darken-1 40%; }
        & > .line-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .line-table--muted { color: $text-muted; }
    }
    """

    def __init__(self, columns: Sequence[Column] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self._columns = tuple(columns)
        self._rows: list[tuple[Cell, ...]] = []
        self._muted: list[bool] = []
        self._cursor = 0
        self._strips: dict[tuple, Strip] = {}
        self._fitted = self._measure()  # the content width of each fit column

    # -- data -----------------------------------------------------------------------------------

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    @columns.setter
    def columns(self, columns: Sequence[Column]) -> None:
        if tuple(columns) != self._columns:
            self._columns = tuple(columns)
            self._fitted = self._measure()
            self._strips.clear()
            self.refresh()

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def row(self, index: int) -> tuple[Cell, ...]:
        return self._rows[index]

    def row_texts(self, index: int) -> tuple[str, ...]:
        """Row `index` as plain text, cell by cell."""
        return tuple(cell_text(cell) for cell in self._rows[index])

    def set_rows(
        self, rows: Sequence[tuple[Cell, ...]], muted: Sequence[bool] | None = None
    ) -> None:
        """Show these rows (`muted`: rows drawn dimmed). Only rows that changed are redrawn."""
        muted = list(muted) if muted is not None else [False] * len(rows)
        if len(rows) != len(self._rows):
            self._rows, self._muted = list(rows), muted
            self._cursor = min(self._cursor, max(0, len(rows) - 1))
            self.virtual_size = Size(self.size.width, len(rows) + 1)
            self.refresh()
            self.refresh_bindings()  # Enter applies only to a row
        else:
            for i, (row, dim) in enumerate(zip(rows, muted, strict=True)):
                if row != self._rows[i] or dim != self._muted[i]:
                    self._rows[i], self._muted[i] = row, dim
                    self.refresh_line(i + 1)
        fitted = self._measure()
        if fitted != self._fitted:  # a fit column's width changed: every line moves
            self._fitted = fitted
            self._strips.clear()
            self.refresh()
        if len(self._strips) > 4 * len(rows) + 64:  # drawn lines of rows since changed
            self._strips.clear()

    # -- the cursor -----------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        row = max(0, min(row, len(self._rows) - 1))
        old, self._cursor = self._cursor, row
        visible = max(1, self.scrollable_content_region.height - 1)
        top = self.scroll_offset.y
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False, immediate=True)
        if old != row:
            self.refresh_line(old + 1)
            self.refresh_line(row + 1)
            self.post_message(self.Highlighted(self, row))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "select":
            return bool(self._rows) or None
        return True

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self._cursor + direction * max(1, self.size.height - 2))

    def action_select(self) -> None:
        if self._rows:
            self.post_message(self.Selected(self, self._cursor))

    def on_click(self, event: Click) -> None:
        row = self.scroll_offset.y + event.y - 1
        if event.y >= 1 and 0 <= row < len(self._rows):
            if row == self._cursor and event.chain >= 2:
                self.action_select()
            self.move_cursor(row)

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

    def _measure(self) -> tuple[int, ...]:
        """The width of each fit column's widest cell or label, capped at its `most`."""
        fitted = []
        for i, column in enumerate(self._columns):
            if column.fit:
                cells = (cell_len(cell_text(row[i])) for row in self._rows)
                widest = max([cell_len(column.label), *cells])
                fitted.append(min(widest, column.most) if column.most else widest)
        return tuple(fitted)

    def widths(self, width: int) -> list[int]:
        """Each column's width at a table width of `width` (the 0-width one takes the rest).
        When the columns would not fit, the text columns (fit, with a `most`) give way, the
        rightmost first, each down to its own `width`: their cells are cut with "…" rather
        than the last columns falling off the table's edge."""
        columns = self._columns
        fitted = iter(self._fitted)
        wanted = [next(fitted) if c.fit else c.width for c in columns]
        wanted = [max(c.width, w) if c.width else w for c, w in zip(columns, wanted)]
        fixed = sum(w + 2 * PAD for c, w in zip(columns, wanted) if c.width)
        rest = sum(2 * PAD for c in columns if not c.width)
        over = fixed + rest + (MIN_REST if rest else 0) - width
        for i in reversed(range(len(columns))):
            c = columns[i]
            if over <= 0:
                break
            if c.most and c.width:
                cut = min(over, wanted[i] - c.width)
                wanted[i] -= cut
                fixed -= cut
                over -= cut
        left = max(MIN_REST, width - fixed - rest)
        return [w if c.width else min(left, w) if c.fit else left for c, w in zip(columns, wanted)]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._strip(("header", width), width, None)
        index = self.scroll_offset.y + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        key = (self._rows[index], width, index == self._cursor, index % 2, self._muted[index])
        return self._strip(key, width, index)

    def _strip(self, key: tuple, width: int, index: int | None) -> Strip:
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._draw(width, index)
        return strip

    def _draw(self, width: int, index: int | None) -> Strip:
        style = self.rich_style
        cells: Sequence[Cell]
        if index is None:
            style += self.get_component_rich_style("line-table--header")
            cells = [c.label for c in self._columns]
        else:
            cells = self._rows[index]
            if index % 2 == 1:
                style += self.get_component_rich_style("line-table--even-row")
            if self._muted[index]:
                style += self.get_component_rich_style("line-table--muted")
            if index == self._cursor:
                style += self.get_component_rich_style("line-table--cursor")
                cells = [cell_text(cell) for cell in cells]  # the cursor's colours win
        pad = Segment(" " * PAD, style)
        segments: list[Segment] = []
        for column, cell, w in zip(self._columns, cells, self.widths(width), strict=True):
            segments += [pad, *_segments(cell, w, column.right, style), pad]
        return Strip(segments).adjust_cell_length(width, style)
