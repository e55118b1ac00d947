"""Submitting, tracking and recording against a real local cluster (started once per session)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cluster_helpers import BLOCKING_TASKS, POINTS, until, write_spec

from ippmon.connect import ClientSession
from ippmon.jobspec import load_catalog
from ippmon.model import Phase, TaskState
from ippmon.records import load_sent, read_results

pytestmark = pytest.mark.cluster


def test_submit_squares_gives_right_results_and_records_them(
    cluster: ClientSession, client, runs_dir: str
) -> None:
    spec = load_catalog(None).get("squares")
    spec = type(spec)(**{**spec.__dict__, "kwargs": {"delay": 0.01}})
    job = cluster.submit(spec, runs_dir=runs_dir)
    assert job.wait(timeout=60)
    snap = job.poll()
    assert snap.phase is Phase.FINISHED and snap.succeeded
    assert snap.count(TaskState.OK) == 100
    assert snap.speedup is not None and snap.serial_s > 0
    lines = read_results(job.record.folder)
    assert sorted(line["index"] for line in lines) == list(range(100))
    assert all(line["status"] == "ok" and line["result"] == line["index"] ** 2 for line in lines)
    assert all(line["engine"] in (0, 1) and line["duration_s"] >= 0 for line in lines)
    assert all("square" in line["stdout"] for line in lines)
    for name in ("run.json", "results.jsonl"):
        mode = stat.S_IMODE(os.stat(job.record.folder / name).st_mode)
        assert mode == 0o600, name
    run = json.loads((job.record.folder / "run.json").read_text())
    assert run["state"] == "finished" and run["counts"]["ok"] == 100
    sent = load_sent(job.record.folder).lines  # each chunk, written before it was sent
    assert sorted(i for line in sent for i in line["indices"]) == list(range(100))
    assert {line["msg_id"] for line in sent} == {line["msg_id"] for line in lines}


def test_a_result_of_a_class_from_the_spec_file_comes_back_as_that_class(
    cluster: ClientSession, client, runs_dir: str, tmp_path: Path
) -> None:
    spec_file = write_spec(
        tmp_path / "spec",
        """
        [jobs.points]
        function = "points.py:point"
        inputs = { range = [0, 4] }
        """,
        {"points.py": POINTS},
    )
    job = cluster.submit(load_catalog(spec_file).get("points"), runs_dir=runs_dir)
    assert job.wait(timeout=60)
    assert job.poll().succeeded
    # the Point came back (its dataclass repr was recorded, not an unpickling error); once
    # recorded, the job shows it as that text, read back from the record
    assert [repr(job.task(i).result) for i in range(4)] == [f"Point(x={i})" for i in range(4)]
    recorded = sorted(read_results(job.record.folder), key=lambda line: line["index"])
    assert [(line["result"], line["result_is_repr"]) for line in recorded] == [
        (f"Point(x={i})", True) for i in range(4)
    ]


def test_failures_are_recorded_with_ename_evalue_and_plain_traceback(
    cluster: ClientSession, client, runs_dir: str, tmp_path: Path
) -> None:
    path = write_spec(
        tmp_path / "spec",
        """
        [jobs.half]
        function = "ippmon.demo:flaky"
        inputs = [1, 2, 3, 4, 5, 6]
        kwargs = { rate = 1.0, delay = 0.0 }
        """,
    )
    job = cluster.submit(load_catalog(path).get("half"), runs_dir=runs_dir)
    assert job.wait(timeout=60)
    snap = job.poll()
    assert snap.count(TaskState.ERROR) == 6 and not snap.succeeded
    assert snap.n_failures == 6 and "TransientError" in snap.failures[-1].line
    lines = read_results(job.record.folder)
    assert len(lines) == 6
    for line in lines:
        assert line["status"] == "error"
        assert line["error"]["ename"] == "TransientError"
        assert str(line["index"] + 1) in line["error"]["evalue"]
        assert "Traceback" in line["error"]["traceback"]
        assert "\x1b[" not in line["error"]["traceback"]


def test_stdout_and_stderr_stream_into_the_tracker_and_the_record(
    cluster: ClientSession, client, runs_dir: str, tmp_path: Path
) -> None:
    path = write_spec(
        tmp_path / "spec",
        """
        [jobs.talk]
        function = "ippmon.demo:chatty"
        inputs = [0, 1, 2, 3]
        kwargs = { lines = 120, delay = 0.0 }
        """,
    )
    job = cluster.submit(load_catalog(path).get("talk"), runs_dir=runs_dir)
    assert job.wait(timeout=60)
    out, dropped = job.tracker.output_since(0)
    assert dropped == 0
    assert [line.seq for line in out] == list(range(1, len(out) + 1))
    per_task = {i: [ln for ln in out if ln.index == i] for i in range(4)}
    assert all(len(lines) == 120 for lines in per_task.values())
    assert any(ln.stream == "stderr" for ln in out)
    assert all(ln.engine in (0, 1) for ln in out)
    records = read_results(job.record.folder)
    for r in records:
        assert len(r["stdout"].splitlines()) + len(r["stderr"].splitlines()) == 120


def test_engine_view_shows_running_tasks_while_they_run(
    cluster: ClientSession, client, runs_dir: str, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    path = write_spec(
        tmp_path / "spec",
        f"""
        [jobs.block]
        function = "tasks.py:wait_for_flag"
        inputs = {{ range = [0, 5] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"tasks.py": BLOCKING_TASKS},
    )
    job = cluster.submit(load_catalog(path).get("block"), runs_dir=runs_dir)
    try:
        assert until(lambda: job.poll().count(TaskState.RUNNING) == 2)
        assert until(lambda: all(e.last_line for e in job.poll().engines))
        snap = job.poll()
        assert snap.count(TaskState.QUEUED) == 3
        running = sorted(e.task for e in snap.engines)
        assert len(set(running)) == 2 and all(t is not None for t in running)
        for engine in snap.engines:
            assert engine.alive and engine.running_for_s >= 0
            assert engine.last_line == f"task {engine.task} waiting"
    finally:
        flag.touch()
    assert job.wait(timeout=60)
    snap = job.poll()
    assert snap.count(TaskState.OK) == 5
    assert sum(e.tasks_done for e in snap.engines) == 5
    assert sorted(r["result"] for r in read_results(job.record.folder)) == list(range(100, 105))


def test_connecting_waits_for_a_connection_file_that_appears_and_prints_nothing(
    cluster: ClientSession, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A cluster that is still starting: its file appears while ippmon waits for it."""
    from ippmon import connect

    options = connect.ConnectOptions(cluster_id=cluster.info.cluster_id, timeout=30)
    path = connect._connection_file(options)
    hidden = path.with_name(path.name + ".hidden")
    path.rename(hidden)
    waits: list[float] = []
    real_sleep = connect.time.sleep

    def sleep(seconds: float) -> None:  # the first wait is when the controller writes it
        waits.append(seconds)
        if not path.exists():
            hidden.rename(path)
        real_sleep(seconds)

    monkeypatch.setattr(connect.time, "sleep", sleep)
    try:
        session = connect.ClusterBackend(options).connect()
    finally:
        if hidden.exists():
            hidden.rename(path)
    try:
        assert waits, "connected without waiting for the file"
        assert session.info.engines == cluster.info.engines
    finally:
        session.close()
    assert capfd.readouterr().out == ""
