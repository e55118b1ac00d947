"""Immutable views of a job that flow from the tracker to the screens and the headless printer.

Nothing here imports ipyparallel or Textual: a snapshot is plain data, so screens can be driven by
recorded snapshots in tests and the tracker can be tested without a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from ippmon.text import first_line


class TaskState(str, Enum):
    """Where one input item of a job stands. The finished values are the run record's `status`."""

    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def finished(self) -> bool:
        return self not in (TaskState.QUEUED, TaskState.RUNNING)

    @property
    def label(self) -> str:
        """The word shown to people ("failed" reads better than "error" in a count)."""
        return "failed" if self is TaskState.ERROR else self.value


FINISHED_STATES = (TaskState.OK, TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST)


class RunState(str, Enum):
    """A run record's `state`: what the process that wrote it last knew."""

    RUNNING = "running"  # tasks were out on the cluster and being watched
    FINISHED = "finished"  # every task final and recorded
    DETACHED = "detached"  # left running on the cluster (`ippmon attach` picks it up)


def cluster_name(profile: str, cluster_id: str = "") -> str:
    """`profile[:cluster-id]`: how ippmon names a cluster everywhere."""
    return profile + (f":{cluster_id}" if cluster_id else "")


class Phase(str, Enum):
    """The life of a job as the screens show it."""

    SUBMITTING = "submitting"  # map_async is still sending; some tasks may already run
    RUNNING = "running"
    CANCELLING = "cancelling"
    FINISHED = "finished"


@dataclass(frozen=True)
class OutputLine:
    """One line a task wrote. `seq` increases by one per line for the whole job."""

    seq: int
    index: int  # the task's input index
    engine: int | None
    stream: str  # "stdout" | "stderr"
    text: str


@dataclass(frozen=True)
class EngineView:
    id: int
    alive: bool = True
    task: int | None = None  # input index of the task it runs now
    running_for_s: float = 0.0
    tasks_done: int = 0
    busy_s: float = 0.0
    busy_pct: float = 0.0  # busy seconds / its time on the job (`job_s`), 0..100
    last_line: str = ""
    job_s: float = 0.0  # seconds it was registered while the job had tasks out
    left: bool = False  # unregistered while idle ("left"); not alive and not left: "gone"


@dataclass(frozen=True)
class Failure:
    index: int
    state: TaskState
    engine: int | None
    ename: str
    evalue: str

    @property
    def line(self) -> str:
        return first_line(f"{self.ename}: {self.evalue}" if self.evalue else self.ename)


def engines_text(n: int | None) -> str:
    """ "1 engine", "3 engines", "? engines"."""
    if n is None:
        return "? engines"
    return f"{n} engine{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Finding:
    """One reason a job is slow (`ippmon.diagnosis`), and what to change."""

    kind: str  # "too-small" | "stragglers" | "too-few" | "slow-engine" | "idle-queued"
    text: str  # plain words with the numbers behind them
    change: str = ""  # what to change in the job spec ("" when there is nothing to change)
    chunksize: int | None = None  # the suggested chunksize, when that is the change


@dataclass(frozen=True)
class JobSnapshot:
    """Everything a screen needs to draw one job at one moment."""

    name: str
    phase: Phase
    total: int
    submitted: int  # tasks sent so far (== total once submission finished)
    counts: Mapping[TaskState, int]
    elapsed_s: float  # the job's own time: while any of its tasks was out (submitted, no reply)
    serial_s: float  # sum of finished tasks' durations
    tasks_per_s: float
    eta_s: float | None
    engines: tuple[EngineView, ...] = ()
    failures: tuple[Failure, ...] = ()  # the most recent few, newest last
    n_failures: int = 0
    attempt: int = 1
    output_seq: int = 0  # seq of the newest output line
    cluster: str = ""
    run_id: str = ""
    message: str = ""  # a one-line notice (e.g. "controller unreachable")
    output_pending: int = 0  # finished tasks whose output is still arriving (not yet recorded)
    wall_s: float | None = None  # first submission to the end, pauses included (None: = elapsed)
    engine_s: float | None = None  # engine-seconds the job could use (None: engines x elapsed)
    findings: tuple[Finding, ...] = ()  # why it is slow (`ippmon.diagnosis`), once there is enough

    def count(self, state: TaskState) -> int:
        return self.counts.get(state, 0)

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINISHED_STATES)

    @property
    def n_engines(self) -> int:
        return sum(1 for e in self.engines if e.alive)

    @property
    def speedup(self) -> float | None:
        return self.serial_s / self.elapsed_s if self.elapsed_s > 0 and self.serial_s > 0 else None

    @property
    def efficiency(self) -> float | None:
        """Busy engine time over the engine time the job could use: each engine counted from
        its arrival (or the job's start) to its departure (or the job's end)."""
        if self.engine_s is not None:
            return self.serial_s / self.engine_s if self.engine_s > 0 and self.serial_s else None
        s = self.speedup
        n = self.n_engines
        return s / n if s is not None and n else None

    @property
    def output_wait(self) -> str:
        """Said while every task has its result but the output of some is still on its way."""
        pending = self.output_pending
        if not pending or self.done < self.total or self.phase is Phase.FINISHED:
            return ""
        tasks = f"{pending:,} task{'s' if pending != 1 else ''}"
        return f"all done · waiting for the output of {tasks}"

    @property
    def succeeded(self) -> bool:
        return self.phase is Phase.FINISHED and self.count(TaskState.OK) == self.total


@dataclass(frozen=True)
class ClusterInfo:
    """How the screens name the cluster they are attached to."""

    profile: str = "default"
    cluster_id: str = ""
    engines: int = 0
    location: str = "local"  # "local", an ssh host, or a connection-file path

    @property
    def name(self) -> str:
        """`profile[:cluster-id]`, as run records name their cluster."""
        return cluster_name(self.profile, self.cluster_id)

    @property
    def label(self) -> str:
        return f"{self.name} ({engines_text(self.engines)}, {self.location})"


@dataclass(frozen=True)
class TaskRow:
    """One line of the tasks table: cheap to build for every task of a big job."""

    index: int
    state: TaskState
    engine: int | None
    attempt: int
    duration_s: float | None
    line: str  # first error line, else last output line


@dataclass(frozen=True)
class Shown:
    """A value from the cluster kept as its pretty-printed text (its class may not import in
    this process); its repr is that text, so it prints like the value did."""

    text: str

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class TaskDetail:
    """One task in full, for the task view and the run record."""

    index: int
    state: TaskState
    attempt: int
    engine: int | None
    submitted: float | None
    started: float | None
    completed: float | None
    duration_s: float | None
    result: object = None
    ename: str = ""
    evalue: str = ""
    traceback: str = ""
    stdout: str = ""
    stderr: str = ""
    extra: dict = field(default_factory=dict)


def format_duration(seconds: float | None) -> str:
    """Compact human time: 0.4s, 12.3s, 4m05s, 2h03m."""
    if seconds is None:
        return "--"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
