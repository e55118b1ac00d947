"""The task stream drawn: a row per engine, a cell per slice of time, coloured by the tasks'
states; under it the time axis and what the colours mean.

The job bins its tasks (`ippmon.stream`); `StreamChart` draws the rows it gets with Textual's line
API, one strip per visible row, each a few segments (a run of equal cells is one segment), so a
redraw costs rows x width characters. `TaskStreamPanel` asks the job for the stream from a thread
worker (once a second while the job runs, never again once it finished) at the width it has.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static
from textual.worker import get_current_worker

from ippmon.model import TaskState
from ippmon.protocols import JobHandle
from ippmon.stream import ABSENT, IDLE, LETTERS, STATE_OF, StreamRow, TaskStream, Zoom, axis
from ippmon.text import one_line
from ippmon.ui.widgets.states import colour
from ippmon.ui.widgets.text import set_content

BUSY_BLOCK, PART_BLOCK, IDLE_MARK = "█", "▄", "·"
# Lost shares failed's colour (both are failures): it is told apart by its shading.
LOST_BLOCK, LOST_PART = "▓", "▒"
GONE, LEFT = "✗", "–"
LEGEND_ORDER = (TaskState.OK, TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST)
STREAM_INTERVAL_S = 1.0  # how often a running job's stream is asked for


def glyph(cell: str) -> str:
    """What a cell looks like: a full block (busy), a half block (partly busy), `·` (idle); a
    lost task's cells shaded."""
    if cell == IDLE:
        return IDLE_MARK
    if cell == ABSENT:
        return " "
    if cell.lower() == LETTERS[TaskState.LOST]:
        return LOST_BLOCK if cell.isupper() else LOST_PART
    return BUSY_BLOCK if cell.isupper() else PART_BLOCK


def row_label(row: StreamRow, width: int) -> str:
    """`✗e3 ` for an engine gone with a task, `–e3 ` for one that left, ` e3 ` otherwise."""
    mark = " " if row.alive else (LEFT if row.left else GONE)
    return f"{mark}e{row.engine}".ljust(width)


def label_width(rows: tuple[StreamRow, ...]) -> int:
    return max((len(f"e{row.engine}") for row in rows), default=2) + 2


@dataclass
class StreamUpdate(Message):
    """A fresh stream from the job (a newer one replaces a queued older one)."""

    stream: TaskStream
    bubble = False

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StreamUpdate)


@dataclass
class StreamFailed(Message):
    error: str
    bubble = False


class StreamChart(ScrollView, can_focus=True):
    """The rows of a `TaskStream`, scrolled with ↑ ↓ (j k), PgUp PgDn, Home End."""

    BINDINGS = [
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "First", show=False),
        Binding("end,G", "scroll_end", "Last", show=False),
    ]
    COMPONENT_CLASSES = {
        *(f"stream--{state.value}" for state in LETTERS),
        "stream--idle",
        "stream--label",
        "stream--gone",
    }
    DEFAULT_CSS = """
    StreamChart {
        height: auto;
        max-height: 100%;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
    }
    StreamChart > .stream--idle { color: $text-muted 40%; }
    StreamChart > .stream--label { color: $text-muted; }
    StreamChart > .stream--gone { color: $text-error; }
    """ + "\n".join(
        f"StreamChart > .stream--{state.value} {{ color: {colour(state)}; }}" for state in LETTERS
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stream: TaskStream | None = None
        self.label_width = 5
        self._styles: dict[str, Style] = {}
        self._strips: dict[tuple[int, StreamRow], Strip] = {}

    @property
    def cells_width(self) -> int:
        """How many cells fit beside the labels (what to ask the job for)."""
        return max(10, self.scrollable_content_region.width - self.label_width)

    @property
    def shown(self) -> tuple[int, int, int]:
        """(first row shown, 1-based; last row shown; rows)."""
        n = len(self.stream.rows) if self.stream is not None else 0
        top = int(self.scroll_offset.y)
        height = self.scrollable_content_region.height or n
        return (min(n, top + 1), min(n, top + height), n)

    def apply(self, stream: TaskStream) -> None:
        old = self.stream
        self.stream = stream
        self.label_width = label_width(stream.rows)
        if old is None or len(old.rows) != len(stream.rows):
            self.virtual_size = Size(self.size.width, len(stream.rows))
            self.refresh(layout=True)  # an auto height follows the rows
        if len(self._strips) > 4 * len(stream.rows) + 64:
            self._strips.clear()
        self.refresh()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.stream.rows) if self.stream is not None else 1

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        panel = self.parent
        if isinstance(panel, TaskStreamPanel):
            panel.say_where()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()

    def on_resize(self, event: Resize) -> None:
        rows = len(self.stream.rows) if self.stream is not None else 0
        self.virtual_size = Size(event.size.width, rows)
        self._strips.clear()

    def _style(self, cell: str) -> Style:
        style = self._styles.get(cell)
        if style is None:
            base = self.rich_style
            if cell == IDLE:
                name = "stream--idle"
            elif cell == ABSENT:
                name = ""
            else:
                name = f"stream--{STATE_OF[cell.lower()].value}"
            style = base + self.get_component_rich_style(name) if name else base
            self._styles[cell] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        stream = self.stream
        index = int(self.scroll_offset.y) + y
        if stream is None or index >= len(stream.rows):
            return Strip.blank(width, self.rich_style)
        row = stream.rows[index]
        key = (width, row)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._draw(row, width)
        return strip

    def _draw(self, row: StreamRow, width: int) -> Strip:
        gone = not row.alive and not row.left
        label_style = self.get_component_rich_style("stream--gone" if gone else "stream--label")
        segments = [Segment(row_label(row, self.label_width), self.rich_style + label_style)]
        cells = row.cells
        i = 0
        while i < len(cells):
            cell = cells[i]
            j = i + 1
            while j < len(cells) and cells[j] == cell:
                j += 1
            segments.append(Segment(glyph(cell) * (j - i), self._style(cell)))
            i = j
        return Strip(segments).adjust_cell_length(width, self.rich_style)


def legend() -> Content:
    """`█ ok  █ failed  █ cancelled  █ lost  █ running  ▄ partly busy  · idle`."""
    parts = [
        Content.from_markup(
            f"[{colour(state)}]$block[/] $word",
            block=LOST_BLOCK if state is TaskState.LOST else BUSY_BLOCK,
            word=state.label,
        )
        for state in (*LEGEND_ORDER, TaskState.RUNNING)
    ]
    parts.append(Content.from_markup("[dim]▄ partly busy  · idle[/dim]"))
    return Content("  ").join(parts)


class TaskStreamPanel(Vertical):
    """The stream in a box: title (what it shows), chart, axis, legend; its border says which
    engines are in sight when they do not all fit. `zoom_when_finished`: what to show when the
    stream first comes back finished (a finished job is seen whole)."""

    DEFAULT_CSS = """
    TaskStreamPanel {
        height: auto;
        border: round $panel-lighten-2;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
        padding: 0 0 0 1;
    }
    TaskStreamPanel:focus-within { border: round $primary; }
    TaskStreamPanel #stream-axis, TaskStreamPanel #stream-legend {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TaskStreamPanel #stream-axis { color: $text-muted; }
    """

    def __init__(
        self,
        job: JobHandle,
        *,
        zoom: Zoom = Zoom.MINUTE,
        zoom_when_finished: Zoom | None = None,
        interval: float = STREAM_INTERVAL_S,
        scroll_hint: str = "↑↓ to scroll",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.zoom = zoom
        self.zoom_when_finished = zoom_when_finished
        self.interval = interval
        self.scroll_hint = scroll_hint
        self.stream: TaskStream | None = None
        self.border_title = f"task stream · {zoom.label}"
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._want: tuple[Zoom, int] = (zoom, 0)
        self._asking = False  # a thread is asking the job (see `follow`)

    def compose(self) -> ComposeResult:
        yield StreamChart()
        yield Static(id="stream-axis", markup=False)
        yield Static(legend(), id="stream-legend")

    @property
    def chart(self) -> StreamChart:
        return self.query_one(StreamChart)

    def on_resize(self, event: Resize) -> None:
        self.follow()

    def set_zoom(self, zoom: Zoom) -> None:
        self.zoom = zoom
        self.border_title = f"task stream · {zoom.label}"
        self.follow()

    def follow(self) -> None:
        """Ask the job for the stream at this panel's zoom and width, and again every
        `interval` while the job runs. One thread asks: a change of zoom or width wakes it."""
        if not (self.is_mounted and self.size.width):
            return
        with self._lock:
            self._want = (self.zoom, self.chart.cells_width)
            start, self._asking = not self._asking, True
        self._wake.set()
        if start:
            self._fetch()

    @work(thread=True, exit_on_error=False, group="stream", description="job.stream")
    def _fetch(self) -> None:
        stop = get_current_worker().cancelled_event
        while not stop.is_set():
            self._wake.clear()
            asked = self._want
            finished = False
            try:
                stream = self.job.stream(*asked)
            except Exception as error:  # the cluster process can fail; say so, keep trying
                self.post_message(StreamFailed(one_line(error, with_type=True)))
            else:
                self.post_message(StreamUpdate(stream))
                finished = stream.finished
            if finished or self.interval <= 0:
                with self._lock:  # done, unless asked for something else meanwhile
                    if self._want == asked:
                        self._asking = False
                        return
                continue
            deadline = time.monotonic() + self.interval
            while not stop.is_set() and time.monotonic() < deadline:
                if self._wake.wait(0.1):
                    break

    def on_stream_failed(self, message: StreamFailed) -> None:
        self.border_subtitle = f"cannot draw the stream: {message.error}"

    def on_stream_update(self, message: StreamUpdate) -> None:
        stream = message.stream
        finished_zoom = self.zoom_when_finished
        if stream.finished and finished_zoom is not None:
            self.zoom_when_finished = None  # once: `z` may zoom in again
            if self.zoom is not finished_zoom:
                self.set_zoom(finished_zoom)
                return
        if stream.zoom is not self.zoom:
            return  # asked before the zoom changed
        self.stream = stream
        chart = self.chart
        chart.apply(stream)
        pad = " " * chart.label_width
        set_content(self.query_one("#stream-axis", Static), pad + axis(stream))
        self.say_where()
        if chart.cells_width != stream.width:  # the labels' width changed: ask again
            self.follow()

    def say_where(self) -> None:
        """The border's subtitle: which engines are in sight, when not all of them are."""
        first, last, n = self.chart.shown
        if n == 0:
            self.border_subtitle = "no engine ran a task yet"
        elif last - first + 1 < n:
            self.border_subtitle = f"engines {first}–{last} of {n} · {self.scroll_hint}"
        else:
            self.border_subtitle = f"{n} engine{'s' if n != 1 else ''}"
