"""Why a job is slow, from its own numbers, and what to change in its job spec.

The input is the job's timeline: each chunk (one task, or `chunksize` items sent as one) with
its engine and its times (submitted, started, completed). The rules, each judged only when there
is enough to judge (no advice from a handful of tasks):

- **tasks too small** (at least `MIN_CHUNKS` chunks): on each engine, the gap from one chunk's
  end to the next one's start (while more were queued) is the scheduler's cost per chunk. When
  it is larger than the chunks' median run time, most of the job is overhead: a `chunksize`
  that makes chunks of about `TARGET_CHUNK_S` (but leaves at least `CHUNKS_PER_ENGINE` chunks
  per engine) is suggested, with the time it would take, when it would save at least
  `MIN_SAVING_S`.
- **stragglers** (at least `MIN_STRAGGLER_SAMPLE` chunks): chunks that ran more than
  `STRAGGLER_X` times the median and at least `STRAGGLER_MIN_S` longer, when those still running
  in the job's last stretch held its end up (its engine, and the chunks after them there, would
  have ended sooner): all named, with by how much.
- **too few tasks** (a job of at least `MIN_JOB_S`): fewer chunks than engines, or engines idle
  after their last chunk for more than `TAIL_SHARE` of the engine time.
- **one slow engine**: an engine whose median run time per item is `SLOW_ENGINE_X` times the
  others', over at least `MIN_PER_ENGINE` chunks on it.
- **idle engines while tasks queue** (at least `MIN_CHUNKS` chunks): engines without a task,
  for stretches longer than `IDLE_MIN_S`, while tasks waited to start, adding up to
  `IDLE_SHARE` of the engine time.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ippmon.model import Finding, format_duration
from ippmon.spans import Spans

MIN_CHUNKS = 50
MIN_STRAGGLER_SAMPLE = 20
MIN_JOB_S = 5.0
MIN_SAVING_S = 1.0  # advice that would save less than this is not worth the reader's time
TARGET_CHUNK_S = 1.0
CHUNKS_PER_ENGINE = 4
STRAGGLER_X = 3.0
STRAGGLER_MIN_S = 1.0
TAIL_SHARE = 0.25
SLOW_ENGINE_X = 1.5
MIN_PER_ENGINE = 10
IDLE_MIN_S = 1.0
IDLE_SHARE = 0.10


@dataclass(frozen=True)
class Ran:
    """One finished chunk: where and when it ran."""

    index: int  # its first item's input index
    items: int
    engine: int
    submitted: float
    started: float
    completed: float

    @property
    def run_s(self) -> float:
        return max(0.0, self.completed - self.started)


def _fmt(seconds: float) -> str:
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f} µs"
    return format_duration(seconds)


def straggling(run_s: float, median_s: float) -> bool:
    """A chunk that ran (or has run so far) more than `STRAGGLER_X` times the median and at
    least `STRAGGLER_MIN_S` longer: the rule for finished jobs and for running tasks alike."""
    return run_s > STRAGGLER_X * median_s and run_s - median_s >= STRAGGLER_MIN_S


def diagnose(
    timeline: Iterable[Ran], *, engines: int, total_items: int, chunksize: int = 1
) -> list[Finding]:
    """What slowed this job down, most important first; [] for a healthy job or too little to
    judge."""
    runs = sorted(timeline, key=lambda r: r.started)
    if not runs or engines < 1:
        return []
    start = min(r.submitted for r in runs)
    end = max(r.completed for r in runs)
    elapsed = end - start
    if elapsed <= 0:
        return []
    by_engine: dict[int, list[Ran]] = defaultdict(list)
    for r in runs:
        by_engine[r.engine].append(r)
    many = len(runs) >= MIN_CHUNKS
    small = _too_small(runs, by_engine, engines, total_items, chunksize, elapsed) if many else None
    stragglers = _stragglers(runs, end) if len(runs) >= MIN_STRAGGLER_SAMPLE else None
    few = None
    if not small and not stragglers and elapsed >= MIN_JOB_S:
        few = _too_few(runs, by_engine, engines, end, elapsed, chunksize)
    slow = _slow_engine(by_engine)
    idle = _idle_while_queued(runs, by_engine, engines, start, end) if many and not small else None
    return [f for f in (small, stragglers, few, slow, idle) if f is not None]


def _gaps(by_engine: dict[int, list[Ran]]) -> list[float]:
    """On each engine, end of one chunk to start of the next, when the next was already queued."""
    gaps = []
    for mine in by_engine.values():
        for before, after in zip(mine, mine[1:]):
            if after.submitted <= before.completed:
                gaps.append(max(0.0, after.started - before.completed))
    return gaps


def _too_small(
    runs: Sequence[Ran],
    by_engine: dict[int, list[Ran]],
    engines: int,
    total_items: int,
    chunksize: int,
    elapsed: float,
) -> Finding | None:
    gaps = _gaps(by_engine)
    if len(gaps) < MIN_CHUNKS // 2:
        return None
    gap = statistics.median(gaps)
    run = statistics.median(r.run_s for r in runs)
    if gap <= run:
        return None
    per_item = statistics.median(r.run_s / max(1, r.items) for r in runs)
    most = max(1, total_items // (CHUNKS_PER_ENGINE * engines))
    size = max(1, min(most, round(TARGET_CHUNK_S / max(per_item, 1e-6))))
    if size <= chunksize:
        return None
    chunks = math.ceil(total_items / size)
    rounds = math.ceil(chunks / engines)
    predicted = rounds * (size * per_item + gap)
    if predicted > elapsed / 2 or elapsed - predicted < MIN_SAVING_S:
        return None
    return Finding(
        "too-small",
        f"tasks too small: each runs {_fmt(run)} but costs ~{_fmt(gap)} to schedule; "
        f"chunksize = {size} would cut the job from ~{format_duration(elapsed)} to "
        f"~{format_duration(predicted)}",
        change=f"chunksize = {size}",
        chunksize=size,
    )


def _stragglers(runs: Sequence[Ran], end: float) -> Finding | None:
    median = statistics.median(r.run_s for r in runs)
    slow = [r for r in runs if straggling(r.run_s, median)]
    # the ones whose extra time reaches into the job's last stretch
    late = [r for r in slow if r.completed > end - (r.run_s - median)]
    held = _held_up(runs, late, median)
    if held <= 0:
        return None
    slow.sort(key=lambda r: -r.run_s)
    named = ", ".join(f"#{r.index} ({format_duration(r.run_s)})" for r in slow[:5])
    more = f" and {len(slow) - 5} more" if len(slow) > 5 else ""
    return Finding(
        "stragglers",
        f"stragglers: {named}{more} ran over {STRAGGLER_X:g}× the median "
        f"({format_duration(median)}) and held the end up by ~{format_duration(held)}",
    )


def _held_up(runs: Sequence[Ran], late: Sequence[Ran], median: float) -> float:
    """How much sooner the job would have ended had the `late` chunks run the median time: each
    engine's chunks after one of them would have moved up by its extra time, and the job ends
    with the last engine."""
    ends: dict[int, float] = {}
    for r in runs:
        ends[r.engine] = max(ends.get(r.engine, r.completed), r.completed)
    sooner = dict(ends)
    for r in late:
        sooner[r.engine] -= r.run_s - median
    return max(ends.values()) - max(sooner.values())


def _too_few(
    runs: Sequence[Ran],
    by_engine: dict[int, list[Ran]],
    engines: int,
    end: float,
    elapsed: float,
    chunksize: int,
) -> Finding | None:
    if len(runs) < engines:
        return Finding(
            "too-few",
            f"too few tasks: {len(runs)} for {engines} engines; "
            f"{engines - len(runs)} never had one",
            change="chunksize = 1" if chunksize > 1 else "",
        )
    # idle from when the last task started (nothing waited any more) or its own last end
    last_start = runs[-1].started  # runs come sorted by start (`diagnose`)
    tail = sum(end - max(last_start, *(r.completed for r in mine)) for mine in by_engine.values())
    tail += (engines - len(by_engine)) * elapsed
    share = tail / (engines * elapsed)
    if share < TAIL_SHARE:
        return None
    smaller = max(1, chunksize // 4)
    return Finding(
        "too-few",
        f"too few tasks for the engines: {share:.0%} of the engine time went idle after "
        f"their last task, while the last ones ran",
        change=f"chunksize = {smaller}" if smaller < chunksize else "",
        chunksize=smaller if smaller < chunksize else None,
    )


def _slow_engine(by_engine: dict[int, list[Ran]]) -> Finding | None:
    medians = {
        e: statistics.median(r.run_s / max(1, r.items) for r in mine)
        for e, mine in by_engine.items()
        if len(mine) >= MIN_PER_ENGINE
    }
    if len(medians) < 2:
        return None
    worst = max(medians, key=lambda e: medians[e])
    others = statistics.median(m for e, m in medians.items() if e != worst)
    if others <= 0 or medians[worst] < SLOW_ENGINE_X * others:
        return None
    return Finding(
        "slow-engine",
        f"engine {worst} is slow: its tasks take {medians[worst] / others:.1f}× as long as "
        f"on the others (median {_fmt(medians[worst])} vs {_fmt(others)}): a slower or "
        "busier host",
    )


def _idle_while_queued(
    runs: Sequence[Ran],
    by_engine: dict[int, list[Ran]],
    engines: int,
    start: float,
    end: float,
) -> Finding | None:
    """Stretches when an engine had no task while some task waited to start."""
    waited = Spans()  # when some task waited to start
    for wait in sorted((r.submitted, r.started) for r in runs if r.started > r.submitted):
        waited.add(*wait)
    last_start = runs[-1].started  # runs come sorted by start (`diagnose`)
    idle_total = 0.0
    for mine in by_engine.values():
        free = [(start, mine[0].started)]
        free += [(a.completed, b.started) for a, b in zip(mine, mine[1:])]
        free.append((mine[-1].completed, last_start))
        for lo, hi in free:
            if hi - lo < IDLE_MIN_S:
                continue
            idle_total += waited.overlap(lo, hi)
    share = idle_total / (engines * (end - start))
    if share < IDLE_SHARE:
        return None
    return Finding(
        "idle-queued",
        f"engines sat idle for {format_duration(idle_total)} ({share:.0%} of the engine time) "
        "while tasks waited to start: a scheduler or dependency problem (check the view's "
        "scheme and the tasks' dependencies)",
    )
