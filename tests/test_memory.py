"""Bounded memory: what ippmon has written to results.jsonl is let go of (by the client and the
tracker) and read back from the record when asked for; a line that arrives in many pieces
costs in proportion to the pieces; a job sends its tasks through a window (more as earlier ones
are recorded), and detaching sends what the window held back."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from cluster_helpers import BLOCKING_TASKS, until, write_spec
from test_cli import run

from ippmon import job as job_module
from ippmon import records, runs
from ippmon import tracker as tracker_module
from ippmon.connect import ClientSession
from ippmon.job import Job
from ippmon.jobspec import load_catalog
from ippmon.model import Phase, RunState, TaskState
from ippmon.records import RESULTS_FILE, latest_lines, load_sent, read_meta
from ippmon.runs import list_runs
from ippmon.terminal import emulate
from ippmon.tracker import Event, Tracker

TASKS = """
import sys

def talk(x):
    for i in range(3):
        print(f"task {x} says {i}")
    print(f"task {x} warns", file=sys.stderr)
    if x % 5 == 4:
        raise ValueError(f"task {x} refuses")
    return {"x": x, "square": x * x}
"""


@pytest.mark.cluster
def test_recorded_tasks_are_let_go_of_and_their_details_come_back_from_the_record(
    cluster: ClientSession,
    client,  # noqa: ANN001
    runs_dir: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ipyparallel.client.asyncresult import AsyncResult

    spec_file = write_spec(
        tmp_path / "spec",
        """
        [jobs.talk]
        function = "tasks.py:talk"
        inputs = { range = [0, 30] }
        """,
        {"tasks.py": TASKS},
    )
    job = cluster.submit(load_catalog(spec_file).get("talk"), runs_dir=runs_dir)
    assert job.wait(timeout=120)
    snap = job.poll()
    assert snap.count(TaskState.OK) == 24 and snap.count(TaskState.ERROR) == 6
    sent = set(job.record.folder.joinpath("sent.jsonl").read_text().split('"msg_id": "')[1:])
    msg_ids = {chunk.split('"', 1)[0] for chunk in sent}
    assert len(msg_ids) == 30

    # nothing ipyparallel kept for these tasks is alive any more: no AsyncResult, no reply
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, AsyncResult)]
    assert not [ar for ar in alive if msg_ids & set(ar.msg_ids)]
    assert not msg_ids & set(client.results) and not msg_ids & set(client.metadata)
    assert all(job.tracker.released(i) for i in range(30))

    # ...yet each task's detail is whole: read back from its line in results.jsonl
    recorded = latest_lines(job.record.folder)
    for i in (3, 4):
        detail = job.task(i)
        line = recorded[i]
        assert detail.stdout == "".join(f"task {i} says {n}\n" for n in range(3))
        assert detail.stdout == line["stdout"] and detail.stderr == f"task {i} warns\n"
        assert detail.engine == line["engine"] and detail.extra["input"] == i
    assert job.task(3).result == {"x": 3, "square": 9}
    failed = job.task(4)
    assert failed.state is TaskState.ERROR and failed.ename == "ValueError"
    assert "task 4 refuses" in failed.evalue and "in talk(x)" in failed.traceback
    # the tasks table keeps each task's line without the output
    rows = {row.index: row for row in job.task_rows()}
    assert rows[3].line == "task 3 warns" and rows[4].line.startswith("ValueError: task 4")
    job.close()
    assert not msg_ids & set(client.history)  # the client's list of every msg_id it sent

    # `ippmon runs` takes a finished run's counts from run.json: no results file is read...
    reads: list[Path] = []

    def scan_results(folder: Path, total: int | None = None) -> object:
        reads.append(folder)
        return real_scan(folder, total)

    real_scan = runs.scan_results
    monkeypatch.setattr(runs, "scan_results", scan_results)
    (summary,) = list_runs(runs_dir)
    assert summary.state == "finished" and reads == []
    assert (summary.counts["ok"], summary.counts["error"], summary.done) == (24, 6, 30)
    # ...unless results.jsonl changed since run.json was written: then it is read
    results = job.record.folder / RESULTS_FILE
    results.write_bytes(results.read_bytes() + b"\n")
    (summary,) = list_runs(runs_dir)
    assert reads == [job.record.folder] and summary.done == 30

    # attach reads the record back a batch of lines at a time, never the whole file at once
    def read_jsonl(path: Path, check: object) -> object:
        assert path.name != RESULTS_FILE, "results.jsonl read whole"
        return real_read(path, check)

    real_read = records.read_jsonl
    monkeypatch.setattr(records, "read_jsonl", read_jsonl)
    monkeypatch.setattr(job_module, "RESTORE_BATCH", 7)
    again = Job.restore(job.record.folder, None, cluster.info)
    snap = again.poll()
    assert (snap.count(TaskState.OK), snap.count(TaskState.ERROR)) == (24, 6)
    assert again.task(4).evalue == "task 4 refuses" and again.task(3).result == {
        "x": 3,
        "square": 9,
    }
    assert [again.task(i).stdout for i in range(30)] == [recorded[i]["stdout"] for i in range(30)]
    again.close()


def test_a_line_that_arrives_in_a_thousand_pieces_costs_in_proportion_to_the_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1 MB of one unterminated line, in 1,000 pieces, each followed by a poll: what the
    tracker reads of it per poll is bounded (the line's start and its new end), not the whole
    line so far, and the line comes out whole once the task is recorded."""
    looked_at = 0
    real_plain = tracker_module.plain

    def counting_plain(text: str) -> str:
        nonlocal looked_at
        looked_at += len(text)
        return real_plain(text)

    monkeypatch.setattr(tracker_module, "plain", counting_plain)
    tracker = Tracker("big", 1)
    md: dict = {"engine_id": 0, "stdout": ""}
    (key,) = tracker.add_chunks([([0], md)], 1)
    piece = "x" * 1000
    for _ in range(1000):
        md["stdout"] += piece
        tracker.notify(key, Event.ACTIVITY)
        tracker.poll()
    assert looked_at <= 1000 * tracker_module.LAST_LINE_CHARS  # quadratic: ~500 MB
    assert tracker.output_since(0)[0] == []  # not a whole line yet
    md["completed"] = "2026-11-30T00:00:01+00:00"
    tracker.notify(key, Event.DONE, 1)
    tracker.notify(key, Event.OUTPUT_DONE)
    (chunk,) = tracker.poll()
    (line,), _dropped = tracker.output_since(0)
    assert line.text == emulate(piece * 1000)  # the whole line, as the output pane shows one


def test_a_task_that_prints_more_than_the_cap_keeps_its_head_and_tail_and_says_what_was_cut() -> (
    None
):
    """A running task's output stays within twice the cap in memory (cut from the middle, only
    lines already shown); the output pane gets every line once; the record keeps the first and
    the last half of the cap and says how many bytes were cut between them."""
    cap = 1000
    tracker = Tracker("loud", 1, output_cap=cap)
    md: dict = {"engine_id": 0, "stdout": ""}
    (key,) = tracker.add_chunks([([0], md)], 1)
    lines = [f"line {n:05d} " + "." * 40 + "\n" for n in range(500)]  # 52 characters each
    biggest = 0
    for n in range(0, 500, 5):
        md["stdout"] += "".join(lines[n : n + 5])  # as ipyparallel appends, on the IO thread...
        tracker.trim(key)  # ...then ippmon's callback, on the same thread
        biggest = max(biggest, len(md["stdout"]))
        tracker.notify(key, Event.ACTIVITY)
        tracker.poll()
    assert biggest <= 2 * cap + 200
    md["completed"] = "2026-11-30T00:00:01+00:00"
    tracker.notify(key, Event.DONE, 1)
    tracker.notify(key, Event.OUTPUT_DONE)
    tracker.poll()
    shown, dropped = tracker.output_since(0)
    assert dropped == 0 and [line.text + "\n" for line in shown] == lines
    whole = "".join(lines)
    kept = tracker.detail(0).stdout
    head, marker, tail = kept[: cap // 2], kept[cap // 2 : -(cap // 2)], kept[-(cap // 2) :]
    assert head == whole[: cap // 2] and tail == whole[-(cap // 2) :]
    assert (
        marker == f"\n… {len(whole) - cap:,} bytes cut …\n".replace(",", "") or "kB cut" in marker
    )
    assert "cut" in marker and marker.count("\n") == 2


@pytest.mark.cluster
def test_output_cap_option_bounds_what_the_record_keeps_of_each_task(
    cluster: ClientSession, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path / "spec",
        """
        [jobs.loud]
        function = "ippmon.demo:chatty"
        inputs = { range = [0, 4] }
        kwargs = { lines = 300, delay = 0.0 }
        """,
    )
    runs = tmp_path / "runs"
    proc = run(
        ["--cluster-id", cluster.info.cluster_id, "--jobs", str(spec), "--job", "loud"]
        + ["--headless", "--runs-dir", str(runs), "--output-cap", "2k"]
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = runs.iterdir()
    for line in latest_lines(folder).values():
        out = line["stdout"]
        assert len(out) < 2000 + 100 and " cut …\n" in out
        assert out.startswith(f"item {line['index']} line 1: ")
        assert out.endswith("line 299: " + "." * (299 % 40) + "\n")


def _windowed_job(
    cluster: ClientSession, runs_dir: str, tmp_path: Path, n: int, slice_tasks: int = 2
) -> Job:
    """A job of n tasks that wait for `tmp_path / "go"`, sent `slice_tasks` chunks per slice
    through a send window of 4 chunks."""
    flag = tmp_path / "go"
    spec_file = write_spec(
        tmp_path / "spec",
        f"""
        [jobs.held]
        function = "tasks.py:wait_for_flag"
        inputs = {{ range = [0, {n}] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"tasks.py": BLOCKING_TASKS},
    )
    job = Job(
        cluster.client,
        load_catalog(spec_file).get("held"),
        info=cluster.info,
        runs_dir=runs_dir,
        slice_tasks=slice_tasks,
        send_window=4,
    )
    job.start()
    # the window is full: the sender waits, and the job runs (no longer "submitting")
    assert until(lambda: job.poll().phase is Phase.RUNNING, timeout=30)
    return job


def _sent_indices(job: Job) -> list[int]:
    return sorted(i for line in load_sent(job.record.folder).lines for i in line["indices"])


@pytest.mark.cluster
@pytest.mark.parametrize("slice_tasks", [2, 256], ids=["slices-of-2", "window-below-a-slice"])
def test_the_send_window_holds_tasks_back_until_earlier_ones_are_recorded(
    cluster: ClientSession,
    client,  # noqa: ANN001 - the fixture waits for both engines
    runs_dir: str,
    tmp_path: Path,
    slice_tasks: int,
) -> None:
    job = _windowed_job(cluster, runs_dir, tmp_path, 12, slice_tasks)
    try:
        snap = job.poll()
        assert (snap.submitted, snap.total) == (4, 12)
        assert _sent_indices(job) == [0, 1, 2, 3]  # the rest waits for room
        (tmp_path / "go").touch()
        assert job.wait(timeout=60)
        snap = job.poll()
        assert snap.count(TaskState.OK) == 12 and snap.submitted == 12
        assert _sent_indices(job) == list(range(12))  # each sent once
        assert sorted(latest_lines(job.record.folder)) == list(range(12))
    finally:
        (tmp_path / "go").touch()
        job.close()


@pytest.mark.cluster
def test_detaching_sends_the_tasks_the_window_held_back_so_the_cluster_runs_them_all(
    cluster: ClientSession,
    client,  # noqa: ANN001 - the fixture waits for both engines
    runs_dir: str,
    tmp_path: Path,
) -> None:
    job = _windowed_job(cluster, runs_dir, tmp_path, 12)
    try:
        job.close()  # detach while 8 tasks were still held back
        assert _sent_indices(job) == list(range(12))
        assert read_meta(job.record.folder)["state"] == RunState.DETACHED.value
        (tmp_path / "go").touch()
        again = cluster.attach(job.record.folder)
        assert again.wait(timeout=60)
        assert again.poll().count(TaskState.OK) == 12
        again.close()
    finally:
        (tmp_path / "go").touch()


@pytest.mark.cluster
def test_a_closed_job_is_let_go_of_so_jobs_run_one_after_another_do_not_add_up(
    cluster: ClientSession,
    client,  # noqa: ANN001 - the fixture waits for both engines
    runs_dir: str,
    tmp_path: Path,
) -> None:
    spec_file = write_spec(
        tmp_path / "spec",
        """
        [jobs.talk]
        function = "tasks.py:talk"
        inputs = { range = [0, 6] }
        """,
        {"tasks.py": TASKS},
    )
    spec = load_catalog(spec_file).get("talk")
    first = cluster.submit(spec, runs_dir=runs_dir)
    assert first.wait(timeout=60)
    first.close()
    assert first not in cluster.jobs  # the session lets go of it as it closes
    gone = weakref.ref(first)
    del first
    second = cluster.submit(spec, runs_dir=runs_dir)
    try:
        assert second.wait(timeout=60)
        gc.collect()
        assert gone() is None, [type(r).__name__ for r in gc.get_referrers(gone())]
        assert second in cluster.jobs and not [j for j in cluster.jobs if j.closed]
    finally:
        second.close()
