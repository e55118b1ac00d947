"""Coming back to a run: list run records, read one back, and watch the tasks an earlier process
sent (`ippmon attach`, `ippmon resume`).

Finished tasks come from `results.jsonl`. Tasks sent but not recorded are asked of the controller
by msg_id: its task records (`db_query`) say which engine runs them and what they printed, and
`result_status` fetches a result once it is there. Each result is appended to `results.jsonl`
exactly once. A msg_id the controller no longer knows (its task database culled it, or it
restarted) makes that task `lost`, with the reason, so `r` can rerun it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ippmon import _compat
from ippmon.job import INPUTS_FILE, SPEC_FILE, Job, NotSubmitted, Restored
from ippmon.model import ClusterInfo, TaskState
from ippmon.records import RUN_FILE, RunRecord, default_runs_dir, read_results
from ippmon.tracker import ACTIVITY, DONE, OUTPUT_DONE, Recorded, Tracker, epoch

if TYPE_CHECKING:
    from ipyparallel import Client

LOST_REASON = (
    "the controller no longer holds this task (its task database culled the record, or the "
    "controller restarted)"
)


GONE_AFTER_S = 30.0  # see HubWatcher._lost


class RunError(Exception):
    """A run record that cannot be used. `str()` is one line naming the folder or file."""


def _ts(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    folder: Path
    job: str
    state: str
    total: int
    counts: dict[str, int]
    created: float | None
    cluster: str

    @property
    def done(self) -> int:
        return sum(self.counts.get(s, 0) for s in ("ok", "error", "cancelled", "lost"))


def runs_root(runs_dir: str | None) -> Path:
    return Path(runs_dir) if runs_dir else default_runs_dir()


def summarize(folder: Path) -> RunSummary:
    """A run's state from its files: counts from results.jsonl (the latest attempt of each)."""
    record = RunRecord(folder)
    try:
        meta = record.read_run()
    except (OSError, ValueError) as exc:
        raise RunError(f"{folder / RUN_FILE}: cannot read: {exc}") from None
    latest = latest_lines(folder)
    total = int(meta.get("inputs_count", 0))
    counts = {s.value: 0 for s in TaskState}
    for line in latest.values():
        counts[line.get("status", "error")] = counts.get(line.get("status", "error"), 0) + 1
    counts["queued"] = total - sum(counts.values())
    state = meta.get("state", "?")
    if state != "finished" and len(latest) == total:
        state = "finished"
    cluster = meta.get("cluster", {})
    name = cluster.get("profile", "default") + (
        f":{cluster['cluster_id']}" if cluster.get("cluster_id") else ""
    )
    return RunSummary(
        run_id=folder.name,
        folder=folder,
        job=str(meta.get("job", "?")),
        state=state,
        total=total,
        counts=counts,
        created=_ts(meta.get("created")),
        cluster=name,
    )


def list_runs(runs_dir: str | None) -> list[RunSummary]:
    """Every readable run, newest first."""
    root = runs_root(runs_dir)
    if not root.is_dir():
        return []
    runs = []
    for folder in root.iterdir():
        if (folder / RUN_FILE).is_file():
            with contextlib.suppress(RunError):
                runs.append(summarize(folder))
    return sorted(runs, key=lambda r: (r.created or 0, r.run_id), reverse=True)


def find_run(runs_dir: str | None, run_id: str | None) -> Path:
    """The run folder for `run_id` (a unique prefix will do), or the newest run."""
    root = runs_root(runs_dir)
    if run_id is None:
        runs = list_runs(runs_dir)
        if not runs:
            raise RunError(f"no runs in {root}")
        return runs[0].folder
    exact = root / run_id
    if (exact / RUN_FILE).is_file():
        return exact
    matches = (
        [f for f in root.glob(f"{run_id}*") if (f / RUN_FILE).is_file()] if root.is_dir() else []
    )
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"no run '{run_id}' in {root} (`ippmon runs` lists them)")
    raise RunError(f"'{run_id}' matches {len(matches)} runs in {root}; give more of the id")


def latest_lines(folder: Path) -> dict[int, dict]:
    """The newest attempt's line for each recorded index."""
    latest: dict[int, dict] = {}
    for line in read_results(folder):
        i = line["index"]
        if i not in latest or line.get("attempt", 1) >= latest[i].get("attempt", 1):
            latest[i] = line
    return latest


def cluster_of(folder: Path) -> dict[str, Any]:
    return dict(RunRecord(folder).read_run().get("cluster", {}))


def pending_chunks(meta: dict, latest: dict[int, dict]) -> list[tuple[str, list[int], int]]:
    """(msg_id, indices, attempt) of every chunk sent but not recorded."""
    out = []
    for attempt in meta.get("attempts", []):
        number = int(attempt.get("attempt", 1))
        for msg_id, indices in zip(attempt.get("msg_ids", []), attempt.get("chunks", [])):
            if any(latest.get(i, {}).get("attempt", 0) < number for i in indices):
                out.append((msg_id, list(indices), number))
    return out


def needs_cluster(folder: Path) -> bool:
    """Whether anything of this run is still out on the cluster (else attach works offline)."""
    meta = RunRecord(folder).read_run()
    return bool(pending_chunks(meta, latest_lines(folder)))


def reattach(
    folder: Path,
    client: Client | None,
    info: ClusterInfo,
    *,
    clock: Callable[[], float] = time.time,
    controller_timeout: float = 10.0,
) -> Job:
    """A Job rebuilt from its record; with a client, it watches what is still out there."""
    record = RunRecord(folder)
    try:
        meta = record.read_run()
        spec = record.load_pickle(SPEC_FILE)
        inputs = list(record.load_pickle(INPUTS_FILE))  # type: ignore[call-overload]
    except Exception as exc:
        raise RunError(
            f"{folder}: cannot read the run record: {type(exc).__name__}: {exc}"
        ) from None
    latest = latest_lines(folder)
    created = _ts(meta.get("created")) or clock()
    job = Job(
        client,
        spec,  # type: ignore[arg-type]
        info=info,
        clock=clock,
        controller_timeout=controller_timeout,
        restore=Restored(record, inputs, created, list(meta.get("attempts", []))),
    )
    tracker = job.tracker
    tracker.restore_start(created)
    by_attempt: dict[int, list[tuple[int, dict]]] = {}
    for i, line in latest.items():
        by_attempt.setdefault(int(line.get("attempt", 1)), []).append((i, line))
    for attempt, items in sorted(by_attempt.items()):
        keys = tracker.add_chunks([([i], _md_from_line(line)) for i, line in items], attempt)
        for key, (_i, line) in zip(keys, items):
            job._recorded_keys.add(key)
            tracker.notify(key, DONE, _recorded(line))
            tracker.notify(key, OUTPUT_DONE)
    pending = pending_chunks(meta, latest)
    sent = {i for _m, indices, _a in pending for i in indices}
    unsent = [i for i in range(len(inputs)) if i not in latest and i not in sent]
    if unsent:  # the earlier process was stopped while it was still sending
        last = max((int(a.get("attempt", 1)) for a in meta.get("attempts", [])), default=1)
        for key in tracker.add_chunks([([i], {}) for i in unsent], last):
            tracker.notify(key, DONE, NotSubmitted())
    watched: dict[int, tuple[str, dict]] = {}
    for msg_id, indices, attempt in pending:
        md: dict[str, Any] = {}
        (key,) = tracker.add_chunks([(indices, md)], attempt)
        job._msg_ids[key] = msg_id
        watched[key] = (msg_id, md)
    tracker.poll()
    if not watched:
        tracker.restore_end(max((_ts(x.get("completed")) or 0 for x in latest.values()), default=0))
    elif client is not None:
        job.watcher = HubWatcher(client, tracker, watched)
        job.watcher.start()
    job._state = "running" if watched else "finished"
    return job


def _md_from_line(line: dict) -> dict:
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


@dataclass(eq=False)
class _Watched:
    """One chunk another process sent, as this process sees it."""

    key: int
    msg_id: str
    md: dict
    order: int  # place in the order the chunks were sent
    gone_since: float | None = None  # monotonic time it was first missing from the records
    seen_start: bool = False  # its "busy" status came after we started listening: we saw it all
    seen_end: bool = False  # its engine's "idle" status: all of its output has been sent
    heard: dict[str, str] = field(default_factory=lambda: {"stdout": "", "stderr": ""})
    result_in: bool = False  # its result was taken in (DONE sent)
    completed_at: float | None = None
    settle: tuple[int, int] | None = None  # output lengths at the previous read of the record


class HubWatcher(threading.Thread):
    """Follows tasks another process sent: their state and results from the controller's task
    records (by msg_id), their output as it streams.

    Output: the client receives every engine's iopub messages but drops other clients' ones;
    `_compat.observe_iopub` shows them to this watcher first. A task whose start ("busy") came
    after the hook is heard in full, and its output is complete when its engine says "idle",
    as for tasks ippmon sent itself. For a task already running or finished when the watcher
    started, the output is the controller's record of it, which trails the engine by as much
    as the iopub relay does: taken once the task has ended (its "idle" heard, or completed
    before the watcher started) and two reads of the record a second apart agree."""

    def __init__(
        self,
        client: Client,
        tracker: Tracker,
        pending: dict[int, tuple[str, dict]],
        every: float = 1.0,
    ) -> None:
        super().__init__(name="ippmon-hub-watcher", daemon=True)
        self.client = client
        self.tracker = tracker
        self.every = every
        self._watched = {
            mid: _Watched(key, mid, md, order)
            for order, (key, (mid, md)) in enumerate(pending.items())
        }
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._listening_since: float | None = None  # epoch seconds; None: not hearing iopub

    def start(self) -> None:
        if _compat.observe_iopub(self.client, self._heard, timeout=10.0):
            self._listening_since = time.time()
        super().start()

    def stop(self) -> None:
        self._stop_event.set()

    def abort(self) -> None:
        """Abort the queued ones among the watched tasks (running ones get SIGINT from Job)."""
        with self._lock:
            ids = list(self._watched)
        if ids:
            with contextlib.suppress(Exception):
                self.client.abort(ids, block=True)

    def run(self) -> None:
        while self._watched and not self._stop_event.is_set():
            try:
                self._check()
            except Exception as exc:  # the controller went away: the Job's probe says so
                first = (str(exc).splitlines() or [""])[0]
                self.tracker.set_notice(
                    "watcher", f"cannot query the controller: {type(exc).__name__}: {first}"
                )
            else:
                self.tracker.set_notice("watcher", "")
            self._stop_event.wait(self.every)

    def _heard(self, msg: dict[str, Any]) -> None:
        """An iopub message (on the client's IO thread): keep what concerns a watched task."""
        parent = msg.get("parent_header") or {}
        with self._lock:
            w = self._watched.get(parent.get("msg_id", ""))
            if w is None:
                return
            kind, content = msg["header"]["msg_type"], msg.get("content") or {}
            if kind == "status":
                state = content.get("execution_state")
                if state == "busy" and not any(w.heard.values()):
                    w.seen_start = True
                elif state == "idle":
                    w.seen_end = True
                return
            if kind != "stream" or content.get("name") not in w.heard:
                return
            name = content["name"]
            w.heard[name] += content.get("text", "")
            if w.seen_start:
                w.md[name] = _longer(w.md.get(name), w.heard[name])
        self.tracker.notify(w.key, ACTIVITY)

    def _check(self) -> None:
        client, tracker = self.client, self.tracker
        with self._lock:
            items = list(self._watched.values())
        records = client.db_query(
            {"msg_id": {"$in": [w.msg_id for w in items]}},
            keys=["msg_id", "submitted", "engine_uuid", "started", "completed", "stdout", "stderr"],
        )
        # A record without `submitted` is a stub the controller made from a task's output after
        # it had culled the task itself (the result then never reaches it).
        found = {r["msg_id"]: r for r in records if r.get("submitted")}
        newest = max((w.order for w in items if w.msg_id in found), default=-1)
        engines = getattr(client, "_engines", {})
        fetch: list[_Watched] = []
        now = time.monotonic()
        for w in items:
            rec = found.get(w.msg_id)
            if rec is None:
                if self._lost(w, newest, now):
                    tracker.notify(
                        w.key, DONE, Recorded(TaskState.LOST, None, ("TaskLost", LOST_REASON, ""))
                    )
                    self._forget(w)
                continue
            w.gone_since = None
            uuid = rec.get("engine_uuid")
            with self._lock:
                w.md.update(
                    engine_id=engines.get(uuid) if uuid else None, started=rec.get("started")
                )
                for name in ("stdout", "stderr"):
                    w.md[name] = _longer(w.md.get(name), rec.get(name))
            tracker.notify(w.key, ACTIVITY)
            if w.result_in:
                if self._output_over(w):
                    tracker.notify(w.key, OUTPUT_DONE)
                    self._forget(w)
            elif rec.get("completed"):
                w.completed_at = epoch(rec["completed"])
                fetch.append(w)
        if fetch:
            self._take_results(fetch)

    def _take_results(self, items: list[_Watched]) -> None:
        client = self.client
        from ipyparallel.error import CompositeError, RemoteError

        # ipyparallel raises when some of the fetched results are errors; it has stored them all
        with contextlib.suppress(CompositeError, RemoteError):
            client.result_status([w.msg_id for w in items], status_only=False)
        for w in items:
            full = client.metadata.get(w.msg_id, {})
            with self._lock:
                for name in ("engine_id", "submitted", "started", "completed"):
                    if full.get(name) is not None:
                        w.md[name] = full[name]
            w.result_in = True
            self.tracker.notify(w.key, DONE, client.results.get(w.msg_id))
            if self._output_over(w):
                self.tracker.notify(w.key, OUTPUT_DONE)
                self._forget(w)

    def _lost(self, w: _Watched, newest: int, now: float) -> bool:
        """A task missing from the controller's records is gone for good once a task sent after
        it is there (the controller takes in requests in order, so it had this one and culled
        it), or after GONE_AFTER_S (it may just not have reached the records yet)."""
        if w.gone_since is None:
            w.gone_since = now
        return newest > w.order or now - w.gone_since >= GONE_AFTER_S

    def _output_over(self, w: _Watched) -> bool:
        """Whether the task's output, as this watcher has it, is all there is (see the class)."""
        if w.seen_start:
            return w.seen_end
        ended_before = (
            self._listening_since is not None
            and w.completed_at is not None
            and w.completed_at < self._listening_since
        )
        if not (w.seen_end or ended_before or self._listening_since is None):
            return False
        lens = (len(w.md.get("stdout") or ""), len(w.md.get("stderr") or ""))
        if w.settle == lens:
            return True
        w.settle = lens
        return False

    def _forget(self, w: _Watched) -> None:
        with self._lock:
            self._watched.pop(w.msg_id, None)


def _longer(a: str | None, b: str | None) -> str:
    """Of two readings of one growing stream (each a prefix of the whole), the fuller one."""
    a, b = a or "", b or ""
    return b if len(b) > len(a) else a
