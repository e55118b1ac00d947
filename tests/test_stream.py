"""The task stream's cells, windows and axis (`ippmon.stream`), and the tracker's stream: what
a person reads in each cell, pinned as strings (capitals: busy, small: partly busy, `.` idle)."""

from __future__ import annotations

from ippmon.model import TaskState
from ippmon.stream import EngineSpans, TaskStream, Zoom, axis, bin_row, tick_label, window
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
