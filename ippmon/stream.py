"""The task stream: one row per engine, time left to right, each cell what the engine ran then.

The job side bins its tasks into cells (`bin_row`) and sends rows of one character per cell, so
what crosses to the screen costs engines x width characters whatever the job's size. A cell is
the state of the tasks it holds (a failure or a lost task wins: errors must stand out, then a
running task, then a cancelled one, then ok), in capitals when the engine was busy at least half
of the cell, in small letters when less; `IDLE` when the engine was there and ran nothing, and
`ABSENT` before the job or while the engine was not registered.

A running job is asked for its stream every second: each engine keeps its finished tasks binned
on fixed cells (a `Grid` a cell width: `ladder` widths, from the job's start for the whole job,
from the epoch for the last minutes), so a tick adds the spans that came since and reads the
cells in sight, whatever came before.

No ipyparallel or Textual here: tests feed spans, the tracker keeps them (`EngineSpans`).
"""

from __future__ import annotations

import bisect
import math
from array import array
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
    now: float | None = None  # where the job is (None: at `end`); cells after it are blank

    @property
    def cell_s(self) -> float:
        return (self.end - self.start) / self.width if self.width else 0.0


MAX_GRIDS = 4  # grids kept per engine: the three zooms and one more (a resize, a step)
# The cell widths a running job's stream uses: so many seconds times a power of ten, each step at
# most 1.25 times the one before (the whole job fills 80-100 % of the width between two steps).
MANTISSAS = (1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10)


def ladder(seconds: float) -> float:
    """The narrowest cell width on the ladder that is at least `seconds` wide."""
    seconds = max(seconds, 1e-3)
    e = math.floor(math.log10(seconds))
    for exp in (e - 1, e, e + 1):  # log10 may round either way across a power of ten
        for m in MANTISSAS:
            step = float(f"{m}e{exp}")
            if step >= seconds:
                return step
    raise AssertionError("unreachable: 10**(e+2) > seconds")


# A cell's character by (rank, busy at least half the cell), as a byte.
CHAR = [[ord(BY_RANK[r]), ord(BY_RANK[r].upper())] for r in range(len(BY_RANK))]
CHAR[0] = [ord(ABSENT), ord(ABSENT)]


class Grid:
    """One engine's finished spans binned on fixed cells: cell i is [anchor + i*cell_s,
    anchor + (i+1)*cell_s). It holds cells [first, stop) and a span adds to the cells it covers
    there and to nothing else, so spans may come in any order and the cells are the same as a
    binning of them all at once. Compact: a byte of rank, a float of busy share and the cell's
    character a cell."""

    __slots__ = ("anchor", "cell_s", "first", "ranks", "busy", "chars")

    def __init__(self, anchor: float, cell_s: float, first: int, stop: int) -> None:
        self.anchor = anchor
        self.cell_s = cell_s
        self.first = first
        n = max(0, stop - first)
        self.ranks = bytearray(n)
        self.busy = array("d", bytes(8 * n))
        self.chars = bytearray(b" " * n)

    @property
    def stop(self) -> int:
        return self.first + len(self.ranks)

    def position(self, t: float) -> float:
        """Where `t` falls, in cells from the anchor."""
        return (t - self.anchor) / self.cell_s

    def add(
        self, start: float, end: float, rank: int, cells: tuple[int, int] | None = None
    ) -> None:
        """Bin a span into the cells it covers among `cells` [lo, hi) (default: all held)."""
        p = self.position(start)
        q = self.position(max(start, end))
        ca = math.floor(p)
        cb = max(ca, math.ceil(q) - 1)
        first = self.first
        lo, hi = (first, self.stop) if cells is None else cells
        hi -= 1
        if cb < lo or ca > hi:
            return
        ranks, busy, chars = self.ranks, self.busy, self.chars
        for c in range(max(ca, lo), min(cb, hi) + 1):
            i = c - first
            if ca == cb:
                b = busy[i] + q - p
            elif c == ca:
                b = busy[i] + ca + 1 - p
            elif c == cb:
                b = busy[i] + q - cb
            else:
                b = 1.0
            busy[i] = b
            if rank > ranks[i]:
                ranks[i] = rank
            chars[i] = CHAR[ranks[i]][b >= BUSY]

    def row(
        self,
        first: int,
        width: int,
        *,
        present: tuple[float, float],
        running: tuple[float, float, TaskState] | None = None,
    ) -> str:
        """The cells [first, first + width) as characters (held already: see `EngineSpans.grid`),
        with the task running now on top and `IDLE` where the engine was `present`."""
        i = first - self.first
        chars = self.chars[i : i + width]
        if running is not None:
            self._overlay(chars, i, running)
        text = chars.decode("ascii")
        lo = max(0, min(width, math.floor(self.position(present[0]) - first)))
        hi = max(lo, min(width, math.ceil(self.position(present[1]) - first)))
        if lo < hi:
            text = text[:lo] + text[lo:hi].replace(ABSENT, IDLE) + text[hi:]
        return text

    def _overlay(self, chars: bytearray, i: int, running: tuple[float, float, TaskState]) -> None:
        """Add the running task to `chars` (cells from `i` on) as `add` would, keeping the grid."""
        start, end, state = running
        rank = RANK[state]
        n = len(chars)
        p = self.position(min(start, end)) - self.first - i
        q = self.position(end) - self.first - i
        ca = math.floor(p)
        cb = max(ca, math.ceil(q) - 1)
        if ca >= n and p <= n:  # started right at the window's end: its last cell
            ca = cb = n - 1
        if cb < 0 or ca >= n:
            return
        inner = range(max(ca + 1, 0), min(cb, n))
        if inner and max(self.ranks[i + inner.start : i + inner.stop]) < rank:
            chars[inner.start : inner.stop] = bytes([CHAR[rank][1]]) * len(inner)
            edges: tuple[int, ...] = (ca, cb)
        else:
            edges = tuple(range(ca, cb + 1))
        for c in sorted(set(edges)):
            if not 0 <= c < n:
                continue
            if ca == cb:
                share = q - p
            elif c == ca:
                share = ca + 1 - p
            elif c == cb:
                share = q - cb
            else:
                share = 1.0
            r = max(rank, self.ranks[i + c])
            chars[c] = CHAR[r][self.busy[i + c] + share >= BUSY]

    def trim(self, first: int) -> None:
        """Forget the cells before `first`."""
        n = min(first - self.first, len(self.ranks))
        if n > 0:
            del self.ranks[:n], self.busy[:n], self.chars[:n]
            self.first += n

    def grow(self, first: int, stop: int) -> tuple[int, int]:
        """Make room for [first, stop) with empty cells; the ranges added, before and after."""
        before = max(0, self.first - first)
        after = max(0, stop - self.stop)
        if before:
            self.ranks[:0] = bytes(before)
            self.busy[:0] = array("d", bytes(8 * before))
            self.chars[:0] = b" " * before
            self.first -= before
        if after:
            self.ranks.extend(bytes(after))
            self.busy.extend(array("d", bytes(8 * after)))
            self.chars.extend(b" " * after)
        return before, after


class EngineSpans:
    """The finished tasks of one engine, as time spans (start, end, state rank), sorted by
    start; `longest` bounds how far back a span that reaches into a window can begin. Its grids
    (the last `MAX_GRIDS` asked for) take each span as it comes."""

    __slots__ = ("starts", "ends", "ranks", "longest", "last_end", "grids")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.ranks: list[int] = []
        self.longest = 0.0
        self.last_end = -math.inf
        self.grids: dict[tuple[float, float], Grid] = {}

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, start: float, end: float, state: TaskState) -> None:
        end = max(start, end)
        i = len(self.starts)
        if i and start < self.starts[-1]:  # out of order (a record read back): keep sorted
            i = bisect.bisect_right(self.starts, start)
        rank = RANK[state]
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        self.ranks.insert(i, rank)
        self.longest = max(self.longest, end - start)
        self.last_end = max(self.last_end, end)
        for grid in self.grids.values():
            grid.add(start, end, rank)

    def between(self, start: float, end: float) -> zip[tuple[float, float, int]]:
        """The spans that may reach into [start, end] (and a few before it that do not)."""
        first = bisect.bisect_left(self.starts, start - self.longest)
        last = bisect.bisect_right(self.starts, end)
        return zip(self.starts[first:last], self.ends[first:last], self.ranks[first:last])

    def grid(self, anchor: float, cell_s: float, first: int, stop: int) -> Grid:
        """The grid of cells `cell_s` wide from `anchor`, holding at least [first, stop): kept
        from the last time it was asked for and brought up to date by binning only the cells
        it did not hold; those before `first` are let go once they are as many as it shows."""
        key = (anchor, cell_s)
        grid = self.grids.pop(key, None)
        if grid is None or stop <= grid.first or first >= grid.stop:
            grid = Grid(anchor, cell_s, first, first)
        elif grid.first < first - (stop - first):
            grid.trim(first)
        old_first, old_stop = grid.first, grid.stop
        before, after = grid.grow(first, stop)
        if before:
            self.bin(grid, first, old_first)
        if after and self.last_end >= anchor + old_stop * cell_s:
            self.bin(grid, old_stop, stop)
        self.grids[key] = grid
        while len(self.grids) > MAX_GRIDS:
            del self.grids[next(iter(self.grids))]
        return grid

    def warm(self, ahead: Frame, chunk: int) -> None:
        """Bin `chunk` more cells of a grid to come (`ahead`), from its end back to its start:
        spread over ticks, the step to it costs no more than a tick."""
        stop = ahead.first + ahead.width
        grid = self.grids.get((ahead.anchor, ahead.cell_s))
        lo = grid.first if grid is not None and grid.stop >= stop else stop
        if lo > ahead.first or grid is None:
            self.grid(ahead.anchor, ahead.cell_s, max(ahead.first, lo - chunk), stop)

    def bin(self, grid: Grid, lo: int, hi: int) -> None:
        """Add the spans that reach into cells [lo, hi) to those cells (not to the others)."""
        anchor, cell_s = grid.anchor, grid.cell_s
        for s, e, r in self.between(anchor + lo * cell_s, anchor + hi * cell_s):
            grid.add(s, e, r, (lo, hi))


def bin_row(
    spans: EngineSpans,
    start: float,
    end: float,
    width: int,
    *,
    present: tuple[float, float],
    running: tuple[float, float, TaskState] | None = None,
) -> str:
    """One engine's cells for [start, end] binned from scratch (what a `Grid` holds, for any
    window): its spans, the task it runs now (`running`: start, end, state), `IDLE` where it
    was `present` (registered: from, until) and ran nothing. O(spans in the window + width)."""
    if width <= 0:
        return ""
    grid = Grid(start, max(end - start, 1e-9) / width, 0, width)
    spans.bin(grid, 0, width)
    return grid.row(0, width, present=present, running=running)


def window(zoom: Zoom, origin: float, now: float) -> tuple[float, float]:
    """The [start, end] a zoom shows exactly: the last minutes up to `now`, or the job from
    `origin`."""
    seconds = zoom.seconds
    if seconds is None:
        return origin, max(now, origin + 1.0)
    return now - seconds, now


@dataclass(frozen=True)
class Frame:
    """Where a stream's cells lie: cells [first, first + width) of `cell_s` seconds from
    `anchor` (a `Grid`'s)."""

    anchor: float
    cell_s: float
    first: int
    width: int

    @property
    def start(self) -> float:
        return self.anchor + self.first * self.cell_s

    @property
    def end(self) -> float:
        return self.anchor + (self.first + self.width) * self.cell_s


def frame(zoom: Zoom, origin: float, now: float, width: int, *, finished: bool) -> Frame:
    """The cells a zoom shows, on a grid that stays put as `now` moves on (so a tick adds only
    the new spans): for the whole job, cells from the job's start, as wide as the ladder step
    that holds the job in `width` cells (a finished job: exactly); for the last minutes, cells
    counted from the epoch at the step that holds the minutes in `width` cells, the last of
    them holding `now`."""
    width = max(width, 1)
    seconds = zoom.seconds
    if seconds is None:
        span = max(now - origin, 1.0)
        return Frame(origin, span / width if finished else ladder(span / width), 0, width)
    cell_s = ladder(seconds / width)
    last = math.ceil(now / cell_s) - 1
    return Frame(0.0, cell_s, last - width + 1, width)


WARM_FROM = 0.9  # the share of the width the whole job fills when the next step is binned ahead
WARM_TICKS = 8  # ... in so many ticks


def frame_ahead(zoom: Zoom, origin: float, now: float, width: int) -> Frame | None:
    """The whole job's next ladder step, once the running job fills `WARM_FROM` of its width
    (None before, and for the other zooms): its grid is binned a little each tick before it is
    shown, so that the tick that steps to it bins nothing more than any other."""
    if zoom is not Zoom.JOB:
        return None
    where = frame(zoom, origin, now, width, finished=False)
    if now - origin < WARM_FROM * where.width * where.cell_s:
        return None
    return Frame(origin, ladder(where.cell_s * 1.01), 0, where.width)


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
    """The time axis under the cells: `╵-60s` marks where -60 s is, ..., `now╵` under the cell
    that holds now (for a finished job: `end╵`), at the right end unless the whole job grows
    into the width. Tick labels count from the job's start for the whole job, back from now for
    a window."""
    width = stream.width
    span = stream.end - stream.start
    if width <= 0 or span <= 0:
        return " " * max(width, 0)
    now = stream.end if stream.now is None else min(stream.now, stream.end)
    step = next((s for s in TICK_STEPS if s * width / span >= TICK_GAP), TICK_STEPS[-1])
    line = [" "] * width
    end_label = "end╵" if stream.finished else "now╵"
    now_col = min(width, max(len(end_label), math.ceil((now - stream.start) * width / span)))
    now_from = now_col - len(end_label)
    whole = stream.zoom is Zoom.JOB
    ref = stream.origin if whole else now
    t = math.ceil((stream.start - ref) / step) * step
    while True:
        col = round((ref + t - stream.start) * width / span)
        if col >= width:
            break
        label = "╵" + tick_label(t)
        clear = col + len(label) < now_from or col > now_col
        if clear and col + len(label) <= width and (col == 0 or line[col - 1] == " "):
            line[col : col + len(label)] = label
        t += step
    if width >= len(end_label):
        line[now_from:now_col] = end_label
    return "".join(line)[:width]
