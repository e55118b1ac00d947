"""An incremental model of one job, fed by events, published as immutable snapshots.

ipyparallel's own accessors (`ar.progress`, `ar.elapsed`, `ar.metadata`, `ar.serial_time`) walk
every task on each call. The tracker instead is told *which* chunk changed (by callbacks the
client's IO thread fires: see `job.py`), and on `poll()` looks only at those chunks' metadata
dicts. A poll therefore costs in proportion to what changed, not to the size of the job.

No ipyparallel or Textual import here: the metadata is a plain dict per chunk (ipyparallel's
`Metadata`, mutated in place by the client), so tests and benchmarks feed recorded dicts.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ippmon.diagnosis import MIN_STRAGGLER_SAMPLE, Ran, straggling
from ippmon.model import (
    N_BUCKETS,
    OUTPUT_CAP,
    ClusterInfo,
    Durations,
    EngineView,
    Failure,
    JobSnapshot,
    OutputBatch,
    OutputLine,
    Phase,
    TaskDetail,
    TaskRow,
    TaskState,
    duration_bucket,
)
from ippmon.records import epoch
from ippmon.spans import Spans
from ippmon.stream import (
    WARM_TICKS,
    EngineSpans,
    StreamRow,
    TaskStream,
    Zoom,
    frame,
    frame_ahead,
)
from ippmon.terminal import emulate, needs_work, plain
from ippmon.text import first_line


class Event(Enum):
    """What happened to a chunk (`Tracker.notify`)."""

    ACTIVITY = "io"  # an iopub message arrived for the chunk (engine assigned, output, ...)
    DONE = "done"  # the reply arrived; payload: the chunk's result (item results, or an exception)
    OUTPUT_DONE = "out"  # all of the chunk's output arrived (the engine's idle status for it)


# A finished chunk is recorded once its output is complete: ipyparallel resolves a request's
# output future when the engine's "idle" status for it arrives, which the engine sends after
# everything the task printed. Those messages travel through the controller's iopub relay, not
# the task queue, and under load they trail the reply by seconds (p50 4.5 s, max 19 s for
# 20,000 printing tasks on 2 cores), by minutes when other programs starve the controller.
# The client drops none of them (no high-water mark on that path), so the signal fails to come
# only when the engine or the controller is gone: then the chunk is recorded with what it has
# and says why. OUTPUT_WAIT_S is a last resort against the unforeseen; output that arrives
# after any of these is recorded in a second, amending line for the same task and attempt.
OUTPUT_WAIT_S = 600.0
RELAY_SILENT_NOTE = "output may be incomplete: none came through the controller's iopub relay"
RATE_WINDOW_S = 10.0  # the rate and the ETA: finishes over the last 10 s at least...
RATE_MIN_TASKS = 10  # ...and over as many more seconds as 10 finishes took...
RATE_LONGEST_S = 120.0  # ...up to 2 min (slow tasks): recent throughput, not the job's average
THROUGHPUT_BINS = 60  # the sparkline: at most 60 slices of the job, each 1 s, 2 s, 4 s, ...
MAX_FAILURES_SHOWN = 20
_TIMES = ("submitted", "started", "completed", "received")
_NO_OUTPUT: dict[str, int] = {"stdout": 0, "stderr": 0}  # shared by released chunks: never written
_NO_HEAD: dict[str, str] = {"stdout": "", "stderr": ""}
_NOTHING: dict = {}
_STATES = tuple(TaskState)
_STATE_CODE = {state: code for code, state in enumerate(_STATES)}
NAN = math.nan
LINE_CHARS = 240  # of a released task's line in the tasks table (wider than any screen)


def _size(n: int) -> str:
    """Bytes, short: 512 bytes, 3.1 kB, 3.1 MB, 1.2 GB."""
    if n < 1000:
        return f"{n} bytes"
    value, unit = n / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"


OUTPUT_BUFFER_CHARS = 32_000_000  # the output pane's lines kept, in characters, at most
HEAD_CHARS = 64  # the start of a line being written, kept to notice it being rewritten (\r)
LAST_LINE_CHARS = 512  # of a long line being written, the end is what an engine's panel shows


@dataclass(eq=False, slots=True)
class Chunk:
    """One message sent to the cluster: a chunk of consecutive input items of one attempt.

    Once its lines are in the run record, `Tracker.release` keeps only what the screens need
    (state, engine, times, attempt, a short line): the rest is read back from the record."""

    key: int
    indices: list[int]
    attempt: int
    md: dict
    state: TaskState = TaskState.QUEUED
    engine: int | None = None  # remembered: ipyparallel resets engine_id when an engine dies
    running_since: float | None = None
    done_at: float | None = None
    out_done: bool = False
    recorded: bool = False
    output_note: str = ""  # why its recorded output may be incomplete ("" when complete)
    amended: bool = False  # recorded again: its output grew after it was first recorded
    recorded_lens: dict[str, int] = field(default_factory=dict)  # output lengths when recorded
    results: list | None = None
    error: tuple[str, str, str] | None = None  # ename, evalue, traceback (plain text)
    sent_at: float | None = None  # tracker clock when registered (if md has no `submitted`)
    lens: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    # Output is read from the metadata's text, where ipyparallel collapses a line rewritten with
    # `\r` to its latest state: only whole lines (up to the last newline) never change, so the
    # lines shown are cut from there (`stable`); after it is the line still being written.
    # `seen` is the text's length at the last look and `head` that line's start: while the
    # start is unchanged and the text only grew, only the new text can hold a newline, so a
    # line that arrives in a thousand pieces costs in proportion to the pieces, not their square.
    stable: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    seen: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    head: dict[str, str] = field(default_factory=lambda: {"stdout": "", "stderr": ""})
    released: bool = False  # recorded, and let go of (see `Tracker.release`)
    cut: dict[str, int] = field(default_factory=dict)  # bytes of output cut (`Tracker.trim`)
    marker: dict[str, str] = field(default_factory=dict)  # the line in the output saying so

    @property
    def may_grow(self) -> bool:
        """Recorded with output that may still come (kept whole until amended). Not when the
        relay it would come through passed on nothing: that output will not come."""
        return bool(self.output_note) and self.output_note != RELAY_SILENT_NOTE

    @property
    def duration_s(self) -> float | None:
        started, completed = epoch(self.md.get("started")), epoch(self.md.get("completed"))
        if started is None or completed is None:
            return None
        return max(0.0, completed - started)


class Throughput:
    """Tasks finished per slice of the job: at most `THROUGHPUT_BINS` slices of equal width,
    which doubles (neighbours merged) when the job outgrows them. O(1) a finish."""

    def __init__(self, width_s: float = 1.0) -> None:
        self.origin: float | None = None
        self.width_s = width_s
        self.bins: list[int] = []

    def add(self, t: float, n: int) -> None:
        if self.origin is None:
            self.origin = t
        i = self._fit(t)
        if i >= len(self.bins):
            self.bins.extend([0] * (i + 1 - len(self.bins)))
        self.bins[i] += n

    def _fit(self, t: float) -> int:
        """The slice of time `t`, the slices widened until there is one for it."""
        assert self.origin is not None
        i = max(0, int((t - self.origin) // self.width_s))
        while i >= THROUGHPUT_BINS:
            self.bins = [sum(self.bins[k : k + 2]) for k in range(0, len(self.bins), 2)]
            self.width_s *= 2
            i //= 2
        return i

    def rates(self, until: float, finished: bool) -> tuple[float, ...]:
        """Tasks/s of each slice up to `until`: while the job runs, the slice still filling is
        left out (it would always read low); a finished job's last one is scaled to its part."""
        if self.origin is None:
            return ()
        current = self._fit(until)
        width = self.width_s
        bins = self.bins + [0] * max(0, current + 1 - len(self.bins))
        if not finished:
            return tuple(n / width for n in bins[:current])
        bins = bins[: current + 1]
        rates = [n / width for n in bins]
        part = (until - self.origin) - current * width
        if part > 0.1 * width:
            rates[-1] = bins[-1] / min(width, part)
        return tuple(rates)


@dataclass
class _Engine:
    id: int
    alive: bool = True
    chunk: Chunk | None = None
    since: float = 0.0
    tasks_done: int = 0
    busy_s: float = 0.0
    last_line: str = ""
    arrived: float = float("-inf")  # when it registered: -inf for those there from the start
    left_at: float | None = None  # when it unregistered (None while registered)
    lost_task: bool = False  # it left while running a task (gone), not idle (left)
    spans: EngineSpans = field(default_factory=EngineSpans)  # its finished tasks (the stream)


@dataclass(frozen=True)
class Recorded:
    """A final outcome known already (read back from a run record, or decided by ippmon):
    `DONE` payload that skips classification."""

    state: TaskState
    result: object = None
    error: tuple[str, str, str] | None = None


def classify(result: object, cancelling: bool) -> tuple[TaskState, tuple[str, str, str] | None]:
    """The final state of a chunk from its reply, and its error (ename, evalue, traceback)."""
    if isinstance(result, Recorded):
        return result.state, result.error
    if not isinstance(result, BaseException):
        return TaskState.OK, None
    ename = getattr(result, "ename", None) or type(result).__name__
    evalue = getattr(result, "evalue", None)
    if evalue is None:
        evalue = str(result)
    tb = getattr(result, "traceback", None) or ""
    if isinstance(tb, list):
        tb = "\n".join(tb)
    error = (ename, evalue or "", plain(str(tb)))
    if ename == "TaskAborted" or type(result).__name__ == "TaskAborted":
        return TaskState.CANCELLED, error
    if ename == "KeyboardInterrupt" and cancelling:
        return TaskState.CANCELLED, error
    if ename == "EngineError":
        return TaskState.LOST, error
    return TaskState.ERROR, error


class _Released:
    """What is kept of released chunks (see `Tracker.release`), in columns indexed by chunk key:
    ~60 bytes and the tasks-table line per chunk, where a `Chunk` costs ~700. A chunk not
    released (yet) holds placeholders."""

    def __init__(self) -> None:
        self.state = bytearray()  # `_STATE_CODE`
        self.engine = array("i")  # -1: none
        self.attempt = array("I")
        self.first = array("q")  # its first input index
        self.times = array("d")  # `_TIMES`, 4 per chunk (NaN: unknown)
        self.line: list[str] = []
        self.more: dict[int, list[int]] = {}  # a released chunk of several items: its indices

    def reserve(self, first: int) -> None:
        self.state.append(0)
        self.engine.append(-1)
        self.attempt.append(0)
        self.first.append(first)
        self.times.extend((NAN, NAN, NAN, NAN))
        self.line.append("")

    def keep(self, chunk: Chunk) -> None:
        key = chunk.key
        self.state[key] = _STATE_CODE[chunk.state]
        self.engine[key] = -1 if chunk.engine is None else chunk.engine
        self.attempt[key] = chunk.attempt
        md = chunk.md
        for j, name in enumerate(_TIMES):
            value = epoch(md.get(name))
            self.times[4 * key + j] = NAN if value is None else value
        self.line[key] = _first_line(chunk)[:LINE_CHARS]
        if len(chunk.indices) > 1:
            self.more[key] = chunk.indices

    def state_of(self, key: int) -> TaskState:
        return _STATES[self.state[key]]

    def engine_of(self, key: int) -> int | None:
        eid = self.engine[key]
        return None if eid < 0 else eid

    def indices(self, key: int) -> list[int]:
        return self.more.get(key) or [self.first[key]]

    def time(self, key: int, j: int) -> float | None:
        value = self.times[4 * key + j]
        return None if math.isnan(value) else value

    def duration_s(self, key: int) -> float | None:
        started, completed = self.times[4 * key + 1], self.times[4 * key + 2]
        if math.isnan(started) or math.isnan(completed):
            return None
        return max(0.0, completed - started)

    def rebuilt(self, key: int) -> Chunk:
        """A stand-in for the released chunk, for the few readers that want one."""
        md = {name: self.time(key, j) for j, name in enumerate(_TIMES)}
        return Chunk(
            key=key,
            indices=list(self.indices(key)),
            attempt=self.attempt[key],
            md=md,
            state=self.state_of(key),
            engine=self.engine_of(key),
            recorded=True,
            out_done=True,
            released=True,
            lens=_NO_OUTPUT,
            stable=_NO_OUTPUT,
            seen=_NO_OUTPUT,
            head=_NO_HEAD,
        )


class Tracker:
    """The live state of one job (all its attempts). Thread-safe: poll from one thread, read from
    another."""

    def __init__(
        self,
        name: str,
        total: int,
        *,
        clock: Callable[[], float] = time.time,
        max_output_lines: int = 100_000,
        cluster: str | ClusterInfo = "",
        run_id: str = "",
        output_wait_s: float | None = None,
        output_cap: int = OUTPUT_CAP,
    ) -> None:
        """`output_cap`: characters of each task's stdout (and of its stderr) kept in memory and
        in the record, its first and last half; what is cut between them is said in a line
        ("… 3.1 MB cut …"). 0 keeps everything."""
        self.name = name
        self.output_cap = output_cap
        self.total = total
        self.clock = clock
        self.cluster = cluster  # a ClusterInfo: shown with the engines registered now
        self.run_id = run_id
        self.events: deque[tuple[int, Event, object, float]] = deque()
        self._lock = threading.RLock()
        self._chunks: list[Chunk | None] = []  # by key; None once released (`_released`)
        self._released = _Released()
        self._task_key = array("q", [-1]) * total  # each task's newest chunk (-1: none yet)
        self._counts = {s: 0 for s in TaskState}
        self._counts[TaskState.QUEUED] = total
        self._engines: dict[int, _Engine] = {}
        self._waiting_output: list[Chunk] = []
        self._output: deque[OutputLine] = deque()
        self._max_output_lines = max_output_lines
        self._output_chars = 0
        self._seq = 0
        self._failures: deque[Failure] = deque(maxlen=MAX_FAILURES_SHOWN)
        self._n_failures = 0
        self._serial_s = 0.0
        self._rate_samples: deque[tuple[float, int]] = deque(maxlen=4096)  # (time, finishes)
        self._finishes = 0  # items that reached a final state, every attempt counted
        self._throughput = Throughput()
        self._duration_counts = [0] * N_BUCKETS  # finished chunks per `duration_bucket`
        self._durations_n = 0
        self._duration_range = (float("inf"), 0.0)
        self._started_at: float | None = None
        self._finished_at: float | None = None
        # The job's own time: spans from a task's submission to its reply (the tasks' own
        # timestamps), so a detached gap or a pause before a resubmit add nothing.
        self._busy = Spans()
        self._outstanding: deque[Chunk] = deque()  # unfinished chunks, oldest submission first
        self._seen_engines = False
        self._submitted = 0
        self._submitting = False
        self._paced = False  # the send window held the sender back: the job runs meanwhile
        self._cancelling = False
        self.attempt = 1
        self.output_wait_s = OUTPUT_WAIT_S if output_wait_s is None else output_wait_s
        self._unrecorded = 0  # final chunks the run record could not take yet (a full disk)
        self._incomplete: list[Chunk] = []  # recorded before their output was complete
        self._controller_lost = False
        self._iopub_silent = False
        self._notices: dict[str, str] = {}

    # -- feeding -----------------------------------------------------------------------------

    def notify(self, key: int, kind: Event, payload: object = None) -> None:
        """Record that chunk `key` changed. Called from the client's IO thread: only appends."""
        self.events.append((key, kind, payload, self.clock()))

    def add_chunks(self, chunks: Sequence[tuple[list[int], dict]], attempt: int) -> list[int]:
        """Register sent chunks (item indices, live metadata dict); returns their keys.

        The items go back to `queued` (a resubmission) and their newest chunk becomes this one.
        """
        with self._lock:
            if self._started_at is None:
                self._started_at = self.clock()
            self._finished_at = None
            self.attempt = max(self.attempt, attempt)
            keys = []
            retried: set[int] = set()
            for indices, md in chunks:
                chunk = Chunk(key=len(self._chunks), indices=list(indices), attempt=attempt, md=md)
                chunk.sent_at = self.clock()
                self._chunks.append(chunk)
                self._released.reserve(chunk.indices[0])
                self._outstanding.append(chunk)
                keys.append(chunk.key)
                for i in chunk.indices:
                    old = self._task_key[i]
                    if old >= 0:
                        old_state = self._key_state(old)
                        self._counts[old_state] -= 1
                        self._counts[TaskState.QUEUED] += 1
                        if old_state in (TaskState.ERROR, TaskState.LOST):
                            self._n_failures -= 1  # shown failures are the newest attempts'
                            retried.add(i)
                    self._task_key[i] = chunk.key
            if retried:
                kept = [f for f in self._failures if f.index not in retried]
                self._failures = deque(kept, maxlen=MAX_FAILURES_SHOWN)
            return keys

    def catch_up(self, keys: Iterable[int]) -> None:
        """Look once at chunks that may have changed before their callbacks were registered."""
        for key in keys:
            chunk = self._chunks[key]
            if chunk is None:
                continue
            md = chunk.md
            if md.get("engine_id") is not None or md.get("stdout") or md.get("stderr"):
                self.notify(key, Event.ACTIVITY)

    def set_engines(self, ids: Iterable[int]) -> None:
        """The engines registered right now (`rc.ids`: cheap). Missing ones are marked gone."""
        ids = set(ids)
        with self._lock:
            now = self.clock()
            for eid in ids:
                eng = self._engines.get(eid)
                if eng is None:  # those of the first call were there before the job
                    arrived = now if self._seen_engines else float("-inf")
                    self._engines[eid] = _Engine(eid, arrived=arrived)
                elif not eng.alive:  # back again (the same id re-registered)
                    eng.alive, eng.left_at, eng.lost_task = True, None, False
            for eid, eng in self._engines.items():
                if eid not in ids and eng.alive:
                    eng.alive, eng.left_at = False, now
                    eng.lost_task = eng.chunk is not None
            self._seen_engines = True

    def begin_submission(self, n: int, attempt: int) -> None:
        """A new attempt of n tasks is about to be sent: the job is no longer finished, even
        before the first of them is registered."""
        with self._lock:
            self._submitting = True
            self._paced = False
            self._cancelling = False
            self._submitted = self.total - n
            self.attempt = max(self.attempt, attempt)
            self._finished_at = None

    def sent(self, n: int) -> None:
        """n more tasks of the current submission were handed to the cluster."""
        with self._lock:
            self._submitted += n

    def pace(self) -> None:
        """The sender waits for tasks to finish before it sends more (the send window is full):
        the job runs from now on, while the rest waits its turn to be sent."""
        with self._lock:
            self._paced = True

    def end_submission(self) -> None:
        """Sending is over (all sent, stopped or failed): unsent tasks were settled already."""
        with self._lock:
            self._submitted = self.total
            self._submitting = False

    def begin_cancel(self) -> None:
        """The user cancelled: tasks that end from now on without a result were cancelled."""
        with self._lock:
            self._cancelling = True

    @property
    def submitted(self) -> int:
        """Tasks sent so far (`total` once sending is over, and for a job read back)."""
        return self._submitted if self._submitting else self.total

    @property
    def submitting(self) -> bool:
        return self._submitting

    @property
    def cancelling(self) -> bool:
        return self._cancelling

    def restore_start(self, started: float) -> None:
        """A job read back from its record started when the record says, not now."""
        with self._lock:
            self._started_at = started

    def restore_end(self, finished: float) -> None:
        """...and, when everything was recorded, ended when its last task completed."""
        with self._lock:
            if self.done == self.total and not self._waiting_output and finished:
                self._finished_at = max(finished, self._started_at or finished)

    def set_notice(self, source: str, text: str) -> None:
        """A one-line notice from `source` ("controller", "sending", "watcher", ...); "" clears
        it. Each source has its own, so one never clears another's."""
        with self._lock:
            if text:
                self._notices[source] = text
            else:
                self._notices.pop(source, None)

    @property
    def message(self) -> str:
        return " · ".join(self._notices.values())

    def set_unrecorded(self, n: int) -> None:
        """n final chunks wait for the run record: until it takes them the job is not finished."""
        with self._lock:
            self._unrecorded = n

    def set_controller_lost(self, lost: bool) -> None:
        """The controller stopped answering (or answers again): output still awaited for
        finished chunks cannot arrive, so they are recorded with what they have."""
        with self._lock:
            self._controller_lost = lost

    def set_iopub_silent(self, silent: bool) -> None:
        """No message of the job's tasks has come through the controller's iopub relay while
        their results did (or some has come since): finished chunks are recorded at once,
        without output, and let go of (`RELAY_SILENT_NOTE`: none will come)."""
        with self._lock:
            self._iopub_silent = silent

    # -- polling -----------------------------------------------------------------------------

    def poll(self) -> list[Chunk]:
        """Apply queued events. Returns the chunks to write to the run record: those now final
        with their output complete (or never to be completed: see `OUTPUT_WAIT_S`), each once,
        and again (`amended`) a chunk recorded with incomplete output whose output is now
        complete."""
        with self._lock:
            now = self.clock()
            touched: dict[int, float] = {}
            done: list[tuple[Chunk, object, float]] = []
            events = self.events
            while events:
                key, kind, payload, t = events.popleft()
                chunk = self._chunks[key]
                if chunk is None:  # released: recorded with its whole output, nothing to add
                    continue
                if kind is Event.DONE:
                    done.append((chunk, payload, t))
                    touched.setdefault(key, t)
                elif kind is Event.OUTPUT_DONE:
                    chunk.out_done = True
                    touched.setdefault(key, t)
                else:
                    touched.setdefault(key, t)
            for key, t in touched.items():
                self._observe(self._chunks[key], t)  # type: ignore[arg-type]
            for chunk, result, t in done:
                self._finish(chunk, result, t)
            ready = self._take_recordable(now)
            self._sample_rate(now)
            if self._finished_at is None and not self.submitting and self.done == self.total:
                self._finished_at = now
            return ready

    def _observe(self, chunk: Chunk, t: float) -> None:
        md = chunk.md
        eid = md.get("engine_id")
        if eid is not None and chunk.engine is None:
            chunk.engine = eid
        if chunk.state is TaskState.QUEUED and eid is not None and md.get("completed") is None:
            self._set_state(chunk, TaskState.RUNNING)
            chunk.running_since = t
            eng = self._engine(eid)
            eng.chunk, eng.since = chunk, t
        if chunk.released:
            return
        for stream in ("stdout", "stderr"):
            text = md.get(stream) or ""
            n = len(text)
            chunk.lens[stream] = n
            stable, seen = chunk.stable[stream], chunk.seen[stream]
            same_start = text[stable : stable + HEAD_CHARS] == chunk.head[stream]
            if n == seen and same_start:
                continue
            grew = n > seen and same_start  # then only the text after `seen` is new
            self._emit(chunk, stream, text, max(stable, seen) if grew else stable)

    def _emit(
        self, chunk: Chunk, stream: str, text: str, new_from: int, final: bool = False
    ) -> None:
        """Show the whole lines of `text` after those shown before (a newline can only be at or
        after `new_from`); the rest is the line being written (unless `final`), shown as its
        engine's current line."""
        stable = chunk.stable[stream]
        end = len(text) if final else text.rfind("\n", new_from) + 1
        lines = text[stable:end].split("\n") if end > stable else []
        if lines and lines[-1] == "":
            lines.pop()
        if end > stable:
            chunk.stable[stream] = stable = end
        chunk.seen[stream] = len(text)
        chunk.head[stream] = text[stable : stable + HEAD_CHARS]
        index = chunk.indices[0]
        for line in lines:
            self._seq += 1
            # as it came: made what a terminal would show (`emulate`) when a reader takes it
            self._keep_line(OutputLine(self._seq, index, chunk.engine, stream, line))
        current = text[max(stable, len(text) - LAST_LINE_CHARS) :] or (lines[-1] if lines else "")
        if current and chunk.engine is not None:
            self._engine(chunk.engine).last_line = plain(current)

    def _keep_line(self, line: OutputLine) -> None:
        """The output pane's buffer: at most `max_output_lines` lines and
        `OUTPUT_BUFFER_CHARS` characters, the oldest dropped first."""
        out = self._output
        out.append(line)
        self._output_chars += len(line.text)
        while len(out) > self._max_output_lines or self._output_chars > OUTPUT_BUFFER_CHARS:
            self._output_chars -= len(out.popleft().text)

    def trim(self, key: int) -> None:
        """Keep a running chunk's output within twice `output_cap`: called on the client's IO
        thread right after ipyparallel appended to it (so nothing is appended meanwhile). Only
        lines already shown are cut, from the middle: the head and the newest output stay."""
        cap = self.output_cap
        chunk = self._chunks[key]
        if not cap or chunk is None or chunk.released:
            return
        md = chunk.md
        for stream in ("stdout", "stderr"):
            text = md.get(stream)
            if text and len(text) > 2 * cap:
                with self._lock:
                    self._cut(chunk, stream, text, min(chunk.stable[stream], len(text) - cap // 2))

    def _cut(self, chunk: Chunk, stream: str, text: str, end: int) -> None:
        """Replace `text[cap // 2 : end]` (shown already) with a line saying how much was cut."""
        start = self.output_cap // 2
        if end <= start:
            return
        old = chunk.marker.get(stream, "")
        cut = chunk.cut.get(stream, 0) + len(text[start:end].encode("utf-8", "replace"))
        cut -= len(old.encode("utf-8"))
        marker = f"\n… {_size(cut)} cut …\n"
        chunk.md[stream] = text[:start] + marker + text[end:]
        shift = end - start - len(marker)
        chunk.stable[stream] -= shift
        chunk.seen[stream] = max(0, chunk.seen[stream] - shift)
        chunk.cut[stream], chunk.marker[stream] = cut, marker

    def _finish(self, chunk: Chunk, result: object, t: float) -> None:
        if chunk.state.finished:
            return
        was_running = chunk.state is TaskState.RUNNING
        read_back = isinstance(result, Recorded)
        state, error = classify(result, self.cancelling)
        chunk.error = error
        if isinstance(result, Recorded):
            chunk.out_done = True  # read back with the output it has; nothing more will come
            result = [result.result] * len(chunk.indices)
        if state is TaskState.OK:
            items = result if isinstance(result, list) else [result]
            chunk.results = list(items) if len(items) == len(chunk.indices) else [result]
        self._set_state(chunk, state)
        chunk.done_at = t
        submitted = epoch(chunk.md.get("submitted")) or chunk.sent_at
        replied = epoch(chunk.md.get("received")) or epoch(chunk.md.get("completed")) or t
        if submitted is not None:
            self._busy.add(submitted, max(submitted, replied))
        duration = chunk.duration_s
        if duration is not None:
            self._serial_s += duration
            self._count_duration(duration)
        self._finishes += len(chunk.indices)
        completed = epoch(chunk.md.get("completed"))
        if self._throughput.origin is None:
            self._throughput.origin = self._started_at
        self._throughput.add(completed if completed is not None else t, len(chunk.indices))
        eid = chunk.engine
        self._add_span(chunk, state, t, read_back=read_back)
        if eid is not None and (was_running or duration is not None):
            eng = self._engine(eid)
            if eng.chunk is chunk:
                eng.chunk = None
            if state is not TaskState.LOST:
                eng.tasks_done += len(chunk.indices)
            eng.busy_s += duration if duration is not None else max(0.0, t - eng.since)
        if error and state is not TaskState.CANCELLED:
            self._n_failures += len(chunk.indices)
            self._failures.append(
                Failure(chunk.indices[0], state, eid, plain(error[0]), plain(error[1]))
            )
        self._waiting_output.append(chunk)

    def _add_span(self, chunk: Chunk, state: TaskState, t: float, *, read_back: bool) -> None:
        """Keep a finished chunk's time on its engine for the task stream: from its start to its
        completion; a lost one to when its engine left (or when it was found lost), or, read
        back from a record without an end, at its start alone."""
        if chunk.engine is None:  # never ran (cancelled before it started)
            return
        md = chunk.md
        started = epoch(md.get("started")) or chunk.running_since
        if started is None:
            return
        end = epoch(md.get("completed"))
        if end is None:
            eng = self._engines.get(chunk.engine)
            left = eng.left_at if eng is not None else None
            if left is None or left < started:
                left = None
            end = left if left is not None else (started if read_back else t)
        self._engine(chunk.engine).spans.add(started, end, state)

    def _take_recordable(self, now: float) -> list[Chunk]:
        ready: list[Chunk] = []
        waiting: list[Chunk] = []
        for chunk in self._waiting_output:
            note = "" if chunk.out_done else self._why_incomplete(chunk, now)
            if chunk.out_done or note:
                self._flush_partial(chunk)
                if chunk.out_done:
                    self._cap(chunk)
                chunk.recorded = True
                chunk.output_note = note
                if chunk.may_grow:
                    chunk.recorded_lens = dict(chunk.lens)
                    self._incomplete.append(chunk)
                ready.append(chunk)
            else:
                waiting.append(chunk)
        self._waiting_output = waiting
        if self._incomplete:
            still = []
            for chunk in self._incomplete:
                if chunk.out_done:
                    ready.append(self._amend(chunk, ""))
                else:
                    still.append(chunk)
            self._incomplete = still
        return ready

    def _why_incomplete(self, chunk: Chunk, now: float) -> str:
        """Why a finished chunk is to be recorded before its output is complete ("": wait on)."""
        eng = self._engines.get(chunk.engine) if chunk.engine is not None else None
        if chunk.state is TaskState.LOST or (eng is not None and not eng.alive):
            who = "its engine" if chunk.engine is None else f"engine {chunk.engine}"
            return f"output may be incomplete: {who} stopped before the end of it arrived"
        if self._controller_lost:
            return "output may be incomplete: the controller stopped answering before its end"
        if self._iopub_silent:
            return RELAY_SILENT_NOTE
        if chunk.done_at is not None and now - chunk.done_at >= self.output_wait_s:
            return (
                "output may be incomplete: its end had not arrived "
                f"{self.output_wait_s:g} s after the result"
            )
        return ""

    def _flush_partial(self, chunk: Chunk) -> None:
        """An unterminated last line goes out as a line of its own once the chunk is recorded."""
        for stream in ("stdout", "stderr"):
            text = chunk.md.get(stream) or ""
            if len(text) > chunk.stable[stream]:
                self._emit(chunk, stream, text, chunk.stable[stream], final=True)

    def _cap(self, chunk: Chunk) -> None:
        """A chunk's complete output, within `output_cap` for its record."""
        cap = self.output_cap
        if not cap:
            return
        for stream in ("stdout", "stderr"):
            text = chunk.md.get(stream) or ""
            if len(text) > cap + len(chunk.marker.get(stream, "")):
                self._cut(chunk, stream, text, len(text) - cap // 2)

    def _amend(self, chunk: Chunk, note: str) -> Chunk:
        self._flush_partial(chunk)
        if not note:
            self._cap(chunk)
        chunk.output_note = note
        chunk.amended = True
        chunk.recorded_lens = dict(chunk.lens)
        return chunk

    def release(self, chunks: Iterable[Chunk]) -> None:
        """These chunks' lines are in the run record: keep only their state, engine, times,
        attempt and tasks-table line, in columns (details are read back from the record), and
        let go of the chunk. A chunk whose recorded output may be incomplete is kept whole: it
        may yet be amended."""
        with self._lock:
            for chunk in chunks:
                if chunk.released or chunk.may_grow or not chunk.recorded:
                    continue
                self._released.keep(chunk)
                chunk.released = True
                self._chunks[chunk.key] = None

    def released(self, index: int) -> bool:
        """Whether task `index`'s newest attempt was let go of (`release`): read it back."""
        key = self._task_key[index]
        return key >= 0 and self._chunks[key] is None

    def _key_state(self, key: int) -> TaskState:
        chunk = self._chunks[key]
        return self._released.state_of(key) if chunk is None else chunk.state

    def late_output(self) -> list[Chunk]:
        """Chunks recorded with incomplete output that received more since (for a job that is
        closing: their end will not be waited for). Each comes back `amended`, once per call."""
        with self._lock:
            out = []
            for chunk in self._incomplete:
                if chunk.lens != chunk.recorded_lens:
                    out.append(self._amend(chunk, chunk.output_note))
            return out

    def _set_state(self, chunk: Chunk, state: TaskState) -> None:
        for i in chunk.indices:
            if self._task_key[i] == chunk.key:
                self._counts[chunk.state] -= 1
                self._counts[state] += 1
        chunk.state = state

    def _engine(self, eid: int) -> _Engine:
        eng = self._engines.get(eid)
        if eng is None:
            eng = self._engines[eid] = _Engine(eid)
        return eng

    def _count_duration(self, seconds: float) -> None:
        self._duration_counts[duration_bucket(seconds)] += 1
        self._durations_n += 1
        lo, hi = self._duration_range
        self._duration_range = (min(lo, seconds), max(hi, seconds))

    def _sample_rate(self, now: float) -> None:
        samples = self._rate_samples
        samples.append((now, self._finishes))
        while len(samples) > 2 and now - samples[1][0] >= RATE_LONGEST_S:
            samples.popleft()

    # -- reading -----------------------------------------------------------------------------

    @property
    def done(self) -> int:
        c = self._counts
        return c[TaskState.OK] + c[TaskState.ERROR] + c[TaskState.CANCELLED] + c[TaskState.LOST]

    @property
    def finished(self) -> bool:
        return self._finished_at is not None

    @property
    def settled(self) -> bool:
        """Finished, and every finished chunk handed out for recording and recorded."""
        return self._finished_at is not None and not self._waiting_output and not self._unrecorded

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            now = self.clock()
            start = self._started_at if self._started_at is not None else now
            end = self._finished_at if self._finished_at is not None else now
            wall = max(0.0, end - start)
            running = self._running_span(now)
            elapsed = self._busy.length(running)
            rate = self._rate(now)
            remaining = self.total - self.done
            eta = remaining / rate if rate > 0 and self._finished_at is None else None
            if self.submitting and not self._paced:
                phase = Phase.SUBMITTING
            elif self.settled:
                # finished *and* every result handed out for the run record: a screen that
                # stops polling at FINISHED must not leave the last results unrecorded
                phase, eta = Phase.FINISHED, 0.0
            elif self.cancelling:
                phase = Phase.CANCELLING
            else:
                phase = Phase.RUNNING
            durations = Durations.from_counts(
                self._duration_counts, self._durations_n, *self._duration_range
            )
            typical = self._typical_s(durations)
            engines = tuple(
                self._engine_view(e, end, running, typical) for e in self._engines.values()
            )
            return JobSnapshot(
                name=self.name,
                phase=phase,
                total=self.total,
                submitted=self.submitted,
                counts=dict(self._counts),
                elapsed_s=elapsed,
                wall_s=wall,
                engine_s=sum(e.job_s for e in engines),
                serial_s=self._serial_s,
                tasks_per_s=rate,
                eta_s=eta,
                engines=engines,
                failures=tuple(self._failures),
                n_failures=self._n_failures,
                attempt=self.attempt,
                output_seq=self._seq,
                cluster=self._cluster_label(engines),
                run_id=self.run_id,
                message=self.message,
                output_pending=len(self._waiting_output),
                throughput=self._throughput.rates(end, self._finished_at is not None),
                durations=durations,
            )

    @staticmethod
    def _typical_s(durations: Durations | None) -> float | None:
        """The p50 of finished tasks' durations, once there are enough of them to call a
        running task a straggler (None before)."""
        if durations is None or durations.n < MIN_STRAGGLER_SAMPLE:
            return None
        return durations.p50

    def _cluster_label(self, engines: tuple[EngineView, ...]) -> str:
        if isinstance(self.cluster, ClusterInfo):
            alive = sum(1 for e in engines if e.alive)
            return dataclasses.replace(self.cluster, engines=alive).label
        return self.cluster

    def _running_span(self, now: float) -> tuple[float, float] | None:
        """From the oldest unfinished task's submission to now (None when none is out)."""
        out = self._outstanding
        while out and out[0].state.finished:
            out.popleft()
        if not out:
            return None
        first = out[0]
        submitted = epoch(first.md.get("submitted")) or first.sent_at
        return None if submitted is None else (min(submitted, now), now)

    def _engine_view(
        self,
        eng: _Engine,
        now: float,
        running_span: tuple[float, float] | None,
        typical_s: float | None = None,
    ) -> EngineView:
        running = eng.chunk is not None and eng.alive
        running_for = max(0.0, now - eng.since) if running else 0.0
        straggler = running and typical_s is not None and straggling(running_for, typical_s)
        busy = eng.busy_s + running_for
        # its time on the job: while it was registered and the job had tasks out
        until = eng.left_at if eng.left_at is not None else now
        job_s = self._busy.overlap(eng.arrived, until, running_span)
        return EngineView(
            id=eng.id,
            alive=eng.alive,
            task=eng.chunk.indices[0] if running and eng.chunk else None,
            running_for_s=running_for,
            tasks_done=eng.tasks_done,
            busy_s=busy,
            busy_pct=min(100.0, 100.0 * busy / job_s) if job_s > 0 else 0.0,
            last_line=eng.last_line,
            job_s=job_s,
            left=not eng.alive and not eng.lost_task,
            straggler=straggler,
        )

    def _rate(self, now: float) -> float:
        """Recent throughput: tasks finished over the last `RATE_WINDOW_S`, or further back
        (up to `RATE_LONGEST_S`) until `RATE_MIN_TASKS` finished. Every finish counts, so a
        resubmission (tasks back to queued) does not read as negative progress."""
        samples = self._rate_samples
        if len(samples) < 2:
            return 0.0
        if self._finished_at is not None and self._started_at is not None:
            span = self._finished_at - self._started_at
            return self.total / span if span > 0 else 0.0
        t1, n1 = samples[-1]
        t0, n0 = samples[0]
        for t, n in reversed(samples):  # at most RATE_LONGEST_S of polls
            if t1 - t >= RATE_WINDOW_S and n1 - n >= RATE_MIN_TASKS:
                t0, n0 = t, n
                break
        return (n1 - n0) / (t1 - t0) if t1 - t0 >= 1.0 else 0.0

    def stream(self, zoom: Zoom, width: int) -> TaskStream:
        """The task stream (`ippmon.stream`) of `zoom`, `width` cells wide: a row per engine,
        the tasks it ran and the one it runs now. Each engine keeps its finished tasks binned
        on the zoom's grid, so a tick costs O(new tasks + engines x width); the first one at
        a zoom or cell width bins the tasks in sight."""
        with self._lock:
            now = self.clock()
            origin = self._started_at if self._started_at is not None else now
            finished = self._finished_at is not None
            end = self._finished_at if self._finished_at is not None else now
            where = frame(zoom, origin, end, width, finished=finished)
            first, stop = where.first, where.first + where.width
            ahead = None if finished else frame_ahead(zoom, origin, end, width)
            warm_cells = -(-where.width // WARM_TICKS)
            rows = []
            for eng in sorted(self._engines.values(), key=lambda e: e.id):
                until = eng.left_at if eng.left_at is not None else end
                present = (max(eng.arrived, origin), until)
                running = None
                chunk = eng.chunk
                since = None if chunk is None else epoch(chunk.md.get("started"))
                if chunk is not None and since is None:
                    since = chunk.running_since
                if since is not None:
                    if eng.alive:
                        running = (since, end, TaskState.RUNNING)
                    else:  # gone with its task: lost, whatever the reply will say
                        running = (since, max(since, present[1]), TaskState.LOST)
                if ahead is not None:
                    eng.spans.warm(ahead, warm_cells)
                grid = eng.spans.grid(where.anchor, where.cell_s, first, stop)
                cells = grid.row(first, where.width, present=present, running=running)
                left = not eng.alive and not eng.lost_task
                rows.append(StreamRow(eng.id, cells, eng.alive, left))
            return TaskStream(
                zoom, where.start, where.end, origin, where.width, tuple(rows), finished, end
            )

    def timeline(self) -> list[Ran]:
        """Every chunk that ran to a result (ok or failed), with its engine and times (O(chunks):
        for the diagnosis, now and then)."""
        ran = (TaskState.OK, TaskState.ERROR)
        kept = self._released
        with self._lock:
            out = []
            for key, chunk in enumerate(self._chunks):
                if chunk is None:
                    eid = kept.engine_of(key)
                    if kept.state_of(key) not in ran or eid is None:
                        continue
                    indices = kept.indices(key)
                    submitted, started, completed = (kept.time(key, j) for j in range(3))
                else:
                    if chunk.state not in ran or chunk.engine is None:
                        continue
                    eid, indices, md = chunk.engine, chunk.indices, chunk.md
                    times = [epoch(md.get(k)) for k in ("submitted", "started", "completed")]
                    submitted, started, completed = times
                if submitted is None or started is None or completed is None:
                    continue
                out.append(Ran(indices[0], len(indices), eid, submitted, started, completed))
            return out

    def output_since(self, seq: int) -> tuple[list[OutputLine], int]:
        """Lines newer than `seq`, oldest first, each as a terminal would show it, and how many
        the bounded buffer dropped before they could be read. Costs in proportion to the lines
        returned (a line nobody reads is never emulated)."""
        with self._lock:
            out: list[OutputLine] = []
            for line in reversed(self._output):
                if line.seq <= seq:
                    break
                out.append(line)
            out.reverse()
            first = out[0].seq if out else self._seq + 1
        shown = [line if not needs_work(line.text) else _emulated(line) for line in out]
        return shown, max(0, first - seq - 1)

    def output_batch(self, seq: int) -> OutputBatch:
        """`output_since(seq)` as the output pane shows it."""
        lines, dropped = self.output_since(seq)
        return OutputBatch.of(lines, dropped, seq)

    def states(self, indices: Iterable[int] | None = None) -> list[TaskState]:
        idx = range(self.total) if indices is None else indices
        return [self._state_of(i) for i in idx]

    def _state_of(self, index: int) -> TaskState:
        key = self._task_key[index]
        return TaskState.QUEUED if key < 0 else self._key_state(key)

    def indices_in(self, states: Iterable[TaskState]) -> list[int]:
        """Input indices whose newest attempt is in one of `states` (O(total): not for polls)."""
        wanted = set(states)
        with self._lock:
            return [i for i in range(self.total) if self._state_of(i) in wanted]

    def detail(self, index: int) -> TaskDetail:
        with self._lock:
            key = self._task_key[index]
            if key < 0:
                return TaskDetail(index, TaskState.QUEUED, 0, None, None, None, None, None)
            chunk = self._chunks[key]
            return chunk_detail(self._released.rebuilt(key) if chunk is None else chunk, index)

    def task_rows(self, states: Iterable[TaskState] | None = None) -> list[TaskRow]:
        """A row per task (newest attempt), optionally only those in `states`. O(total): for a
        tasks view refreshed now and then from a worker thread, not for every poll."""
        wanted = set(states) if states is not None else None
        rows = []
        with self._lock:
            now = self.clock()
            typical = self._typical_s(
                Durations.from_counts(
                    self._duration_counts, self._durations_n, *self._duration_range
                )
            )
            kept, chunks = self._released, self._chunks
            for i, key in enumerate(self._task_key):
                if key < 0:
                    if wanted is None or TaskState.QUEUED in wanted:
                        rows.append(TaskRow(i, TaskState.QUEUED, None, 0, None, ""))
                    continue
                chunk = chunks[key]
                if chunk is None:
                    state = kept.state_of(key)
                    if wanted is not None and state not in wanted:
                        continue
                    rows.append(
                        TaskRow(
                            i,
                            state,
                            kept.engine_of(key),
                            kept.attempt[key],
                            kept.duration_s(key),
                            kept.line[key],
                        )
                    )
                    continue
                if wanted is not None and chunk.state not in wanted:
                    continue
                rows.append(
                    TaskRow(
                        i,
                        chunk.state,
                        chunk.engine,
                        chunk.attempt,
                        chunk.duration_s,
                        _first_line(chunk),
                        straggler=self._straggling(chunk, now, typical),
                    )
                )
        return rows

    @staticmethod
    def _straggling(chunk: Chunk, now: float, typical_s: float | None) -> bool:
        if chunk.state is not TaskState.RUNNING or chunk.running_since is None:
            return False
        return typical_s is not None and straggling(now - chunk.running_since, typical_s)

    def running_engines(self) -> list[int]:
        with self._lock:
            return [e.id for e in self._engines.values() if e.chunk is not None and e.alive]


def _first_line(chunk: Chunk) -> str:
    if chunk.error:
        ename, evalue, _tb = chunk.error
        return plain(first_line(f"{ename}: {evalue}") if evalue else ename)
    for stream in ("stderr", "stdout"):
        text = chunk.md.get(stream) or ""
        end = len(text)
        while end and text[end - 1] == "\n":
            end -= 1
        if end:  # the last line, found without copying the rest (up to twice the output cap)
            return plain(text[text.rfind("\n", 0, end) + 1 : end])
    return ""


def chunk_detail(chunk: Chunk, index: int) -> TaskDetail:
    """The full record of item `index` as its chunk knows it."""
    md = chunk.md
    pos = chunk.indices.index(index) if index in chunk.indices else 0
    result = None
    if chunk.results is not None and pos < len(chunk.results):
        result = chunk.results[pos]
    ename, evalue, tb = chunk.error or ("", "", "")
    first = pos == 0
    return TaskDetail(
        index=index,
        state=chunk.state,
        attempt=chunk.attempt,
        engine=chunk.engine,
        submitted=epoch(md.get("submitted")),
        started=epoch(md.get("started")),
        completed=epoch(md.get("completed")),
        duration_s=chunk.duration_s,
        result=result,
        ename=ename,
        evalue=evalue,
        traceback=tb,
        stdout=(md.get("stdout") or "") if first else "",
        stderr=(md.get("stderr") or "") if first else "",
        extra={} if len(chunk.indices) == 1 else {"chunk": [chunk.indices[0], chunk.indices[-1]]},
    )


def _emulated(line: OutputLine) -> OutputLine:
    return OutputLine(line.seq, line.index, line.engine, line.stream, emulate(line.text))
