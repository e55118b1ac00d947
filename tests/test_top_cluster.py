"""`ippmon top` on a real cluster, through its cluster process: another client's job (a
separate process, as a notebook would be) shows with its label, user and final counts, and
every line its tasks print reaches the output pane exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.pilot import until

from ippmon import _compat
from ippmon.cluster_process import RemoteBackend
from ippmon.connect import ClientSession, ConnectOptions
from ippmon.jobspec import Catalog
from ippmon.topmodel import SHORT_SESSION
from ippmon.ui import IppmonApp
from ippmon.ui.screens.top import TopScreen
from ippmon.ui.widgets.output_log import OutputLog

SUBMITTER = Path(__file__).with_name("status_submitter.py")


@pytest.mark.cluster
async def test_top_shows_another_clients_job_its_final_counts_and_each_output_line_once(
    tmp_path: Path,
    cluster: ClientSession,
    client,  # noqa: ANN001 - the fixture waits for both engines
) -> None:
    remote = RemoteBackend(ConnectOptions(cluster_id=cluster.info.cluster_id, timeout=10))
    app = IppmonApp(remote, Catalog({}), top=True, poll_interval=0.25)
    flag = tmp_path / "go"
    n = 7  # items 0, 3, 6 fail
    submitter = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, TopScreen), timeout=30)
            top = app.screen
            assert isinstance(top, TopScreen)
            await until(pilot, lambda: top.snapshot is not None, timeout=30)  # watching now
            submitter = subprocess.Popen(
                [sys.executable, str(SUBMITTER), cluster.info.cluster_id, str(flag), str(n), "nb"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert submitter.stdout is not None
            sent = json.loads(submitter.stdout.readline() or "{}")
            assert sent, submitter.stderr.read() if submitter.stderr else ""
            job_id = f"{sent['session']}/nb"

            def both_engines_run_it() -> bool:
                snap = top.snapshot
                return snap is not None and [e.job for e in snap.engines] == [job_id, job_id]

            await until(pilot, both_engines_run_it, timeout=30)
            flag.touch()
            out, err = submitter.communicate(timeout=60)
            final = json.loads(out.strip().splitlines()[-1])
            assert final == {"tasks": n, "done": 4, "failed": 3}, err

            def finished() -> bool:
                job = top.snapshot.job(job_id) if top.snapshot else None
                return job is not None and (job.done, job.failed) == (4, 3)

            await until(pilot, finished, timeout=15)
            job = top.snapshot.job(job_id)  # type: ignore[union-attr]
            assert job is not None
            assert (job.title, job.user, job.submitted) == ("nb", sent["user"], final["tasks"])
            assert (job.queued, job.running) == (0, 0)
            log = top.query_one(OutputLog)

            def every_line_shown() -> bool:
                texts = [str(line) for line in log.lines]
                return sum(f"] task {x} waiting" in t for t in texts for x in range(n)) >= n

            await until(pilot, every_line_shown, timeout=10)
            texts = [str(line) for line in log.lines]
            # "nb", or "nb · <its session>" while an earlier test's submitter's "nb" job is
            # in the records too (a line keeps the name its job had when it was shown)
            names = (" nb]", f" nb · {job.session[:SHORT_SESSION]}]")
            for x in range(n):
                mine = [t for t in texts if t.endswith(f"] task {x} waiting")]
                assert len(mine) == 1, (x, texts)
                assert mine[0].startswith("[e") and any(name in mine[0] for name in names)
            snap = top.snapshot
            assert snap is not None and snap.done >= 4 and snap.failed >= 3
            assert sum(e.done for e in snap.engines) >= 4
            assert [e.state for e in snap.engines] == ["idle", "idle"]
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, timeout=15)
    finally:
        flag.touch()
        if submitter is not None and submitter.poll() is None:
            submitter.kill()
            submitter.wait()
        remote.close()
    assert app.return_value == 0


@pytest.mark.cluster
def test_ippmon_labels_its_tasks_so_top_can_name_its_jobs(client) -> None:  # noqa: ANN001
    view = client.load_balanced_view()
    assert _compat.label_view(view, "ippmon:squares")
    ar = view.apply_async(abs, -1)
    assert ar.get(timeout=30) == 1
    (record,) = client.db_query({"msg_id": {"$eq": ar.msg_ids[0]}}, keys=["label"])
    assert record["label"] == "ippmon:squares"


ABORT_SUBMITTER = """
import json, sys, ipyparallel as ipp

def task(x, flag):
    import os, time
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.01)
    return x

cluster_id, flag, n, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rc = ipp.Client(cluster_id=cluster_id, timeout=30)
ar = rc.load_balanced_view().map_async(task, range(n), [flag] * n, return_exceptions=True,
                                       label=label)
print(json.dumps({"session": rc.session.session}), flush=True)
results = ar.get(timeout=90)
names = [type(r).__name__ for r in results]
interrupted = sum(getattr(r, "ename", "") == "KeyboardInterrupt" for r in results)
print(json.dumps({"ok": sum(not isinstance(r, Exception) for r in results),
                  "aborted": names.count("TaskAborted"), "interrupted": interrupted}), flush=True)
rc.close()
"""


@pytest.mark.cluster
async def test_x_and_k_abort_and_interrupt_one_clients_job_and_no_other_clients(
    tmp_path: Path,
    cluster: ClientSession,
    client,  # noqa: ANN001 - the fixture waits for both engines
) -> None:
    """Two notebooks' jobs; `x` then `y` on the first: its tasks that had not started come back
    to it as aborted; `K` then `y`: its running ones are interrupted; the second notebook's
    tasks all run."""
    remote = RemoteBackend(ConnectOptions(cluster_id=cluster.info.cluster_id, timeout=10))
    app = IppmonApp(remote, Catalog({}), top=True, poll_interval=0.25)
    flag = tmp_path / "go"
    procs: list[subprocess.Popen] = []

    def submit(n: int, label: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-c", ABORT_SUBMITTER, cluster.info.cluster_id, str(flag), str(n)]
            + [label],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        return f"{json.loads(proc.stdout.readline())['session']}/{label}"

    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, TopScreen), timeout=30)
            top = app.screen
            assert isinstance(top, TopScreen)
            await until(pilot, lambda: top.snapshot is not None, timeout=30)
            first = submit(6, "first")

            def both_engines_run_first() -> bool:
                snap = top.snapshot
                return snap is not None and [e.job for e in snap.engines] == [first, first]

            await until(pilot, both_engines_run_first, timeout=30)
            second = submit(4, "second")

            def both_jobs_waiting() -> bool:
                snap = top.snapshot
                jobs = [snap.job(first), snap.job(second)] if snap else [None, None]
                return all(
                    j is not None and j.queued + j.running == n for j, n in zip(jobs, (6, 4))
                )

            await until(pilot, both_jobs_waiting, timeout=30)
            # earlier tests' jobs are in the controller's records too: oldest first, ours last
            row = [j.id for j in top.snapshot.jobs].index(first)  # type: ignore[union-attr]
            await pilot.press("home", *["down"] * row, "x")
            await pilot.press("y")
            notice = top.query_one("#notice")
            await until(pilot, lambda: "abort 4 tasks" in str(notice.render()), timeout=15)
            await pilot.press("K")  # and its two running ones: interrupted
            await pilot.press("y")
            try:
                await until(pilot, lambda: "Sent SIGINT to e0, e1" in str(notice.render()), 15)
            except TimeoutError:
                raise AssertionError(str(notice.render())) from None
            flag.touch()
            outs = [p.communicate(timeout=60)[0] for p in procs]
            counts = [json.loads(out.strip().splitlines()[-1]) for out in outs]
            assert counts == [
                {"ok": 0, "aborted": 4, "interrupted": 2},
                {"ok": 4, "aborted": 0, "interrupted": 0},
            ]
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, timeout=15)
    finally:
        flag.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        remote.close()
