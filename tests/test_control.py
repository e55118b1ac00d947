"""Cancel, resubmit and engine loss against a real local cluster."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
from cluster_helpers import BLOCKING_TASKS, FAIL_ONCE, until, write_spec

from ippmon.connect import ClientSession, start_local
from ippmon.jobspec import load_catalog
from ippmon.model import Phase, TaskState
from ippmon.records import read_results

pytestmark = pytest.mark.cluster


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def spec_from(tmp_path: Path, toml: str, files: dict[str, str] | None = None, name: str = "j"):
    return load_catalog(write_spec(tmp_path / "spec", toml, files)).get(name)


def test_cancel_interrupts_a_40_task_job_long_before_its_end_and_the_next_job_runs(
    cluster: ClientSession, client, runs_dir: str, tmp_path: Path
) -> None:
    spec = spec_from(
        tmp_path,
        """
        [jobs.j]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 40] }
        kwargs = { delay = 1.0, steps = 1 }
        """,
    )
    job = cluster.submit(spec, runs_dir=runs_dir)
    assert until(lambda: job.poll().count(TaskState.OK) >= 2)
    assert until(lambda: job.poll().count(TaskState.RUNNING) == 2)
    job.cancel()
    # ~18 s of tasks are left: a cancel that only stopped the queue would still be running
    assert job.wait(timeout=10)
    snap = job.poll()
    assert snap.phase is Phase.FINISHED
    assert snap.count(TaskState.OK) >= 2
    assert snap.count(TaskState.ERROR) == 0 and snap.count(TaskState.LOST) == 0
    assert snap.count(TaskState.CANCELLED) == 40 - snap.count(TaskState.OK)
    lines = read_results(job.record.folder)
    assert len(lines) == 40
    interrupted = [r for r in lines if r["error"] and r["error"]["ename"] == "KeyboardInterrupt"]
    assert interrupted and all(r["status"] == "cancelled" for r in interrupted)
    assert all(r["result"] == r["index"] ** 2 for r in lines if r["status"] == "ok")

    after = cluster.submit(
        spec_from(
            tmp_path / "b",
            """
            [jobs.j]
            function = "ippmon.demo:slow_square"
            inputs = { range = [0, 4] }
            kwargs = { delay = 0.2, steps = 1 }
            """,
        ),
        runs_dir=runs_dir,
    )
    assert after.wait(timeout=30)
    assert after.poll().count(TaskState.OK) == 4


def test_resubmitting_failures_reruns_only_them_with_the_next_attempt(
    cluster: ClientSession, client, runs_dir: str, tmp_path: Path
) -> None:
    marker = tmp_path / "seen"
    marker.mkdir()
    spec = spec_from(
        tmp_path,
        f"""
        [jobs.j]
        function = "tasks.py:fail_once"
        inputs = {{ range = [0, 12] }}
        kwargs = {{ folder = "{marker}" }}
        """,
        {
            "tasks.py": FAIL_ONCE,
        },
    )
    job = cluster.submit(spec, runs_dir=runs_dir)
    assert job.wait(timeout=30)
    assert job.retryable() == [0, 3, 6, 9]
    assert job.submit(job.retryable()) == 2
    assert job.wait(timeout=30)
    snap = job.poll()
    assert snap.count(TaskState.OK) == 12 and snap.succeeded and snap.attempt == 2
    lines = read_results(job.record.folder)
    assert len(lines) == 16
    again = sorted((r["index"], r["attempt"], r["status"]) for r in lines if r["attempt"] == 2)
    assert again == [(i, 2, "ok") for i in (0, 3, 6, 9)]
    assert job.task(3).attempt == 2 and job.task(3).result == 30


def test_killed_engine_makes_its_task_lost_and_resubmit_finishes_the_job(
    runs_dir: str, tmp_path: Path, cluster: ClientSession
) -> None:
    flag = tmp_path / "go"
    spec = spec_from(
        tmp_path,
        f"""
        [jobs.j]
        function = "tasks.py:wait_for_flag"
        inputs = {{ range = [0, 6] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"tasks.py": BLOCKING_TASKS},
    )
    with start_local(2, timeout=60) as own:
        pids = own.client[:].apply_sync(os.getpid)
        job = own.submit(spec, runs_dir=runs_dir)
        assert until(lambda: job.poll().count(TaskState.RUNNING) == 2)
        victim = next(e for e in job.poll().engines if e.id == 1)
        lost_index = victim.task
        os.kill(pids[1], signal.SIGKILL)
        assert until(lambda: job.poll().count(TaskState.LOST) == 1, timeout=30)
        snap = job.poll()
        gone = next(e for e in snap.engines if e.id == 1)
        assert not gone.alive
        assert job.task(lost_index).state is TaskState.LOST
        assert job.task(lost_index).engine == 1
        flag.touch()
        assert job.wait(timeout=60)
        assert job.poll().count(TaskState.OK) == 5
        assert job.retryable() == [lost_index]
        job.submit(job.retryable())
        assert job.wait(timeout=60)
        snap = job.poll()
        assert snap.succeeded and job.task(lost_index).engine == 0
        statuses = sorted(
            (r["attempt"], r["status"])
            for r in read_results(job.record.folder)
            if r["index"] == lost_index
        )
        assert statuses == [(1, "lost"), (2, "ok")]


def test_a_dead_hub_is_reported_while_its_schedulers_still_finish_the_job(
    runs_dir: str, tmp_path: Path
) -> None:
    """ipyparallel's controller is a hub process plus scheduler processes: with only the hub
    gone, tasks still run and report through the schedulers. Not "unreachable", but said."""
    spec = spec_from(
        tmp_path,
        """
        [jobs.j]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 40] }
        kwargs = { delay = 0.3, steps = 1 }
        """,
    )
    with start_local(2, timeout=60) as own:
        own.timeout = 2.0
        job = own.submit(spec, runs_dir=runs_dir)
        assert until(lambda: job.poll().count(TaskState.OK) >= 2)
        os.kill(own.cluster.controller.pid, signal.SIGKILL)
        notices = set()

        def finished() -> bool:
            snapshot = job.poll()
            notices.add(snapshot.message.split(" for ")[0])
            return snapshot.phase is Phase.FINISHED

        assert until(finished, timeout=60)
        assert job.poll().succeeded and len(read_results(job.record.folder)) == 40
        assert "the controller has not answered" in notices, notices
        assert not [n for n in notices if "unreachable" in n], notices


def test_controller_gone_is_reported_and_finished_results_are_on_disk(
    runs_dir: str, tmp_path: Path, cluster: ClientSession
) -> None:
    spec = spec_from(
        tmp_path,
        """
        [jobs.j]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 30] }
        kwargs = { delay = 0.3, steps = 1 }
        """,
    )
    with start_local(2, timeout=60) as own:
        own.timeout = 2.0
        job = own.submit(spec, runs_dir=runs_dir)
        assert until(lambda: job.poll().count(TaskState.OK) >= 4)
        # the whole controller: its hub and the scheduler processes it started
        hub = psutil.Process(own.cluster.controller.pid)
        for proc in [*hub.children(recursive=True), hub]:
            proc.kill()
        assert until(lambda: "controller unreachable" in job.poll().message, timeout=20)
        assert job.controller_lost
        snap = job.poll()
        assert snap.phase is not Phase.FINISHED
        recorded = read_results(job.record.folder)
        assert len(recorded) == snap.count(TaskState.OK) >= 4
        assert all(r["status"] == "ok" for r in recorded)
        spawned = list(own.processes)
    assert len(spawned) >= 3
    assert not [p.pid for p in spawned if alive(p)]  # no orphaned schedulers or engines
