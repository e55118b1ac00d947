"""Recorded tasks for the tasks and task screens: a 40-task `flaky` job with every state (a task
with long stdout and stderr, one whose traceback carries terminal colours and markup-like
brackets), and a 20,000-task job built row by row.

`RecordedTasks` answers `task_rows()` and `task()` from that data; `flaky_job()` and `big_job()`
are FakeJobs that read their tasks from it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from ippmon.model import Durations, JobSnapshot, Phase, TaskDetail, TaskRow, TaskState

from .backends import FakeJob
from .recorded import NOW, RUN_ID

RED, GREEN, LINE, OFF = "\x1b[0;31m", "\x1b[0;32m", "\x1b[1;32m", "\x1b[0m"
TRACEBACK = "\n".join(  # as IPython colours a remote traceback
    [
        f"{RED}{'-' * 75}{OFF}",
        f"{RED}TransientError{OFF}{' ' * 28}Traceback (most recent call last)",
        f"File {GREEN}~/ippmon/demo.py:41{OFF}, in flaky(x, delay)",
        f"{LINE}     39{OFF}     time.sleep(delay)",
        f"{LINE}     40{OFF}     if x % 7 == 0:",
        f"{GREEN}---> 41{OFF}         raise TransientError("
        'f"flaky failure on input {x} [red]not markup[/red]")',
        f"{LINE}     42{OFF}     return x * x",
        "",
        f"{RED}TransientError{OFF}: flaky failure on input 7 [red]not markup[/red]",
    ]
)

LONG_STDOUT = "\n".join(
    f"step {i:>2}/60: read block {i * 4096:>7} [{'#' * (i % 20):<20}] ok" for i in range(1, 61)
)
LONG_STDERR = "\n".join(
    [f"WARNING: slow read of block {i * 4096} [retry {i}/3]" for i in range(1, 4)]
    + ["DeprecationWarning: `np.float` is a deprecated alias for `float`"] * 2
)

ERRORS = {
    7: ("TransientError", "flaky failure on input 7 [red]not markup[/red]", TRACEBACK),
    21: ("ValueError", "math domain error", "ValueError: math domain error"),
    28: ("ZeroDivisionError", "division by zero", "ZeroDivisionError: division by zero"),
}
LOST = (35,)
CANCELLED = (12,)
RUNNING = (30, 31, 32, 33)
STRAGGLER = 31  # running much longer than the finished tasks took
QUEUED = (36, 37, 38, 39)


def state_of(i: int) -> TaskState:
    if i in ERRORS:
        return TaskState.ERROR
    for indices, state in (
        (LOST, TaskState.LOST),
        (CANCELLED, TaskState.CANCELLED),
        (RUNNING, TaskState.RUNNING),
        (QUEUED, TaskState.QUEUED),
    ):
        if i in indices:
            return state
    return TaskState.OK


def recorded_detail(i: int) -> TaskDetail:
    """Task `i` of the 40-task `flaky` job, in full."""
    state = state_of(i)
    engine = None if state is TaskState.QUEUED else i % 4
    submitted = NOW - 120.0 + i * 0.5
    started = None if state in (TaskState.QUEUED, TaskState.CANCELLED) else submitted + 0.25
    duration = 0.1 + (i * 37 % 23) / 4 if state in (TaskState.OK, TaskState.ERROR) else None
    completed = started + duration if started is not None and duration is not None else None
    ename, evalue, tb = ERRORS.get(i, ("", "", ""))
    if state is TaskState.LOST:
        ename, evalue = "EngineError", "engine 3 died while running this task"
    stdout = LONG_STDOUT if i == 3 else (f"task {i}: squared {i} -> {i * i}" if started else "")
    stderr = LONG_STDERR if i == 3 else ""
    return TaskDetail(
        index=i,
        state=state,
        attempt=2 if i == 7 else (1 if started is not None or state.finished else 0),
        engine=engine,
        submitted=submitted,
        started=started,
        completed=completed,
        duration_s=duration,
        result={"x": i, "square": i * i, "path": f"/data/out/{i:05d}.npz"}
        if state is TaskState.OK
        else None,
        ename=ename,
        evalue=evalue,
        traceback=tb,
        stdout=stdout,
        stderr=stderr,
        extra={"input": i},
    )


def row_of(detail: TaskDetail) -> TaskRow:
    """The row the tracker would build (first error line, else the last output line)."""
    if detail.ename:
        line = f"{detail.ename}: {detail.evalue}" if detail.evalue else detail.ename
    else:
        text = detail.stderr or detail.stdout
        line = text.rsplit("\n", 1)[-1] if text else ""
    return TaskRow(
        detail.index,
        detail.state,
        detail.engine,
        detail.attempt,
        detail.duration_s,
        line.splitlines()[0] if line else "",
    )


def big_row(i: int) -> TaskRow:
    """Task `i` of the 20,000-frame job: 7,640 done (11 failed), 48 running, the rest queued."""
    if i < 7_651:
        if i % 701 == 700:
            return TaskRow(i, TaskState.ERROR, i % 64, 1, 3.1, f"RenderError: frame {i}: NaN")
        return TaskRow(i, TaskState.OK, i % 64, 1, 20.0 + (i * 7919 % 4000) / 100, f"frame {i} ok")
    if i < 7_699:
        return TaskRow(i, TaskState.RUNNING, i % 64, 1, None, f"frame {i}: pass 2")
    return TaskRow(i, TaskState.QUEUED, None, 0, None, "")


class RecordedTasks:
    """Where a FakeJob's `task_rows()` and `task()` come from: recorded rows and details. Counts
    the calls and notes the threads they came from."""

    def __init__(self, rows: list[TaskRow], details: dict[int, TaskDetail] | None = None) -> None:
        self.rows = rows
        self.details = details or {}
        self.row_calls = 0
        self.task_calls: list[int] = []
        self.threads: set[threading.Thread] = set()

    def task_rows(self, states: Iterable[TaskState] | None = None) -> list[TaskRow]:
        self.threads.add(threading.current_thread())
        self.row_calls += 1
        if states is None:
            return list(self.rows)
        wanted = set(states)
        return [row for row in self.rows if row.state in wanted]

    def task(self, index: int) -> TaskDetail:
        self.threads.add(threading.current_thread())
        self.task_calls.append(index)
        if index in self.details:
            return self.details[index]
        row = self.rows[index]
        return TaskDetail(
            index,
            row.state,
            row.attempt,
            row.engine,
            None,
            None,
            None,
            row.duration_s,
            extra={"input": {"frame": index}},
        )


def tasks_job(name: str, tasks: RecordedTasks) -> FakeJob:
    """A running job whose tasks are `tasks` (the snapshot counts them and histograms their
    durations, nothing more)."""
    total = len(tasks.rows)
    snapshot = JobSnapshot(
        name=name,
        phase=Phase.RUNNING,
        total=total,
        submitted=total,
        counts={},
        elapsed_s=0.0,
        serial_s=0.0,
        tasks_per_s=0.0,
        eta_s=None,
        run_id=RUN_ID,
        durations=Durations.of([r.duration_s for r in tasks.rows if r.duration_s is not None]),
    )
    return FakeJob(snapshot, tasks=tasks)


def flaky_tasks() -> RecordedTasks:
    details = {i: recorded_detail(i) for i in range(40)}
    rows = [row_of(d) for d in details.values()]
    rows[STRAGGLER] = replace(rows[STRAGGLER], straggler=True)
    return RecordedTasks(rows, details)


def flaky_job() -> FakeJob:
    return tasks_job("flaky", flaky_tasks())


def big_tasks() -> RecordedTasks:
    return RecordedTasks([big_row(i) for i in range(20_000)])


def big_job() -> FakeJob:
    return tasks_job("render-frames", big_tasks())


def nasty_tasks() -> RecordedTasks:
    """Four tasks that printed what drives terminals (`recorded.NASTY`), as the tracker rows
    them (the last line as a terminal shows it)."""
    from ippmon.terminal import plain

    from .recorded import NASTY

    details = {}
    for i in range(4):
        detail = recorded_detail(i if i != 3 else 7)
        details[i] = replace(
            detail,
            index=i,
            stdout="\n".join(NASTY[i:] + NASTY[:i]),
            stderr="\x1b[33mwarning\x1b[0m: \x1b]0;title\x07careful\r\x1b[2Kstill careful",
            evalue=f"bad \x1b]52;c;eA==\x07input {i}" if detail.ename else "",
        )

    def line(d: TaskDetail) -> str:  # as the tracker takes it (`tracker._first_line`)
        if d.ename:
            return plain(f"{d.ename}: {d.evalue}".splitlines()[0])
        return plain((d.stderr or d.stdout).rsplit("\n", 1)[-1])

    rows = [replace(row_of(d), line=line(d)) for d in details.values()]
    return RecordedTasks(rows, details)


def nasty_job() -> FakeJob:
    return tasks_job("chatty", nasty_tasks())
