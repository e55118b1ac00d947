"""The task stream's cells, windows and axis (`ippmon.stream`), and the tracker's stream: what
a person reads in each cell, pinned as strings (capitals: busy, small: partly busy, `.` idle)."""

from __future__ import annotations

import math
import random

from ippmon.model import TaskState
from ippmon.stream import (
    BY_RANK,
    MAX_GRIDS,
    RANK,
    WARM_TICKS,
    EngineSpans,
    Frame,
    TaskStream,
    Zoom,
    axis,
    bin_row,
    frame,
    frame_ahead,
    ladder,
    tick_label,
    window,
)
from ippmon.tracker import Event, Recorded, Tracker

OK, ERROR, LOST, CANCELLED, RUNNING = (
    TaskState.OK,
    TaskState.ERROR,
    TaskState.LOST,
    TaskState.CANCELLED,
    TaskState.RUNNING,
)


def spans(*items: tuple[float, float, TaskState]) -> EngineSpans:
    out = EngineSpans()
    for item in items:
        out.add(*item)
    return out


def test_a_cell_a_second_shows_tasks_as_bars_and_idle_time_as_gaps() -> None:
    row = bin_row(spans((2, 5, OK), (7, 8, OK)), 0, 10, 10, present=(0, 10))
    assert row == "..OOO..O.."


def test_a_failure_wins_its_cell_even_when_the_cell_is_mostly_ok() -> None:
    row = bin_row(spans((0, 1.8, OK), (1.8, 1.9, ERROR), (1.9, 3, OK)), 0, 4, 4, present=(0, 4))
    assert row == "OXO."


def test_a_cell_the_engine_was_busy_less_than_half_of_is_in_small_letters() -> None:
    assert bin_row(spans((0.1, 0.3, OK), (2.0, 2.9, CANCELLED)), 0, 3, 3, present=(0, 3)) == "o.C"


def test_a_running_task_is_drawn_to_now_and_blank_is_where_the_engine_was_not_there() -> None:
    row = bin_row(spans((3, 4, OK)), 0, 10, 10, present=(2, 10), running=(6, 10, RUNNING))
    assert row == "  .O..RRRR"
    gone = bin_row(EngineSpans(), 0, 10, 10, present=(0, 6), running=(4, 6, LOST))
    assert gone == "....LL    "


def test_spans_added_out_of_order_are_found_in_a_window_far_from_the_start() -> None:
    items = spans((100, 101, OK), (0, 50, OK), (58, 59, ERROR))  # a record read back, unsorted
    assert bin_row(items, 55, 60, 5, present=(0, 200)) == "...X."
    assert bin_row(items, 40, 45, 5, present=(0, 200)) == "OOOOO"  # a long one from before


def test_the_zoom_windows_end_now_and_the_whole_job_starts_at_its_start() -> None:
    assert window(Zoom.MINUTE, 1000, 5000) == (4940, 5000)
    assert window(Zoom.TEN_MINUTES, 1000, 5000) == (4400, 5000)
    assert window(Zoom.JOB, 1000, 5000) == (1000, 5000)
    assert [z.next() for z in Zoom] == [Zoom.TEN_MINUTES, Zoom.JOB, Zoom.MINUTE]


def test_the_axis_counts_back_from_now_or_on_from_the_start_of_the_job() -> None:
    minute = axis(TaskStream(Zoom.MINUTE, 0, 60, 0, 60))
    assert minute.startswith("╵-1m ") and minute.endswith("now╵") and "╵-30s" in minute
    whole = axis(TaskStream(Zoom.JOB, 0, 620, 0, 70, finished=True))
    assert whole.startswith("╵0s ") and whole.endswith("end╵") and "╵4m" in whole
    assert len(minute) == 60 and len(whole) == 70
    assert [tick_label(s) for s in (45, -90, 3600, 9000)] == ["45s", "-1m30", "1h", "2h30"]


def naive_row(
    items: list[tuple[float, float, TaskState]], start: float, cell: float, width: int
) -> str:
    """The cells by their definition, one at a time: the highest rank among the tasks that
    overlap the cell, in capitals when they fill half of it (an engine present throughout)."""
    out = []
    for c in range(width):
        lo, hi = start + c * cell, start + (c + 1) * cell
        rank, busy = 0, 0.0
        for s, e, state in items:
            if s < hi and e > lo or s == e and lo <= s < hi:
                rank = max(rank, RANK[state])
                busy += (min(e, hi) - max(s, lo)) / cell
        letter = BY_RANK[rank] if rank else "."
        out.append(letter.upper() if busy >= 0.5 else letter)
    return "".join(out)


def random_spans(rng: random.Random, n: int, until: float) -> list[tuple[float, float, TaskState]]:
    """Tasks of one engine, mostly back to back, some long, some overlapping, some without an
    end (read back from a record), in random states."""
    out, t = [], 0.0
    for _ in range(n):
        t += rng.choice((0.0, rng.uniform(0, 0.3), rng.uniform(0, 8)))
        d = rng.choice((rng.uniform(0.01, 0.4), rng.uniform(0.3, 3), rng.uniform(5, 40), 0.0))
        state = rng.choice((OK, OK, OK, ERROR, LOST, CANCELLED))
        out.append((t, t + d, state))
        t += d * rng.choice((1, 1, 0.5))
    return [span for span in out if span[1] < until]


def test_a_grid_fed_spans_out_of_order_as_its_window_slides_holds_a_from_scratch_binning() -> None:
    rng = random.Random(7)
    cell, width = 0.5, 40
    for _ in range(30):
        items = random_spans(rng, 120, until=400.0)
        late = rng.sample(items, len(items) // 4)  # late replies and records read back
        arrivals = [span for span in items if span not in late]
        arrivals[len(arrivals) // 3 : len(arrivals) // 3] = late
        engine = EngineSpans()
        now = 0.0
        for k, span in enumerate(arrivals):
            engine.add(*span)
            if k % 7:
                continue
            now = max(now, span[1]) + rng.uniform(0, 3)  # a tick: the window moves on
            first = math.ceil(now / cell) - width
            grid = engine.grid(0.0, cell, first, first + width)
            assert len(grid.ranks) <= 2 * width + 1  # forgets what slid out of sight
            start = first * cell
            row = grid.row(first, width, present=(-1e9, 1e9))
            scratch = bin_row(
                spans(*arrivals[: k + 1]),
                start,
                start + width * cell,
                width,
                present=(-1e9, 1e9),
            )
            assert row == scratch
            assert row == naive_row(arrivals[: k + 1], start, cell, width)


def test_a_grid_kept_for_the_whole_job_matches_its_binning_from_scratch_at_every_tick() -> None:
    rng = random.Random(11)
    items = random_spans(rng, 400, until=1e9)
    rng.shuffle(items)
    engine, cell, width = EngineSpans(), 2.0, 150
    grid = engine.grid(0.0, cell, 0, width)
    for k, span in enumerate(items):
        engine.add(*span)
        if k % 50 == 49:
            row = grid.row(0, width, present=(0.0, 1e9))
            assert row == naive_row(items[: k + 1], 0.0, cell, width)


def test_the_running_task_and_the_presence_are_laid_over_the_grid_without_changing_it() -> None:
    engine = EngineSpans()
    grid = engine.grid(0.0, 1.0, 0, 10)
    engine.add(3, 4, OK)
    engine.add(5.2, 5.4, ERROR)
    assert grid.row(0, 10, present=(2, 10), running=(6, 10, RUNNING)) == "  .O.xRRRR"
    assert grid.row(0, 10, present=(2, 8), running=(5.5, 6, LOST)) == "  .O.X..  "
    assert grid.row(0, 10, present=(0, 10)) == "...O.x...."


def test_a_grid_keeps_only_the_zooms_asked_for_lately() -> None:
    engine = EngineSpans()
    for cell in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0):
        engine.grid(0.0, cell, 0, 100)
    assert len(engine.grids) == MAX_GRIDS
    assert sorted(cell for _anchor, cell in engine.grids) == [5.0, 10.0, 20.0, 50.0]


def test_the_ladder_takes_the_narrowest_step_that_fits_and_no_step_is_a_quarter_wider() -> None:
    assert [ladder(x) for x in (0.45, 1.0, 1.01, 4.0, 59.0, 61.0, 650.0)] == [
        0.5,
        1.0,
        1.25,
        4.0,
        60.0,
        70.0,
        700.0,
    ]
    steps = sorted({ladder(10 ** (k / 50)) for k in range(-100, 301)})
    assert all(b / a <= 1.25 + 1e-9 for a, b in zip(steps, steps[1:]))


def test_the_whole_job_grid_stays_put_as_it_runs_then_steps_and_fills_four_fifths_or_more() -> None:
    origin, width = 1000.0, 100
    frames = [frame(Zoom.JOB, origin, origin + t, width, finished=False) for t in range(1, 3000)]
    assert frames[400].cell_s == frames[450].cell_s == 5.0 and frames[450].start == origin
    assert all(f.first == 0 and f.anchor == origin for f in frames)
    assert all(0.8 <= (t + 1) / (f.cell_s * width) <= 1.0 for t, f in enumerate(frames[99:], 99))
    cells = [f.cell_s for f in frames]
    assert cells == sorted(cells)  # steps only widen: a new grid is binned only at a step
    done = frame(Zoom.JOB, origin, origin + 2345.0, width, finished=True)
    assert (done.start, done.end) == (origin, origin + 2345.0)


def test_a_sliding_window_is_the_last_cells_of_a_grid_fixed_in_time_ending_where_now_is() -> None:
    minute = frame(Zoom.MINUTE, 0.0, 5000.3, 140, finished=False)
    assert (minute.anchor, minute.cell_s, minute.width) == (0.0, 0.5, 140)
    assert minute.start < 5000.3 - 60 and minute.end - 0.5 < 5000.3 <= minute.end
    later = frame(Zoom.MINUTE, 0.0, 5001.3, 140, finished=False)
    assert later.first == minute.first + 2 and later.cell_s == minute.cell_s
    ten = frame(Zoom.TEN_MINUTES, 0.0, 5000.3, 70, finished=False)
    assert ten.cell_s == 10.0 and ten.end - ten.start == 700.0


def test_the_whole_job_while_it_runs_says_where_now_is_on_the_axis() -> None:
    line = axis(TaskStream(Zoom.JOB, 0, 100, 0, 50, now=80.0))
    assert line.index("now╵") + 4 == 40 and line.startswith("╵0s ") and "╵1m20" not in line
    assert line[41:].strip().startswith("╵")  # the time still to come has its ticks


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def md(engine: int | None, started: float | None, completed: float | None) -> dict:
    return {"engine_id": engine, "started": started, "completed": completed, "submitted": 0.0}


def test_the_tracker_streams_each_engine_its_tasks_its_running_one_and_a_gone_one() -> None:
    clock = Clock(0.0)
    tracker = Tracker("t", 4, clock=clock)
    mds = [md(None, None, None) for _ in range(4)]
    tracker.add_chunks([([i], m) for i, m in enumerate(mds)], attempt=1)
    tracker.set_engines([0, 1])
    mds[0].update(engine_id=0, started=1.0, completed=3.0)
    mds[1].update(engine_id=1, started=1.0, completed=2.0)
    mds[2].update(engine_id=1, started=4.0)
    mds[3].update(engine_id=0, started=5.0)
    for i in range(4):
        tracker.notify(i, Event.ACTIVITY)
    clock.t = 4.0
    tracker.poll()
    tracker.notify(0, Event.DONE, [1])
    tracker.notify(1, Event.DONE, Recorded(ERROR, None, ("E", "boom", "")))
    clock.t = 8.0
    tracker.poll()
    tracker.set_engines([0])  # engine 1 went away with task 2
    clock.t = 10.0
    stream = tracker.stream(Zoom.JOB, 10)
    assert (stream.start, stream.end, stream.finished) == (0.0, 10.0, False)
    rows = {row.engine: row for row in stream.rows}
    assert rows[0].cells == ".OO..RRRRR" and rows[0].alive
    assert rows[1].cells == ".X..LLLL  " and not rows[1].alive and not rows[1].left


def test_a_task_cancelled_before_it_ran_has_no_engine_and_draws_nothing() -> None:
    tracker = Tracker("t", 1, clock=Clock(10.0))
    tracker.add_chunks([([0], md(None, None, None))], attempt=1)
    tracker.notify(0, Event.DONE, Recorded(CANCELLED))
    tracker.poll()
    assert tracker.stream(Zoom.MINUTE, 6).rows == ()


class Replay:
    """A tracker fed events (time, what, task, engine, started, completed) as they happen."""

    def __init__(self, engines: int, tasks: int) -> None:
        self.clock = Clock(0.0)
        self.tracker = Tracker("t", tasks, clock=self.clock)
        self.mds = [md(None, None, None) for _ in range(tasks)]
        self.tracker.add_chunks([([i], m) for i, m in enumerate(self.mds)], attempt=1)
        self.tracker.set_engines(range(engines))

    def play(self, events: list[tuple[float, str, int, int, float, float]]) -> Tracker:
        for t, what, i, engine, started, completed in events:
            self.clock.t = t
            if what == "start":
                self.mds[i].update(engine_id=engine, started=started)
                self.tracker.notify(i, Event.ACTIVITY)
            else:
                self.mds[i]["completed"] = completed
                failed = Recorded(ERROR, None, ("E", "", ""))
                self.tracker.notify(i, Event.DONE, failed if i % 9 == 0 else [i])
            self.tracker.poll()
        return self.tracker


def test_a_tracker_asked_every_tick_at_changing_zooms_shows_what_one_asked_once_shows() -> None:
    rng = random.Random(3)
    events = []
    clocks = [rng.uniform(0, 2) for _ in range(3)]
    for i in range(300):
        e = min(range(3), key=lambda k: clocks[k])
        started, d = clocks[e], rng.uniform(0.2, 9)
        reply = started + d + rng.choice((0.0, 0.1, rng.uniform(0, 40)))  # some replies late
        events += [
            (started, "start", i, e, started, 0.0),
            (reply, "done", i, e, started, started + d),
        ]
        clocks[e] = started + d + rng.uniform(0, 1)
    events.sort()
    watched = Replay(3, 300)
    zooms = [Zoom.MINUTE, Zoom.JOB, Zoom.TEN_MINUTES, Zoom.JOB, Zoom.MINUTE]
    seen = 0
    for tick, k in enumerate(range(20, len(events) + 1, 20)):
        watched.play(events[seen:k])
        seen = k
        zoom, width = zooms[tick // 5 % len(zooms)], 60 + tick % 2
        ticked = watched.tracker.stream(zoom, width)
        once = Replay(3, 300).play(events[:k]).stream(zoom, width)
        assert ticked == once


def test_the_whole_jobs_next_step_is_binned_ahead_a_little_each_tick_before_it_is_shown() -> None:
    assert frame_ahead(Zoom.JOB, 0.0, 310.0, 100) is None  # 3.5 s cells, 89 % full
    ahead = frame_ahead(Zoom.JOB, 0.0, 330.0, 100)  # 94 % full: the 4 s cells are binned ahead
    assert ahead == Frame(0.0, 4.0, 0, 100) and frame_ahead(Zoom.MINUTE, 0.0, 330.0, 100) is None
    rng = random.Random(5)
    items = random_spans(rng, 300, until=330.0)
    engine = EngineSpans()
    for span in items:
        engine.add(*span)
    firsts = []
    for _ in range(WARM_TICKS):
        engine.warm(ahead, 13)
        firsts.append(engine.grids[(0.0, 4.0)].first)
    assert firsts == [87, 74, 61, 48, 35, 22, 9, 0]
    assert engine.grid(0.0, 4.0, 0, 100).row(0, 100, present=(0.0, 1e9)) == naive_row(
        items, 0.0, 4.0, 100
    )
