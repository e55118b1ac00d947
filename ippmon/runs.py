"""The runs folder: every run's record, listed, found by id and summarised (`ippmon runs`, the
runs screen, `attach`, `resume`, `export`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ippmon.model import FINISHED_STATES, RunState, TaskState, cluster_name
from ippmon.records import RUN_FILE, RunRecord, default_runs_dir, epoch, latest_lines


class RunError(Exception):
    """A run record that cannot be used. `str()` is one line naming the folder or file."""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    folder: Path
    job: str
    state: str  # a RunState value, or what an unknown record says
    total: int
    counts: dict[str, int]
    created: float | None
    cluster: str  # profile[:cluster-id]

    @property
    def done(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in FINISHED_STATES)


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
    counts[TaskState.QUEUED.value] = total - sum(counts.values())
    state = meta.get("state", "?")
    if state != RunState.FINISHED.value and len(latest) == total:
        state = RunState.FINISHED.value
    cluster = meta.get("cluster", {})
    return RunSummary(
        run_id=folder.name,
        folder=folder,
        job=str(meta.get("job", "?")),
        state=state,
        total=total,
        counts=counts,
        created=epoch(meta.get("created")),
        cluster=cluster_name(cluster.get("profile") or "default", cluster.get("cluster_id") or ""),
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
    """The run folder for `run_id` (a unique prefix will do), or the newest run. A run id is a
    name inside the runs dir: a path (`../x`, `/etc`, `a/b`) or a glob pattern is refused."""
    from ippmon.trust import check_run_id  # trust imports this module

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
