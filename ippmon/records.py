"""Run records on disk: `run.json` (what was run, where) and `results.jsonl` (one line per finished
task, appended as it finishes). Files are created 0600 in 0700 folders; the connection key is
never written (nothing here ever receives it)."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import platformdirs

from ippmon.model import TaskDetail

RUN_FILE = "run.json"
RESULTS_FILE = "results.jsonl"


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
    """The value itself when JSON can hold it, else its repr; and whether repr was used."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value), True
    return value, False


def _open_private(path: Path, flags: int) -> int:
    return os.open(path, flags | os.O_CREAT, 0o600)


class RunRecord:
    """The folder of one run. Appends are flushed per batch so a crash loses nothing finished."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.run_id = folder.name
        self._results_fd: int | None = None
        self._lock = threading.Lock()  # the sender thread and the poller both update run.json

    @classmethod
    def create(cls, runs_dir: str | os.PathLike | None, run_id: str) -> RunRecord:
        from ippmon.trust import make_private_dirs  # trust -> runs -> records: import here

        root = Path(runs_dir) if runs_dir else default_runs_dir()
        make_private_dirs(root)  # every folder it creates 0700, not only the last
        folder = root / run_id
        folder.mkdir(mode=0o700)
        return cls(folder)

    def write_run(self, meta: Mapping[str, object]) -> None:
        """Replace run.json atomically."""
        tmp = self.folder / (RUN_FILE + ".tmp")
        with self._lock:
            fd = _open_private(tmp, os.O_WRONLY | os.O_TRUNC)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=2, default=str)
                f.write("\n")
            os.replace(tmp, self.folder / RUN_FILE)

    def save_pickle(self, name: str, value: object) -> None:
        """Inputs and the spec, pickled (cloudpickle: inputs may be any object), 0600."""
        import cloudpickle

        fd = _open_private(self.folder / name, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "wb") as f:
            cloudpickle.dump(value, f)

    def load_pickle(self, name: str) -> object:
        """Unpickle a file of this run, only if the runs dir, this folder and the file are the
        user's alone (unpickling runs code): else `trust.UntrustedError`, a RunError."""
        import pickle

        from ippmon.trust import open_trusted  # trust -> runs -> records: import here

        with open_trusted(self.folder / name) as f:
            return pickle.load(f)

    def read_run(self) -> dict:
        with (self.folder / RUN_FILE).open(encoding="utf-8") as f:
            return json.load(f)

    def append_results(self, lines: Iterable[Mapping[str, object]]) -> int:
        data = "".join(json.dumps(line, default=str) + "\n" for line in lines)
        if not data:
            return 0
        if self._results_fd is None:
            self._results_fd = _open_private(self.folder / RESULTS_FILE, os.O_WRONLY | os.O_APPEND)
        os.write(self._results_fd, data.encode("utf-8"))
        return data.count("\n")

    def close(self) -> None:
        if self._results_fd is not None:
            os.close(self._results_fd)
            self._results_fd = None


def result_line(task: TaskDetail, msg_id: str | None = None) -> dict[str, object]:
    """One `results.jsonl` line (DESIGN.md, "Run records")."""
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


def read_results(folder: Path) -> list[dict]:
    path = folder / RESULTS_FILE
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def latest_lines(folder: Path) -> dict[int, dict]:
    """The line that stands for each recorded index: its newest attempt's, and of several lines
    for one attempt (an amendment: see `Job._record`) the last."""
    latest: dict[int, dict] = {}
    for line in read_results(folder):
        i = line["index"]
        if i not in latest or line.get("attempt", 1) >= latest[i].get("attempt", 1):
            latest[i] = line
    return latest
