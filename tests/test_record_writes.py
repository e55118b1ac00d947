"""Writing run records when things go wrong: a full disk, a process killed at any moment while it
sends or receives, two processes attaching to one run, a result that cannot be written."""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from cluster_helpers import until, write_spec
from test_cli import IPPMON, run

from ippmon import records
from ippmon.attach import GONE_AFTER_ENV
from ippmon.connect import ClientSession
from ippmon.job import Job
from ippmon.jobspec import load_catalog
from ippmon.model import Phase, TaskState
from ippmon.records import (
    RESULTS_FILE,
    RecordError,
    RunRecord,
    latest_lines,
    load_sent,
    read_line_at,
    read_results,
)

SPEC = """
[jobs.squares]
function = "ippmon.demo:slow_square"
inputs = {{ range = [0, {n}] }}
kwargs = {{ delay = {delay}, steps = 1 }}
chunksize = 1
"""


class FullDisk:
    """Stands in for os.write: files of the chosen names take half of what is written, then
    ENOSPC."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)
        self.refused = 0

    def full(self, fd: int) -> bool:
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) in self.names

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.full(fd):
            self.refused += 1
            written = os.write(fd, data[: max(1, len(data) // 2)])
            if written < len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


def whole_lines(path: Path) -> list[dict]:
    data = path.read_bytes() if path.exists() else b""
    assert not data or data.endswith(b"\n"), "a torn line was left"
    return [json.loads(line) for line in data.splitlines()]


# -- without a cluster ---------------------------------------------------------------------------


def test_a_failed_append_is_cut_back_to_the_last_whole_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = RunRecord.create(tmp_path / "runs", "r")
    record.append_results([{"index": 0, "status": "ok"}])
    disk = FullDisk(RESULTS_FILE)
    monkeypatch.setattr(records, "_write", disk)
    with pytest.raises(RecordError, match=r"results.jsonl: cannot write: No space left"):
        record.append_results([{"index": 1, "status": "ok"}, {"index": 2, "status": "ok"}])
    assert disk.refused and whole_lines(record.folder / RESULTS_FILE) == [
        {"index": 0, "status": "ok"}
    ]
    disk.names.clear()  # space again
    (offset,) = record.append_results([{"index": 1, "status": "ok"}])
    assert [line["index"] for line in whole_lines(record.folder / RESULTS_FILE)] == [0, 1]
    assert read_line_at(record.folder / RESULTS_FILE, offset) == {"index": 1, "status": "ok"}


def test_a_value_that_cannot_be_written_as_text_becomes_a_bounded_stand_in(
    tmp_path: Path,
) -> None:
    class NoRepr:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    record = RunRecord.create(tmp_path / "runs", "r")
    huge = 10**5000  # repr raises: more digits than Python prints
    assert record.append_results(
        [
            {"index": 0, "result": huge},
            {"index": 1, "result": NoRepr()},
            {"index": 2, "result": "x" * 100_000, "error": {"evalue": NoRepr()}},
        ]
    )
    lines = whole_lines(record.folder / RESULTS_FILE)
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert "repr failed" in lines[0]["result"] and "repr failed" in lines[1]["result"]
    assert len(lines[2]["result"]) == 100_000  # text JSON holds is kept as it is
    assert "repr failed" in lines[2]["error"]["evalue"]
    assert len(records.stand_in(list(range(100_000)))) < records.STAND_IN_CHARS + 100


def test_a_second_writer_of_a_run_gets_it_read_only(tmp_path: Path) -> None:
    first = RunRecord.create(tmp_path / "runs", "r")
    second = RunRecord(first.folder)
    assert f"process {os.getpid()}" == second.lock() and second.read_only
    assert second.append_results([{"index": 0, "status": "ok"}]) == []
    assert not (first.folder / RESULTS_FILE).exists()
    first.close()  # the writer is gone: the next one may write
    third = RunRecord(first.folder)
    assert third.lock() == "" and not third.read_only
    third.close()


# -- on the session cluster ----------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.timeout(300)  # on a loaded machine a task's output end can trail its result long
def test_a_full_disk_keeps_finished_tasks_waiting_and_the_job_unfinished_until_space_returns(
    cluster: ClientSession, runs_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_catalog(write_spec(tmp_path / "spec", SPEC.format(n=20, delay=0.0))).get("squares")
    disk = FullDisk(RESULTS_FILE)  # results.jsonl cannot grow; sent.jsonl can
    monkeypatch.setattr(records, "_write", disk)
    job = cluster.submit(spec, runs_dir=runs_dir)
    results = job.record.folder / RESULTS_FILE

    def all_done_but_unrecorded() -> bool:
        snap = job.poll()
        return snap.count(TaskState.OK) == 20 and "No space left" in snap.message

    assert until(all_done_but_unrecorded, timeout=200), job.poll().message
    snap = job.poll()
    assert snap.phase is not Phase.FINISHED and not job.finished()
    assert "finished chunks wait to be recorded" in snap.message
    assert whole_lines(results) == []  # each attempt was cut back: no torn line
    assert disk.refused >= 2  # it tried again

    disk.names.clear()  # space again
    assert job.wait(timeout=60)
    lines = whole_lines(results)
    assert sorted(line["index"] for line in lines) == list(range(20))
    assert "No space" not in job.poll().message
    job.close()
    assert json.loads((job.record.folder / "run.json").read_text())["state"] == "finished"


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(300)  # five rounds of start, kill, attach: ~60 s beside the other worker
def test_killed_at_any_moment_attach_recovers_every_task_exactly_once(
    cluster: ClientSession,
    client,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    """kill -9 of a headless ippmon at random moments while it sends and receives; then
    `attach` finds every task that ran (sent.jsonl) and records each index once."""
    n = 300
    spec = write_spec(tmp_path / "spec", SPEC.format(n=n, delay=0.01))
    rng = random.Random(20261130)
    for round_ in range(5):
        runs = tmp_path / f"runs{round_}"
        proc = subprocess.Popen(
            IPPMON
            + ["--cluster-id", cluster.info.cluster_id, "--jobs", str(spec), "--job", "squares"]
            + ["--headless", "--runs-dir", str(runs)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        assert until(lambda runs=runs: any(runs.glob("*/sent.jsonl")), timeout=60)  # sending
        time.sleep(rng.uniform(0.0, 3.0))  # a random moment: the point of the test
        proc.kill()
        proc.wait()
        (folder,) = runs.iterdir()
        sent = {i: line["msg_id"] for line in load_sent(folder).lines for i in line["indices"]}
        # a task whose message died with the process is called lost once the controller has
        # had time to record it: 30 s by default, here 5 s (the rounds that kill mid-send)
        env = {**os.environ, GONE_AFTER_ENV: "5"}
        attach = run(["attach", folder.name, "--runs-dir", str(runs), "--headless"], env=env)
        assert attach.returncode in (0, 1), attach.stderr  # 1: some were never sent
        assert "unexpected error" not in attach.stderr, attach.stderr
        latest = latest_lines(folder)
        assert sorted(latest) == list(range(n)), f"round {round_}"
        known = {  # what reached the controller
            r["msg_id"]
            for r in client.db_query({"msg_id": {"$in": list(sent.values())}}, keys=["msg_id"])
        }
        for i, line in latest.items():
            if sent.get(i) in known:  # it ran: its true outcome
                assert line["status"] == "ok" and line["result"] == i * i, (round_, line)
            elif i in sent:  # its message was still queued in the killed process: it never ran
                assert line["status"] == "lost", (round_, line)
            else:  # never sent: said so
                assert line["status"] == "cancelled", (round_, line)
        per_attempt = Counter((line["index"], line["attempt"]) for line in read_results(folder))
        assert max(per_attempt.values()) == 1, f"round {round_}: a task recorded twice"


@pytest.mark.cluster
def test_two_attaches_to_one_run_record_each_task_once(
    cluster: ClientSession, tmp_path: Path, runs_dir: str
) -> None:
    spec = load_catalog(write_spec(tmp_path / "spec", SPEC.format(n=40, delay=0.2))).get("squares")
    job = cluster.submit(spec, runs_dir=runs_dir)
    assert until(lambda: job.poll().count(TaskState.OK) >= 2, timeout=60)
    job.close()  # detached: the rest runs on with nobody watching
    folder = job.record.folder
    args = ["attach", folder.name, "--runs-dir", runs_dir, "--headless"]
    procs = [
        subprocess.Popen(IPPMON + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    lines = read_results(folder)
    counts = Counter((line["index"], line["attempt"]) for line in lines)
    assert sorted(i for i, _a in counts) == list(range(40)) and max(counts.values()) == 1
    assert all(line["status"] == "ok" for line in lines)


@pytest.mark.cluster
def test_a_run_watched_by_another_process_is_opened_read_only_and_says_so(
    cluster: ClientSession, tmp_path: Path, runs_dir: str
) -> None:
    spec = load_catalog(write_spec(tmp_path / "spec", SPEC.format(n=6, delay=0.2))).get("squares")
    job = cluster.submit(spec, runs_dir=runs_dir)  # this process writes the run
    assert until(lambda: job.poll().phase is not Phase.SUBMITTING, timeout=30)  # all sent
    watcher = Job.restore(job.record.folder, cluster.client, cluster.info)
    try:
        assert watcher.record.read_only
        assert f"read-only: process {os.getpid()} is writing" in watcher.poll().message
        assert job.wait(timeout=60)
        assert until(lambda: watcher.poll().count(TaskState.OK) == 6, timeout=60)
    finally:
        watcher.close()
        job.close()
    assert sorted(line["index"] for line in read_results(job.record.folder)) == list(range(6))
