"""`ippmon top`'s `R` (resubmit a job's failed tasks through the controller) and `a` (adopt a job
as a run record), and `ippmon adopt`: the parts that need no cluster first, then the real
thing with a separate process standing in for a notebook."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes import recorded_top as rt
from fakes.backends import FakeBackend, FakeSession, FakeWatch
from fakes.pilot import make_app, settle, until
from ipyparallel.controller.dictdb import DictDB
from ipyparallel.controller.hub import init_record
from ipyparallel.controller.sqlitedb import SQLiteDB
from test_clusterview import HubStandIn

from ippmon.adopt import (
    ADOPTED_ORIGIN,
    ALREADY,
    CULLED,
    NODB_RESUBMIT,
    AdoptError,
    Resubmitted,
    find_job,
    job_records,
    plan_resubmit,
    resubmit_failed,
    submission_order,
    write_adopted,
)
from ippmon.cli import main
from ippmon.clusterview import DICTDB, NODB
from ippmon.clusterwatch import ClusterWatcher
from ippmon.job import Job
from ippmon.model import ClusterInfo
from ippmon.records import SENT_FILE, load_sent, read_meta
from ippmon.runs import list_runs
from ippmon.ui.screens.confirm import AdoptJobConfirm, ResubmitJobConfirm
from ippmon.ui.screens.top import TopScreen

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# -- resubmit: which tasks, and why some cannot be ----------------------------------------------


def test_only_tasks_that_raised_are_resubmitted_and_culled_or_resubmitted_ones_are_named() -> None:
    records = [
        {"msg_id": "a", "submitted": at(0), "result_metadata": {"status": "error"}},
        {"msg_id": "b", "submitted": at(1), "result_metadata": {"status": "aborted"}},
        {"msg_id": "c", "submitted": at(2), "result_metadata": {"status": "error"}},
        {
            "msg_id": "d",
            "submitted": at(3),
            "result_metadata": {"status": "error"},
            "resubmitted": "x",
        },
        {"msg_id": "e", "submitted": None, "stdout": "output after its request was culled"},
    ]
    plan = plan_resubmit(["a", "b", "c", "d", "e", "f"], records)
    assert plan.send == ("a", "c")
    assert plan.skipped == ((2, CULLED), (1, ALREADY))  # e (a stub) and f are gone


class FakeHub:
    """`db_query` and `resubmit` as a DictDB controller answers them: `culled` msg_ids are gone
    (`cull_after_query`: they go between the look-up and the resubmit)."""

    def __init__(
        self,
        errors: list[str],
        *,
        culled: set[str] = frozenset(),
        cull_after_query: set[str] = frozenset(),
    ) -> None:  # noqa: E501
        self.errors = errors
        self.culled = set(culled)
        self.cull_after_query = set(cull_after_query)
        self.sent: list[list[str]] = []
        self.queries = 0

    def db_query(self, query: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
        self.queries += 1
        wanted = query["msg_id"]["$in"]
        out = [
            {"msg_id": m, "submitted": at(i), "result_metadata": {"status": "error"}}
            for i, m in enumerate(self.errors)
            if m in wanted and m not in self.culled
        ]
        self.culled |= self.cull_after_query
        return out

    def resubmit(self, msg_ids: list[str], block: bool) -> Any:
        assert msg_ids, "never an empty request"
        missing = [m for m in msg_ids if m in self.culled]
        if missing:
            raise RuntimeError(f"KeyError(No such msg(s): {missing!r})")
        self.sent.append(list(msg_ids))

        class Hub:
            pass

        ar = Hub()
        ar.msg_ids = [f"hub_1_{m}" for m in msg_ids]  # type: ignore[attr-defined]
        return ar


def test_resubmit_sends_what_the_hub_still_holds_and_says_how_many_could_not_be() -> None:
    hub = FakeHub(["m1", "m2", "m3"], culled={"m1"})
    outcome = resubmit_failed(hub, ["m1", "m2", "m3"], DICTDB)
    assert hub.sent == [["m2", "m3"]]
    assert outcome.new_ids == ("hub_1_m2", "hub_1_m3")
    assert outcome.text("fit") == f"resubmitted 2 failed tasks of fit; 1 could not be: {CULLED}"


def test_a_record_culled_between_the_look_up_and_the_resubmit_is_looked_up_again() -> None:
    hub = FakeHub(["m1", "m2"], cull_after_query={"m1"})
    outcome = resubmit_failed(hub, ["m1", "m2"], DICTDB)
    assert hub.sent == [["m2"]] and hub.queries == 2
    assert outcome.skipped == ((1, CULLED),)


def test_nodb_cannot_resubmit_and_is_not_asked_to() -> None:
    hub = FakeHub(["m1"])
    outcome = resubmit_failed(hub, ["m1"], NODB)
    assert (hub.sent, hub.queries) == ([], 0)
    assert (
        outcome.text("nb") == f"resubmitted 0 failed tasks of nb; 1 could not be: {NODB_RESUBMIT}"
    )


def test_nothing_failed_means_no_request_at_all() -> None:
    hub = FakeHub([])
    assert resubmit_failed(hub, [], DICTDB) == Resubmitted(0)
    assert (hub.sent, hub.queries) == ([], 0)


# -- adopt: which records, in which order -------------------------------------------------------

S = "5b1e0c2a-9d41-4c0e-8f5e-0a6c1d2e3f40"


def test_msg_ids_come_in_the_order_the_client_sent_them_ties_by_its_message_counter() -> None:
    records = [
        {"msg_id": f"{S}_77_12", "submitted": at(2)},
        {"msg_id": f"{S}_77_10", "submitted": at(1)},
        {"msg_id": f"{S}_77_11", "submitted": at(1)},  # same microsecond as _10: the counter says
        {"msg_id": f"{S}_77_9", "submitted": at(1)},
        {"msg_id": f"{S}_77_13", "submitted": None},  # a stub made from output: not a task
    ]
    assert submission_order(records) == [f"{S}_77_9", f"{S}_77_10", f"{S}_77_11", f"{S}_77_12"]


def test_a_jobs_records_are_its_labels_less_the_tasks_a_resubmit_made() -> None:
    records = [
        {"msg_id": "a", "label": "fit", "resubmitted": "hub_1"},
        {"msg_id": "b", "label": "fit"},
        {"msg_id": "c", "label": None},
        {"msg_id": "hub_1", "label": None},  # a's resubmission: not a task of the plain job
        {"msg_id": "hub_2", "label": None},  # one top resubmitted and showed as a job of its own
    ]
    grouped = {"hub_2": f"{S}/fit (resubmitted)"}
    ids = lambda job: [r["msg_id"] for r in job_records(records, job, grouped)]  # noqa: E731
    assert ids(f"{S}/fit") == ["a", "b"]
    assert ids(S) == ["c"]
    assert ids(f"{S}/fit (resubmitted)") == ["hub_2"]


def test_a_job_is_named_by_its_id_a_unique_prefix_or_the_short_form_status_prints() -> None:
    jobs = [f"{S}/fit", f"{S}/nb", "f0a1b2c3-d4e5"]
    assert find_job(jobs, f"{S}/fit") == f"{S}/fit"
    assert find_job(jobs, "f0a1") == "f0a1b2c3-d4e5"
    assert find_job(jobs, f"{S[:8]}/nb") == f"{S}/nb"
    with pytest.raises(AdoptError, match="matches 2 jobs"):
        find_job(jobs, S[:8])
    with pytest.raises(AdoptError, match="no job 'zz'"):
        find_job(jobs, "zz")


def adopt_three(runs_dir: str) -> str:
    run = write_adopted(
        runs_dir,
        [f"{S}_77_{n}" for n in range(3)],
        title="fit",
        session=S,
        label="fit",
        user="alice",
        cluster=ClusterInfo(cluster_id="nb", engines=2),
        first_seen=T0.timestamp(),
    )
    return run.run_id


def test_an_adopted_run_is_a_private_record_every_reader_takes(runs_dir: str) -> None:
    run_id = adopt_three(runs_dir)
    folder = Path(runs_dir) / run_id
    meta = read_meta(folder)  # checked as every run.json is
    assert (meta["inputs_count"], meta["spec"]["origin"], meta["adopted"]["user"]) == (
        3,
        ADOPTED_ORIGIN,
        "alice",
    )
    sent = load_sent(folder, 3).lines
    assert [(s["msg_id"], s["indices"], s["attempt"]) for s in sent] == [
        (f"{S}_77_{n}", [n], 1) for n in range(3)
    ]
    for path in (folder / "run.json", folder / SENT_FILE):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (summary,) = list_runs(runs_dir)
    assert (summary.run_id, summary.job, summary.state, summary.total) == (
        run_id,
        "fit",
        "detached",
        3,
    )
    assert summary.cluster == "default:nb"


def test_resume_refuses_an_adopted_run_in_one_line(runs_dir: str, capsys) -> None:  # noqa: ANN001
    run_id = adopt_three(runs_dir)
    assert main(["resume", run_id, "--runs-dir", runs_dir, "--headless"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "adopted" in err and "cannot send them again" in err
    assert main(["attach", run_id, "--runs-dir", runs_dir, "--retry-failed", "1"]) == 2


def test_an_adopted_run_read_back_cannot_be_sent_again(runs_dir: str) -> None:
    run_id = adopt_three(runs_dir)
    job = Job.restore(Path(runs_dir) / run_id, None, ClusterInfo())
    try:
        assert job.spec.origin == ADOPTED_ORIGIN and len(job.inputs) == 3
        with pytest.raises(RuntimeError, match="cannot send them again"):
            job.submit([0])
    finally:
        job.close()
    assert read_meta(Path(runs_dir) / run_id)["adopted"]["session"] == S  # kept on rewrite


# -- the watch, against ipyparallel's own task databases --------------------------------------


class ResubmittingHub(HubStandIn):
    """The stand-in hub of test_clusterview, resubmitting as `Hub.resubmit_task` does: the old
    header with a new msg_id (the hub's session's) and date, no metadata (so no label), the
    sender's session as `client_uuid`, and the old record pointing to the new one."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.resubmits = 0

    def resubmit(self, msg_ids: list[str], block: bool = False) -> Any:
        assert msg_ids and not block
        records = self.db.find_records({"msg_id": {"$in": msg_ids}}, ["header", "content"])
        found = {r["msg_id"]: r for r in records}
        if len(found) < len(msg_ids):
            raise RuntimeError(f"KeyError(No such msg(s): {set(msg_ids) - set(found)!r})")
        new_ids = []
        for old in msg_ids:
            self.resubmits += 1
            self.now += dt.timedelta(seconds=1)
            new = f"hubsession_42_{self.resubmits}"
            header = dict(found[old]["header"], msg_id=new, date=self.now)
            record = init_record({"header": header, "content": {}, "metadata": {}, "buffers": []})
            record.update(client_uuid=header["session"], queue="task")
            self.db.add_record(new, record)
            self.db.update_record(old, {"resubmitted": new})
            new_ids.append(new)

        class AsyncHubResult:
            msg_ids = new_ids

        return AsyncHubResult()


@pytest.fixture(params=["DictDB", "SQLiteDB"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> ResubmittingHub:
    if request.param == "DictDB":
        return ResubmittingHub(DictDB())
    return ResubmittingHub(SQLiteDB(location=str(tmp_path), filename="tasks.db", session="s"))


def test_the_watch_resubmits_a_jobs_errors_shows_them_apart_and_adopts_either_job(
    hub: ResubmittingHub, runs_dir: str
) -> None:
    for i in range(4):
        hub.submit(f"alice_7_{i}", "alice", label="fit")
    hub.submit("bob_9_0", "bob")
    for msg_id, status in [("alice_7_0", "ok"), ("alice_7_1", "error"), ("alice_7_2", "aborted")]:
        hub.finish(msg_id, 0, status)
    hub.finish("alice_7_3", 1, "error")
    hub.finish("bob_9_0", 1, "error")
    watch = ClusterWatcher(hub, records_every=0, start=False)  # type: ignore[arg-type]
    watch.poll()
    hub.db.drop_record("alice_7_3")  # culled since the watch read it
    outcome = watch.resubmit("alice/fit")
    assert outcome.text("fit") == f"resubmitted 1 failed task of fit; 1 could not be: {CULLED}"
    assert outcome.new_ids == ("hubsession_42_1",)
    snap = watch.poll()
    fit, rerun, bob = (snap.job(j) for j in ("alice/fit", "alice/fit (resubmitted)", "bob"))
    # a finished task the controller culled stays counted (the watch reads only what changes)
    assert fit is not None and (fit.submitted, fit.done, fit.failed) == (4, 1, 3)
    assert rerun is not None and (rerun.title, rerun.user, rerun.queued) == (
        "fit (resubmitted)",
        "user-of-alice",
        1,
    )
    assert bob is not None and (bob.submitted, bob.failed) == (1, 1)  # not touched
    assert watch.resubmit("alice/fit").text("fit") == (
        f"resubmitted 0 failed tasks of fit; 1 could not be: {CULLED}; 1 could not be: {ALREADY}"
    )
    info = ClusterInfo(cluster_id="c")
    runs = {
        job: watch.adopt(job, runs_dir, info)
        for job in ("alice/fit", "alice/fit (resubmitted)", "bob")
    }
    sent = {
        job: [s["msg_id"] for s in load_sent(Path(run.folder)).lines] for job, run in runs.items()
    }
    assert sent == {
        "alice/fit": ["alice_7_0", "alice_7_1", "alice_7_2"],
        "alice/fit (resubmitted)": ["hubsession_42_1"],
        "bob": ["bob_9_0"],
    }
    assert [runs[j].title for j in runs] == ["fit", "fit (resubmitted)", "bob"]
    with pytest.raises(AdoptError, match="no job nobody"):
        watch.adopt("nobody", runs_dir, info)


# -- the keys, on a recorded cluster ------------------------------------------------------------


def top_app(watch: FakeWatch):  # noqa: ANN201
    app = make_app(FakeBackend(FakeSession(watch=watch), target=True))
    app.top_only = True
    return app


async def test_R_asks_first_naming_the_job_then_says_what_was_resubmitted() -> None:
    watch = FakeWatch()
    app = top_app(watch)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        top = app.screen
        assert isinstance(top, TopScreen)
        await pilot.press("down", "down", "R")  # the notebook's job: 6 failed
        await settle(pilot)
        assert isinstance(app.screen, ResubmitJobConfirm)
        question = str(app.screen.query_one("#question").render())
        assert "6 failed tasks" in question and "bob" in question and rt.NOTEBOOK[:8] in question
        assert "NOT go back to the notebook" in question
        await pilot.press("y")
        await settle(pilot)
        notice = str(top.query_one("#notice").render())
        assert watch.resubmitted == [rt.NOTEBOOK]
        assert notice.startswith(f"Resubmitted 5 failed tasks of {rt.NOTEBOOK[:8]}; 1 could not")
        await pilot.press("up", "R")  # fit: nothing failed, nothing asked
        await settle(pilot)
        assert app.screen is top and watch.resubmitted == [rt.NOTEBOOK]
        assert "no failed task" in str(top.query_one("#notice").render())


async def test_R_and_a_on_a_nodb_controller_say_why_without_asking() -> None:
    from ippmon.topmodel import TopSnapshot

    snap = rt.top_snapshot(4)
    watch = FakeWatch(TopSnapshot(**{**snap.__dict__, "db": NODB}))
    app = top_app(watch)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        top = app.screen
        await pilot.press("R")
        await settle(pilot)
        assert app.screen is top and "NoDB" in str(top.query_one("#notice").render())
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is top and "NoDB" in str(top.query_one("#notice").render())
        assert (watch.resubmitted, watch.adopted) == ([], [])


async def test_a_asks_first_then_names_the_run_and_how_to_attach() -> None:
    watch = FakeWatch()
    app = top_app(watch)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        top = app.screen
        await pilot.press("down", "a")  # fit
        await settle(pilot)
        assert isinstance(app.screen, AdoptJobConfirm)
        await pilot.press("y")
        await settle(pilot)
        ((job_id, runs_dir, _cluster),) = watch.adopted
        assert (job_id, runs_dir) == (rt.FIT, app.runs_dir)
        notice = str(top.query_one("#notice").render())
        assert "Adopted fit as run 20260101-120000-fit (7 tasks)" in notice
        assert "ippmon attach 20260101-120000-fit --runs-dir" in notice


def test_the_resubmit_confirm(snap_compare) -> None:  # noqa: ANN001
    async def before(pilot) -> None:  # noqa: ANN001
        await settle(pilot)
        await pilot.press("down", "down", "R")
        await settle(pilot)

    assert snap_compare(top_app(FakeWatch()), terminal_size=(80, 24), run_before=before)


# -- on a real cluster --------------------------------------------------------------------------

NOTEBOOK = """
import json, sys, ipyparallel as ipp

def task(x, fixed):
    import os
    print(f"task {x} says hi", flush=True)
    if x % 3 == 0 and not os.path.exists(fixed):
        raise ValueError(f"item {x} fails")
    return x * 10

cluster_id, fixed, n, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rc = ipp.Client(cluster_id=cluster_id, timeout=30)
ar = rc.load_balanced_view().map_async(task, range(n), [fixed] * n, return_exceptions=True,
                                       label=label)
print(json.dumps({"session": rc.session.session, "msg_ids": ar.msg_ids}), flush=True)
results = ar.get(timeout=240)
ar.wait_for_output(timeout=60)
seen = [
    {"status": "error" if isinstance(r, Exception) else "ok",
     "result": None if isinstance(r, Exception) else r,
     "ename": getattr(r, "ename", None), "stdout": md["stdout"], "engine": md["engine_id"]}
    for r, md in zip(results, ar.metadata)
]
print(json.dumps(seen), flush=True)
rc.close()
"""


@dataclass(frozen=True)
class Notebook:
    """A notebook's finished job: what it sent, what its AsyncResult saw, and the file whose
    existence makes its failing tasks succeed when they run again."""

    session: str
    msg_ids: list[str]
    seen: list[dict[str, Any]]
    fixed: Path

    @property
    def job_id(self) -> str:
        return f"{self.session}/{LABEL}"


LABEL = "nbjob"


@pytest.fixture(scope="module")
def notebook(cluster, tmp_path_factory: pytest.TempPathFactory) -> Notebook:  # noqa: ANN001
    """Run the stand-in notebook once, to its end: 6 tasks, items 0 and 3 fail (both tests of
    this module read the same job: one adopts it, the other resubmits its failures)."""
    cluster.client.wait_for_engines(2, timeout=60)  # as the `client` fixture does
    fixed = tmp_path_factory.mktemp("notebook") / "fixed"
    proc = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, cluster.info.cluster_id, str(fixed), "6", LABEL],
        capture_output=True,
        text=True,
        timeout=360,
    )
    assert proc.returncode == 0, proc.stderr
    sent, seen = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert [s["status"] for s in seen] == ["error", "ok", "ok", "error", "ok", "ok"]
    return Notebook(sent["session"], sent["msg_ids"], seen, fixed)


@pytest.mark.cluster
async def test_R_in_top_reruns_a_notebooks_failed_tasks_through_the_hub(
    cluster,  # noqa: ANN001
    client,  # noqa: ANN001 - the fixture waits for both engines
    notebook: Notebook,
) -> None:
    """The notebook's job failed 2 of 6; the cause is fixed; `R` `y` in top: the hub sends those
    2 again, they succeed, and top shows them as "<job> (resubmitted)". The hub's records say
    what the notebook never sees: the old tasks point to the new ones, which carry the
    notebook's session and user but no label."""
    from ippmon.cluster_process import RemoteBackend
    from ippmon.connect import ConnectOptions
    from ippmon.jobspec import Catalog
    from ippmon.ui import IppmonApp

    remote = RemoteBackend(ConnectOptions(cluster_id=cluster.info.cluster_id, timeout=60))
    app = IppmonApp(remote, Catalog({}), top=True, poll_interval=0.25)
    job_id = notebook.job_id
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, TopScreen), timeout=30)
            top = app.screen
            assert isinstance(top, TopScreen)

            def counted() -> bool:
                job = top.snapshot.job(job_id) if top.snapshot else None
                return job is not None and (job.done, job.failed) == (4, 2)

            await until(pilot, counted, timeout=30)
            notebook.fixed.touch()
            row = [j.id for j in top.snapshot.jobs].index(job_id)  # type: ignore[union-attr]
            await pilot.press("home", *["down"] * row, "R")
            await until(pilot, lambda: isinstance(app.screen, ResubmitJobConfirm), timeout=5)
            await pilot.press("y")
            notice = top.query_one("#notice")
            said = f"Resubmitted 2 failed tasks of {LABEL}"
            try:
                await until(pilot, lambda: str(notice.render()) == said, timeout=15)
            except TimeoutError:
                raise AssertionError(str(notice.render())) from None
            rerun = f"{job_id} (resubmitted)"

            def rerun_done() -> bool:
                job = top.snapshot.job(rerun) if top.snapshot else None
                return job is not None and (job.done, job.failed, job.submitted) == (2, 0, 2)

            await until(pilot, rerun_done, timeout=20)
            original = top.snapshot.job(job_id)  # type: ignore[union-attr]
            assert original is not None and (original.done, original.failed) == (4, 2)
            await pilot.press("R")  # again: both were resubmitted already
            await until(pilot, lambda: isinstance(app.screen, ResubmitJobConfirm), timeout=5)
            await pilot.press("y")
            again = f"Resubmitted 0 failed tasks of {LABEL}; 2 could not be: already resubmitted"
            await until(pilot, lambda: str(notice.render()) == again, timeout=15)
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, timeout=15)
    finally:
        remote.close()
    failed = [notebook.msg_ids[0], notebook.msg_ids[3]]
    old = client.db_query({"msg_id": {"$in": failed}}, keys=["resubmitted"])
    new_ids = [r["resubmitted"] for r in old]
    assert len(new_ids) == 2 and all(new_ids)
    new = client.db_query(
        {"msg_id": {"$in": new_ids}},
        keys=["header", "client_uuid", "label", "result_metadata", "stdout"],
    )
    assert len(new) == 2
    for rec in new:
        assert rec["client_uuid"] == rec["header"]["session"] == notebook.session
        assert rec["label"] is None  # the hub does not send a task's metadata again
        assert rec["result_metadata"]["status"] == "ok"
    assert sorted(r["stdout"] for r in new) == ["task 0 says hi\n", "task 3 says hi\n"]


@pytest.mark.cluster
def test_ippmon_adopt_then_attach_and_export_give_what_the_notebook_saw(
    tmp_path: Path,
    cluster,  # noqa: ANN001
    client,  # noqa: ANN001
    notebook: Notebook,
    runs_dir: str,
    capsys,  # noqa: ANN001
) -> None:
    """`ippmon adopt` on the job as `ippmon status` prints it, then `attach` (which fetches
    every result from the controller) and `export`: each task's status, result, error, output
    and engine are what the notebook's own AsyncResult saw, in its order."""
    connection = [
        "--cluster-id",
        cluster.info.cluster_id,
        "--runs-dir",
        runs_dir,
        "--timeout",
        "60",
    ]
    short = f"{notebook.session[:8]}/{LABEL}"  # as `ippmon status` prints it
    assert main(["adopt", short, *connection]) == 0
    out, err = capsys.readouterr()
    run_id = out.strip()
    assert f"adopted {LABEL} (6 tasks) as run {run_id}" in err
    assert f"ippmon attach {run_id} --runs-dir" in err
    folder = Path(runs_dir) / run_id
    assert [s["msg_id"] for s in load_sent(folder).lines] == notebook.msg_ids
    assert main(["attach", run_id, "--headless", *connection]) == 1  # some failed
    capsys.readouterr()
    target = tmp_path / "out.jsonl"
    export = ["export", run_id, "--format", "jsonl", "-o", str(target), "--runs-dir", runs_dir]
    assert main(export) == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    got = [
        {
            "status": r["status"],
            "result": json.loads(r["result"]),
            "ename": r["ename"],
            "stdout": r["stdout"],
            "engine": r["engine"],
        }
        for r in rows
    ]
    assert got == notebook.seen
    assert [r["index"] for r in rows] == list(range(6))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    (summary,) = list_runs(runs_dir)
    assert (summary.state, summary.counts["ok"], summary.counts["error"]) == ("finished", 4, 2)
