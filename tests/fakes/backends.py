"""Stand-ins for the cluster: `FakeBackend`, `FakeSession`, `FakeJob` and `FakeWatch` satisfy the
protocols of `ippmon.protocols` with recorded data and no threads of their own.

A FakeJob returns the same recorded snapshot and output lines every time, so an app built with
`poll_interval=0` (no polling thread) shows exactly one recorded moment of a job: the monitor
reads `job.snapshot()` and `job.output_batch(0)` once. Each fake notes what it was asked, and
from which thread, for the tests to check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from ippmon.adopt import Adopted, Resubmitted
from ippmon.jobspec import JobSpec
from ippmon.model import (
    ClusterInfo,
    JobSnapshot,
    OutputBatch,
    OutputLine,
    Phase,
    TaskDetail,
    TaskRow,
    TaskState,
)
from ippmon.protocols import ClusterChoice, ConnectError
from ippmon.runs import RunError
from ippmon.stream import StreamRow, TaskStream, Zoom, window
from ippmon.topmodel import TopLine, TopSnapshot

from .recorded import CLUSTER, NOW, RUN_ID, RUNS_DIR, mid_run, output_lines
from .recorded_top import top_lines, top_snapshot


class TaskSource(Protocol):
    """Recorded rows and details (e.g. `recorded_tasks.RecordedTasks`)."""

    def task_rows(self, states: Iterable[TaskState] | None = None) -> list[TaskRow]: ...

    def task(self, index: int) -> TaskDetail: ...


class StreamSource(Protocol):
    """Where a task stream comes from (e.g. a `Tracker` that played a recorded job)."""

    def stream(self, zoom: Zoom, width: int) -> TaskStream: ...


class FakeJob:
    """A JobHandle that replays one recorded moment (or a script of snapshots, one per poll)."""

    def __init__(
        self,
        snapshot: JobSnapshot,
        lines: Sequence[OutputLine] = (),
        *,
        script: Iterable[JobSnapshot] = (),
        retry: Sequence[int] | None = None,
        after_submit: JobSnapshot | None = None,
        tasks: TaskSource | None = None,
        lag: bool = False,
        stream: StreamSource | None = None,
    ) -> None:
        """`retry`: what `retryable()` answers (default: the recorded failures' indices);
        `after_submit`: the snapshot a resubmission leads to (default: derived); `tasks`:
        where `task_rows()` and `task()` come from (default: no rows); `stream`: where
        `stream()` comes from (default: idle rows); `lag`: as the real job,
        a resubmission shows only from the next poll on (the sender thread registers it)."""
        self.name = snapshot.name
        self._snapshot = snapshot
        self._lines = list(lines)
        self._script = list(script)
        self._retry = list(retry) if retry is not None else None
        self._after_submit = after_submit
        self.tasks = tasks
        self._stream = stream
        self._lag = lag
        self._sent: JobSnapshot | None = None  # a resubmission not yet taken in (`lag`)
        self.polls = 0
        self.poll_threads: set[threading.Thread] = set()
        self.polled = threading.Event()
        self.cancelled = False
        self.closed = False
        self.resubmitted: list[int] | None = None
        self.submit_threads: set[threading.Thread] = set()
        self.retryable_calls = 0
        self.exported: str | None = None
        self.export_threads: set[threading.Thread] = set()
        self.cancel_threads: set[threading.Thread] = set()
        self.calls: list[str] = []  # "submit", "cancel", "close", in order

    def poll(self) -> JobSnapshot:
        self.poll_threads.add(threading.current_thread())
        self.polls += 1
        if self._sent is not None:
            self._snapshot, self._sent = self._sent, None
        elif self._script:
            self._snapshot = self._script.pop(0)
        self.polled.set()
        return self._snapshot

    def snapshot(self) -> JobSnapshot:
        return self._snapshot

    def output_batch(self, seq: int) -> OutputBatch:
        return OutputBatch.of([line for line in self._lines if line.seq > seq], 0, seq)

    def task(self, index: int) -> TaskDetail:
        if self.tasks is not None:
            return self.tasks.task(index)
        return TaskDetail(index, TaskState.QUEUED, 1, None, None, None, None, None)

    def task_rows(self, states: Iterable[TaskState] | None = None) -> list[TaskRow]:
        return [] if self.tasks is None else self.tasks.task_rows(states)

    def stream(self, zoom: Zoom, width: int) -> TaskStream:
        """The recorded stream (`stream`), or one row of idle cells per engine."""
        if self._stream is not None:
            return self._stream.stream(zoom, width)
        start, end = window(
            zoom, NOW - self._snapshot.wall_s if self._snapshot.wall_s else NOW - 60, NOW
        )
        rows = tuple(StreamRow(e.id, "." * width, e.alive, e.left) for e in self._snapshot.engines)
        return TaskStream(zoom, start, end, start, width, rows)

    def retryable(self) -> list[int]:
        self.retryable_calls += 1
        if self._retry is not None:
            return list(self._retry)
        return [failure.index for failure in self._snapshot.failures]

    def submit(self, indices: Iterable[int], attempt: int | None = None) -> int:
        """Resubmission: the tasks go back to queued and the job runs again as the next
        attempt (the failed, cancelled and lost ones; or, given every index, all of them)."""
        self.submit_threads.add(threading.current_thread())
        self.calls.append("submit")
        self.resubmitted = list(indices)
        snapshot = self._snapshot
        after = self._after_submit
        if after is None:
            again = (TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST)
            if len(self.resubmitted) >= snapshot.total:
                again = tuple(TaskState)
            moved = {state: 0 for state in again}
            queued = snapshot.count(TaskState.QUEUED) + sum(snapshot.count(s) for s in again)
            after = replace(
                snapshot,
                phase=Phase.RUNNING,
                attempt=snapshot.attempt + 1,
                counts={**snapshot.counts, **moved, TaskState.QUEUED: queued},
                failures=(),
            )
        if self._lag:
            self._sent = after
        else:
            self._snapshot = after
        return after.attempt

    def export(self, fmt: str = "csv") -> str:
        self.export_threads.add(threading.current_thread())
        self.exported = fmt
        return f"{RUNS_DIR}/{RUN_ID}/results.{fmt}"

    def finished(self) -> bool:
        return self._snapshot.phase is Phase.FINISHED

    def cancel(self) -> None:
        self.cancel_threads.add(threading.current_thread())
        self.calls.append("cancel")
        self.cancelled = True

    def close(self) -> None:
        self.calls.append("close")
        self.closed = True


class FakeWatch:
    """A ClusterWatch that replays one recorded moment of the cluster (or a script of
    snapshots and lines, one step per poll)."""

    def __init__(
        self,
        snapshot: TopSnapshot | None = None,
        lines: Sequence[TopLine] | None = None,
        *,
        script: Iterable[tuple[TopSnapshot, Sequence[TopLine]]] = (),
    ) -> None:
        self._snapshot = snapshot or top_snapshot()
        self._lines = list(top_lines() if lines is None else lines)
        self._script = list(script)
        self.polls = 0
        self.closed = False
        self.aborted: list[str] = []
        self.interrupted: list[str] = []
        self.resubmitted: list[str] = []
        self.adopted: list[tuple[str, str | None, ClusterInfo]] = []

    def poll(self) -> TopSnapshot:
        self.polls += 1
        if self._script:
            self._snapshot, lines = self._script.pop(0)
            self._lines.extend(lines)
        return self._snapshot

    def output_since(self, seq: int) -> tuple[list[TopLine], int]:
        return [line for line in self._lines if line.seq > seq], 0

    def interrupt(self, job_id: str) -> list[int]:
        self.interrupted.append(job_id)
        return [e.id for e in self._snapshot.engines if e.job == job_id]

    def abort(self, job_id: str) -> int:
        self.aborted.append(job_id)
        job = self._snapshot.job(job_id)
        return job.queued if job is not None else 0

    def resubmit(self, job_id: str) -> Resubmitted:
        """As a DictDB controller that culled one of the job's failed tasks."""
        self.resubmitted.append(job_id)
        job = self._snapshot.job(job_id)
        failed = job.failed if job is not None else 0
        culled = min(1, failed)
        skipped = ((culled, "the controller no longer holds their records"),) if culled else ()
        return Resubmitted(failed - culled, skipped)

    def adopt(self, job_id: str, runs_dir: str | None, cluster: ClusterInfo) -> Adopted:
        self.adopted.append((job_id, runs_dir, cluster))
        job = self._snapshot.job(job_id)
        title = job.title if job is not None else job_id
        return Adopted("20260101-120000-" + title, f"/runs/{title}", 7, title)

    def close(self) -> None:
        self.closed = True


class FakeSession:
    """Submits by handing out `job_for(spec)`, attaches to a recorded run by handing out
    `runs[run_id]` (or raising RunError, as for a folder without a record); records what was
    submitted and attached, and whether closed."""

    def __init__(
        self,
        job_for: Callable[[JobSpec], FakeJob] | None = None,
        info: ClusterInfo = CLUSTER,
        *,
        runs: dict[str, FakeJob] | None = None,
        gate: threading.Event | None = None,
        watch: FakeWatch | None = None,
    ) -> None:
        self.info = info
        self.cluster_watch = watch or FakeWatch()
        self.watched = 0
        self.runs = dict(runs or {})
        self.attached: list[Path] = []
        self.attach_threads: set[threading.Thread] = set()
        self.gate = gate  # close() waits for it, as stopping a local cluster takes a while
        self.closing = threading.Event()
        self.job_for = job_for or (lambda spec: FakeJob(mid_run(), output_lines()))
        self.submitted: list[tuple[JobSpec, str | None]] = []
        self.jobs: list[FakeJob] = []
        self.closed = False
        self.jobs_closed_first: bool | None = None

    def submit(self, spec: JobSpec, runs_dir: str | None = None) -> FakeJob:
        self.submitted.append((spec, runs_dir))
        job = self.job_for(spec)
        self.jobs.append(job)
        return job

    def attach(self, folder: Path) -> FakeJob:
        self.attach_threads.add(threading.current_thread())
        self.attached.append(folder)
        job = self.runs.get(folder.name)
        if job is None:
            raise RunError(f"{folder}: cannot read the run record: FileNotFoundError: run.json")
        self.jobs.append(job)
        return job

    def engine_ids(self) -> list[int]:
        return list(range(self.info.engines))

    def watch(self) -> FakeWatch:
        self.watched += 1
        return self.cluster_watch

    def close(self) -> None:
        self.jobs_closed_first = all(job.closed for job in self.jobs)
        self.closing.set()
        if self.gate is not None:
            self.gate.wait(30)
        self.closed = True


class FakeBackend:
    """Finds `choices`, connects to `session` (or raises `error`). With `gate`, every call first
    waits for the gate to open, so a test can look at the app while it is connecting."""

    def __init__(
        self,
        session: FakeSession | None = None,
        *,
        choices: Sequence[ClusterChoice] = (ClusterChoice("default", "", 4, "tcp://127.0.0.1:5"),),
        target: bool = False,
        error: ConnectError | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.session = session or FakeSession()
        self.choices = list(choices)
        self.target = target
        self.error = error
        self.gate = gate
        self.entered = threading.Event()
        self.calls: list[tuple[str, object]] = []

    def _call(self, name: str, argument: object = None) -> None:
        self.calls.append((name, argument))
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)

    def target_given(self) -> bool:
        return self.target

    def discover(self) -> list[ClusterChoice]:
        self._call("discover")
        return list(self.choices)

    def connect(self, choice: ClusterChoice | None = None) -> FakeSession:
        self._call("connect", choice)
        if self.error is not None:
            raise self.error
        return self.session

    def start_local(self, n: int) -> FakeSession:
        self._call("start_local", n)
        if self.error is not None:
            raise self.error
        return self.session
