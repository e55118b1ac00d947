"""The runs folder: every run's record, listed, found by id and summarised (`ippmon runs`, the
runs screen, `attach`, `resume`, `export`)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ippmon.model import FINISHED_STATES, RunState, TaskState, cluster_name
from ippmon.records import (
    RESULTS_FILE,
    RUN_FILE,
    RunError,
    Standing,
    default_runs_dir,
    epoch,
    load_sent,
    read_meta,
    scan_results,
)
from ippmon.trust import check_run_id

__all__ = ["RunError", "RunSummary", "find_run", "list_runs", "pending_chunks", "summarize"]

UNREADABLE = "unreadable"  # a RunSummary.state: the record is damaged (`problem` says how)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    folder: Path
    job: str
    state: str  # a RunState value, or UNREADABLE
    total: int
    counts: dict[str, int]
    created: float | None
    cluster: str  # profile[:cluster-id]
    problem: str = ""  # why the record is unreadable, or a warning about it (a torn last line)

    @property
    def done(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in FINISHED_STATES)


def runs_root(runs_dir: str | None) -> Path:
    return Path(runs_dir) if runs_dir else default_runs_dir()


def summarize(folder: Path) -> RunSummary:
    """A run's state from its files: counts from run.json when it says the run finished and
    results.jsonl is as it was then (`_finished_counts`), else from results.jsonl (the latest
    attempt of each task). Raises RunError (one line) for a record it cannot read."""
    meta = read_meta(folder)
    total = meta["inputs_count"]
    state = meta["state"]
    warning = ""
    counts = _finished_counts(folder, meta)
    if counts is None:
        scan = scan_results(folder, total)
        warning = scan.warning
        counts = {s.value: 0 for s in TaskState}
        for standing in scan.standing.values():
            counts[standing.status] += 1
        counts[TaskState.QUEUED.value] = total - len(scan.standing)
        if state != RunState.FINISHED.value and len(scan.standing) == total:
            state = RunState.FINISHED.value
    cluster = meta.get("cluster", {})
    return RunSummary(
        run_id=folder.name,
        folder=folder,
        job=meta["job"],
        state=state,
        total=total,
        counts=counts,
        created=epoch(meta.get("created")),
        cluster=cluster_name(
            str(cluster.get("profile") or "default"), str(cluster.get("cluster_id") or "")
        ),
        problem=warning,
    )


def _finished_counts(folder: Path, meta: dict) -> dict[str, int] | None:
    """The counts run.json holds, when they can stand for results.jsonl without reading it: the
    run finished (everything was recorded before that was written) and results.jsonl has the
    size and modification time it had then (anything appended, cut or edited since changes
    them). None otherwise."""
    counts, stamp = meta.get("counts"), meta.get("results_stamp")
    if meta["state"] != RunState.FINISHED.value or not isinstance(stamp, list):
        return None
    if not isinstance(counts, dict) or set(counts) != {s.value for s in TaskState}:
        return None
    if not all(isinstance(n, int) and n >= 0 for n in counts.values()):
        return None
    if sum(counts.values()) != meta["inputs_count"]:
        return None
    try:
        st = (folder / RESULTS_FILE).stat()
        on_disk = [st.st_size, st.st_mtime_ns]
    except FileNotFoundError:
        on_disk = [0, 0]
    except OSError:
        return None
    return dict(counts) if on_disk == stamp else None


def _unreadable(folder: Path, problem: str) -> RunSummary:
    created = None
    with contextlib.suppress(OSError):
        created = (folder / RUN_FILE).stat().st_mtime
    return RunSummary(
        run_id=folder.name,
        folder=folder,
        job="?",
        state=UNREADABLE,
        total=0,
        counts={},
        created=created,
        cluster="?",
        problem=problem,
    )


def list_runs(runs_dir: str | None) -> list[RunSummary]:
    """Every run, newest first; a damaged one as UNREADABLE (it never hides the others)."""
    root = runs_root(runs_dir)
    if not root.is_dir():
        return []
    runs = []
    for folder in root.iterdir():
        if (folder / RUN_FILE).is_file():
            try:
                runs.append(summarize(folder))
            except RunError as exc:
                runs.append(_unreadable(folder, str(exc)))
    return sorted(runs, key=lambda r: (r.created or 0, r.run_id), reverse=True)


def find_run(runs_dir: str | None, run_id: str | None) -> Path:
    """The run folder for `run_id` (a unique prefix will do), or the newest run. A run id is a
    name inside the runs dir: a path (`../x`, `/etc`, `a/b`) or a glob pattern is refused."""
    root = runs_root(runs_dir)
    if run_id is None:
        runs = list_runs(runs_dir)
        if not runs:
            raise RunError(f"no runs in {root}")
        return runs[0].folder
    check_run_id(run_id)
    try:  # plain prefix matching of the runs dir's own entries: nothing outside it can match
        exact = root / run_id
        if (exact / RUN_FILE).is_file():
            return exact
        names = sorted(f.name for f in root.iterdir()) if root.is_dir() else []
        matches = [
            root / n for n in names if n.startswith(run_id) and (root / n / RUN_FILE).is_file()
        ]
    except OSError as exc:
        raise RunError(f"{root}: cannot look for runs: {exc.strerror or exc}") from None
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunError(f"no run '{run_id}' in {root} (`ippmon runs` lists them)")
    raise RunError(f"'{run_id}' matches {len(matches)} runs in {root}; give more of the id")


def cluster_of(folder: Path) -> dict[str, Any]:
    return dict(read_meta(folder).get("cluster", {}))


def sent_chunks(folder: Path, meta: dict) -> list[tuple[str, list[int], int]]:
    """(msg_id, indices, attempt) of every chunk sent: from sent.jsonl, and from run.json's
    `attempts` as records written before sent.jsonl existed keep them."""
    total = meta["inputs_count"]
    out = [(s["msg_id"], s["indices"], s["attempt"]) for s in load_sent(folder, total).lines]
    for attempt in meta.get("attempts", []):
        number = int(attempt.get("attempt", 1))
        for msg_id, indices in zip(attempt.get("msg_ids", []), attempt.get("chunks", [])):
            if not all(i < total for i in indices):
                raise RunError(f"{folder / RUN_FILE}: a sent chunk names a task index >= {total}")
            out.append((str(msg_id), list(indices), number))
    return out


def pending_chunks(
    sent: list[tuple[str, list[int], int]], recorded: Mapping[int, Standing]
) -> list[tuple[str, list[int], int]]:
    """The sent chunks (msg_id, indices, attempt) not recorded yet, each once."""
    out, seen = [], set()
    for msg_id, indices, number in sent:
        if msg_id in seen:
            continue
        seen.add(msg_id)
        if any((recorded[i].attempt if i in recorded else 0) < number for i in indices):
            out.append((msg_id, list(indices), number))
    return out


def needs_cluster(folder: Path) -> bool:
    """Whether anything of this run is still out on the cluster (else attach works offline)."""
    meta = read_meta(folder)
    recorded = scan_results(folder, meta["inputs_count"]).standing
    return bool(pending_chunks(sent_chunks(folder, meta), recorded))
