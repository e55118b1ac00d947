"""Recorded jobs for the task stream, played through a real `Tracker` (the stream is binned by
the tracker's own code), and one finished run written as ippmon writes it and read back by
`Job.restore`. Seeded: the same tasks on every machine.

Each job ends at `NOW` (the recorded apps' fixed clock); tasks run back to back on each engine
with now and then a pause, a failure every so often, and what runs at `NOW` still running.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

from ippmon.job import Job
from ippmon.jobspec import builtin_specs
from ippmon.model import OutputLine, TaskState
from ippmon.records import RunRecord, iso
from ippmon.tracker import Event, Recorded, Tracker

from .backends import FakeJob
from .recorded import CLUSTER, NOW, RUN_ID, fixed_clock, output_lines


@dataclass
class Task:
    index: int
    engine: int
    started: float
    completed: float | None  # None: still running at the end (or lost with its engine)
    state: TaskState


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def schedule(
    engines: int,
    seconds: float,
    *,
    seed: int,
    shortest: float = 1.0,
    longest: float = 5.0,
    fail_every: int = 0,
    gone: dict[int, float] | None = None,
    end: float = NOW,
) -> list[Task]:
    """Tasks handed out to `engines` engines over the last `seconds` before `end`; `gone`:
    engine -> when it died (its task then is lost, it runs nothing after)."""
    rng = random.Random(seed)
    gone = gone or {}
    start = end - seconds
    tasks: list[Task] = []
    clocks = [start + rng.uniform(0, 2) for _ in range(engines)]
    while True:
        e = min(range(engines), key=lambda i: clocks[i])
        t = clocks[e]
        if t >= end:
            break
        died = gone.get(e)
        if died is not None and t >= died:
            clocks[e] = float("inf")
            continue
        d = rng.uniform(shortest, longest)
        index = len(tasks)
        if died is not None and t + d >= died:
            tasks.append(Task(index, e, t, None, TaskState.LOST))
            clocks[e] = float("inf")
            continue
        if t + d >= end:
            tasks.append(Task(index, e, t, None, TaskState.RUNNING))
            clocks[e] = float("inf")
            continue
        failed = fail_every and rng.randrange(fail_every) == 0
        tasks.append(Task(index, e, t, t + d, TaskState.ERROR if failed else TaskState.OK))
        pause = rng.uniform(2, 8) if rng.random() < 0.08 else rng.uniform(0, 0.15)
        clocks[e] = t + d + pause
    return tasks


def played(
    name: str, tasks: list[Task], engines: int, queued: int, *, gone: dict[int, float] | None = None
) -> Tracker:
    """A tracker that watched `tasks` happen (in time order), with `queued` more waiting."""
    gone = gone or {}
    first = min(t.started for t in tasks)
    clock = Clock(first - 0.5)
    tracker = Tracker(name, len(tasks) + queued, clock=clock, cluster=CLUSTER, run_id=RUN_ID)
    mds = [
        {"engine_id": None, "submitted": first - 0.5, "started": None, "completed": None}
        for _ in range(len(tasks) + queued)
    ]
    tracker.add_chunks([([i], md) for i, md in enumerate(mds)], attempt=1)
    tracker.set_engines(range(engines))
    events: list[tuple[float, int, object]] = []
    for task in tasks:
        events.append((task.started, 0, task))
        if task.completed is not None:
            events.append((task.completed, 2, task))
    for engine, when in gone.items():
        events.append((when, 1, engine))
    alive = set(range(engines))
    for t, kind, what in sorted(events, key=lambda ev: (ev[0], ev[1])):
        clock.t = t
        if kind == 1:
            assert isinstance(what, int)
            alive.discard(what)
            tracker.set_engines(alive)
            for task in tasks:  # the reply for its task: the engine died
                if task.engine == what and task.state is TaskState.LOST:
                    tracker.notify(task.index, Event.DONE, Recorded(TaskState.LOST))
        else:
            assert isinstance(what, Task)
            md = mds[what.index]
            if kind == 0:
                md.update(engine_id=what.engine, started=what.started)
                tracker.notify(what.index, Event.ACTIVITY)
            else:
                md["completed"] = what.completed
                if what.state is TaskState.ERROR:
                    error = ("ValueError", f"bad input {what.index}", "")
                    tracker.notify(what.index, Event.DONE, Recorded(TaskState.ERROR, None, error))
                else:
                    tracker.notify(what.index, Event.DONE, [what.index])
                tracker.notify(what.index, Event.OUTPUT_DONE)
        tracker.poll()
    clock.t = NOW
    tracker.poll()
    return tracker


class StreamJob(FakeJob):
    """A FakeJob whose snapshot and stream are a played tracker's."""

    def __init__(self, tracker: Tracker, lines: list[OutputLine] | None = None) -> None:
        super().__init__(tracker.snapshot(), lines or [], stream=tracker)


def two_engines_mid_job() -> StreamJob:
    tasks = schedule(2, 150, seed=2, shortest=1.0, longest=6.0)
    return StreamJob(played("squares", tasks, 2, queued=60), output_lines(12, engines=2))


def many_engines_stream(n: int = 64) -> StreamJob:
    tasks = schedule(n, 240, seed=64, shortest=3.0, longest=20.0, fail_every=60)
    return StreamJob(played("render-frames", tasks, n, queued=12_000), output_lines(engines=n))


GONE = {2: NOW - 24.0}


def failures_and_lost() -> StreamJob:
    """flaky on 4 engines: one task in six fails; engine 2 died 24 s ago with its task."""
    tasks = schedule(4, 150, seed=6, shortest=1.0, longest=5.0, fail_every=6, gone=GONE)
    return StreamJob(played("flaky", tasks, 4, queued=30, gone=GONE), output_lines(12))


# -- a finished run, from its record ----------------------------------------------------------

FINISHED_RUN_ID = "20251231-230000-5e1f"


def write_finished_run(runs: Path) -> Path:
    """squares, finished an hour before `NOW` after ~14 min on 4 engines with a few failures,
    written as ippmon writes a run folder."""
    end = NOW - 3600
    tasks = schedule(4, 840, seed=14, shortest=4.0, longest=30.0, fail_every=12, end=end)
    tasks = [t for t in tasks if t.completed is not None]
    record = RunRecord.create(runs, FINISHED_RUN_ID)
    record.save_pickle("spec.pickle", builtin_specs()["squares"])
    record.save_pickle("inputs.pickle", list(range(len(tasks))))
    created = min(t.started for t in tasks) - 0.5
    record.write_run(
        {
            "run_id": FINISHED_RUN_ID,
            "job": "squares",
            "state": "finished",
            "inputs_count": len(tasks),
            "created": dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat(),
            "cluster": {"profile": "default", "cluster_id": "", "location": "local"},
            "attempts": [],
        }
    )
    record.append_results(
        {
            "index": t.index,
            "attempt": 1,
            "status": t.state.value,
            "engine": t.engine,
            "submitted": iso(created),
            "started": iso(t.started),
            "completed": iso(t.completed),
            "duration_s": None if t.completed is None else t.completed - t.started,
            "result": None if t.state is TaskState.ERROR else t.index**2,
            "error": {"ename": "ValueError", "evalue": "bad input", "traceback": ""}
            if t.state is TaskState.ERROR
            else None,
            "stdout": "",
            "stderr": "",
        }
        for t in tasks
    )
    record.close()
    return record.folder


def finished_from_record(runs: Path) -> Job:
    """The finished run read back from its folder, with no cluster (as the runs list does)."""
    return Job.restore(write_finished_run(runs), None, CLUSTER, clock=fixed_clock)
