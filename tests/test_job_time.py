"""Elapsed, speedup, efficiency and busy % on recorded timelines where the cluster changes: engines
that arrive late or leave, a detached gap, a resubmit after a pause. Every expected number is
worked out by hand in the test."""

from __future__ import annotations

import datetime as dt

import pytest

from ippmon.model import TaskState
from ippmon.tracker import Event, Recorded, Spans, Tracker

T0 = 1_800_000_000.0  # seconds since the epoch at "t = 0"


def at(t: float) -> str:
    return dt.datetime.fromtimestamp(T0 + t, tz=dt.timezone.utc).isoformat()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return T0 + self.t


def task(
    tracker: Tracker, index: int, engine: int, start: float, end: float, sent: float = 0.0
) -> int:
    """Register item `index` as a chunk sent at `sent` that ran on `engine` from start to end."""
    md = {"submitted": at(sent), "engine_id": engine, "started": at(start)}
    (key,) = tracker.add_chunks([([index], md)], attempt=1)
    tracker.notify(key, Event.ACTIVITY)
    tracker.poll()
    return key


def finish(tracker: Tracker, key: int, end: float, result: object = 1) -> None:
    md = tracker._chunks[key].md
    md.update(completed=at(end), received=at(end))
    tracker.notify(key, Event.DONE, [result] if not isinstance(result, Exception) else result)
    tracker.notify(key, Event.OUTPUT_DONE)
    tracker.poll()


def test_spans_merge_and_measure() -> None:
    spans = Spans()
    for s, e in [(0, 10), (20, 30), (5, 12), (29, 40), (50, 50)]:
        spans.add(s, e)
    assert spans.spans == [[0, 12], [20, 40], [50, 50]]
    assert spans.length() == 32
    assert spans.length(extra=(35, 60)) == 12 + 40  # [20, 60]
    assert spans.overlap(10, 25) == 2 + 5
    assert spans.overlap(float("-inf"), 100, extra=(45, 55)) == 12 + 20 + 10


def test_engines_that_arrive_late_count_from_their_arrival() -> None:
    """Engine 0 from the start; engines 1 and 2 register at t=50; the job runs t=0..100.
    serial = 40 (A) + 60 (C) + 50 (B) = 150 s; engine time = 100 + 50 + 50 = 200 s, so
    efficiency = 75 % (counting all three engines from t=0 would say 150 / 300 = 50 %)."""
    clock = Clock()
    tracker = Tracker("t", 3, clock=clock)
    tracker.set_engines([0])
    a = task(tracker, 0, engine=0, start=0, end=40)
    clock.t = 40
    finish(tracker, a, 40)
    c = task(tracker, 2, engine=0, start=40, end=100)
    clock.t = 50
    tracker.set_engines([0, 1, 2])
    b = task(tracker, 1, engine=1, start=50, end=100)
    clock.t = 100
    finish(tracker, b, 100)
    finish(tracker, c, 100)
    snap = tracker.snapshot()
    assert snap.elapsed_s == pytest.approx(100)
    assert snap.serial_s == pytest.approx(150)
    assert snap.engine_s == pytest.approx(200)
    assert snap.efficiency == pytest.approx(0.75)
    assert snap.speedup == pytest.approx(1.5)
    busy = {e.id: round(e.busy_pct) for e in snap.engines}
    assert busy == {0: 100, 1: 100, 2: 0}  # engine 1 was busy all of its own 50 s
    assert snap.n_engines == 3


def test_an_engine_that_leaves_counts_until_it_left_and_is_left_not_gone() -> None:
    """Engines 0 and 1 from the start; engine 1 runs a task t=0..30 and unregisters idle at
    t=30; engine 0 runs one t=0..60. serial = 90 s; engine time = 60 + 30 = 90 s: efficiency
    100 % (speedup 1.5 over the one engine still there would say 150 %)."""
    clock = Clock()
    tracker = Tracker("t", 2, clock=clock)
    tracker.set_engines([0, 1])
    a = task(tracker, 0, engine=0, start=0, end=60)
    b = task(tracker, 1, engine=1, start=0, end=30)
    clock.t = 30
    finish(tracker, b, 30)
    tracker.set_engines([0])
    clock.t = 60
    finish(tracker, a, 60)
    snap = tracker.snapshot()
    assert (snap.elapsed_s, snap.serial_s, snap.engine_s) == pytest.approx((60, 90, 90))
    assert snap.efficiency == pytest.approx(1.0)
    (e0, e1) = sorted(snap.engines, key=lambda e: e.id)
    assert e1.left and not e1.alive and e1.job_s == pytest.approx(30)
    assert e1.busy_pct == pytest.approx(100) and e0.busy_pct == pytest.approx(100)
    assert snap.n_engines == 1


def test_an_engine_that_dies_with_a_task_is_gone_not_left() -> None:
    clock = Clock()
    tracker = Tracker("t", 1, clock=clock)
    tracker.set_engines([0, 1])
    task(tracker, 0, engine=1, start=0, end=10)
    clock.t = 5
    tracker.set_engines([0])
    (e1,) = [e for e in tracker.snapshot().engines if e.id == 1]
    assert not e1.alive and not e1.left


def test_a_detached_gap_adds_nothing_to_elapsed() -> None:
    """Read back at t=100 (ippmon attach): the record says two tasks sent at t=0 on two engines,
    done at t=10 and t=20 while nobody watched. Elapsed is 20 s, not the 100 s since the start;
    serial 10 + 20 = 30 s; speedup 1.5."""
    clock = Clock()
    clock.t = 100
    tracker = Tracker("t", 2, clock=clock)
    tracker.restore_start(T0)
    tracker.set_engines([0, 1])
    for index, (engine, end) in enumerate([(0, 10), (1, 20)]):
        md = {"submitted": at(0), "started": at(0), "completed": at(end), "engine_id": engine}
        (key,) = tracker.add_chunks([([index], md)], attempt=1)
        tracker.notify(key, Event.DONE, Recorded(TaskState.OK, index, None))
    tracker.poll()
    tracker.restore_end(T0 + 20)
    snap = tracker.snapshot()
    assert snap.elapsed_s == pytest.approx(20)
    assert snap.wall_s == pytest.approx(20)
    assert snap.serial_s == pytest.approx(30)
    assert snap.speedup == pytest.approx(1.5)
    assert snap.efficiency == pytest.approx(30 / 40)  # two engines for 20 s


def test_a_resubmit_after_a_pause_counts_only_the_time_tasks_were_out() -> None:
    """Attempt 1: a task sent at t=0 fails at t=10. The user waits, then resubmits at t=20;
    attempt 2 runs t=20..25. Elapsed = 10 + 5 = 15 s; the wall-clock span is 25 s."""
    clock = Clock()
    tracker = Tracker("t", 1, clock=clock)
    tracker.set_engines([0])
    key = task(tracker, 0, engine=0, start=0, end=10)
    clock.t = 10
    finish(tracker, key, 10, RuntimeError("flaky"))
    clock.t = 20
    tracker.begin_submission(1, attempt=2)
    md = {"submitted": at(20), "engine_id": 0, "started": at(20)}
    (key,) = tracker.add_chunks([([0], md)], attempt=2)
    tracker.end_submission()
    clock.t = 22
    assert tracker.snapshot().elapsed_s == pytest.approx(12)  # live: 10 + (22 - 20)
    clock.t = 25
    finish(tracker, key, 25)
    snap = tracker.snapshot()
    assert snap.elapsed_s == pytest.approx(15)
    assert snap.wall_s == pytest.approx(25)
    assert snap.serial_s == pytest.approx(15)
    assert snap.speedup == pytest.approx(1.0)
