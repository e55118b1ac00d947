"""`ippmon runs` and `ippmon export` on run records written by hand (no cluster needed)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from test_cli import run

from ippmon.export import ExportError, export_run
from ippmon.runs import RunError, find_run, list_runs


def make_run(root: Path, run_id: str, created: str, lines: list[dict], total: int) -> Path:
    folder = root / run_id
    folder.mkdir(parents=True)
    meta = {
        "run_id": run_id,
        "job": "demo",
        "state": "finished",
        "inputs_count": total,
        "created": created,
        "cluster": {"profile": "default", "cluster_id": "c1"},
    }
    (folder / "run.json").write_text(json.dumps(meta))
    (folder / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def line(index: int, attempt: int, status: str, result: object = None) -> dict:
    error = None if status == "ok" else {"ename": "E", "evalue": "bad", "traceback": "tb"}
    return {
        "index": index,
        "attempt": attempt,
        "status": status,
        "engine": 0,
        "result": result,
        "error": error,
        "stdout": "out\n",
        "stderr": "",
    }


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(
        root,
        "20260101-000000-old-aaaa",
        "2026-01-01T00:00:00+00:00",
        [line(0, 1, "ok", 1)],
        total=3,
    )
    make_run(
        root,
        "20260102-000000-new-bbbb",
        "2026-01-02T00:00:00+00:00",
        [line(0, 1, "error"), line(1, 1, "ok", {"a": [1]}), line(0, 2, "ok", 0)],
        total=2,
    )
    return root


def test_runs_are_listed_newest_first_with_counts_of_the_final_attempts(runs: Path) -> None:
    listed = list_runs(str(runs))
    assert [r.run_id for r in listed] == ["20260102-000000-new-bbbb", "20260101-000000-old-aaaa"]
    new, old = listed
    assert new.counts["ok"] == 2 and new.counts["error"] == 0 and new.done == 2
    assert old.counts["queued"] == 2 and old.done == 1
    proc = run(["runs", "--runs-dir", str(runs)])
    assert proc.returncode == 0
    assert "20260102-000000-new-bbbb" in proc.stdout and "2/2" in proc.stdout


def test_find_run_takes_a_unique_prefix_and_explains_misses(runs: Path) -> None:
    assert find_run(str(runs), "20260101").name == "20260101-000000-old-aaaa"
    assert find_run(str(runs), None).name == "20260102-000000-new-bbbb"
    with pytest.raises(RunError, match="matches 2 runs"):
        find_run(str(runs), "2026")
    with pytest.raises(RunError, match="no run 'zzz'"):
        find_run(str(runs), "zzz")


def test_jsonl_export_has_one_row_per_task_with_the_final_attempt(runs: Path) -> None:
    folder = runs / "20260102-000000-new-bbbb"
    target = export_run(folder, "jsonl")
    assert target == folder / f"{folder.name}.jsonl"
    rows = [json.loads(x) for x in target.read_text().splitlines()]
    assert [(r["index"], r["attempt"], r["status"]) for r in rows] == [(0, 2, "ok"), (1, 1, "ok")]
    assert json.loads(rows[1]["result"]) == {"a": [1]}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_parquet_export_says_how_to_get_pyarrow_when_missing(runs: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ExportError, match="pip install pyarrow"):
            export_run(runs / "20260102-000000-new-bbbb", "parquet")
    else:
        import pyarrow.parquet as pq

        target = export_run(runs / "20260102-000000-new-bbbb", "parquet")
        assert pq.read_table(target).num_rows == 2


def test_export_of_an_unknown_run_exits_2(runs: Path) -> None:
    proc = run(["export", "nope", "--runs-dir", str(runs)])
    assert proc.returncode == 2 and "no run 'nope'" in proc.stderr


def test_export_reads_a_big_record_a_line_at_a_time_and_leaves_nothing_on_a_bad_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export never holds a whole results.jsonl: it finds where each task's newest line is,
    then reads those lines one by one (the whole-file reader is not used); a line found bad
    midway leaves no half-written export behind."""
    from ippmon import records

    lines = [line(i, 1, "ok", i) for i in range(50)] + [line(7, 2, "error")]
    folder = make_run(tmp_path / "runs", "r", "2026-01-01T00:00:00+00:00", lines, total=50)

    def whole_file(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("read the whole file")

    monkeypatch.setattr(records, "read_jsonl", whole_file)
    target = export_run(folder, "jsonl")
    rows = [json.loads(x) for x in target.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(50))
    assert rows[7]["status"] == "error" and rows[7]["attempt"] == 2 and rows[8]["result"] == "8"

    with (folder / "results.jsonl").open("a") as f:
        f.write('{"index": 3, "status": "running"}\n')
    with pytest.raises(RunError, match=r"results.jsonl:52: 'status' must be one of"):
        export_run(folder, "csv", str(tmp_path / "out.csv"))
    assert not (tmp_path / "out.csv").exists()
