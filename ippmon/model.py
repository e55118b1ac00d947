"""Immutable views of a job that flow from the tracker to the screens and the headless printer.

Nothing here imports ipyparallel or Textual: a snapshot is plain data, so screens can be driven by
recorded snapshots in tests and the tracker can be tested without a terminal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ippmon.text import first_line

OUTPUT_CAP = 1_000_000  # characters of each stream of a task kept (`--output-cap`)
# Chunks sent and not yet recorded, at most: ipyparallel's client spends ~30-40 kB on each task
# in flight (its future, metadata, events), so sending 100,000 at once costs GBs. Enough to keep
# every engine busy between two polls (2 s of tasks that take no time at ~250 tasks/s, what a
# controller schedules); raised to SEND_WINDOW_PER_ENGINE per engine on wide clusters. 2,048
# cost 100 MB more at 20,000 tasks than 512, and was no faster.
SEND_WINDOW = 512
SEND_WINDOW_PER_ENGINE = 32


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


def format_line(line: OutputLine) -> str:
    """The line as the output pane shows it, its origin in front and `!` after that for stderr:
    "[e1 #17] text" (task 17 on engine 1), "[e1 #17]! text"."""
    engine = "e?" if line.engine is None else f"e{line.engine}"
    mark = "!" if line.stream == "stderr" else ""
    return f"[{engine} #{line.index}]{mark} {line.text}"


@dataclass(frozen=True)
class OutputBatch:
    """The output lines since some `seq`, ready to show (`format_line`): what the screen asks
    for four times a second. Plain strings cross from the cluster process and are written as
    they are (a million lines of a job made, pickled and unpacked as `OutputLine`s cost the
    two processes seconds of CPU taken from the engines)."""

    texts: list[str] = field(default_factory=list)
    first: int = 1  # seq of texts[0]; the texts follow one another, one seq each
    last: int = 0  # seq of texts[-1]; with no texts, the seq asked from
    dropped: int = 0  # lines lost from the bounded buffer before they could be read

    @classmethod
    def of(cls, lines: Sequence[OutputLine], dropped: int, since: int) -> OutputBatch:
        """`lines` (consecutive seqs, as `output_since(since)` returns them) formatted."""
        if not lines:
            return cls([], since + dropped + 1, since + dropped, dropped)
        return cls([format_line(line) for line in lines], lines[0].seq, lines[-1].seq, dropped)

    def after(self, older: OutputBatch) -> OutputBatch:
        """This batch with what an `older` one held before it (an update that was replaced
        before it was shown); lines of the older one that this one holds too are not doubled."""
        kept = older.texts if not self.texts else older.texts[: max(0, self.first - older.first)]
        return OutputBatch(
            kept + self.texts,
            older.first if kept else self.first,
            max(self.last, older.last),
            older.dropped + self.dropped,
        )


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
    straggler: bool = False  # its task has run much longer than finished tasks take (tracker)


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
    throughput: tuple[float, ...] = ()  # tasks/s finished in each of equal slices of the job
    durations: Durations | None = None  # how long finished tasks ran (None: none finished yet)

    @property
    def stragglers(self) -> int:
        """Running tasks flagged as stragglers (one per engine at most)."""
        return sum(1 for e in self.engines if e.straggler and e.alive)

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
    straggler: bool = False  # running much longer than finished tasks take


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


# -- durations ----------------------------------------------------------------------------------

BUCKETS_PER_DECADE = 20  # fine buckets: neighbours differ by 12%, the error of a percentile
SHORTEST_S = 1e-4  # bucket 0 holds everything up to this
N_BUCKETS = 1 + 10 * BUCKETS_PER_DECADE  # up to 1e6 s (11 days); longer lands in the last
BAR_BUCKETS = 4  # fine buckets per histogram bar at the finest: 5 bars a decade


def short_duration(seconds: float) -> str:
    """A duration to two or three digits, in µs or ms below a second: 288µs, 45ms, 2.3s."""
    if seconds >= 1.0:
        return format_duration(seconds)
    return f"{seconds * 1000:.0f}ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f}µs"


def duration_bucket(seconds: float) -> int:
    """The fine bucket of a duration: 0 up to `SHORTEST_S`, then `BUCKETS_PER_DECADE` a decade
    (log-spaced: the same resolution for 5 ms tasks as for 5 min ones)."""
    if seconds <= SHORTEST_S:
        return 0
    i = 1 + int(math.log10(seconds / SHORTEST_S) * BUCKETS_PER_DECADE)
    return min(N_BUCKETS - 1, i)


def bucket_start(i: int) -> float:
    """Where fine bucket `i` begins (bucket 0 begins at 0)."""
    return 0.0 if i <= 0 else SHORTEST_S * 10 ** ((i - 1) / BUCKETS_PER_DECADE)


@dataclass(frozen=True)
class DurationBar:
    """One bar of a duration histogram: fine buckets [first, last) and how many tasks ran that
    long. `contains` decides by bucket, as the histogram was counted."""

    first: int
    last: int
    count: int

    @property
    def low_s(self) -> float:
        return bucket_start(self.first)

    @property
    def high_s(self) -> float:
        return bucket_start(self.last)

    def contains(self, seconds: float | None) -> bool:
        return seconds is not None and self.first <= duration_bucket(seconds) < self.last

    @property
    def label(self) -> str:
        """`45ms–71ms`, `2.8s–4.5s`: its range."""
        return f"{short_duration(self.low_s)}–{short_duration(self.high_s)}"


@dataclass(frozen=True)
class Durations:
    """How long finished tasks ran: counts per fine log-spaced bucket (from bucket `first` on),
    the count, the shortest and the longest. Bounded whatever the job's size."""

    counts: tuple[int, ...]
    first: int
    n: int
    min_s: float
    max_s: float

    @classmethod
    def of(cls, durations: Sequence[float]) -> Durations | None:
        """From a list of durations (tests, recorded runs)."""
        if not durations:
            return None
        counts = [0] * N_BUCKETS
        for d in durations:
            counts[duration_bucket(d)] += 1
        return cls.from_counts(counts, len(durations), min(durations), max(durations))

    @classmethod
    def from_counts(cls, counts: Sequence[int], n: int, lo: float, hi: float) -> Durations | None:
        if n <= 0:
            return None
        first, last = duration_bucket(lo), duration_bucket(hi)
        return cls(tuple(counts[first : last + 1]), first, n, lo, hi)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100), interpolated within its fine bucket (log scale) and
        kept within the shortest and the longest."""
        rank = q / 100 * self.n
        seen = 0
        for offset, count in enumerate(self.counts):
            if count and seen + count >= rank:
                i = self.first + offset
                lo, hi = max(bucket_start(i), self.min_s), min(bucket_start(i + 1), self.max_s)
                share = (rank - seen) / count
                if lo <= 0 or hi <= lo:
                    return lo + (hi - lo) * share
                return lo * (hi / lo) ** share
            seen += count
        return self.max_s

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    def bars(self, most: int = 40) -> list[DurationBar]:
        """The histogram from the shortest to the longest, at most `most` bars: fine buckets
        grouped `BAR_BUCKETS` at a time (twice as many until they fit), on fixed boundaries, so
        a bar keeps its range as the job goes on."""
        width = BAR_BUCKETS
        last = self.first + len(self.counts)
        while (last - 1) // width - self.first // width + 1 > most:
            width *= 2
        bars = []
        for start in range(self.first // width * width, last, width):
            lo, hi = max(start, self.first) - self.first, min(start + width, last) - self.first
            bars.append(DurationBar(start, start + width, sum(self.counts[lo:hi])))
        return bars
