"""Run records on disk: `run.json` (what was run, where), `sent.jsonl` (each chunk's msg_id and
inputs, written before the chunk is sent) and `results.jsonl` (one line per finished task,
appended as it finishes). Files are created 0600 in 0700 folders; the connection key is never
written (nothing here ever receives it).

What survives what:
- The process killed at any moment: every finished task already handed to the record is on
  disk (appends are complete lines: a write that fails is cut back to the last whole line), and
  every chunk sent is in `sent.jsonl`, so `ippmon attach` finds every task that ran.
- The machine crashing: what was fsynced survives: `run.json` at every write, appended lines
  at most `FSYNC_EVERY_S` after they were written. A torn last line is skipped by readers.
- Readers never change a record; a run is written by one process at a time (`RunRecord.lock`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import platformdirs

from ippmon.errors import RecordError, RunError
from ippmon.model import TaskDetail, TaskState
from ippmon.trust import make_private_dirs, open_trusted

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"
SENT_FILE = "sent.jsonl"
LOCK_FILE = ".lock"
FSYNC_EVERY_S = 1.0  # appended lines reach the disk at least this often (and at close)
STAND_IN_CHARS = 10_000  # a value that JSON cannot hold is recorded as at most this much text
FINAL_STATUSES = ("ok", "error", "cancelled", "lost")
RUN_STATES = ("running", "finished", "detached")


def default_runs_dir() -> Path:
    return platformdirs.user_state_path("ippmon") / "runs"


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch as the records write times (ISO 8601, UTC)."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat()


def epoch(value: object) -> float | None:
    """Seconds since the epoch from a time as records and ipyparallel hold it: an ISO string,
    a datetime (naive ones are UTC), or a number; None for anything else."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def new_run_id(name: str, now: float) -> str:
    stamp = dt.datetime.fromtimestamp(now).strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40]
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


def jsonable(value: object) -> tuple[object, bool]:
    """The value itself when JSON can hold it, else its text (`stand_in`); and whether the
    text was used."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return stand_in(value), True
    return value, False


def stand_in(value: object) -> str:
    """`repr(value)`, at most `STAND_IN_CHARS`; never raises (a repr that fails, or an int too
    long to print, is named instead)."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<{type(value).__name__}: repr failed: {type(exc).__name__}: {exc}>"
    if len(text) > STAND_IN_CHARS:
        half, cut = STAND_IN_CHARS // 2, len(text) - STAND_IN_CHARS
        text = f"{text[:half]} … {cut:,} characters cut … {text[-half:]}"
    return text


def encode_line(line: Mapping[str, object]) -> bytes:
    """One JSON line, never raising: values JSON cannot hold become their `stand_in` text."""
    try:
        return (json.dumps(line, default=stand_in) + "\n").encode("utf-8")
    except (TypeError, ValueError, RecursionError, UnicodeError):
        safe = {str(k): jsonable(v)[0] for k, v in line.items()}
        return (json.dumps(safe, ensure_ascii=True) + "\n").encode("utf-8")


def _open_private(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CREAT, 0o600)


class RunRecord:
    """The folder of one run. Thread-safe; one writing process per run (`lock`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.run_id = folder.name
        self.read_only = False  # another process writes this run: write nothing
        self._fds: dict[str, int] = {}
        self._synced_at = 0.0
        self._lock_fd: int | None = None
        self._lock = threading.Lock()  # the sender thread and the poller both write

    @classmethod
    def create(cls, runs_dir: str | os.PathLike | None, run_id: str) -> RunRecord:
        root = Path(runs_dir) if runs_dir else default_runs_dir()
        make_private_dirs(root)  # every folder it creates 0700, not only the last
        folder = root / run_id
        folder.mkdir(mode=0o700)
        record = cls(folder)
        record.lock()
        return record

    def lock(self) -> str:
        """Become the run's one writer. "" when this process now holds the run's lock; else who
        holds it (then this record is read-only: it writes nothing). Released by `close`."""
        import fcntl

        fd = _open_private(self.folder / LOCK_FILE, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 100, 0).decode("ascii", "replace").strip()
            os.close(fd)
            self.read_only = True
            return f"process {holder}" if holder.isdigit() else "another process"
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        return ""

    def write_run(self, meta: Mapping[str, object]) -> None:
        """Replace run.json atomically and durably: a temp file of its own, fsynced, renamed,
        then the folder fsynced."""
        if self.read_only:
            return
        data = json.dumps(meta, indent=2, default=stand_in) + "\n"
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{RUN_FILE}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.folder / RUN_FILE)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise RecordError(f"{self.folder / RUN_FILE}: cannot write: {_why(exc)}") from None
            _fsync_dir(self.folder)

    def save_pickle(self, name: str, value: object) -> None:
        """Inputs and the spec, pickled (cloudpickle: inputs may be any object), 0600."""
        import cloudpickle

        fd = _open_private(self.folder / name, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "wb") as f:
            cloudpickle.dump(value, f)
            f.flush()
            os.fsync(f.fileno())

    def load_pickle(self, name: str) -> object:
        """Unpickle a file of this run, only if the runs dir, this folder and the file are the
        user's alone (unpickling runs code): else `trust.UntrustedError`, a RunError."""
        import pickle

        with open_trusted(self.folder / name) as f:
            return pickle.load(f)

    def read_run(self) -> dict:
        """run.json, checked: RunError (one line naming the file and field) when it is not a
        run record ippmon can use."""
        return read_meta(self.folder)

    def append_results(self, lines: Iterable[Mapping[str, object]]) -> list[int]:
        """Append whole lines to results.jsonl; returns the byte offset of each (to read one back
        with `read_line_at`). RecordError when they could not all be written: then none of them
        is in the file (it is cut back to its last whole line)."""
        return self._append(RESULTS_FILE, [encode_line(line) for line in lines])

    def append_sent(self, line: Mapping[str, object]) -> None:
        """One sent chunk (`attempt`, `msg_id`, `indices`), before the chunk goes out."""
        self._append(SENT_FILE, [encode_line(line)])

    def _append(self, name: str, encoded: list[bytes]) -> list[int]:
        if self.read_only or not encoded:
            return []
        data = b"".join(encoded)
        with self._lock:
            fd = self._fds.get(name)
            if fd is None:
                fd = self._fds[name] = self._open_append(name)
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    view = view[_write(fd, view) :]
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise RecordError(f"{self.folder / name}: cannot write: {_why(exc)}") from None
            now = time.monotonic()
            if now - self._synced_at >= FSYNC_EVERY_S:
                self._sync()
                self._synced_at = now
        offsets = []
        for line in encoded:
            offsets.append(start)
            start += len(line)
        return offsets

    def stamp(self, name: str) -> list[int]:
        """[size, mtime_ns] of file `name` in this record ([0, 0] when there is none yet): what
        run.json keeps of results.jsonl, to tell later whether it has changed since."""
        with self._lock:
            fd = self._fds.get(name)
            try:
                st = os.fstat(fd) if fd is not None else (self.folder / name).stat()
            except OSError:
                return [0, 0]
            return [st.st_size, st.st_mtime_ns]

    def _open_append(self, name: str) -> int:
        """Open for appending; a torn last line (a writer killed mid-line) is cut off first,
        so that what this process appends starts on a line of its own."""
        fd = _open_private(self.folder / name, os.O_RDWR | os.O_APPEND)
        size = os.lseek(fd, 0, os.SEEK_END)
        if size:
            tail = b""
            pos = size
            while pos > 0 and b"\n" not in tail:
                step = min(4096, pos)
                pos -= step
                tail = os.pread(fd, step, pos) + tail
            if not tail.endswith(b"\n"):
                keep = pos + tail.rfind(b"\n") + 1
                os.ftruncate(fd, keep)
        return fd

    def _sync(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.fsync(fd)

    def close(self) -> None:
        with self._lock:
            self._sync()
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = None


_write = os.write  # the one call that appends (tests make it fail as a full disk would)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def result_line(task: TaskDetail, msg_id: str | None = None) -> dict[str, object]:
    """One `results.jsonl` line: the task's index, attempt, status, engine, times, result (or its
    stand-in text, with `result_is_repr`), error, stdout, stderr and msg_id."""
    result, is_repr = jsonable(task.result)
    line: dict[str, object] = {
        "index": task.index,
        "attempt": task.attempt,
        "status": task.state.value,
        "engine": task.engine,
        "submitted": iso(task.submitted),
        "started": iso(task.started),
        "completed": iso(task.completed),
        "duration_s": None if task.duration_s is None else round(task.duration_s, 6),
        "result": result,
        "error": (
            {"ename": task.ename, "evalue": task.evalue, "traceback": task.traceback}
            if task.ename
            else None
        ),
        "stdout": task.stdout,
        "stderr": task.stderr,
    }
    if is_repr:
        line["result_is_repr"] = True
    if msg_id:
        line["msg_id"] = msg_id
    line.update(task.extra)
    return line


class ResultText(str):
    """A result recorded as its text (`result_is_repr`: JSON could not hold it): shown as that
    text, not quoted."""

    def __repr__(self) -> str:
        return str(self)


def detail_from_line(line: Mapping[str, object]) -> TaskDetail:
    """A task in full as its results.jsonl line recorded it (the inverse of `result_line`)."""
    error = line.get("error") or {}
    assert isinstance(error, dict)
    result = line.get("result")
    if line.get("result_is_repr") and isinstance(result, str):
        result = ResultText(result)
    engine = line.get("engine")
    duration = line.get("duration_s")
    chunk = line.get("chunk")
    return TaskDetail(
        index=int(line["index"]),  # type: ignore[call-overload]
        state=TaskState(line["status"]),
        attempt=int(line.get("attempt", 1)),  # type: ignore[call-overload]
        engine=engine if isinstance(engine, int) else None,
        submitted=epoch(line.get("submitted")),
        started=epoch(line.get("started")),
        completed=epoch(line.get("completed")),
        duration_s=float(duration) if isinstance(duration, (int, float)) else None,
        result=result,
        ename=str(error.get("ename") or ""),
        evalue=str(error.get("evalue") or ""),
        traceback=str(error.get("traceback") or ""),
        stdout=str(line.get("stdout") or ""),
        stderr=str(line.get("stderr") or ""),
        extra={"chunk": chunk} if isinstance(chunk, list) else {},
    )


# -- reading ---------------------------------------------------------------------------------


@dataclass
class Lines:
    """The checked lines of a .jsonl record, the byte offset of each, and a warning when its
    last line was torn."""

    lines: list[dict]
    warning: str = ""
    offsets: list[int] = field(default_factory=list)


def read_jsonl(path: Path, check: Callable[[dict], str]) -> Lines:
    """Every line of `path` as a dict, each passed by `check` (which returns "" or why the line
    is wrong). A torn last line (no newline: the line being written when its writer stopped)
    is skipped with a warning; any other bad line is a RunError naming the file and line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Lines([])
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {_why(exc)}") from None
    parts = data.split(b"\n")
    torn = parts.pop()  # b"" when the file ends with a newline
    lines, offsets, at = [], [], 0
    for number, raw in enumerate(parts, 1):
        start, at = at, at + len(raw) + 1
        if not raw.strip():
            continue
        why = _line_problem(raw, check)
        if isinstance(why, str):
            raise RunError(f"{path}:{number}: {why}")
        lines.append(why)
        offsets.append(start)
    warning = ""
    if torn.strip():
        warning = f"{path}:{len(parts) + 1}: skipped a torn last line (its writer stopped mid-line)"
    return Lines(lines, warning, offsets)


def read_line_at(path: Path, offset: int, check: Callable[[dict], str] = lambda _line: "") -> dict:
    """The one line of `path` that starts at byte `offset` (see `RunRecord.append_results`),
    checked like `read_jsonl`'s, read without reading the rest of the file."""
    return next(lines_at(path, [offset], check))[1]


def _line_problem(raw: bytes, check: Callable[[dict], str]) -> dict | str:
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (ValueError, RecursionError):
        return "not a JSON line"
    if not isinstance(value, dict):
        return f"not a JSON object (a {type(value).__name__})"
    return check(value) or value


def _whole(value: object, least: int, below: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= least
        and (below is None or value < below)
    )


def result_problem(line: dict, total: int | None) -> str:
    """Why a results.jsonl line cannot be used ("" when it can)."""
    index = line.get("index")
    if not _whole(index, 0, total):
        span = f" in 0..{total - 1}" if total is not None else " >= 0"
        return f"'index' must be a whole number{span}, got {index!r:.40}"
    if not _whole(line.get("attempt", 1), 1):
        return f"'attempt' must be a whole number >= 1, got {line.get('attempt')!r:.40}"
    if line.get("status") not in FINAL_STATUSES:
        return (
            f"'status' must be one of {', '.join(FINAL_STATUSES)}, got {line.get('status')!r:.40}"
        )
    for key in ("stdout", "stderr"):
        if not isinstance(line.get(key) or "", str):
            return f"'{key}' must be text"
    if not isinstance(line.get("error") or {}, dict):
        return "'error' must be an object or null"
    return ""


def sent_problem(line: dict, total: int | None) -> str:
    """Why a sent.jsonl line cannot be used ("" when it can)."""
    if not _whole(line.get("attempt"), 1):
        return f"'attempt' must be a whole number >= 1, got {line.get('attempt')!r:.40}"
    if not isinstance(line.get("msg_id"), str):
        return "'msg_id' must be text"
    indices = line.get("indices")
    if not isinstance(indices, list) or not all(_whole(i, 0, total) for i in indices):
        return "'indices' must be a list of task indices"
    return ""


def read_meta(folder: Path) -> dict:
    """run.json, checked (see `RunRecord.read_run`)."""
    path = folder / RUN_FILE
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {_why(exc)}") from None
    except UnicodeDecodeError:
        raise RunError(f"{path}: not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise RunError(f"{path}: not JSON (torn or damaged)") from None
    if not isinstance(meta, dict):
        raise RunError(f"{path}: not a JSON object")
    problems = [
        ("inputs_count", _whole(meta.get("inputs_count"), 0), "a whole number >= 0"),
        ("job", isinstance(meta.get("job"), str), "text"),
        ("state", meta.get("state") in RUN_STATES, f"one of {', '.join(RUN_STATES)}"),
        ("cluster", isinstance(meta.get("cluster", {}), dict), "an object"),
        ("created", isinstance(meta.get("created"), (str, type(None))), "a time or null"),
        ("attempts", _attempts_ok(meta.get("attempts", [])), "a list of sent attempts"),
    ]
    for name, ok, what in problems:
        if not ok:
            raise RunError(f"{path}: '{name}' must be {what}, got {meta.get(name)!r:.40}")
    return meta


def _attempts_ok(attempts: object) -> bool:
    """run.json's `attempts` (records before sent.jsonl kept msg_ids there)."""
    if not isinstance(attempts, list):
        return False
    for a in attempts:
        if not isinstance(a, dict) or not _whole(a.get("attempt", 1), 1):
            return False
        msg_ids, chunks = a.get("msg_ids", []), a.get("chunks", [])
        if not isinstance(msg_ids, list) or not isinstance(chunks, list):
            return False
        if not all(isinstance(c, list) and all(_whole(i, 0) for i in c) for c in chunks):
            return False
    return True


def load_results(folder: Path, total: int | None = None) -> Lines:
    """results.jsonl, every line checked (indices below `total` when given)."""
    return read_jsonl(folder / RESULTS_FILE, lambda line: result_problem(line, total))


def read_results(folder: Path) -> list[dict]:
    return load_results(folder).lines


def load_sent(folder: Path, total: int | None = None) -> Lines:
    return read_jsonl(folder / SENT_FILE, lambda line: sent_problem(line, total))


# Of several lines for one (index, attempt) (an amendment, or two writers before the lock), a
# finished outcome always beats "lost", else the later line stands.
_RANK = {"ok": 1, "error": 1, "cancelled": 1, "lost": 0}


def _standing(line: Mapping[str, object]) -> tuple[object, int]:
    """What ranks a task's lines: a later one stands unless this is lower (see `_RANK`)."""
    return line.get("attempt", 1), _RANK[str(line["status"])]


def latest_of(lines: Iterable[dict]) -> dict[int, dict]:
    """The line that stands for each recorded index: its newest attempt's (see `_RANK`)."""
    latest: dict[int, dict] = {}
    for line in lines:
        i = line["index"]
        old = latest.get(i)
        if old is None or _standing(line) >= _standing(old):
            latest[i] = line
    return latest


class Standing(NamedTuple):
    """Of the line that stands for a task (see `latest_of`): where it starts in results.jsonl,
    its attempt and its status."""

    offset: int
    attempt: int
    status: str


@dataclass
class ResultsScan:
    """What one pass over results.jsonl keeps instead of its lines: the `Standing` of each
    recorded task, and a warning for a torn last line."""

    standing: dict[int, Standing] = field(default_factory=dict)
    warning: str = ""

    @property
    def offsets(self) -> dict[int, int]:
        return {i: s.offset for i, s in self.standing.items()}


def scan_results(folder: Path, total: int | None = None) -> ResultsScan:
    """results.jsonl read one line at a time, each checked as `load_results` checks it, keeping
    only a `ResultsScan`: for readers of big records, which then read the lines they need with
    `read_line_at` / `lines_at`."""
    if total is None and (folder / RUN_FILE).exists():
        total = read_meta(folder)["inputs_count"]
    path = folder / RESULTS_FILE
    best: dict[int, tuple[object, int]] = {}  # index -> its standing line's `_standing`
    scan = ResultsScan()
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, errors named as the readers do
    except FileNotFoundError:
        return scan
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {_why(exc)}") from None
    with f:
        offset, number = 0, 0
        for raw in f:
            number += 1
            start, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                if raw.strip():
                    scan.warning = (
                        f"{path}:{number}: skipped a torn last line (its writer stopped mid-line)"
                    )
                continue
            if not raw.strip():
                continue
            line = _line_problem(raw, lambda line: result_problem(line, total))
            if isinstance(line, str):
                raise RunError(f"{path}:{number}: {line}")
            i, rank = line["index"], _standing(line)
            old = best.get(i)
            if old is None or rank >= old:
                best[i] = rank
                scan.standing[i] = Standing(start, int(line.get("attempt", 1)), line["status"])
    return scan


def latest_offsets(folder: Path, total: int | None = None) -> dict[int, int]:
    """Where the line that stands for each task starts in results.jsonl (see `scan_results`)."""
    return scan_results(folder, total).offsets


def lines_at(
    path: Path, offsets: Iterable[int], check: Callable[[dict], str] = lambda _line: ""
) -> Iterator[tuple[int, dict]]:
    """(offset, line) of the lines of `path` starting at these byte offsets, each checked like
    `read_jsonl`'s, read through one open file (in increasing order: one forward pass)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {_why(exc)}") from None
    with f:
        for offset in offsets:
            try:
                f.seek(offset)
                raw = f.readline()
            except OSError as exc:
                raise RunError(f"{path}: cannot read: {_why(exc)}") from None
            if not raw.endswith(b"\n"):
                raise RunError(f"{path}: no whole line at byte {offset}")
            line = _line_problem(raw, check)
            if isinstance(line, str):
                raise RunError(f"{path}: at byte {offset}: {line}")
            yield offset, line


def latest_lines(folder: Path, total: int | None = None) -> dict[int, dict]:
    """The line that stands for each task (see `latest_of`); indices are checked against
    `total`, by default the run's own (run.json, itself checked)."""
    if total is None and (folder / RUN_FILE).exists():
        total = read_meta(folder)["inputs_count"]
    return latest_of(load_results(folder, total).lines)
