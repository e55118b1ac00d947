"""A submitted job: the one place that reads ipyparallel's client objects while monitoring.

`map_async` blocks while it sends (20,000 tasks take ~30 s), so a job sends its inputs from a
background thread in slices, one `map_async(..., return_exceptions=True)` per slice: the first
tasks run and show while the rest are still being sent, and a cancel can stop the sending.
`return_exceptions=True` is what lets an aborted map finish at all: without it, ipyparallel 9.2's
AsyncMapResult waits forever on the first aborted chunk.

Each chunk's future gets three callbacks (iopub activity, reply, output complete) that only append
the chunk's key to the tracker's event queue from the client's IO thread; `poll()` then looks at
just those chunks.
"""

from __future__ import annotations

import contextlib
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ippmon import __version__, _compat
from ippmon.adopt import ADOPTED_ORIGIN, ADOPTED_RESUME
from ippmon.diagnosis import MIN_CHUNKS, diagnose
from ippmon.memory import give_back
from ippmon.model import (
    OUTPUT_CAP,
    SEND_WINDOW,
    SEND_WINDOW_PER_ENGINE,
    ClusterInfo,
    Finding,
    JobSnapshot,
    OutputBatch,
    Phase,
    RunState,
    TaskDetail,
    TaskRow,
    TaskState,
)
from ippmon.records import (
    RESULTS_FILE,
    RecordError,
    ResultsScan,
    RunError,
    RunRecord,
    detail_from_line,
    epoch,
    iso,
    jsonable,
    lines_at,
    new_run_id,
    read_line_at,
    result_line,
    result_problem,
    scan_results,
)
from ippmon.runs import pending_chunks, sent_chunks
from ippmon.stream import TaskStream, Zoom
from ippmon.text import one_line
from ippmon.topmodel import IPPMON_LABEL
from ippmon.tracker import Chunk, Event, Recorded, Tracker, chunk_detail

if TYPE_CHECKING:
    from ipyparallel import Client

    from ippmon.attach import HubWatcher
    from ippmon.jobspec import JobSpec

DIAGNOSE_EVERY_S = 10.0  # while a job runs, its diagnosis is worked out again this often,
DIAGNOSE_SHARE = 0.02  # or less often, so that it takes at most this share of the time
SLICE_TASKS = 256  # chunks sent per map_async call
RESTORE_BATCH = 2048  # recorded tasks read back at a time by `Job.restore`
DETACH_SEND_S = 45.0  # detaching sends what the window held back for this long at most
# Every task sends its engine's busy and idle (and what it prints) through the controller's
# iopub relay; they trail its result by seconds, by a minute at worst when the machine is
# starved. None at all for this long after a result came: the relay is down (a controller
# whose relay process died as it started runs on without it); output cannot come.
IOPUB_SILENT_S = 60.0
BEHIND_NOTICE_S = 5.0  # say so when the client's IO thread is this far behind its sockets
SPEC_FILE = "spec.pickle"  # the JobSpec, so `resume` can rerun without the spec file's job table
INPUTS_FILE = "inputs.pickle"  # the inputs as sent, so `resume` resends exactly these


@dataclass
class Restored:
    """What an earlier process left in a run folder (see `attach.py`)."""

    record: RunRecord
    inputs: list
    created: float
    attempts: list[dict[str, Any]]
    notice: str = ""  # what the reader found to say about the record (a torn last line, ...)
    adopted: dict[str, Any] | None = None  # run.json's `adopted` (see `ippmon.adopt`)


class NotSubmitted(Exception):
    """Stands in for the reply of a task whose sending was stopped by a cancel."""

    ename = "TaskAborted"
    evalue = "cancelled before it was sent"


def partitions(n: int, chunksize: int | None) -> list[range]:
    """The item ranges ipyparallel's map gives each chunk (`Map.getPartition`, balanced view)."""
    if n == 0:
        return []
    parts = n // chunksize + int(n % chunksize > 0) if chunksize else n
    base, extra = divmod(n, parts)
    out, low = [], 0
    for p in range(parts):
        high = low + base + (1 if p < extra else 0)
        out.append(range(low, high))
        low = high
    return out


class ControllerProbe:
    """Asks the controller a cheap question (`queue_request`) every few seconds without ever
    blocking: ipyparallel's own calls wait forever when the controller is gone. A question left
    unanswered for `timeout` seconds means the controller is unreachable.

    Those seconds are counted in the client's own time, not the wall clock's: the client reads
    every socket on one IO thread, and when this process is behind (a busy machine, a flood of
    output), an answer can sit unread in its socket for many seconds. So each check also posts
    a tick to that IO thread, which runs it after the reads that were ready before it; the
    question counts as unanswered only once a tick posted `timeout` seconds after it was sent
    has run. How far the IO thread is behind is `lag_s`, said on screen as such.

    And a controller whose task records are slow to answer (its hub busy with a flood of
    output) while results and output still stream in through it is not unreachable either:
    `heard()` says when the client last received anything from it, and the verdict needs
    silence on every channel for `timeout` seconds too."""

    def __init__(
        self,
        client: Client,
        *,
        every: float = 2.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        heard: Callable[[], float] = lambda: float("-inf"),
    ) -> None:
        self.client = client
        self.heard = heard
        self.every = every
        self.timeout = timeout
        self.clock = clock
        now = clock()
        self._future: Any = None
        self._sent_at = now
        self._answered_at = now
        self._last_answer_wall = time.time()
        self._tick_posted = now  # when the newest tick was posted
        self._tick_ran = now  # the posting time of the newest tick the IO thread has run
        self.unreachable_since: float | None = None  # time.time() of the last answer
        self.unanswered_s = 0.0  # how long the open question has waited, in the IO thread's time

    @property
    def lag_s(self) -> float:
        """How long the newest tick has waited for the client's IO thread (0 once it ran)."""
        if self._tick_ran >= self._tick_posted:
            return 0.0
        return max(0.0, self.clock() - self._tick_posted)

    def _ran(self, posted: float) -> None:  # on the IO thread
        self._tick_ran = max(self._tick_ran, posted)

    def check(self) -> bool:
        """True while the controller answers (or has not been silent for `timeout`)."""
        now = self.clock()
        fut = self._future
        if fut is not None and fut.done():
            self._future = fut = None
            self._answered_at = now
            self._last_answer_wall = time.time()
        self.unanswered_s = max(0.0, self._tick_ran - self._sent_at) if fut is not None else 0.0
        quiet = self.heard() <= self._tick_ran - self.timeout
        if self.unanswered_s >= self.timeout and quiet:
            if self.unreachable_since is None:
                self.unreachable_since = self._last_answer_wall
        else:
            self.unreachable_since = None
        if self._tick_ran >= self._tick_posted and _compat.call_on_io_thread(
            self.client, partial(self._ran, now)
        ):
            self._tick_posted = now
        if self._future is None and now - self._answered_at >= self.every:
            self._future = _compat.ask_controller(
                self.client, "queue_request", {"targets": list(self.client.ids), "verbose": False}
            )
            self._sent_at = now
            if self._future is None:  # a client without these internals: assume reachable
                self._answered_at = now
        return self.unreachable_since is None


class Budgeted:
    """When to do again a piece of work that grows with the job: every `every_s` seconds, or
    less often, so that it takes at most `share` of the time (its last run's cost / `share`)."""

    def __init__(self, every_s: float, share: float) -> None:
        self.every_s = every_s
        self.share = share
        self.last_at = float("-inf")
        self.cost_s = 0.0

    def due(self, now: float) -> bool:
        return now - self.last_at >= max(self.every_s, self.cost_s / self.share)

    def ran(self, started: float, ended: float) -> None:
        self.last_at, self.cost_s = started, max(0.0, ended - started)


class Job:
    """One job on one cluster, with all of its attempts, and its run record."""

    def __init__(
        self,
        client: Client | None,
        spec: JobSpec,
        *,
        info: ClusterInfo,
        runs_dir: str | None = None,
        clock: Callable[[], float] = time.time,
        slice_tasks: int = SLICE_TASKS,
        controller_timeout: float = 10.0,
        restore: Restored | None = None,
        output_cap: int = OUTPUT_CAP,
        send_window: int | None = None,
    ) -> None:
        """A new job (sends nothing until `start`), or with `restore` one read back from its run
        record to be watched again (`ippmon attach`); `client` is None for a run that needs no
        cluster any more (everything recorded). `send_window`: chunks in flight at most (sent,
        not yet recorded); None: SEND_WINDOW, or SEND_WINDOW_PER_ENGINE per engine when that is
        more; 0 sends everything as fast as it can."""
        self.name = spec.name
        self.spec = spec
        self.client = client
        self.info = info
        self.clock = clock
        self.slice_tasks = slice_tasks
        self.send_window = send_window
        # when the job ends, collect and return its memory to the system (~1 s at 10,000 tasks):
        # for a process that goes on (the TUI's), not one that exits with the job
        self.give_back = True
        flags = spec.flags()
        self.map_flags = {k: flags[k] for k in ("chunksize", "ordered") if k in flags}
        self._view_flags = {k: flags[k] for k in ("retries", "timeout") if k in flags}
        self._view: Any = None
        self._function: Callable[[object], object] | None = None
        now = clock()
        if restore is None:
            self.inputs = list(spec.load_inputs())
            self._function = spec.task_function()
            self.run_id = new_run_id(spec.name, now)
            self.record = RunRecord.create(runs_dir, self.run_id)
            self.record.save_pickle(SPEC_FILE, spec)
            self.record.save_pickle(INPUTS_FILE, self.inputs)
            self._created = now
            self._attempts: list[dict[str, Any]] = []
        else:
            self.inputs = restore.inputs
            self.record = restore.record
            self.run_id = restore.record.run_id
            self._created = restore.created
            self._attempts = restore.attempts
        self._restored_notice = "" if restore is None else restore.notice
        self._adopted = None if restore is None else restore.adopted  # kept in run.json
        self.tracker = Tracker(
            spec.name,
            len(self.inputs),
            clock=clock,
            cluster=info,
            run_id=self.run_id,
            output_cap=output_cap,
        )
        self._msg_ids: dict[int, str] = {}
        self._recorded_keys: set[int] = set()  # restored chunks: already in results.jsonl
        # Each slice's AsyncMapResult, until every chunk of it is recorded: then the slice is
        # let go of (ipyparallel keeps every reply, metadata dict and output in it).
        self._ars: dict[int, Any] = {}
        self._slice_of: dict[int, int] = {}  # chunk key -> its slice, while the slice is kept
        self._slice_left: dict[int, int] = {}  # slice -> its chunks not recorded yet
        self._n_slices = 0
        self._in_flight = 0  # chunks of kept slices not recorded yet (the send window's count)
        self._forget: list[str] = []  # msg_ids recorded, still in the client's history
        self._room = threading.Condition(threading.Lock())
        self._unwindowed = threading.Event()  # detaching: send the rest without waiting
        # the byte offset in results.jsonl of each task's newest line (-1: none yet)
        self._offsets = array("q", [-1]) * len(self.inputs)
        self._stop_sending = threading.Event()
        self._sender: threading.Thread | None = None
        self._state = RunState.RUNNING
        self._detached_at: float | None = None
        self._record_lock = threading.RLock()
        self._unrecorded: list[Chunk] = []  # final chunks the record could not take yet
        self._touched = restore is None  # changed since read back: close() rewrites run.json
        self._findings: tuple[Finding, ...] = ()
        self._diagnosis = Budgeted(DIAGNOSE_EVERY_S, DIAGNOSE_SHARE)
        self._diagnosed_final = False
        self._heard_at = float("-inf")  # time.monotonic() of the last message from the cluster
        self._iopub_messages = 0  # of this job's tasks, through the controller's iopub relay
        self._first_reply_at: float | None = None  # time.monotonic() of the first result
        self.probe = (
            ControllerProbe(client, timeout=controller_timeout, heard=lambda: self._heard_at)
            if client
            else None
        )
        self.watcher: HubWatcher | None = None  # tasks sent by an earlier process (`restore`)
        self.closed = False
        self.on_close: Callable[[], None] | None = None  # called once closed
        if restore is None:
            self._write_run()

    @classmethod
    def restore(
        cls,
        folder: Path,
        client: Client | None,
        info: ClusterInfo,
        *,
        clock: Callable[[], float] = time.time,
        controller_timeout: float = 10.0,
        output_cap: int = OUTPUT_CAP,
        send_window: int | None = None,
    ) -> Job:
        """A job read back from its run folder (`ippmon attach`, `resume`, the runs list):
        finished tasks from results.jsonl; with a client, the tasks still out on the cluster
        are watched (`attach.HubWatcher`). Raises RunError for a record it cannot read."""
        from ippmon.adopt import UNKNOWN_INPUT, adopted_spec, is_adopted
        from ippmon.attach import HubWatcher
        from ippmon.jobspec import JobSpec

        record = RunRecord(folder)
        meta = record.read_run()
        total = meta["inputs_count"]
        scan = scan_results(folder, total)  # each line checked; only where each task's stands
        sent = sent_chunks(folder, meta)
        try:
            spec: object
            inputs: object
            if is_adopted(meta):  # another client's job (`ippmon adopt`): no spec, no inputs
                spec, inputs = adopted_spec(meta), [UNKNOWN_INPUT] * total
            else:
                spec = record.load_pickle(SPEC_FILE)
                inputs = record.load_pickle(INPUTS_FILE)
            if not isinstance(spec, JobSpec) or not isinstance(inputs, list):
                raise TypeError(f"{SPEC_FILE} or {INPUTS_FILE} holds something else")
        except RunError:
            raise
        except Exception as exc:
            raise RunError(
                f"{folder}: cannot read the run record: {one_line(exc, with_type=True)}"
            ) from None
        if len(inputs) != total:
            raise RunError(f"{folder / INPUTS_FILE}: {len(inputs)} inputs, run.json says {total}")
        created = epoch(meta.get("created")) or clock()
        holder = record.lock()
        notices = [scan.warning] if scan.warning else []
        if holder:
            notices.append(f"read-only: {holder} is writing this run's record")
        job = cls(
            client,
            spec,
            info=info,
            clock=clock,
            controller_timeout=controller_timeout,
            restore=Restored(
                record,
                inputs,
                created,
                list(meta.get("attempts", [])),
                " · ".join(notices),
                meta.get("adopted") if isinstance(meta.get("adopted"), dict) else None,
            ),
            output_cap=output_cap,
            send_window=send_window,
        )
        job.tracker.set_notice("record", job._restored_notice)
        tracker = job.tracker
        tracker.restore_start(created)
        ends = job._read_back(scan)
        pending = pending_chunks(sent, scan.standing)
        out = {i for _m, indices, _a in pending for i in indices}
        unsent = [i for i in range(len(inputs)) if i not in scan.standing and i not in out]
        if unsent:  # the earlier process was stopped while it was still sending
            last = max((int(a.get("attempt", 1)) for a in meta.get("attempts", [])), default=1)
            job._never_sent(unsent, last)
        watched: dict[int, tuple[str, dict]] = {}
        for msg_id, indices, attempt in pending:
            md: dict[str, Any] = {}
            (key,) = tracker.add_chunks([(indices, md)], attempt)
            job._msg_ids[key] = msg_id
            watched[key] = (msg_id, md)
        job._record(tracker.poll())  # the never-sent ones and the recorded ones, read back
        if not watched:
            tracker.restore_end(ends)
        elif client is not None:
            job.watcher = HubWatcher(client, tracker, watched, on_heard=job.heard)
            job.watcher.start()
        job._state = RunState.RUNNING if watched else RunState.FINISHED
        return job

    def _read_back(self, scan: ResultsScan) -> float:
        """The recorded tasks, from their lines in results.jsonl, a batch at a time (each batch
        let go of as a finished job's tasks are): the whole file is never in memory. Returns
        when the last of them completed (0 when none did)."""
        tracker, ends = self.tracker, 0.0
        order = sorted(scan.standing.items(), key=lambda item: item[1].offset)  # one pass
        lines = lines_at(self.record.folder / RESULTS_FILE, (s.offset for _i, s in order))
        for start in range(0, len(order), RESTORE_BATCH):
            batch = [
                (i, line)
                for (i, _s), (_at, line) in zip(order[start : start + RESTORE_BATCH], lines)
            ]
            by_attempt: dict[int, list[tuple[int, dict]]] = {}
            for i, line in batch:
                by_attempt.setdefault(int(line.get("attempt", 1)), []).append((i, line))
                ends = max(ends, epoch(line.get("completed")) or 0.0)
            for attempt, items in sorted(by_attempt.items()):
                keys = tracker.add_chunks(
                    [([i], _md_from_line(line)) for i, line in items], attempt
                )
                for key, (i, line) in zip(keys, items):
                    self._recorded_keys.add(key)
                    self._offsets[i] = scan.standing[i].offset
                    tracker.notify(key, Event.DONE, _recorded(line))
            self._record(tracker.poll())  # nothing written: released, read back when asked
        return ends

    @property
    def view(self) -> Any:
        if self._view is None:
            if self.client is None:
                raise RuntimeError("not connected to a cluster")
            self._view = self.client.load_balanced_view()
            # `ippmon top` (another client's view of this cluster) names the job by its label.
            _compat.label_view(self._view, IPPMON_LABEL + self.spec.name)
            if self._view_flags:
                self._view.set_flags(**self._view_flags)
        return self._view

    @property
    def function(self) -> Callable[[object], object]:
        if self._function is None:
            self._function = self.spec.task_function()
        return self._function

    # -- sending -----------------------------------------------------------------------------

    def start(self) -> None:
        """Send every input (attempt 1) from a background thread; returns at once."""
        self.submit(range(len(self.inputs)), attempt=1)

    def submit(self, indices: Iterable[int], attempt: int | None = None) -> int:
        """Send these inputs again (or for the first time) as a new attempt. Returns the attempt."""
        indices = list(indices)
        if self.spec.origin == ADOPTED_ORIGIN:
            raise RuntimeError(ADOPTED_RESUME.format(run=self.run_id))
        if self.client is None:
            raise RuntimeError("not connected to a cluster")
        if attempt is None:
            attempt = self.tracker.attempt + 1
        if self._sender is not None and self._sender.is_alive():
            raise RuntimeError("a submission is still being sent")
        self._stop_sending.clear()
        self.tracker.begin_submission(len(indices), attempt)
        self._state = RunState.RUNNING
        self._touched = True
        self._sender = threading.Thread(
            target=self._send, args=(indices, attempt), name="ippmon-submit", daemon=True
        )
        self._sender.start()
        return attempt

    def _send(self, indices: list[int], attempt: int) -> None:
        tracker = self.tracker
        self._attempts.append({"attempt": attempt, "n": len(indices)})
        sent = 0
        try:
            window = self._window()
            # A slice never holds more chunks than the window: a window of 20 sends 20 at a time.
            per_slice = min(self.slice_tasks, window) if window else self.slice_tasks
            step = per_slice * (self.spec.chunksize or 1)
            for start in range(0, len(indices), step):
                batch = indices[start : start + step]
                parts = partitions(len(batch), self.spec.chunksize)
                self._wait_for_room(len(parts), window)
                self._forget_recorded()
                if self._stop_sending.is_set():
                    break
                items = [[batch[i] for i in part] for part in parts]
                # Each chunk's msg_id reaches sent.jsonl before the chunk is sent: a process
                # killed at any moment leaves a record of every task that may run.
                with _compat.before_each_request(self.client, self._sent_log(attempt, items)):
                    ar = self.view.map_async(
                        self.function,
                        [self.inputs[i] for i in batch],
                        return_exceptions=True,
                        **self.map_flags,
                    )
                self._n_slices += 1
                number = self._n_slices
                self._ars[number] = ar
                children = _compat.map_children(ar)
                self._slice_left[number] = len(children)
                with self._room:
                    self._in_flight += len(children)
                chunks = [
                    (chunk, child.output.metadata)
                    for chunk, child in zip(items, children, strict=True)
                ]
                keys = tracker.add_chunks(chunks, attempt)
                for key, child in zip(keys, children, strict=True):
                    self._msg_ids[key] = child.msg_id
                    self._slice_of[key] = number
                    child.iopub_callbacks.append(partial(self._on_iopub, key))
                    child.add_done_callback(partial(self._on_reply, key))
                    child.output.add_done_callback(partial(self._on_output, key))
                tracker.catch_up(keys)
                sent += len(batch)
                tracker.sent(len(batch))
        except Exception as exc:  # the cluster refused or went away mid-send
            tracker.set_notice(
                "sending", f"sending stopped after {sent} tasks: {one_line(exc, with_type=True)}"
            )
        finally:
            unsent = indices[sent:]
            if unsent:
                self._never_sent(unsent, attempt)
            tracker.end_submission()
            self._write_run()

    def _window(self) -> int:
        """Chunks in flight at most (0: no limit)."""
        window = self.send_window
        if window is None:  # enough for every engine to stay busy between two polls
            window = SEND_WINDOW
            with contextlib.suppress(Exception):
                window = max(window, SEND_WINDOW_PER_ENGINE * len(self.client.ids))  # type: ignore[union-attr]
        return window

    def _wait_for_room(self, n: int, window: int) -> None:
        """Before sending n more chunks: wait until the send window has room for them (chunks
        leave it when they are recorded), unless nothing is in flight, sending stops, or the
        job is detaching (then the rest goes out at once)."""
        if not window:
            return
        with self._room:
            while (
                self._in_flight
                and self._in_flight + n > window
                and not self._stop_sending.is_set()
                and not self._unwindowed.is_set()
            ):
                self.tracker.pace()
                self._room.wait(0.5)

    def _wake_sender(self) -> None:
        with self._room:
            self._room.notify_all()

    def _sent_log(self, attempt: int, chunks: list[list[int]]) -> Callable[[str], None]:
        """What writes each chunk of a slice to sent.jsonl as its msg_id is chosen, in order."""
        order = iter(chunks)

        def log(msg_id: str) -> None:
            line = {"attempt": attempt, "msg_id": msg_id, "indices": next(order)}
            self.record.append_sent(line)

        return log

    def _never_sent(self, indices: list[int], attempt: int) -> None:
        """These inputs of `attempt` were not sent (a cancel, a failure, a stopped process)."""
        for key in self.tracker.add_chunks([([i], {}) for i in indices], attempt):
            self.tracker.notify(key, Event.DONE, NotSubmitted())
            self.tracker.notify(key, Event.OUTPUT_DONE)  # no output will come

    def heard(self) -> None:
        """Something arrived from the controller (any thread): it is there."""
        self._heard_at = time.monotonic()

    def _on_iopub(self, key: int, _msg: object) -> None:
        self.heard()
        self._iopub_messages += 1
        self.tracker.trim(key)  # on the IO thread, right after ipyparallel appended the output
        self.tracker.notify(key, Event.ACTIVITY)

    def _on_reply(self, key: int, future: Any) -> None:
        self.heard()
        if self._first_reply_at is None:
            self._first_reply_at = time.monotonic()
        exc = future.exception()
        self.tracker.notify(key, Event.DONE, exc if exc is not None else future.result())

    def _on_output(self, key: int, _future: object) -> None:
        self.tracker.notify(key, Event.OUTPUT_DONE)

    # -- monitoring (JobHandle) ------------------------------------------------------------

    def poll(self) -> JobSnapshot:
        tracker = self.tracker
        if self.client is not None:
            tracker.set_engines(self.client.ids)
        self._check_controller()
        self._check_iopub()
        ready = tracker.poll()
        if ready or self._unrecorded:
            self._record(ready)
        if tracker.settled and self._state is RunState.RUNNING:
            self._state = RunState.FINISHED
            self._write_run()
            if self.give_back:  # what the job's replies and output took, back to the system
                give_back()
        return self._with_findings(tracker.snapshot())

    def _with_findings(self, snap: JobSnapshot) -> JobSnapshot:
        """The snapshot with the diagnosis (`ippmon.diagnosis`): worked out again every
        `DIAGNOSE_EVERY_S` while the job runs (less often when it costs more than
        `DIAGNOSE_SHARE` of that: it reads the whole timeline, and a 100,000-task one takes over
        half a second), and once more when it has finished."""
        now = time.monotonic()
        final = snap.phase is Phase.FINISHED
        due = snap.done >= MIN_CHUNKS and self._diagnosis.due(now)
        if (final and not self._diagnosed_final) or (not final and due):
            self._diagnosed_final = final
            engines = max(snap.n_engines, sum(1 for e in snap.engines if e.tasks_done))
            self._findings = tuple(
                diagnose(
                    self.tracker.timeline(),
                    engines=engines,
                    total_items=len(self.inputs),
                    chunksize=self.spec.chunksize or 1,
                )
            )
            self._diagnosis.ran(now, time.monotonic())
        return replace(snap, findings=self._findings) if self._findings else snap

    def _check_controller(self) -> None:
        """Notices for a controller that does not answer, and for a client that is behind."""
        probe, tracker = self.probe, self.tracker
        if probe is None:
            return
        if probe.check():
            tracker.set_notice("controller", "")
            tracker.set_controller_lost(False)
        else:
            since = time.strftime("%H:%M:%S", time.localtime(probe.unreachable_since))
            tracker.set_notice(
                "controller",
                f"controller unreachable (no answer since {since}); finished results are saved "
                f"in {self.record.folder}",
            )
            tracker.set_controller_lost(True)
        slow = probe.unanswered_s >= probe.timeout and not self.controller_lost
        tracker.set_notice(
            "slow",
            f"the controller has not answered for {probe.unanswered_s:.0f} s, but results and "
            "output still arrive through it"
            if slow
            else "",
        )
        lag = probe.lag_s
        tracker.set_notice(
            "behind",
            f"ippmon is {lag:.0f} s behind the cluster's messages (this machine is busy); "
            "results and output will catch up"
            if lag >= BEHIND_NOTICE_S
            else "",
        )

    def _check_iopub(self) -> None:
        """A notice, and no wait for output, when no message of the job's tasks has come
        through the controller's iopub relay `IOPUB_SILENT_S` after the first result."""
        first = self._first_reply_at
        silent = (
            self._iopub_messages == 0
            and first is not None
            and time.monotonic() - first >= IOPUB_SILENT_S
        )
        self.tracker.set_iopub_silent(silent)
        self.tracker.set_notice(
            "iopub",
            f"no output, busy or idle from any engine in {IOPUB_SILENT_S:g} s of results: the "
            "controller's iopub relay is down (restart the cluster); results are "
            "recorded without output"
            if silent
            else "",
        )

    def _record(self, chunks: Iterable[Chunk]) -> None:
        """Append the result lines of these chunks (see `Tracker.poll`), and of any the record
        could not take before, to results.jsonl. When it cannot take them now (a full disk),
        they wait, the job is not finished, and a notice says why; the next poll tries again."""
        with self._record_lock:
            todo = [*self._unrecorded, *chunks]
            lines = self._lines(todo)
            try:
                offsets = self.record.append_results(lines)
            except RecordError as exc:
                self._unrecorded = todo
                self.tracker.set_unrecorded(len(todo))
                self.tracker.set_notice(
                    "writing", f"{exc}; {len(todo)} finished chunks wait to be recorded"
                )
                return
            if offsets:
                self._touched = True
            for line, offset in zip(lines, offsets):
                self._offsets[int(line["index"])] = offset  # type: ignore[call-overload]
            if self._unrecorded:
                self._unrecorded = []
                self.tracker.set_unrecorded(0)
                self.tracker.set_notice("writing", "")
            if not self.record.read_only:  # read back from the record from now on
                self.tracker.release(todo)
            self._let_go(todo)

    def _let_go(self, chunks: Iterable[Chunk]) -> None:
        """Recorded chunks: each makes room in the send window, and the client forgets it
        unless its output may still grow; a slice whose chunks are all recorded is dropped."""
        freed = 0
        forget = []
        for chunk in chunks:
            if not chunk.may_grow:  # else the client keeps it until it is amended
                msg_id = self._msg_ids.pop(chunk.key, None)
                if msg_id is not None:
                    forget.append(msg_id)
            number = self._slice_of.pop(chunk.key, None)  # its result came: room for another
            if number is None:
                continue
            freed += 1
            self._slice_left[number] -= 1
            if not self._slice_left[number]:
                del self._slice_left[number]
                self._ars.pop(number, None)
        with self._room:
            self._forget += forget
            if freed:
                self._in_flight -= freed
                self._room.notify_all()

    def _forget_recorded(self) -> None:
        """Recorded tasks leave the client's history too (on the sending thread)."""
        with self._room:
            forget, self._forget = self._forget, []
        if forget and self.client is not None:
            _compat.forget_sent(self.client, forget)

    def _lines(self, chunks: Iterable[Chunk]) -> list[dict[str, object]]:
        lines = []
        for chunk in chunks:
            if chunk.key in self._recorded_keys and not chunk.amended:
                continue  # read back from results.jsonl (attach)
            msg_id = self._msg_ids.get(chunk.key)
            for detail in self._details(chunk):
                line = result_line(detail, msg_id)
                if chunk.output_note:
                    line["output_incomplete"] = chunk.output_note
                if chunk.amended:
                    line["amends"] = True
                lines.append(line)
        return lines

    def _details(self, chunk: Chunk) -> list[TaskDetail]:
        return [chunk_detail(chunk, i) for i in chunk.indices]

    def snapshot(self) -> JobSnapshot:
        snap = self.tracker.snapshot()
        return replace(snap, findings=self._findings) if self._findings else snap

    def output_batch(self, seq: int) -> OutputBatch:
        return self.tracker.output_batch(seq)

    def task_rows(self, states: Iterable[TaskState] | None = None) -> list[TaskRow]:
        return self.tracker.task_rows(states)

    def stream(self, zoom: Zoom, width: int) -> TaskStream:
        return self.tracker.stream(zoom, width)

    def export(self, fmt: str = "csv") -> str:
        """Write the run's final rows (see `ippmon export`) into its folder; returns the path."""
        from ippmon.export import export_run

        with self._record_lock:
            return str(export_run(self.record.folder, fmt))

    def task(self, index: int) -> TaskDetail:
        """Task `index` in full: from the tracker while it is out, from its line in
        results.jsonl once it is recorded (one line read, wherever it is in the file)."""
        detail = self.tracker.detail(index)
        offset = self._offsets[index]
        if self.tracker.released(index) and offset >= 0:
            path = self.record.folder / RESULTS_FILE
            try:
                line = read_line_at(path, offset, lambda line: result_problem(line, None))
            except RunError as exc:
                detail.extra["record"] = str(exc)
            else:
                detail = detail_from_line(line)
        detail.extra.setdefault("input", self.inputs[index])
        return detail

    def finished(self) -> bool:
        """Every task final and recorded, and nothing left to send."""
        return self.tracker.settled and not self.tracker.submitting and not self._unrecorded

    @property
    def controller_lost(self) -> bool:
        return self.probe is not None and self.probe.unreachable_since is not None

    def cancel(self) -> None:
        """Stop sending, abort every task not yet started, interrupt the ones running now."""
        tracker = self.tracker
        tracker.begin_cancel()
        self._stop_sending.set()
        self._wake_sender()
        if self.client is None:
            return
        if self.watcher is not None:
            self.watcher.abort()
        for ar in list(self._ars.values()):
            with contextlib.suppress(RuntimeError):  # that slice had already finished
                ar.abort()
        engines = tracker.running_engines()
        if engines:
            self.client.send_signal("SIGINT", targets=engines, block=True)

    def retryable(self) -> list[int]:
        """Inputs whose newest attempt failed, was cancelled or was lost (the `r` key)."""
        return self.tracker.indices_in((TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST))

    def failed(self) -> list[int]:
        """Inputs whose newest attempt failed or was lost (`--retry-failed`)."""
        return self.tracker.indices_in((TaskState.ERROR, TaskState.LOST))

    def wait(self, timeout: float | None = None, interval: float = 0.2) -> bool:
        """Poll until finished (headless use). True when finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        idle = threading.Event()
        while True:
            self.poll()
            if self.finished():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            idle.wait(interval)

    def close(self) -> None:
        """Flush the record. Tasks still running stay running on the cluster: the record says
        the run was detached, and `ippmon attach` picks it up again. Tasks the send window
        still holds back are sent first, for at most DETACH_SEND_S seconds: a detached job keeps
        its engines busy. Any left then are recorded as not sent (cancelled; `resume` sends
        them)."""
        self.closed = True
        sender = self._sender
        if sender is not None and sender.is_alive() and not self.tracker.cancelling:
            self._unwindowed.set()
            self._wake_sender()
            sender.join(timeout=DETACH_SEND_S)
        self._stop_sending.set()
        self._wake_sender()
        if sender is not None:
            sender.join(timeout=5)
        if self.watcher is not None:
            self.watcher.stop()
        with self._record_lock:
            if self.client is not None:
                self.poll()  # take in and record what finished since the last poll
            self._record(self.tracker.late_output())
            self._forget_recorded()  # the sender has stopped: nothing appends meanwhile
            if not self.finished():
                self._state = RunState.DETACHED
                self._detached_at = self.clock()
            if self._touched:  # a run only read back (attach of a finished run) stays as it was
                self._write_run()
            self.record.close()
        if self.on_close is not None:
            self.on_close()

    def _write_run(self) -> None:
        try:
            self._write_run_now()
        except RecordError as exc:  # the next write tries again; results.jsonl is what counts
            self.tracker.set_notice("writing", str(exc))

    def _write_run_now(self) -> None:
        with self._record_lock:  # the counts and the size of results.jsonl that has them
            snap = self.tracker.snapshot()
            results_stamp = self.record.stamp(RESULTS_FILE)
        spec = self.spec
        self.record.write_run(
            {
                "run_id": self.run_id,
                "ippmon": __version__,
                "state": self._state.value,
                "job": spec.name,
                "spec": {
                    "description": spec.description,
                    "function": spec.function,
                    "origin": spec.origin,
                    "inputs": spec.inputs_desc,
                    "kwargs": _jsonable_map(spec.kwargs),
                    "flags": spec.flags(),
                },
                "inputs_count": len(self.inputs),
                "cluster": {
                    "profile": self.info.profile,
                    "cluster_id": self.info.cluster_id,
                    "location": self.info.location,
                    "engines": self.info.engines,
                },
                "spec_file": spec.base_dir if spec.origin != "built-in" else None,
                "created": iso(self._created),
                "detached": iso(self._detached_at),
                "updated": iso(self.clock()),
                "elapsed_s": round(snap.elapsed_s, 3),
                "wall_s": None if snap.wall_s is None else round(snap.wall_s, 3),
                "serial_s": round(snap.serial_s, 3),
                "engine_s": None if snap.engine_s is None else round(snap.engine_s, 3),
                "speedup": None if snap.speedup is None else round(snap.speedup, 4),
                "efficiency": None if snap.efficiency is None else round(snap.efficiency, 4),
                "counts": {s.value: n for s, n in snap.counts.items()},
                "results_stamp": results_stamp,
                "attempts": [dict(a) for a in self._attempts],
                **({"adopted": self._adopted} if self._adopted else {}),
            }
        )


def _jsonable_map(values: Any) -> dict[str, object]:
    return {k: jsonable(v)[0] for k, v in dict(values).items()}


def _md_from_line(line: dict) -> dict:
    """A chunk's metadata as its results.jsonl line recorded it."""
    return {
        "engine_id": line.get("engine"),
        "submitted": line.get("submitted"),
        "started": line.get("started"),
        "completed": line.get("completed"),
        "stdout": line.get("stdout") or "",
        "stderr": line.get("stderr") or "",
    }


def _recorded(line: dict) -> Recorded:
    err = line.get("error") or None
    error = (err.get("ename", ""), err.get("evalue", ""), err.get("traceback", "")) if err else None
    return Recorded(TaskState(line.get("status", "error")), line.get("result"), error)
