"""`ClusterObserver` polled again and again, against ipyparallel's own task databases (DictDB,
SQLiteDB, NoDB) behind a stand-in client: the same queries, the same quirks, no controller."""

from __future__ import annotations

import datetime as dt
import operator
from pathlib import Path
from typing import Any

import pytest
from ipyparallel.controller.dictdb import DictDB, NoDB
from ipyparallel.controller.hub import init_record
from ipyparallel.controller.sqlitedb import SQLiteDB

from ippmon.clusterview import LIMIT_NODB, ClusterObserver

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
ENGINES = {0: "uuid-0", 1: "uuid-1"}


class HubStandIn:
    """What the observer asks of a Client, answered from a real ipyparallel task database the
    way the hub fills it (`Hub.save_task_request`, `save_task_destination`, `save_task_result`)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self._engines = dict(ENGINES)
        self.ids = sorted(ENGINES)
        self.queues: dict[Any, Any] = {0: {"queue": 0, "completed": 0, "tasks": 0}}
        self.queues[1] = dict(self.queues[0])
        self.queues["unassigned"] = 0
        self.now = T0
        self.queries: list[dict] = []

    # the client's side
    def queue_status(self) -> dict[Any, Any]:
        return self.queues

    def db_query(self, query: dict, keys: list[str] | None = None) -> list[dict]:
        self.queries.append(query)
        return self.db.find_records(query, keys)

    # the hub's side
    def submit(self, msg_id: str, session: str, label: str | None = None) -> None:
        self.now += dt.timedelta(seconds=1)
        header = {
            "msg_id": msg_id,
            "session": session,
            "username": f"user-of-{session}",
            "date": self.now,
            "msg_type": "apply_request",
        }
        msg = {"header": header, "content": {}, "metadata": {"label": label}, "buffers": []}
        record = init_record(msg)
        record.update(client_uuid=session, queue="task")
        self.db.add_record(msg_id, record)

    def assign(self, msg_id: str, engine: int) -> None:
        self.db.update_record(msg_id, {"engine_uuid": ENGINES[engine]})

    def finish(self, msg_id: str, engine: int, status: str) -> None:
        self.now += dt.timedelta(seconds=1)
        self.db.update_record(
            msg_id,
            {
                "engine_uuid": ENGINES[engine],
                "started": self.now,
                "completed": self.now,
                "received": self.now,
                "result_metadata": {"status": status},
            },
        )


class _Answered:
    """A future already resolved, as `Client._send` returns one."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply

    def wait(self) -> None:
        pass

    def result(self) -> dict[str, Any]:
        return self.reply


class ClockedHub(HubStandIn):
    """Also what a real client gives: the hub's clock on its queue answers (the reply header's
    `date`) and its ordered history of msg_ids (`hub_history`)."""

    _query_stream = "query"

    def _send(self, stream: str, msg_type: str, content: dict[str, Any]) -> _Answered:
        assert (stream, msg_type) == ("query", "queue_request")
        counts = {str(k): v for k, v in self.queues.items()}
        header = {"date": self.now.isoformat()}  # the client leaves it a string
        return _Answered({"header": header, "content": {"status": "ok", **counts}})

    def hub_history(self) -> list[str]:
        return list(self.db.get_history())


def counts(snapshot: Any, session: str) -> tuple[int, int, int, int, int]:
    (job,) = [j for j in snapshot.jobs if j.session == session]
    return job.submitted, job.queued, job.running, job.done, job.failed


@pytest.fixture(params=["DictDB", "SQLiteDB"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> HubStandIn:
    if request.param == "DictDB":
        return HubStandIn(DictDB())
    return HubStandIn(SQLiteDB(location=str(tmp_path), filename="tasks.db", session="s"))


@pytest.fixture(params=["DictDB", "SQLiteDB"])
def clocked_hub(request: pytest.FixtureRequest, tmp_path: Path) -> ClockedHub:
    if request.param == "DictDB":
        return ClockedHub(DictDB())
    return ClockedHub(SQLiteDB(location=str(tmp_path), filename="tasks.db", session="s"))


def test_polls_follow_tasks_from_queued_to_running_to_done_or_failed(hub: HubStandIn) -> None:
    for i in range(4):
        hub.submit(f"a{i}", "alice", label="fit")
    hub.submit("b0", "bob")
    hub.assign("a0", 0)
    observer = ClusterObserver(hub, clock=lambda: 0.0)  # type: ignore[arg-type]
    snap = observer.poll()
    assert snap.db == type(hub.db).__name__
    assert counts(snap, "alice") == (4, 3, 1, 0, 0)
    assert counts(snap, "bob") == (1, 1, 0, 0, 0)
    (fit,) = [j for j in snap.jobs if j.label == "fit"]
    assert fit.id == "alice/fit" and fit.user == "user-of-alice"
    assert [(e.id, e.state, e.msg_id, e.job) for e in snap.engines] == [
        (0, "busy", "a0", "alice/fit"),
        (1, "idle", None, None),
    ]

    hub.finish("a0", 0, "ok")
    hub.assign("a1", 0)
    hub.assign("b0", 1)
    hub.submit("a4", "alice", label="fit")
    hub.finish("a4", 1, "error")  # sent and finished between two polls
    snap = observer.poll()
    assert counts(snap, "alice") == (5, 2, 1, 1, 1)
    assert counts(snap, "bob") == (1, 0, 1, 0, 0)
    assert [e.msg_id for e in snap.engines] == ["a1", "b0"]

    for mid, engine in (("a1", 0), ("b0", 1), ("a2", 0), ("a3", 1)):
        hub.finish(mid, engine, "ok")
    snap = observer.poll()
    assert counts(snap, "alice") == (5, 0, 0, 4, 1)
    assert counts(snap, "bob") == (1, 0, 0, 1, 0)
    assert [e.state for e in snap.engines] == ["idle", "idle"]
    assert observer.vanished == 0
    assert all(q for q in hub.queries), "SQLiteDB rejects an empty query"


def test_pending_tasks_the_dictdb_culls_leave_the_counts_and_are_counted_as_vanished() -> None:
    hub = HubStandIn(DictDB(record_limit=10, cull_fraction=0.5))
    for i in range(10):
        hub.submit(f"t{i}", "carol")
    observer = ClusterObserver(hub)  # type: ignore[arg-type]
    assert counts(observer.poll(), "carol") == (10, 10, 0, 0, 0)
    hub.finish("t9", 0, "ok")
    hub.submit("t10", "carol")  # the 11th record: DictDB culls the 5 oldest, pending or not
    snap = observer.poll()
    assert counts(snap, "carol") == (6, 5, 0, 1, 0)
    assert snap.vanished == 5


def test_without_task_history_engines_and_queue_still_show_and_the_limit_is_said() -> None:
    hub = HubStandIn(NoDB())
    hub.queues[0]["tasks"] = 1
    hub.queues["unassigned"] = 3
    hub.queues[7] = {"queue": 0, "completed": 2, "tasks": 0}  # ran tasks, no longer registered
    hub.queues[8] = {"queue": 0, "completed": 0, "tasks": 0}  # registered once, never ran any
    snap = ClusterObserver(hub).poll()  # type: ignore[arg-type]
    assert snap.db == "NoDB" and snap.limits == (LIMIT_NODB,)
    assert [(e.id, e.state) for e in snap.engines] == [(0, "busy"), (1, "idle"), (7, "gone")]
    assert snap.jobs == () and snap.unassigned == 3
    data = snap.to_json()
    assert data["engines"][0] == {"id": 0, "state": "busy", "msg_id": None, "job": None}
    assert data["limits"] == [LIMIT_NODB]


def test_tasks_on_an_engine_that_unregistered_count_as_failed_at_once_and_stay_failed(
    hub: HubStandIn,
) -> None:
    """As a real controller does it (tests/test_top_backends.py): the load-balanced task the
    killed engine ran gets an error result 5 s later (the scheduler's stand-in reply), the
    direct request waiting behind it `completed` and no `received` after 30 s (the hub's)."""
    hub.submit("lb", "dave", label="fit")
    hub.submit("dv", "dave")
    hub.submit("other", "erin")
    hub.assign("lb", 1)
    hub.assign("dv", 1)  # a direct request: handed to its engine when sent
    hub.assign("other", 0)
    observer = ClusterObserver(hub)  # type: ignore[arg-type]
    assert [(j.id, j.running, j.failed) for j in observer.poll().jobs] == [
        ("dave/fit", 1, 0),
        ("dave", 1, 0),
        ("erin", 1, 0),
    ]
    del hub._engines[1]
    hub.ids = [0]
    hub.queues[1] = {"queue": 1, "completed": 0, "tasks": 1}  # the hub never clears these
    snap = observer.poll()
    assert [(j.id, j.running, j.failed) for j in snap.jobs] == [
        ("dave/fit", 0, 1),
        ("dave", 0, 1),
        ("erin", 1, 0),
    ]
    assert [(e.id, e.state) for e in snap.engines] == [(0, "busy"), (1, "gone")]
    fresh = ClusterObserver(hub).poll()  # type: ignore[arg-type] # `ippmon status` after it
    assert [(j.id, j.running, j.failed) for j in fresh.jobs] == [
        (j.id, j.running, j.failed) for j in snap.jobs
    ]

    hub.finish("lb", 1, "error")
    hub.db.update_record("dv", {"completed": hub.now})  # `Hub._handle_stranded_msgs`
    snap = observer.poll()
    assert [(j.id, j.running, j.failed) for j in snap.jobs][:2] == [
        ("dave/fit", 0, 1),
        ("dave", 0, 1),
    ]
    assert snap.vanished == 0  # left the pending tasks without a `received`: not culled
    assert ClusterObserver(hub).poll().jobs == snap.jobs  # type: ignore[arg-type]


def test_a_lost_task_handed_to_another_engine_runs_again(hub: HubStandIn) -> None:
    """With `retries`, the scheduler hands a task of a dead engine to another one."""
    hub.submit("t", "frank")
    hub.assign("t", 1)
    observer = ClusterObserver(hub)  # type: ignore[arg-type]
    observer.poll()
    del hub._engines[1]
    hub.ids = [0]
    assert counts(observer.poll(), "frank") == (1, 0, 0, 0, 1)
    hub.assign("t", 0)
    assert counts(observer.poll(), "frank") == (1, 0, 1, 0, 0)
    hub.finish("t", 0, "ok")
    assert counts(observer.poll(), "frank") == (1, 0, 0, 1, 0)


def test_a_burst_of_tasks_sent_between_two_polls_is_read_whole(hub: HubStandIn) -> None:
    """Thousands of tasks can reach the hub between two polls (one `map_async`): SQLiteDB
    turns `$in` into one `=` test per msg_id joined by OR and refuses more than ~1,000 of them
    ("Expression tree is too large"), and DictDB's `$in` costs records x ids; so many unseen
    tasks are read with one query over the pending ones (DictDB) or a few hundred ids at a
    time (SQLiteDB, where `$in` is indexed)."""
    if isinstance(hub.db, DictDB):
        hub.db.record_limit = 10_000  # not the 1,024 default: nothing is culled here
    hub.submit("first", "dave")
    observer = ClusterObserver(hub)  # type: ignore[arg-type]
    observer.poll()
    for i in range(1500):
        hub.submit(f"burst{i}", "erin", label="big")
    hub.assign("burst0", 0)
    snap = observer.poll()
    assert counts(snap, "erin") == (1500, 1499, 1, 0, 0)
    assert counts(snap, "dave") == (1, 1, 0, 0, 0)
    by_id = [len(q["msg_id"]["$in"]) for q in hub.queries if "$in" in q.get("msg_id", {})]
    assert by_id == ([500, 500, 500] if isinstance(hub.db, SQLiteDB) else [])
    hub.submit("late", "erin", label="big")  # a few unseen ones: asked for by msg_id
    assert counts(observer.poll(), "erin") == (1501, 1500, 1, 0, 0)
    assert hub.queries[-2] == {"msg_id": {"$in": ["late"]}}


def test_a_long_history_is_read_a_page_an_ask_newest_first_and_each_task_counted_once(
    clocked_hub: ClockedHub,
) -> None:
    hub = clocked_hub
    for i in range(25):
        hub.submit(f"a{i}", "alice")
        hub.finish(f"a{i}", i % 2, "ok" if i % 5 else "error")
    for i in range(3):
        hub.submit(f"b{i}", "bob")
    observer = ClusterObserver(hub, page=10)  # type: ignore[arg-type]
    snap = observer.poll()
    # the jobs running now at once, and the newest page: a20..a24 and bob's three
    assert counts(snap, "bob") == (3, 3, 0, 0, 0)
    assert counts(snap, "alice") == (5, 0, 0, 4, 1)
    assert snap.history_left == 20
    assert "20 records of the controller's history left" in snap.limits[0]
    assert {"msg_id": {"$ne": ""}} not in hub.queries, "no query reads every record"

    hub.assign("b0", 0)
    hub.finish("b0", 0, "ok")
    hub.submit("c0", "carol")  # sent and finished between two asks
    hub.finish("c0", 1, "ok")
    snap = observer.poll(history=False)  # an ask out of turn: the news, no page
    assert counts(snap, "bob") == (3, 2, 0, 1, 0)
    assert counts(snap, "carol") == (1, 0, 0, 1, 0)
    assert counts(snap, "alice") == (5, 0, 0, 4, 1)
    assert snap.history_left == 20
    snap = observer.poll()
    assert counts(snap, "bob") == (3, 2, 0, 1, 0)
    assert counts(snap, "carol") == (1, 0, 0, 1, 0)
    assert counts(snap, "alice") == (15, 0, 0, 12, 3)  # a10..a24: the page's bounds overlap
    assert snap.history_left == 10

    snap = observer.poll()
    assert counts(snap, "alice") == (25, 0, 0, 20, 5)
    assert snap.history_left == 0
    assert not any("history left" in limit for limit in snap.limits)
    # what pages found finished had ended before: only carol's and bob's task since then
    assert {j.session: j.history for j in snap.jobs} == {"alice": 25, "bob": 0, "carol": 0}
    assert observer.vanished == 0
    assert {"msg_id": {"$ne": ""}} not in hub.queries


def test_a_history_within_one_page_is_read_whole_by_the_first_ask(clocked_hub: ClockedHub) -> None:
    for i in range(4):
        clocked_hub.submit(f"a{i}", "alice")
        clocked_hub.finish(f"a{i}", 0, "ok")
    snap = ClusterObserver(clocked_hub, page=10).poll()  # type: ignore[arg-type]
    assert counts(snap, "alice") == (4, 0, 0, 4, 0)
    assert snap.history_left == 0


@pytest.mark.cluster
def test_on_a_real_controller_the_pages_add_up_to_the_job_its_submitter_sees(client) -> None:  # noqa: ANN001
    view = client.load_balanced_view()
    view.set_flags(label="paged")
    ar = view.map_async(operator.floordiv, [1] * 30, [x % 4 for x in range(30)], chunksize=1)
    ar.wait(timeout=60)
    failed = sum(1 for x in range(30) if x % 4 == 0)
    observer = ClusterObserver(client, page=7)
    snap = observer.poll()
    held = len(client.hub_history())
    assert held > 7 and snap.history_left > 0
    asks = 1
    while snap.history_left:
        snap = observer.poll()
        asks += 1
    assert asks >= held // 7
    (job,) = [j for j in snap.jobs if j.label == "paged" and j.session == client.session.session]
    assert (job.submitted, job.done, job.failed, job.queued, job.running) == (
        30,
        30 - failed,
        failed,
        0,
        0,
    )
