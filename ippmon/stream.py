"""The task stream: one row per engine, time left to right, each cell what the engine ran then.

The job side bins its tasks into cells (`bin_row`) and sends rows of one character per cell, so
what crosses to the screen costs engines x width characters whatever the job's size. A cell is
the state of the tasks it holds (a failure or a lost task wins: errors must stand out, then a
running task, then a cancelled one, then ok), in capitals when the engine was busy at least half
of the cell, in small letters when less; `IDLE` when the engine was there and ran nothing, and
`ABSENT` before the job or while the engine was not registered.

No ipyparallel or Textual here: tests feed spans, the tracker keeps them (`EngineSpans`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from enum import Enum

from ippmon.model import TaskState

ABSENT, IDLE = " ", "."
# The letter of each state, by rank: a cell shows the highest rank among its tasks.
LETTERS: dict[TaskState, str] = {
    TaskState.OK: "o",
    TaskState.CANCELLED: "c",
    TaskState.RUNNING: "r",
    TaskState.LOST: "l",
    TaskState.ERROR: "x",
}
RANK = {state: rank for rank, state in enumerate(LETTERS, start=1)}
BY_RANK = " " + "".join(LETTERS.values())  # rank -> letter (0: none)
STATE_OF = {letter: state for state, letter in LETTERS.items()}
BUSY = 0.5  # the share of a cell an engine must be busy for the capital letter


class Zoom(Enum):
    """How much time the stream shows: the last minute, the last ten, or the whole job."""

    MINUTE = (60.0, "last minute")
    TEN_MINUTES = (600.0, "last 10 minutes")
    JOB = (0.0, "whole job")

    @property
    def seconds(self) -> float | None:
        """The window's length (None: from the job's start to now)."""
        return self.value[0] or None

    @property
    def label(self) -> str:
        return self.value[1]

    def next(self) -> Zoom:
        zooms = list(Zoom)
        return zooms[(zooms.index(self) + 1) % len(zooms)]


@dataclass(frozen=True)
class StreamRow:
    engine: int
    cells: str  # one character a cell (see the module's docstring)
    alive: bool = True
    left: bool = False  # unregistered while idle; not alive and not left: gone with a task


@dataclass(frozen=True)
class TaskStream:
    """The rows of one moment, for a window of time [start, end] cut in `width` cells."""

    zoom: Zoom
    start: float
    end: float
    origin: float  # the job's start: the whole job's axis counts from it
    width: int
    rows: tuple[StreamRow, ...] = ()
    finished: bool = False  # nothing will change any more: no need to ask again

    @property
    def cell_s(self) -> float:
        return (self.end - self.start) / self.width if self.width else 0.0


class EngineSpans:
    """The finished tasks of one engine, as time spans (start, end, state rank), sorted by
    start; `longest` bounds how far back a span that reaches into a window can begin."""

    __slots__ = ("starts", "ends", "ranks", "longest")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.ranks: list[int] = []
        self.longest = 0.0

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, start: float, end: float, state: TaskState) -> None:
        end = max(start, end)
        i = len(self.starts)
        if i and start < self.starts[-1]:  # out of order (a record read back): keep sorted
            i = bisect.bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        self.ranks.insert(i, RANK[state])
        self.longest = max(self.longest, end - start)


def bin_row(
    spans: EngineSpans,
    start: float,
    end: float,
    width: int,
    *,
    present: tuple[float, float],
    running: tuple[float, float, TaskState] | None = None,
) -> str:
    """One engine's cells for [start, end]: its spans, the task it runs now (`running`: start,
    end, state), `IDLE` where it was `present` (registered: from, until) and ran nothing.
    O(spans in the window + width)."""
    if width <= 0:
        return ""
    if end <= start:
        end = start + 1e-9
    k = width / (end - start)  # cells a second
    busy = [0.0] * width
    rank = [0] * width
    starts, ends, ranks = spans.starts, spans.ends, spans.ranks
    first = bisect.bisect_left(starts, start - spans.longest)
    last = bisect.bisect_right(starts, end)
    items = zip(starts[first:last], ends[first:last], ranks[first:last])
    if running is not None:
        s, e, state = running
        items = [*items, (s, e, RANK[state])]  # type: ignore[assignment]
    top = width - 1
    for s, e, r in items:
        if e < start:
            continue
        a = (max(s, start) - start) * k
        b = (min(e, end) - start) * k
        ca = min(int(a), top)
        cb = min(max(ca, math.ceil(b) - 1), top)
        if ca == cb:
            busy[ca] += b - a
            if r > rank[ca]:
                rank[ca] = r
            continue
        busy[ca] += ca + 1 - a
        busy[cb] += b - cb
        for c in range(ca, cb + 1):
            if r > rank[c]:
                rank[c] = r
        for c in range(ca + 1, cb):
            busy[c] = 1.0
    lo = (present[0] - start) * k
    hi = (present[1] - start) * k
    out = []
    for c in range(width):
        r = rank[c]
        if r:
            letter = BY_RANK[r]
            out.append(letter.upper() if busy[c] >= BUSY else letter)
        elif c + 1 > lo and c < hi:
            out.append(IDLE)
        else:
            out.append(ABSENT)
    return "".join(out)


def window(zoom: Zoom, origin: float, now: float) -> tuple[float, float]:
    """The [start, end] a zoom shows: the last minutes up to `now`, or the job from `origin`."""
    seconds = zoom.seconds
    if seconds is None:
        return origin, max(now, origin + 1.0)
    return now - seconds, now


TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
TICK_GAP = 10  # columns between tick labels at least


def tick_label(seconds: float) -> str:
    """`45s`, `2m`, `1m30`, `1h`, `2h30`: a tick's time, short."""
    s = int(round(abs(seconds)))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{sign}{m}m{r:02d}" if r else f"{sign}{m}m"
    h, r = divmod(s // 60, 60)
    return f"{sign}{h}h{r:02d}" if r else f"{sign}{h}h"


def axis(stream: TaskStream) -> str:
    """The time axis under the cells: `╵-60s` marks where -60 s is, ..., `now╵` at the right
    end (for a finished job: `end`). Tick labels count from the job's start for the whole job,
    back from now for a window."""
    width = stream.width
    span = stream.end - stream.start
    if width <= 0 or span <= 0:
        return " " * max(width, 0)
    step = next((s for s in TICK_STEPS if s * width / span >= TICK_GAP), TICK_STEPS[-1])
    line = [" "] * width
    end_label = "end╵" if stream.finished else "now╵"
    stop = width - len(end_label) - 1  # keep labels clear of the end label
    whole = stream.zoom is Zoom.JOB
    ref = stream.origin if whole else stream.end
    t = math.ceil((stream.start - ref) / step) * step
    while True:
        col = round((ref + t - stream.start) * width / span)
        if col >= stop:
            break
        label = "╵" + tick_label(t)
        if col + len(label) <= stop and (col == 0 or line[col - 1] == " "):
            line[col : col + len(label)] = label
        t += step
    if width >= len(end_label):
        line[width - len(end_label) :] = end_label
    return "".join(line)[:width]
