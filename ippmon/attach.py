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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ippmon.job import INPUTS_FILE, SPEC_FILE, Job, NotSubmitted, Restored
from ippmon.model import ClusterInfo, TaskState
from ippmon.records import RUN_FILE, RunRecord, default_runs_dir, read_results
from ippmon.tracker import ACTIVITY, DONE, OUTPUT_DONE, Recorded, Tracker

if TYPE_CHECKING:
    from ipyparallel import Client

LOST_REASON = (
    "the controller no longer holds this task (its task database culled the record, or the "
    "controller restarted)"
)


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


class HubWatcher(threading.Thread):
    """Follows tasks another process sent, by asking the controller about their msg_ids."""

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
        self.pending = dict(pending)
        self.every = every
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop_event.set()

    def abort(self) -> None:
        """Abort the queued ones among the watched tasks (running ones get SIGINT from Job)."""
        with self._lock:
            ids = [mid for mid, _md in self.pending.values()]
        if ids:
            with contextlib.suppress(Exception):
                self.client.abort(ids, block=True)

    def run(self) -> None:
        while self.pending and not self._stop_event.is_set():
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

    def _check(self) -> None:
        client, tracker = self.client, self.tracker
        with self._lock:
            items = list(self.pending.items())
        ids = [mid for _k, (mid, _md) in items]
        records = client.db_query(
            {"msg_id": {"$in": ids}},
            keys=["msg_id", "engine_uuid", "started", "completed", "stdout", "stderr"],
        )
        found = {r["msg_id"]: r for r in records}
        completed: list[tuple[int, str, dict]] = []
        engines = getattr(client, "_engines", {})
        for key, (mid, md) in items:
            rec = found.get(mid)
            if rec is None:
                tracker.notify(
                    key, DONE, Recorded(TaskState.LOST, None, ("TaskLost", LOST_REASON, ""))
                )
                self._forget(key)
                continue
            uuid = rec.get("engine_uuid")
            md.update(
                engine_id=engines.get(uuid) if uuid else None,
                started=rec.get("started"),
                stdout=rec.get("stdout") or "",
                stderr=rec.get("stderr") or "",
            )
            tracker.notify(key, ACTIVITY)
            if rec.get("completed"):
                completed.append((key, mid, md))
        if completed:
            client.result_status([mid for _k, mid, _md in completed], status_only=False)
            for key, mid, md in completed:
                full = client.metadata.get(mid, {})
                for field in ("engine_id", "submitted", "started", "completed", "stdout", "stderr"):
                    if full.get(field) is not None:
                        md[field] = full[field]
                tracker.notify(key, DONE, client.results.get(mid))
                tracker.notify(key, OUTPUT_DONE)
                self._forget(key)

    def _forget(self, key: int) -> None:
        with self._lock:
            self.pending.pop(key, None)
