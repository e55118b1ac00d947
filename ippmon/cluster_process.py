"""The cluster side of the TUI in a child process: the screens never share a GIL with ipyparallel.

ipyparallel's Client handles every reply, iopub and output message on its IO thread in Python,
and a large job spends seconds pickling inputs on the sender thread. In the TUI's process those
two held the GIL about 70% of the time during a 20,000-task job, and the UI loop stalled for
hundreds of milliseconds (`bench/bench_ui_stall.py`). So the TUI runs `RemoteBackend`: a child
process (`python -c ... child_main`) holds the real `ClusterBackend`, its sessions and jobs, and
the TUI process keeps only the UI loop and threads that wait on a pipe.

Protocol, over a `multiprocessing.connection.Connection` on a socketpair:
- first the parent sends `(sys.path, ConnectOptions)`;
- then requests `(call_id, object_id, name, args, kwargs)`, answered in any order by
  `(call_id, ok, parts)`: the child runs each in a thread pool, so a slow `connect` or `cancel`
  does not hold up the next poll. Object 0 is the backend; a session (from `connect`,
  `start_local`), a job (from `submit`, `attach`) or a watch of the whole cluster (from
  `watch`, for `ippmon top`) is kept in the child with its kind and comes back as a `_Ref`,
  which the parent wraps in a proxy. The child answers only the calls that its kind's
  Protocol (`ippmon.protocols`) names. `parts` is the answer in pickles (`_pack`: long lists
  in slices). Every call has a time limit (`TIMEOUT_S`), after which the caller gets a
  one-line `ConnectError` naming the call;
- `None` asks the child to close every watch and every job (the run records say "detached"
  unless finished), close every session (stopping a local cluster it started) and exit. End
  of file on the pipe (the parent died) does the same, so tasks and records survive an ippmon
  that was killed.

A fresh child when the last job or watch closes (`RemoteBackend.renew_if_idle`): Python gives
a finished job's objects back, but its allocator keeps every 1 MiB arena in which one small
object lives on, and the few that a job leaves (the session's message digests, ipyparallel's
and tornado's bookkeeping) are spread over all of them: after a 10,000-task job the child
stayed ~60 MB above its start, `malloc_trim` or no. So once nothing is open in the child and
it has grown past `RENEW_ABOVE_MB`, the parent starts another child, connects its sessions
again, sends the next calls there and lets the old one go (it closes its client and exits).
Never for a cluster the child started (`--local`): that cluster stops with its session.

The child runs in its own session, so a terminal hang-up reaches only the parent, which decides.
Its stdout and stderr go to `$IPPMON_BACKEND_LOG` if set, else nowhere (never onto the screen).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import pprint
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from enum import Enum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ippmon.memory import give_back
from ippmon.model import (
    ClusterInfo,
    JobSnapshot,
    OutputBatch,
    Shown,
    TaskDetail,
    TaskRow,
    TaskState,
)
from ippmon.protocols import Backend, ClusterChoice, ClusterWatch, ConnectError, JobHandle, Session
from ippmon.stream import TaskStream, Zoom
from ippmon.text import one_line
from ippmon.topmodel import TopLine, TopSnapshot

if TYPE_CHECKING:
    from ippmon.adopt import Adopted, Resubmitted
    from ippmon.connect import ConnectOptions
    from ippmon.jobspec import JobSpec

BACKEND_ID = 0
SHUTDOWN = None
CLOSE_WAIT_S = 60.0  # stopping a local cluster takes ~5-10 s; never wait forever
LOG_ENV = "IPPMON_BACKEND_LOG"

# How long the parent waits for each call's answer. Connecting, starting a local cluster and
# attaching wait on the cluster themselves (within --timeout, or ~10 s to start engines);
# these limits only catch a child that hangs or is starved, so they are generous.
TIMEOUT_S: dict[str, float] = {
    "start_local": 300.0,
    "connect": 300.0,
    "attach": 300.0,
    "export": 600.0,
    "close": CLOSE_WAIT_S,
}
DEFAULT_TIMEOUT_S = 120.0
RENEW_ABOVE_MB = 30.0  # a child this much bigger than just after it connected is replaced
RENEW_AFTER_S = 1.0  # ...once nothing in it has been open for this long (leaving, resubmitting)
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # the folder holding this ippmon


class Kind(Enum):
    """What an object kept in the child is: it decides which calls the child answers."""

    BACKEND = "backend"
    SESSION = "session"
    JOB = "job"
    WATCH = "watch"


def _calls(protocol: type) -> frozenset[str]:
    """The methods a Protocol names (not its plain attributes, which travel in the `_Ref`)."""
    members = vars(protocol).items()
    return frozenset(name for name, value in members if callable(value) and name[0] != "_")


ALLOWED: dict[Kind, frozenset[str]] = {
    Kind.BACKEND: _calls(Backend) - {"target_given"},  # the parent answers that from its options
    Kind.SESSION: _calls(Session),
    Kind.JOB: _calls(JobHandle),
    Kind.WATCH: _calls(ClusterWatch),
}
# The calls whose answer is an object kept in the child, and what kind it is.
RETURNS: dict[tuple[Kind, str], Kind] = {
    (Kind.BACKEND, "connect"): Kind.SESSION,
    (Kind.BACKEND, "start_local"): Kind.SESSION,
    (Kind.SESSION, "submit"): Kind.JOB,
    (Kind.SESSION, "attach"): Kind.JOB,
    (Kind.SESSION, "watch"): Kind.WATCH,
}


@dataclass(frozen=True)
class _Ref:
    """A session (with its `info`) or a job (with its `name`) that lives in the child."""

    oid: int
    kind: Kind
    info: ClusterInfo | None = None
    name: str = ""


# -- the parent side ----------------------------------------------------------------------------


class _Retired(ConnectError):
    """The channel was replaced by a fresh child: a session calls again on the new one (a job
    or watch of the old child was closed before, and says so)."""


def _call_linked(link: Callable[[], tuple[_Channel, int]], name: str, *args: object) -> Any:
    """Call `name` on the object `link()` names; made again on the new channel if the one it
    named was retired meanwhile (the child was replaced: the new link is in place by then)."""
    while True:
        channel, oid = link()
        try:
            return channel.call(oid, name, *args)
        except _Retired:
            continue


class _Channel:
    """Calls into the child from any thread; one reader thread hands each answer to its caller."""

    def __init__(self, options: ConnectOptions) -> None:
        mine, theirs = socket.socketpair()
        log = os.environ.get(LOG_ENV)
        log_file = open(log, "ab") if log else None  # noqa: SIM115
        out = log_file if log_file is not None else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    # The parent's ippmon, not one in the working directory (`-c` puts it first).
                    f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
                    f"from ippmon.cluster_process import child_main; child_main({theirs.fileno()})",
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # a hang-up or Ctrl-C reaches only the TUI
            )
        finally:
            theirs.close()
            if log_file is not None:
                log_file.close()
        self.conn = Connection(mine.detach())
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._pending_lock = threading.Lock()
        self._idle = threading.Condition(self._pending_lock)  # told when no call is pending
        self._ids = itertools.count(1)
        self._dead: str | None = None
        self._closing = False
        self._retired = False
        self.conn.send((list(sys.path), options))
        self._reader = threading.Thread(target=self._read, name="ippmon-remote", daemon=True)
        self._reader.start()

    def call(self, oid: int, name: str, *args: object, **kwargs: object) -> Any:
        """Call `name` on object `oid` in the child and wait for the answer, at most
        `TIMEOUT_S[name]` (then a one-line ConnectError naming the call)."""
        future: Future[Any] = Future()
        with self._send_lock:
            if self._retired:
                raise _Retired("ippmon's cluster process was replaced by a fresh one")
            if self._dead is not None:
                raise ConnectError(self._dead)
            call_id = next(self._ids)
            with self._pending_lock:
                self._pending[call_id] = future
            try:
                self.conn.send((call_id, oid, name, args, kwargs))
            except (OSError, ValueError):
                self._forget(call_id)
                raise ConnectError(self._death()) from None
        limit = TIMEOUT_S.get(name, DEFAULT_TIMEOUT_S)
        try:
            return future.result(timeout=limit)
        except FutureTimeout:
            self._forget(call_id)
            raise ConnectError(
                f"ippmon's cluster process did not answer {name} within {limit:.0f} s "
                f"(pid {self.process.pid}); finished results are saved in the run folder"
            ) from None

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, parts = self.conn.recv()
            except (EOFError, OSError):
                break
            future = self._forget(call_id)
            if future is None:
                continue
            try:
                value = _unpack(parts)
            except Exception as exc:  # e.g. a class this process cannot import
                future.set_exception(RuntimeError(f"cannot read the cluster's answer: {exc}"))
                continue
            if not ok:
                assert isinstance(value, BaseException)
                future.set_exception(value)
            else:
                future.set_result(value)
        dead = self._death()
        with self._send_lock:  # no call is sent from here on...
            self._dead = dead
        with self._pending_lock:  # ...and those under way fail
            pending, self._pending = self._pending, {}
            self._idle.notify_all()
        for future in pending.values():
            future.set_exception(ConnectError(dead))

    def _forget(self, call_id: int) -> Future[Any] | None:
        """The caller's future, no longer pending."""
        with self._pending_lock:
            future = self._pending.pop(call_id, None)
            if not self._pending:
                self._idle.notify_all()
            return future

    def retire(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Send no more calls here (they raise `_Retired`, to be made again on the new
        channel); let the calls under way be answered, then close."""
        with self._send_lock:
            self._retired = True
        with self._idle:
            self._idle.wait_for(lambda: not self._pending, timeout=wait_s)
        self.close(wait_s)

    def _death(self) -> str:
        if self._closing:
            return "ippmon's cluster process was closed"
        code = self.process.poll()
        if code is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(1.0)
        how = "still running" if code is None else f"exit code {code}"
        return (
            f"ippmon's cluster process (pid {self.process.pid}) stopped answering ({how}); "
            "finished results are saved in the run folder"
        )

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Ask the child to close everything and exit; wait for it (it may be stopping a local
        cluster), then kill it if it hangs."""
        with self._send_lock:
            self._closing = True
            if self._dead is None:
                with contextlib.suppress(OSError, ValueError):
                    self.conn.send(SHUTDOWN)
        try:
            self.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(5.0)
        self.conn.close()


class RemoteJob:
    """A JobHandle whose Job lives in the child process."""

    def __init__(self, channel: _Channel, ref: _Ref, backend: RemoteBackend | None = None) -> None:
        assert ref.kind is Kind.JOB
        self._channel = channel
        self._oid = ref.oid
        self._backend = backend
        self.name = ref.name
        self.closed = False

    def _call(self, name: str, *args: object, **kwargs: object) -> Any:
        return self._channel.call(self._oid, name, *args, **kwargs)

    def poll(self) -> JobSnapshot:
        return self._call("poll")

    def snapshot(self) -> JobSnapshot:
        return self._call("snapshot")

    def output_batch(self, seq: int) -> OutputBatch:
        return self._call("output_batch", seq)

    def task(self, index: int) -> TaskDetail:
        return self._call("task", index)

    def task_rows(self, states: Iterable[TaskState] | None = None) -> list[TaskRow]:
        return self._call("task_rows", None if states is None else list(states))

    def stream(self, zoom: Zoom, width: int) -> TaskStream:
        return self._call("stream", zoom, width)

    def retryable(self) -> list[int]:
        return self._call("retryable")

    def submit(self, indices: Iterable[int], attempt: int | None = None) -> int:
        return self._call("submit", list(indices), attempt)

    def export(self, fmt: str = "csv") -> str:
        return self._call("export", fmt)

    def finished(self) -> bool:
        return self._call("finished")

    def cancel(self) -> None:
        self._call("cancel")

    def close(self) -> None:
        try:
            self._call("close")
        finally:
            self.closed = True
            if self._backend is not None:
                self._backend.closed_one()


class RemoteWatch:
    """A ClusterWatch whose observer and iopub watcher live in the child process."""

    def __init__(self, channel: _Channel, ref: _Ref, backend: RemoteBackend | None = None) -> None:
        assert ref.kind is Kind.WATCH
        self._channel = channel
        self._oid = ref.oid
        self._backend = backend
        self.closed = False

    def poll(self) -> TopSnapshot:
        return self._channel.call(self._oid, "poll")

    def output_since(self, seq: int) -> tuple[list[TopLine], int]:
        return self._channel.call(self._oid, "output_since", seq)

    def abort(self, job_id: str) -> int:
        return self._channel.call(self._oid, "abort", job_id)

    def interrupt(self, job_id: str) -> list[int]:
        return self._channel.call(self._oid, "interrupt", job_id)

    def resubmit(self, job_id: str) -> Resubmitted:
        return self._channel.call(self._oid, "resubmit", job_id)

    def adopt(self, job_id: str, runs_dir: str | None, cluster: ClusterInfo) -> Adopted:
        return self._channel.call(self._oid, "adopt", job_id, runs_dir, cluster)

    def close(self) -> None:
        try:
            self._channel.call(self._oid, "close")
        finally:
            self.closed = True
            if self._backend is not None:
                self._backend.closed_one()


class RemoteSession:
    """A Session whose ipyparallel Client lives in the child process. When the backend
    replaces its child, the session is connected again there (`choice`) and goes on."""

    def __init__(
        self,
        backend: RemoteBackend,
        ref: _Ref,
        *,
        choice: ClusterChoice | None = None,
        started_here: bool = False,
    ) -> None:
        assert ref.kind is Kind.SESSION and ref.info is not None
        self._backend = backend
        self._link = (backend._channel, ref.oid)  # swapped as one when the child is replaced
        self.info = ref.info
        self.choice = choice
        self.started_here = started_here  # `--local`: the cluster lives and dies with the child
        self.jobs: list[RemoteJob] = []
        self.watches: list[RemoteWatch] = []
        self.closed = False

    def _call(self, name: str, *args: object) -> Any:
        return _call_linked(lambda: self._link, name, *args)

    def open_here(self) -> bool:
        """A job or a watch of this session is still open in the child."""
        return any(not job.closed for job in self.jobs) or any(
            not watch.closed for watch in self.watches
        )

    def submit(self, spec: JobSpec, runs_dir: str | None = None) -> RemoteJob:
        with self._backend.making:
            return self._job(self._call("submit", spec, runs_dir))

    def attach(self, folder: Path) -> RemoteJob:
        with self._backend.making:
            return self._job(self._call("attach", Path(folder)))

    def _job(self, ref: _Ref) -> RemoteJob:
        job = RemoteJob(self._link[0], ref, self._backend)
        self.jobs.append(job)
        return job

    def engine_ids(self) -> list[int]:
        return self._call("engine_ids")

    def watch(self) -> RemoteWatch:
        with self._backend.making:
            watch = RemoteWatch(self._link[0], self._call("watch"), self._backend)
            self.watches.append(watch)
            return watch

    def close(self) -> None:
        self.closed = True
        self._call("close")


class RemoteBackend:
    """The Backend protocol, run in a child process started at once (it imports ipyparallel
    while the screen starts). `close()` ends the child; call it when the app has exited.

    When the last job or watch closes and the child has grown `renew_above_mb` past its size
    just after connecting, a fresh child takes its place (`renew_if_idle`, in a thread of its
    own `RENEW_AFTER_S` later): see the module's docstring."""

    def __init__(self, options: ConnectOptions, *, renew_above_mb: float = RENEW_ABOVE_MB) -> None:
        self.options = options
        self.renew_above_mb = renew_above_mb
        self._channel = _Channel(options)
        self._sessions: list[RemoteSession] = []
        self.making = threading.Lock()  # held while a call makes an object in the child
        self._renewing = threading.Lock()
        self._closed = threading.Event()
        self._fresh_mb: float | None = None  # the child's size just after it connected
        self.renewals = 0

    @property
    def pid(self) -> int:
        return self._channel.process.pid

    def _call(self, name: str, *args: object) -> Any:
        return _call_linked(lambda: (self._channel, BACKEND_ID), name, *args)

    def target_given(self) -> bool:
        return self.options.named()

    def discover(self) -> list[ClusterChoice]:
        return self._call("discover")

    def connect(self, choice: ClusterChoice | None = None) -> RemoteSession:
        with self.making:
            session = RemoteSession(self, self._call("connect", choice), choice=choice)
            self._sessions.append(session)
        self._fresh_mb = self._fresh_mb or self._child_mb()
        return session

    def start_local(self, n: int) -> RemoteSession:
        with self.making:
            ref = self._call("start_local", n)
            session = RemoteSession(self, ref, started_here=True)
            self._sessions.append(session)
        return session

    def _child_mb(self) -> float:
        import psutil

        try:
            return psutil.Process(self.pid).memory_info().rss / 1e6
        except psutil.Error:
            return 0.0

    def closed_one(self) -> None:
        """A job or watch was closed: renew the child in a while if nothing else is open."""
        if not self._closed.is_set() and not self._open():
            threading.Thread(target=self._renew_later, name="ippmon-renew", daemon=True).start()

    def _renew_later(self) -> None:
        if not self._closed.wait(RENEW_AFTER_S):
            with contextlib.suppress(Exception):  # an old child is only memory, never an error
                self.renew_if_idle()

    def _open(self) -> bool:
        return any(s.open_here() or s.started_here for s in self._sessions if not s.closed)

    def renew_if_idle(self) -> bool:
        """Replace the child with a fresh one if nothing is open in it and it has grown past
        `renew_above_mb`; True if it was replaced."""
        if not self._renewing.acquire(blocking=False):
            return False  # another thread is at it
        try:
            live = [s for s in self._sessions if not s.closed]
            grown = self._child_mb() - (self._fresh_mb or 0.0)
            if not live or self._open() or grown < self.renew_above_mb or self._closed.is_set():
                return False
            fresh = _Channel(self.options)
            try:
                refs = [fresh.call(BACKEND_ID, "connect", s.choice) for s in live]
            except Exception:
                fresh.close()
                return False
            with self.making:  # nothing is being made in the old child while we look
                if self._open() or self._closed.is_set() or any(s.closed for s in live):
                    old = fresh
                else:
                    old, self._channel = self._channel, fresh
                    for session, ref in zip(live, refs, strict=True):
                        session._link = (fresh, ref.oid)
            old.retire()
            if old is fresh:
                return False
            self._fresh_mb = self._child_mb()
            self.renewals += 1
            return True
        finally:
            self._renewing.release()

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        self._closed.set()
        with self._renewing:  # a renewal under way ends first (its new child is then the one)
            self._channel.close(wait_s)


# -- the child side -----------------------------------------------------------------------------


def child_main(fd: int) -> None:
    """Entry point of the child process: serve the parent until it says goodbye or goes away."""
    for sig in (signal.SIGINT, signal.SIGHUP):  # the parent decides what these mean
        signal.signal(sig, signal.SIG_IGN)
    conn = Connection(fd)
    path, options = conn.recv()
    sys.path[:] = path
    _Server(conn, _ChildBackend(options)).run()
    os._exit(0)  # ipyparallel's IO threads must not keep a finished child alive


class _ChildBackend:
    """The real backend, plus the child's priority.

    The child is a client like any other: at normal priority, in a session (so a Linux
    autogroup) of its own, it keeps up with a cluster the user started at normal priority, and
    the screen's session stays as light as the screen alone (so its keys are answered promptly).
    Lowered below the screen only together with a `--local` cluster that ippmon starts and
    lowers to the same level: run below a cluster at normal priority, it fell minutes behind."""

    def __init__(self, options: ConnectOptions) -> None:
        from ippmon.connect import ClusterBackend

        self._backend = ClusterBackend(options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def start_local(self, n: int) -> Any:
        import psutil

        from ippmon.priority import background_nice, lower_priority

        session = self._backend.start_local(n)
        lower_priority([psutil.Process()], background_nice())
        return session


class _Server:
    def __init__(self, conn: Connection, backend: object) -> None:
        self.conn = conn
        self.objects: dict[int, tuple[Kind, Any]] = {BACKEND_ID: (Kind.BACKEND, backend)}
        self._ids = itertools.count(BACKEND_ID + 1)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ippmon-call")

    def run(self) -> None:
        while True:
            try:
                request = self.conn.recv()
            except (EOFError, OSError):
                break
            if request is SHUTDOWN:
                break
            self._pool.submit(self._handle, *request)
        self._close_all()
        with contextlib.suppress(OSError):
            self.conn.close()

    def _close_all(self) -> None:
        """Watches and jobs first (a job's record says finished or detached), then sessions (a
        local cluster stops with its session)."""
        objects = list(self.objects.values())
        for kind in (Kind.WATCH, Kind.JOB, Kind.SESSION):
            for of_kind, obj in objects:
                if of_kind is kind:
                    with contextlib.suppress(Exception):
                        obj.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _handle(
        self, call_id: int, oid: int, name: str, args: tuple, kwargs: dict[str, Any]
    ) -> None:
        let_go = False
        try:
            if oid not in self.objects:
                raise LookupError(f"ippmon's cluster process has closed object {oid} already")
            kind, obj = self.objects[oid]
            if name not in ALLOWED[kind]:
                raise AttributeError(f"a {kind.value} in ippmon's cluster process has no {name!r}")
            value = getattr(obj, name)(*args, **kwargs)
            if name == "close" and kind in (Kind.JOB, Kind.WATCH):
                with self._lock:  # closed: let go of it (a day of jobs must not add up)
                    self.objects.pop(oid, None)
                let_go = True
            made = RETURNS.get((kind, name))
            if made is not None:
                value = self._keep(made, value)
            answer: tuple[int, bool, object] = (call_id, True, self._wire(value))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            answer = (call_id, False, _portable(exc))
        call_id, ok, value = answer
        try:
            parts = _pack(value)
        except Exception as exc:
            ok, parts = False, _pack(_portable(exc))
        with self._lock, contextlib.suppress(OSError):
            self.conn.send((call_id, ok, parts))
        if let_go:  # answered: now hand what it held back to the system
            del obj
            give_back()

    def _keep(self, kind: Kind, obj: Any) -> _Ref:
        """Keep a session or job here; the parent gets a reference with what it shows at once."""
        with self._lock:
            oid = next(self._ids)
            self.objects[oid] = (kind, obj)
        if kind is Kind.SESSION:
            return _Ref(oid, kind, info=obj.info)
        if kind is Kind.WATCH:
            return _Ref(oid, kind)
        return _Ref(oid, kind, name=obj.name)

    def _wire(self, value: object) -> object:
        """What crosses the pipe: a task's result and input go as text unless they are plain
        Python data (the parent may not be able to import the classes of a user's module)."""
        if isinstance(value, TaskDetail):
            extra = dict(value.extra)
            if "input" in extra:
                extra["input"] = plain(extra["input"])
            return replace(value, result=plain(value.result), extra=extra)
        return value


SLICE = 1000  # list items per pickle: see _pack


@dataclass(frozen=True)
class _Slices:
    """Stands in the envelope for a long list that follows in `n` pickles of its own."""

    n: int


def _pack(value: object) -> list[bytes]:
    """Any answer as pickles: an envelope, then the slices of its long lists. A long list
    (20,000 task rows, 5,000 output lines), as the answer or as an item of a tuple answer, goes
    in slices of `SLICE` items: unpickling is one C call that holds the GIL throughout, and one
    for a whole long list held the TUI's loop for ~70 ms; between slices the loop gets its turn."""
    slices: list[bytes] = []

    def cut(item: object) -> object:
        if not (isinstance(item, list) and len(item) > SLICE):
            return item
        parts = [
            pickle.dumps(item[i : i + SLICE], protocol=pickle.HIGHEST_PROTOCOL)
            for i in range(0, len(item), SLICE)
        ]
        slices.extend(parts)
        return _Slices(len(parts))

    envelope = tuple(cut(v) for v in value) if type(value) is tuple else cut(value)
    return [pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL), *slices]


def _unpack(parts: list[bytes]) -> object:
    envelope = pickle.loads(parts[0])
    rest = iter(parts[1:])

    def join(item: object) -> object:
        if not isinstance(item, _Slices):
            return item
        items: list[object] = []
        for _ in range(item.n):
            items.extend(pickle.loads(next(rest)))
        return items

    if type(envelope) is tuple:
        return tuple(join(v) for v in envelope)
    return join(envelope)


_PLAIN = (str, bytes, int, float, complex, bool, type(None))


def plain(value: object, depth: int = 0) -> object:
    """`value` if it is built-in data all the way down (small enough to check), else `Shown`
    with its pretty-printed text."""
    if _is_plain(value, depth):
        return value
    try:
        text = pprint.pformat(value, width=100, compact=True, sort_dicts=False)
    except Exception as exc:  # a broken __repr__ must not lose the rest of the task
        text = f"<{type(value).__name__}: repr failed: {exc}>"
    return Shown(text)


def _is_plain(value: object, depth: int) -> bool:
    if type(value) in _PLAIN:
        return True
    if depth > 4 or type(value) not in (list, tuple, dict, set, frozenset):
        return False
    items: Iterable[object]
    if isinstance(value, dict):
        items = itertools.chain.from_iterable(value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return False
    return all(n <= 10_000 and _is_plain(item, depth + 1) for n, item in enumerate(items))


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling (ours and the built-ins do), else a
    RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(one_line(exc, with_type=True))
    exc.__traceback__ = None
    return exc
