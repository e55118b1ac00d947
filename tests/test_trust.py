"""Nothing is unpickled from a run folder the user does not own alone; run ids are names, not
paths; exports are the user's own files (0600) and CSV cells are not formulas. No cluster."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import pytest
from test_cli import run

from ippmon.export import ExportError, export_run, neutralise
from ippmon.jobspec import builtin_specs
from ippmon.records import RunRecord
from ippmon.runs import RunError, find_run
from ippmon.trust import UntrustedError

RUN_ID = "20260101-000000-squares-abcd"


class Planted:
    """Unpickling this touches `marker`: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def make_finished_run(runs: Path, run_id: str = RUN_ID, n: int = 2) -> Path:
    """A finished run as ippmon writes it: 0700 folders, run.json, results, both pickles."""
    record = RunRecord.create(runs, run_id)
    spec = builtin_specs()["squares"]
    record.save_pickle("spec.pickle", spec)
    record.save_pickle("inputs.pickle", list(range(n)))
    record.write_run(
        {
            "run_id": run_id,
            "job": "squares",
            "state": "finished",
            "inputs_count": n,
            "created": "2026-01-01T00:00:00+00:00",
            "cluster": {"profile": "default", "cluster_id": "", "location": "local"},
            "attempts": [
                {
                    "attempt": 1,
                    "msg_ids": [f"m{i}" for i in range(n)],
                    "chunks": [[i] for i in range(n)],
                }
            ],
        }
    )
    record.append_results(
        {
            "index": i,
            "attempt": 1,
            "status": "ok",
            "engine": 0,
            "submitted": "2026-01-01T00:00:00+00:00",
            "started": "2026-01-01T00:00:00+00:00",
            "completed": "2026-01-01T00:00:01+00:00",
            "duration_s": 1.0,
            "result": i * i,
            "error": None,
            "stdout": "",
            "stderr": "",
        }
        for i in range(n)
    )
    record.close()
    return record.folder


def plant(folder: Path, marker: Path) -> None:
    import pickle

    for name in ("spec.pickle", "inputs.pickle"):
        (folder / name).write_bytes(pickle.dumps(Planted(marker)))


def one_line_error(proc) -> str:  # noqa: ANN001
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_run_record_folders_are_created_0700_one_by_one(tmp_path: Path) -> None:
    runs = tmp_path / "a" / "b" / "runs"
    folder = RunRecord.create(runs, RUN_ID).folder
    for path in (tmp_path / "a", tmp_path / "a" / "b", runs, folder):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


def test_own_0700_run_folder_attaches_offline_as_before(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    folder = make_finished_run(runs)
    assert RunRecord(folder).load_pickle("inputs.pickle") == [0, 1]
    proc = run(["attach", RUN_ID, "--headless", "--runs-dir", str(runs)], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["attach", "resume"])
def test_group_writable_runs_dir_is_refused_before_anything_is_unpickled(
    tmp_path: Path, command: str
) -> None:
    runs = tmp_path / "runs"
    folder = make_finished_run(runs)
    marker = tmp_path / "unpickled"
    plant(folder, marker)
    os.chmod(runs, 0o770)  # somebody in the group could have planted the run
    proc = run([command, RUN_ID, "--headless", "--runs-dir", str(runs)], timeout=60)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert str(runs) in line and "writable by group or others" in line
    assert not marker.exists()


def test_load_pickle_itself_refuses_a_group_writable_folder(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs")
    marker = tmp_path / "unpickled"
    plant(folder, marker)
    os.chmod(folder, 0o720)
    with pytest.raises(UntrustedError, match="writable by group or others") as raised:
        RunRecord(folder).load_pickle("spec.pickle")
    assert isinstance(raised.value, RunError) and "\n" not in str(raised.value)
    assert str(folder) in str(raised.value)
    assert not marker.exists()


def test_world_writable_pickle_is_refused(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs")
    os.chmod(folder / "inputs.pickle", 0o602)
    with pytest.raises(UntrustedError, match=r"inputs\.pickle: .*writable by group or others"):
        RunRecord(folder).load_pickle("inputs.pickle")


def test_symlinked_spec_pickle_is_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    folder = make_finished_run(runs)
    marker = tmp_path / "unpickled"
    elsewhere = tmp_path / "elsewhere.pickle"
    elsewhere.write_bytes((folder / "spec.pickle").read_bytes())
    plant(folder, marker)
    (folder / "spec.pickle").unlink()
    (folder / "spec.pickle").symlink_to(elsewhere)
    with pytest.raises(UntrustedError, match="is a symlink"):
        RunRecord(folder).load_pickle("spec.pickle")
    proc = run(["attach", RUN_ID, "--headless", "--runs-dir", str(runs)], timeout=60)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "spec.pickle" in line and "symlink" in line
    assert not marker.exists()


def test_symlinked_run_folder_is_refused(tmp_path: Path) -> None:
    real = make_finished_run(tmp_path / "real-runs")
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o700)
    (runs / RUN_ID).symlink_to(real)
    with pytest.raises(UntrustedError, match="is a symlink"):
        RunRecord(runs / RUN_ID).load_pickle("spec.pickle")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_run_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs")
    os.chown(folder, 4242, 4242)
    with pytest.raises(UntrustedError, match="owned by uid 4242"):
        RunRecord(folder).load_pickle("spec.pickle")


@pytest.mark.parametrize("run_id", ["../x", "/etc", "a/b", "*", "2026*", "?", "[a]", "..", ""])
def test_find_run_refuses_paths_and_patterns_in_one_line(tmp_path: Path, run_id: str) -> None:
    runs = tmp_path / "runs"
    make_finished_run(runs)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "run.json").write_text("{}")  # what ../x would reach
    with pytest.raises(RunError) as raised:
        find_run(str(runs), run_id)
    assert "\n" not in str(raised.value) and repr(run_id) in str(raised.value)


def test_find_run_prefix_stays_inside_the_runs_dir(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_finished_run(runs)
    assert find_run(str(runs), "2026").name == RUN_ID
    with pytest.raises(RunError, match="no run 'runs'"):
        find_run(str(runs), "runs")


@pytest.mark.parametrize("run_id", ["../x", "/etc", "a/b", "*"])
def test_cli_refuses_a_path_as_run_id(tmp_path: Path, run_id: str) -> None:
    proc = run(["export", run_id, "--runs-dir", str(tmp_path)])
    assert proc.returncode == 2
    assert repr(run_id) in one_line_error(proc)


# --- exports -------------------------------------------------------------------------------


def test_export_creates_a_new_file_0600(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs")
    target = tmp_path / "out.csv"
    assert export_run(folder, "csv", str(target)) == target
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_export_replaces_the_users_own_file_atomically_as_0600(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs")
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    os.chmod(target, 0o644)
    before = os.stat(target).st_ino
    export_run(folder, "jsonl", str(target))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert os.stat(target).st_ino != before  # a new file renamed over it, not written into
    assert len(target.read_text().splitlines()) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_never_writes_through_a_symlink(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs")
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    with pytest.raises(ExportError, match="symlink") as raised:
        export_run(folder, "csv", str(link))
    assert str(link) in str(raised.value)
    assert victim.read_text() == "precious\n" and link.is_symlink()
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ExportError, match="symlink"):
        export_run(folder, "csv", str(dangling))
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_export_never_replaces_another_users_file(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs")
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("theirs\n")
    os.chown(theirs, 4242, 4242)
    with pytest.raises(ExportError, match="belongs to uid 4242"):
        export_run(folder, "csv", str(theirs))
    assert theirs.read_text() == "theirs\n"


def test_export_to_a_symlink_from_the_cli_is_one_line_exit_2(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_finished_run(runs)
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "victim")
    proc = run(["export", RUN_ID, "-o", str(link), "--runs-dir", str(runs)])
    assert proc.returncode == 2
    assert str(link) in one_line_error(proc)
    assert not (tmp_path / "victim").exists()


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1+cmd", "'+1+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-5", "-5"),  # a number as JSON writes it stays a number
        ("-0.5e-3", "-0.5e-3"),
        ("plain = text", "plain = text"),
        (None, None),
        (-3, -3),
    ],
)
def test_csv_cells_that_start_a_formula_are_neutralised(cell: object, written: object) -> None:
    assert neutralise(cell) == written


def test_csv_export_neutralises_formulas_but_jsonl_keeps_the_text(tmp_path: Path) -> None:
    folder = make_finished_run(tmp_path / "runs", n=1)
    lines = (folder / "results.jsonl").read_text().splitlines()
    line = json.loads(lines[0])
    line.update(stdout="=cmd|' /C calc'!A0", result="@x", attempt=2)
    with (folder / "results.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
    with export_run(folder, "csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["stdout"] == "'=cmd|' /C calc'!A0"
    assert row["result"] == '"@x"'  # JSON text of the result: starts with a quote, harmless
    (jrow,) = [json.loads(x) for x in export_run(folder, "jsonl").read_text().splitlines()]
    assert jrow["stdout"] == "=cmd|' /C calc'!A0"
