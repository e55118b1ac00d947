"""The numbers behind the pictures: the straggler rule, the duration histogram and its
percentiles, the throughput over time and the ETA from recent throughput. On timelines recorded
from real runs (`tests/data/timelines`, as `test_diagnosis.py` reads them) replayed through a
tracker, and on made-up durations."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest

from ippmon.diagnosis import MIN_STRAGGLER_SAMPLE, STRAGGLER_X, Ran
from ippmon.model import (
    BUCKETS_PER_DECADE,
    N_BUCKETS,
    Durations,
    TaskState,
    duration_bucket,
)
from ippmon.tracker import THROUGHPUT_BINS, Event, Throughput, Tracker

TIMELINES = Path(__file__).parent / "data" / "timelines"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def recorded(name: str) -> tuple[list[Ran], dict]:
    data = json.loads((TIMELINES / f"{name}.json").read_text())
    return [Ran(**r) for r in data["timeline"]], data


@dataclass
class Replayed:
    by_panel: set[int]  # tasks the engine panels flagged as stragglers
    by_row: set[int]  # tasks the task rows flagged
    fewest_finished: int  # finished tasks when the first flag showed
    tracker: Tracker  # at the end


def replay(name: str, step: float = 0.05) -> Replayed:
    """Run a recorded job through a tracker, looking every `step` seconds (and at every start
    and end)."""
    runs, data = recorded(name)
    runs.sort(key=lambda r: r.index)
    t0 = min(r.submitted for r in runs)
    clock = Clock(t0)
    tracker = Tracker(name, data["total_items"], clock=clock)
    mds = [dict.fromkeys(("engine_id", "started", "completed")) | {"submitted": t0} for _ in runs]
    tracker.add_chunks([([r.index], md) for r, md in zip(runs, mds)], attempt=1)
    tracker.set_engines(range(data["engines"]))
    events = [(r.started, 0, r) for r in runs] + [(r.completed, 1, r) for r in runs]
    end = max(r.completed for r in runs)
    events += [(t0 + k * step, 2, None) for k in range(int((end - t0) / step) + 1)]
    by_panel: set[int] = set()
    by_row: set[int] = set()
    fewest = len(runs)
    for t, kind, r in sorted(events, key=lambda e: (e[0], e[1])):
        clock.t = t
        if r is not None and kind == 0:
            mds[r.index]["engine_id"] = r.engine
            tracker.notify(r.index, Event.ACTIVITY)
        elif r is not None:
            mds[r.index].update(started=r.started, completed=r.completed)
            tracker.notify(r.index, Event.DONE, [r.index])
            tracker.notify(r.index, Event.OUTPUT_DONE)
        tracker.poll()
        snap = tracker.snapshot()
        by_panel |= {e.task for e in snap.engines if e.straggler and e.task is not None}
        assert snap.stragglers == sum(1 for e in snap.engines if e.straggler)
        if snap.stragglers:
            fewest = min(fewest, snap.done)
        if kind == 2:
            by_row |= {row.index for row in tracker.task_rows([TaskState.RUNNING]) if row.straggler}
    return Replayed(by_panel, by_row, fewest, tracker)


def test_the_stragglers_demo_flags_its_long_tasks_while_they_run_and_only_them() -> None:
    # 40 tasks of 0.2 s on 2 engines, every 13th (#12, #25, #38) 2 s
    seen = replay("stragglers")
    assert seen.by_panel == {12, 25, 38}
    assert seen.by_row == {12, 25, 38}
    assert seen.tracker.snapshot().stragglers == 0  # finished: nothing runs, nothing is flagged


def test_the_squares_demo_never_flags_a_straggler() -> None:
    seen = replay("squares")  # 100 tasks of 0.05-0.5 s
    assert seen.by_panel == set() and seen.by_row == set()


def test_no_straggler_is_flagged_before_enough_tasks_finished() -> None:
    # #12 has run past 3 x p50 (0.6 s) and p50 + 1 s long before 20 tasks finished
    runs, _ = recorded("stragglers")
    twelve = next(r for r in runs if r.index == 12)
    early = sum(1 for r in runs if r.completed < twelve.started + 1.2)
    assert early < MIN_STRAGGLER_SAMPLE
    assert replay("stragglers").fewest_finished == MIN_STRAGGLER_SAMPLE


@pytest.mark.parametrize("name", ["squares", "stragglers", "tiny"])
def test_percentiles_from_the_histogram_are_within_a_bucket_of_the_exact_ones(name: str) -> None:
    runs, _ = recorded(name)
    times = [r.run_s for r in runs]
    d = Durations.of(times)
    assert d is not None and d.n == len(runs) == sum(d.counts)
    assert d.max_s == max(times) and d.min_s == min(times)
    bucket = 10 ** (1 / BUCKETS_PER_DECADE)  # neighbouring bucket edges differ by 12%
    exact = statistics.quantiles(times, n=100, method="inclusive")
    assert exact[49] / bucket <= d.p50 <= exact[49] * bucket
    assert exact[94] / bucket <= d.p95 <= exact[94] * bucket


def test_the_histogram_of_the_stragglers_demo_has_its_long_tasks_apart() -> None:
    runs, _ = recorded("stragglers")
    d = Durations.of([r.run_s for r in runs])
    assert d is not None
    bars = d.bars()
    assert sum(b.count for b in bars) == 40
    long = [b for b in bars if b.contains(2.0)]
    assert len(long) == 1 and long[0].count == 3  # #12, #25, #38
    assert bars[0].count == 37 and bars[0].contains(0.2)
    assert STRAGGLER_X * d.p50 < 2.0


def test_bars_keep_their_boundaries_and_merge_to_fit() -> None:
    d = Durations.of([0.001 * 1.5**k for k in range(40)])  # 1 ms to ~7 min: 5.6 decades
    assert d is not None
    fine = d.bars()
    assert len(fine) <= 40 and sum(b.count for b in fine) == 40
    assert all(b.last - b.first == 4 and b.first % 4 == 0 for b in fine)  # 5 a decade
    few = d.bars(most=10)
    assert len(few) <= 10 and sum(b.count for b in few) == 40
    for bar in few:  # a wide bar holds exactly the durations of the fine bars within it
        inside = [b for b in fine if bar.first <= b.first and b.last <= bar.last]
        assert sum(b.count for b in inside) == bar.count
    assert [duration_bucket(x) for x in (0.0, 1e-5, 1e9)] == [0, 0, N_BUCKETS - 1]
    assert few[0].low_s <= 0.001 < few[0].high_s


def test_the_tracker_histogram_is_bounded_and_counts_every_finished_chunk() -> None:
    clock = Clock(0.0)
    n = 100_000
    tracker = Tracker("big", n, clock=clock)
    for i in range(n):
        tracker._count_duration(0.01 + (i % 1000) / 100)
    assert len(tracker._duration_counts) == N_BUCKETS  # whatever the job's size
    d = tracker.snapshot().durations
    assert d is not None and d.n == n
    assert math.isclose(d.max_s, 0.01 + 9.99) and d.p50 == pytest.approx(5.0, rel=0.13)


def test_throughput_is_tasks_per_second_per_slice_and_widens_past_its_bins() -> None:
    series = Throughput()
    series.origin = 0.0
    for t in range(10):
        series.add(t + 0.5, 2)  # 2 tasks a second
    assert series.rates(10.2, finished=False) == (2.0,) * 10  # the slice filling is left out
    series.add(130.0, 4)  # past 60 one-second slices: 4-second slices
    assert series.width_s == 4.0 and len(series.bins) <= THROUGHPUT_BINS
    rates = series.rates(130.5, finished=False)
    assert rates[:2] == (2.0, 2.0) and sum(rates) * 4 == 20  # the slice of t=130 still fills


def test_the_eta_comes_from_recent_throughput_not_the_whole_job() -> None:
    """Fast at first (10 tasks/s for 10 s), then slow (1 task/s for 20 s): the rate and the ETA
    follow the slow part."""
    clock = Clock(1000.0)
    tracker = Tracker("t", 500, clock=clock)
    mds = [{"engine_id": 0, "started": None, "completed": None} for _ in range(500)]
    tracker.add_chunks([([i], md) for i, md in enumerate(mds)], attempt=1)
    tracker.poll()
    done = 0
    for second in range(30):
        per_s = 10 if second < 10 else 1
        for _ in range(per_s):
            mds[done].update(started=clock.t, completed=clock.t + 0.5)
            tracker.notify(done, Event.DONE, [done])
            done += 1
        clock.t += 1
        tracker.poll()
    snap = tracker.snapshot()
    assert snap.tasks_per_s == pytest.approx(1.0, rel=0.15)  # not 120 / 30 s = 4
    assert snap.eta_s == pytest.approx((500 - done) / snap.tasks_per_s)
    assert snap.throughput[:9] == (10.0,) * 9 and snap.throughput[-1] == 1.0
