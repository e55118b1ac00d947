"""`ippmon top` and `ippmon status` on real controllers with each task database other than the
default (the session cluster's DictDB: tests/test_top_cluster.py, tests/test_status.py): a
private cluster of one engine per backend, a separate process standing in for a notebook
(tests/status_submitter.py: a load-balanced map of printing tasks, some failing, and a
DirectView apply), `status --json` run as a user runs it and the top TUI through its cluster
process.

SQLiteDB keeps every record: the jobs' counts end equal to the submitter's own results, through
an engine started after top and an engine killed mid-task. NoDB keeps none: both say so, and
what the engines say (busy, the task, its output, done and failed) is still live."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fakes.pilot import until
from test_cli import run

from ippmon.cluster_process import RemoteBackend
from ippmon.clusterview import LIMIT_NODB
from ippmon.connect import ConnectOptions, _cluster_processes, start_checked, stop_cluster
from ippmon.jobspec import Catalog
from ippmon.ui import IppmonApp
from ippmon.ui.screens.top import TopScreen
from ippmon.ui.widgets.output_log import OutputLog
from ippmon.ui.widgets.top_panels import Limits, TopStatus

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SUBMITTER = Path(__file__).with_name("status_submitter.py")


def start_private(db: str) -> Any:
    """A cluster of one engine whose controller runs `--{db}`, listening on all its ports (the
    two start at once: one could take a port the other chose)."""
    import ipyparallel as ipp

    cluster, client = start_checked(
        lambda: ipp.Cluster(
            n=1, cluster_id=f"ippmon-test-{db}", controller_args=[f"--{db}"], log_level=40
        ),
        1,
        timeout=60,
    )
    client.close()
    return cluster


@pytest.fixture(scope="module")
def clusters() -> Iterator[dict[str, Any]]:
    """Both private clusters, started side by side (half the wait), stopped after the module:
    every process killed first (nothing of theirs is needed; a polite stop cost 0.1-9 s)."""
    import psutil

    with ThreadPoolExecutor(2) as pool:
        futures = {db: pool.submit(start_private, db) for db in ("sqlitedb", "nodb")}
    try:
        yield {db: future.result() for db, future in futures.items()}
    finally:
        for future in futures.values():
            if future.exception() is None:
                cluster = future.result()
                procs = _cluster_processes(cluster)
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
                stop_cluster(cluster, known=procs)


@pytest.fixture()
def sqlitedb_cluster(clusters: dict[str, Any]) -> Any:
    return clusters["sqlitedb"]


@pytest.fixture()
def nodb_cluster(clusters: dict[str, Any]) -> Any:
    return clusters["nodb"]


def status_json(cluster_id: str) -> dict:
    proc = run(["status", "--json", "--cluster-id", cluster_id], timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def submit(cluster_id: str, flags: Path, n: int) -> tuple[subprocess.Popen, dict]:
    """The notebook: `n` map tasks labelled `nb`, blocked until `flags/map` exists, then (once
    they run) a DirectView apply on every engine, blocked until `flags/direct` exists."""
    args = [str(flags / "map"), str(n), "nb", "--direct", str(flags / "direct")]
    proc = subprocess.Popen(
        [sys.executable, str(SUBMITTER), cluster_id, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    sent = json.loads(proc.stdout.readline() or "{}")
    assert sent, proc.stderr.read() if proc.stderr else ""
    return proc, sent


def submitted_results(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def counts(job: Any) -> dict[str, int]:
    """A job's counts (a TopJob or a `status --json` job) in the submitter's terms."""
    get = job.get if isinstance(job, dict) else lambda k: getattr(job, k)
    return {"tasks": get("submitted"), "done": get("done"), "failed": get("failed")}


def json_job(status: dict, job_id: str) -> dict | None:
    return next((j for j in status["jobs"] if j["id"] == job_id), None)


async def wait(pilot: Any, top: TopScreen, condition: Any, timeout: float) -> None:
    """`until`, saying what top showed when the condition is not reached."""
    try:
        await until(pilot, condition, timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"{condition.__name__} not reached: {top.snapshot}") from None


def output_texts(top: TopScreen) -> list[str]:
    return [str(line) for line in top.query_one(OutputLog).lines]


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_sqlitedb_top_and_status_count_a_notebooks_jobs_through_an_engine_added_and_killed(
    tmp_path: Path, sqlitedb_cluster: Any
) -> None:
    """An engine started while top watches appears (panel and header). The notebook's direct
    apply runs on both engines, then its map; one engine is killed mid-task: it shows as gone
    and its task counts as failed at once, as the submitter gets it (EngineError). At the end
    both jobs' counts equal the submitter's results, in top and in `status --json`."""
    cluster = sqlitedb_cluster
    cluster_id = cluster.cluster_id
    remote = RemoteBackend(ConnectOptions(cluster_id=cluster_id, timeout=10))
    app = IppmonApp(remote, Catalog({}), top=True, poll_interval=0.25)
    n = 4  # items 0 and 3 raise
    submitter = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, TopScreen), timeout=30)
            top = app.screen
            assert isinstance(top, TopScreen)
            await until(pilot, lambda: top.snapshot is not None, timeout=30)

            def engines() -> list[tuple[int, str]]:
                snap = top.snapshot
                return [(e.id, e.state) for e in snap.engines] if snap else []

            def engines_run(job_id: str, msg_ids: list[str]) -> bool:
                snap = top.snapshot
                return snap is not None and all(
                    e.state == "busy" and e.job == job_id and e.msg_id in msg_ids
                    for e in snap.engines
                )

            assert engines() == [(0, "idle")] and "(1 engine," in top.sub_title
            first_set = set(cluster.engines)
            await asyncio.to_thread(cluster.start_engines_sync, 1)
            (later,) = set(cluster.engines) - first_set

            def engine_1_appears() -> bool:
                return engines() == [(0, "idle"), (1, "idle")] and "(2 engines," in top.sub_title

            await wait(pilot, top, engine_1_appears, timeout=30)
            assert "0 busy 2 idle" in str(top.query_one(TopStatus).render())

            submitter, sent = submit(cluster_id, tmp_path, n)
            nb, direct = f"{sent['session']}/nb", sent["session"]

            def both_run_nb() -> bool:
                return engines_run(nb, sent["msg_ids"])

            await wait(pilot, top, both_run_nb, timeout=30)
            running = {e.id: e.msg_id for e in top.snapshot.engines}  # type: ignore[union-attr]
            await asyncio.to_thread(cluster.signal_engines_sync, signal.SIGKILL, later)

            def killed_shows() -> bool:
                snap = top.snapshot
                j, d = (snap.job(nb), snap.job(direct)) if snap else (None, None)
                return (
                    engines() == [(0, "busy"), (1, "gone")]
                    and j is not None
                    and d is not None
                    and (j.queued, j.running, j.failed, d.running, d.failed) == (n - 2, 1, 1, 1, 1)
                )

            await wait(pilot, top, killed_shows, timeout=15)
            assert "(1 engine," in top.sub_title
            assert " 1 gone" in str(top.query_one(TopStatus).render())
            assert top.snapshot is not None and top.snapshot.engines[0].msg_id == running[0]

            # a status taken now (meanwhile the scheduler waits 5 s to fail the killed task)
            seen = await asyncio.to_thread(status_json, cluster_id)
            assert seen["db"] == "SQLiteDB"
            assert [(e["id"], e["state"], e["job"], e["msg_id"]) for e in seen["engines"]] == [
                (0, "busy", nb, running[0]),
                (1, "gone", None, None),
            ]
            job, dv = json_job(seen, nb), json_job(seen, direct)
            assert job is not None and dv is not None, seen["jobs"]
            assert (job["label"], job["submitted"], job["queued"], job["running"]) == (
                "nb",
                n,
                n - 2,
                1,
            )
            # "running" is "handed to an engine": a direct request is, at once, and waits there
            assert (dv["label"], dv["submitted"], dv["running"], dv["failed"]) == (None, 2, 1, 1)
            assert (job["failed"], job["done"], dv["done"]) == (1, 0, 0)

            (tmp_path / "map").touch()

            def e0_runs_direct() -> bool:
                snap = top.snapshot
                return snap is not None and (
                    snap.engines[0].job,
                    snap.engines[0].msg_id in sent["direct_msg_ids"],
                ) == (direct, True)

            await wait(pilot, top, e0_runs_direct, timeout=15)
            (tmp_path / "direct").touch()
            final = await asyncio.to_thread(submitted_results, submitter)
            # the killed engine's tasks failed with EngineError: the one it ran, the one behind
            assert final["errors"].get("EngineError") == 2, final
            assert final["direct"] == {"tasks": 2, "done": 1, "failed": 1}
            mapped = {k: final[k] for k in ("tasks", "done", "failed")}

            def finished() -> bool:
                snap = top.snapshot
                j, d = (snap.job(nb), snap.job(direct)) if snap else (None, None)
                return (
                    j is not None
                    and d is not None
                    and (counts(j), counts(d))
                    == (
                        mapped,
                        final["direct"],
                    )
                )

            later_status = asyncio.create_task(asyncio.to_thread(status_json, cluster_id))
            await wait(pilot, top, finished, timeout=15)
            snap = top.snapshot
            assert snap is not None
            for job_id in (nb, direct):
                j = snap.job(job_id)
                assert j is not None and (j.queued, j.running) == (0, 0)
            assert engines() == [(0, "idle"), (1, "gone")]

            def every_line_shown() -> bool:
                return sum(t.endswith(" waiting") for t in output_texts(top)) >= n + 1

            await wait(pilot, top, every_line_shown, timeout=10)
            texts = output_texts(top)
            for x in range(n):  # the killed engine's task printed before it died: once too
                assert len([t for t in texts if t.endswith(f" nb] task {x} waiting")]) == 1, texts
            mine = [t for t in texts if t.endswith("direct task waiting")]
            assert mine == [f"[e0 {direct[:8]}] direct task waiting"], texts  # e1 died first

            after = await later_status  # taken meanwhile, once every result was back
            job, dv = json_job(after, nb), json_job(after, direct)
            assert job is not None and dv is not None
            assert (counts(job), counts(dv)) == (mapped, final["direct"])
            assert [(e["id"], e["state"]) for e in after["engines"]] == [(0, "idle"), (1, "gone")]
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, timeout=15)
    finally:
        for name in ("direct", "map"):
            (tmp_path / name).touch()
        stop(submitter)
        remote.close()
    assert app.return_value == 0


async def test_nodb_top_and_status_say_there_is_no_task_history_and_follow_the_engine(
    tmp_path: Path, nodb_cluster: Any
) -> None:
    """No records: no jobs, and both say why; the engine's task (the map's, then the direct
    one behind it), its session, its output and top's done/failed totals come from the engine's own
    messages and match the submitter's results."""
    cluster_id = nodb_cluster.cluster_id
    remote = RemoteBackend(ConnectOptions(cluster_id=cluster_id, timeout=10))
    app = IppmonApp(remote, Catalog({}), top=True, poll_interval=0.25)
    n = 3  # item 0 raises
    submitter = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, TopScreen), timeout=30)
            top = app.screen
            assert isinstance(top, TopScreen)
            await until(pilot, lambda: top.snapshot is not None, timeout=30)
            snap = top.snapshot
            assert snap is not None and (snap.db, snap.limits) == ("NoDB", (LIMIT_NODB,))
            assert "no task history" in str(top.query_one(Limits).render())

            submitter, sent = submit(cluster_id, tmp_path, n)
            session = sent["session"]

            def engine_runs(msg_ids: list[str]) -> bool:
                snap = top.snapshot
                return (
                    snap is not None
                    and [(e.state, e.job) for e in snap.engines] == [("busy", session)]
                    and snap.engines[0].msg_id in msg_ids
                )

            def runs_map() -> bool:
                return engine_runs(sent["msg_ids"])

            await wait(pilot, top, runs_map, timeout=30)
            seen = await asyncio.to_thread(status_json, cluster_id)
            assert (seen["db"], seen["jobs"], seen["limits"]) == ("NoDB", [], [LIMIT_NODB])
            assert seen["engines"] == [{"id": 0, "state": "busy", "msg_id": None, "job": None}]
            assert seen["unassigned"] == n - 1
            (tmp_path / "map").touch()  # its first task ends; the direct one behind it runs

            def runs_direct() -> bool:
                return engine_runs(sent["direct_msg_ids"])

            await wait(pilot, top, runs_direct, timeout=30)
            assert top.snapshot is not None and top.snapshot.jobs == ()
            (tmp_path / "direct").touch()
            final = await asyncio.to_thread(submitted_results, submitter)
            assert final["errors"] == {"ValueError": 1}, final
            done = final["done"] + final["direct"]["done"]
            failed = final["failed"] + final["direct"]["failed"]

            def totals_match() -> bool:
                snap = top.snapshot
                return snap is not None and (snap.done, snap.failed, snap.engines[0].state) == (
                    done,
                    failed,
                    "idle",  # as the queue counts say too: asked once a second
                )

            await wait(pilot, top, totals_match, timeout=15)
            snap = top.snapshot
            assert snap is not None
            (engine,) = snap.engines
            assert (engine.state, engine.done, engine.failed) == ("idle", done, failed)
            assert snap.jobs == () and snap.unassigned == 0

            def every_line_shown() -> bool:
                return sum(t.endswith(" waiting") for t in output_texts(top)) >= n + 1

            await wait(pilot, top, every_line_shown, timeout=10)
            texts = output_texts(top)
            for text in [f"task {x} waiting" for x in range(n)] + ["direct task waiting"]:
                assert texts.count(f"[e0 {session[:8]}] {text}") == 1, texts
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, timeout=15)
    finally:
        for name in ("direct", "map"):
            (tmp_path / name).touch()
        stop(submitter)
        remote.close()
    assert app.return_value == 0
