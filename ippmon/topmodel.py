"""What `ippmon top` shows, computed where the cluster is watched: `TopSnapshot` and its parts.

The controller's task records (`clusterview.ClusterObserver`) say which jobs exist and how many
of their tasks wait, run and ended; they cannot say when a task started, and on a NoDB
controller they say nothing. The engines' own iopub messages (`iopub_watch.IopubWatcher`) say
exactly when each task starts and ends on its engine, whether it raised, and what it prints:
`EngineLedger` keeps that, since watching began, for every engine and every client. Both are
plain Python: no Textual, no ipyparallel, so the numbers are tested without a cluster.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ippmon.terminal import emulate

MAX_LINES = 5000  # output lines kept for the screen (older ones are dropped, and counted)
RATE_WINDOW_S = 30.0  # tasks/s is measured over this much of the recent past
IPPMON_LABEL = "ippmon:"  # the label ippmon's own jobs are sent with, before the job's name
SHORT_SESSION = 8  # characters of a client session shown for a job without a name


def short_msg_id(msg_id: str | None) -> str:
    """A task's msg_id in a few characters. A Jupyter session numbers its messages
    (`<session>_<pid>_<n>`): the number, with the job beside it, is enough (`…_17`); any other
    id is cut to its first 8 characters."""
    if not msg_id:
        return ""
    head, _, tail = msg_id.rpartition("_")
    if head and tail.isdigit():
        return f"…_{tail}"
    return msg_id[:8]


def job_title(session: str, label: str | None) -> str:
    """How a job is named on screen: an ippmon job by its name, a labelled one by its label,
    any other by the first characters of the session that sent it."""
    if label is not None and label.startswith(IPPMON_LABEL):
        return label[len(IPPMON_LABEL) :] or label
    if label:
        return label
    return session[:SHORT_SESSION]


@dataclass(frozen=True)
class TopEngine:
    id: int
    state: str  # busy | idle | gone
    msg_id: str | None = None  # the task it runs now, when known
    job: str | None = None  # that task's job (`TopJob.id`), when known
    running_for_s: float | None = None  # None: it started before watching, or is not known
    done: int = 0  # tasks it finished without error since watching
    failed: int = 0  # tasks that raised on it since watching
    busy_pct: float = 0.0  # of the time it was watched
    last_line: str = ""


@dataclass(frozen=True)
class TopJob:
    """Tasks of one client session (and label), as the controller's records count them."""

    id: str  # session, or session/label
    session: str
    user: str
    label: str | None
    first_seen: float | None
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    tasks_per_s: float = 0.0  # over the last `RATE_WINDOW_S` watched
    eta_s: float | None = None

    @property
    def title(self) -> str:
        return job_title(self.session, self.label)

    @property
    def ippmon(self) -> bool:
        """Sent by ippmon (its title is the job's name)."""
        return self.label is not None and self.label.startswith(IPPMON_LABEL)

    @property
    def submitted(self) -> int:
        return self.queued + self.running + self.done + self.failed

    @property
    def finished(self) -> int:
        return self.done + self.failed


@dataclass(frozen=True)
class TopLine:
    """One line a task printed. `seq` grows by one per line for the whole watch."""

    seq: int
    engine: int
    job: str  # the job's id, or the sending session's while its record is not known
    msg_id: str
    stream: str  # stdout | stderr
    text: str


@dataclass(frozen=True)
class TopSnapshot:
    taken: float  # epoch seconds
    watching_s: float  # since the watch began
    engines: tuple[TopEngine, ...]
    jobs: tuple[TopJob, ...]
    unassigned: int  # the scheduler's queue, not yet handed to an engine
    done: int  # tasks finished without error since watching (every client's, from the engines)
    failed: int
    tasks_per_s: float
    db: str
    limits: tuple[str, ...]  # what this controller does not let the view know
    vanished: int = 0

    def engine_count(self, state: str) -> int:
        return sum(1 for e in self.engines if e.state == state)

    @property
    def running(self) -> int:
        return self.engine_count("busy")

    def job(self, job_id: str | None) -> TopJob | None:
        return next((j for j in self.jobs if j.id == job_id), None)

    @functools.cached_property
    def _titles(self) -> dict[str, str]:
        """Each job's title; one that jobs of two sessions share (two notebooks mapping the
        same function) is followed by the first characters of its session."""
        count = Counter(job.title for job in self.jobs)
        return {
            job.id: job.title
            if count[job.title] == 1
            else f"{job.title} · {job.session[:SHORT_SESSION]}"
            for job in self.jobs
        }

    def title_of(self, job_id: str | None) -> str:
        """A job's title by its id; an unknown id (a session not yet in the records) shortened."""
        if not job_id:
            return ""
        title = self._titles.get(job_id)
        if title is not None:
            return title
        session, _, label = job_id.partition("/")
        return job_title(session, label or None)


class Rate:
    """Things per second over the recent past, from a running total sampled now and then."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, total: int) -> float:
        """Note `total` at time `t`; returns the rate over the window (0 until a second of it)."""
        samples = self._samples
        samples.append((t, total))
        while len(samples) > 2 and t - samples[1][0] >= self.window_s:
            samples.popleft()
        t0, n0 = samples[0]
        if t - t0 < 1.0:
            return 0.0
        return max(0, total - n0) / (t - t0)


def eta(left: int, per_s: float) -> float | None:
    return left / per_s if per_s > 0 and left > 0 else None


@dataclass(frozen=True)
class EngineWatched:
    """An engine as its own messages showed it since watching."""

    msg_id: str | None  # the task it runs now
    session: str  # the session that sent that task
    running_for_s: float | None
    done: int
    failed: int
    busy_pct: float
    last_line: str


@dataclass
class _Engine:
    first_seen: float
    msg_id: str | None = None  # running now (as its busy status said)
    session: str = ""
    since: float | None = None  # when that task started (None: before watching)
    done: int = 0
    failed: int = 0
    busy_s: float = 0.0
    last_line: str = ""
    raised: set[str] = field(default_factory=set)  # msg_ids that published an error


@dataclass
class _Partial:
    engine: int
    session: str
    text: str = ""


class EngineLedger:
    """Every engine's tasks and output since watching, fed by the iopub watcher's thread and
    read from another: every method holds the lock."""

    def __init__(self, clock: Callable[[], float], max_lines: int = MAX_LINES) -> None:
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._engines: dict[int, _Engine] = {}
        self._lines: deque[tuple[int, int, str, str, str, str]] = deque(maxlen=max_lines)
        self._seq = 0
        self._partial: dict[tuple[str, str], _Partial] = {}  # (msg_id, stream) -> unended line
        self.heard = 0  # engine messages taken in (status, output, error)

    def _engine(self, eid: int, t: float) -> _Engine:
        eng = self._engines.get(eid)
        if eng is None:
            eng = self._engines[eid] = _Engine(first_seen=min(t, self.clock()))
        return eng

    def seen(self, engine_ids: list[int]) -> None:
        """Engines the controller lists now: an engine registered since watching is watched
        from here on."""
        with self._lock:
            t = self.clock()
            for eid in engine_ids:
                self._engine(eid, t)

    def gone(self, engine_ids: list[int]) -> None:
        """Engines the controller says unregistered: one killed mid-task never says idle, so
        its task is no longer its current one (nor a target for an interrupt)."""
        with self._lock:
            for eid in engine_ids:
                eng = self._engines.get(eid)
                if eng is not None and eng.msg_id is not None:
                    eng.msg_id, eng.since = None, None

    def status(self, eid: int, msg_id: str, session: str, busy: bool) -> None:
        with self._lock:
            self.heard += 1
            t = self.clock()
            eng = self._engine(eid, t)
            if busy:
                eng.msg_id, eng.session, eng.since = msg_id, session, t
                return
            since = eng.since if eng.msg_id == msg_id else None
            eng.busy_s += t - (since if since is not None else max(eng.first_seen, self.started))
            if msg_id in eng.raised:
                eng.raised.discard(msg_id)
                eng.failed += 1
            else:
                eng.done += 1
            if eng.msg_id == msg_id:
                eng.msg_id, eng.since = None, None
            for stream in ("stdout", "stderr"):
                self._flush(msg_id, stream)

    def error(self, eid: int, msg_id: str) -> None:
        with self._lock:
            self.heard += 1
            self._engine(eid, self.clock()).raised.add(msg_id)

    def output(self, eid: int, msg_id: str, session: str, stream: str, text: str) -> None:
        """A piece of a task's stdout or stderr: complete lines are kept, the rest waits for
        its end (or for the task's end)."""
        with self._lock:
            self.heard += 1
            key = (msg_id, stream)
            part = self._partial.get(key)
            if part is None:
                part = self._partial[key] = _Partial(eid, session)
            *lines, part.text = (part.text + text).split("\n")
            for line in lines:
                self._add(eid, msg_id, session, stream, line)
            if not part.text:
                del self._partial[key]

    def _flush(self, msg_id: str, stream: str) -> None:
        part = self._partial.pop((msg_id, stream), None)
        if part is not None and part.text:
            self._add(part.engine, msg_id, part.session, stream, part.text)

    def _add(self, eid: int, msg_id: str, session: str, stream: str, line: str) -> None:
        text = emulate(line)
        self._seq += 1
        self._lines.append((self._seq, eid, msg_id, session, stream, text))
        if text.strip():
            self._engine(eid, self.clock()).last_line = text

    def lines_since(self, seq: int, job_of: Callable[[str, str], str]) -> tuple[list[TopLine], int]:
        """Lines after `seq`, oldest first, each with its job (`job_of(msg_id, session)`), and
        how many after `seq` were dropped from the bounded buffer before this call."""
        with self._lock:
            lines = [entry for entry in self._lines if entry[0] > seq]
            first = lines[0][0] if lines else self._seq + 1
        dropped = max(0, first - seq - 1)
        return [
            TopLine(s, eid, job_of(msg_id, session), msg_id, stream, text)
            for s, eid, msg_id, session, stream, text in lines
        ], dropped

    def engines(self) -> dict[int, EngineWatched]:
        with self._lock:
            now = self.clock()
            out = {}
            for eid, eng in self._engines.items():
                watched = now - max(eng.first_seen, self.started)
                busy = eng.busy_s
                if eng.msg_id is not None and eng.since is not None:
                    busy += now - eng.since
                pct = min(100.0, 100.0 * busy / watched) if watched > 0 else 0.0
                running_for = now - eng.since if eng.since is not None else None
                out[eid] = EngineWatched(
                    eng.msg_id, eng.session, running_for, eng.done, eng.failed, pct, eng.last_line
                )
            return out

    def totals(self) -> tuple[int, int]:
        """Tasks done and failed since watching, every engine's, gone ones' too."""
        with self._lock:
            engines = self._engines.values()
            return sum(e.done for e in engines), sum(e.failed for e in engines)
