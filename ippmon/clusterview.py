"""Every task on a cluster, whoever sent it: `ClusterObserver` polls the controller and returns a
frozen `ClusterSnapshot` (engines busy/idle/gone, jobs with counts, what cannot be known).
`ippmon status` takes one snapshot; a live view polls again at a modest rate.

Where the data comes from (checked against ipyparallel 9.2's sources):

- Engines: `client.ids` are the engines registered now. `queue_status()` without `verbose`
  is a few counts per engine (`Hub.queue_status`): `tasks` handed to it and not finished,
  `queue` (direct-view requests waiting), `completed`, and `unassigned` (load-balanced tasks
  the scheduler still holds). The hub never forgets an engine id (`Hub.ids` only grows), so
  the ids it answers for that are no longer registered and have run tasks are *gone*.
  With `verbose=True` it sends the msg_id of every task since the hub started: never used.
- Tasks: the controller's task records (`Client.db_query`). A record is made when the request
  passes the hub (`Hub.save_task_request`): `header` (with the submitter's `session` and
  `username`), `client_uuid` (= that session), `label` (the view's `label` flag, from the
  request's metadata), `submitted` (the *client's* clock). `engine_uuid` is set when the
  scheduler hands the task to an engine (`save_task_destination`); `started`, `completed`,
  `received` (the hub's clock) and `result_metadata` (with `status`: ok, error, aborted)
  only when the result comes back (`save_task_result`). So a task is *queued* without
  `engine_uuid`, *running* with one and no `completed` (with `TaskScheduler.hwm` above its
  default of 1 that includes tasks waiting on the engine), and its true start is known only
  when it ends. Records made from iopub output before the request arrived have no
  `submitted`: they are skipped.
- A DirectView request (`queue` 'mux') has its `engine_uuid` from the start
  (`Hub.save_queue_request`), so it counts as running at once; it waits on its engine behind
  the task there (an engine takes waiting direct and load-balanced requests in no set order).
  Its label is the DirectView's (`rc[:].apply` sends none): a job of its own.
- An engine that dies mid-task (verified with SIGKILL on 9.2): it unregisters within ~0.2 s;
  the load-balanced task it held gets an error result 5 s later (the scheduler's stand-in
  `EngineError` reply, with `received`); a direct request on it gets `completed` and an error
  but no `received` and no `result_metadata` only after `registration_timeout` (30 s,
  `Hub._handle_stranded_msgs`). The submitter sees both as `EngineError` (the direct one at
  once). Here both count as failed as soon as their engine is not registered (`_lose`). The
  hub never clears a dead engine's `queue_status` counts.
- Jobs are tasks grouped by the session that sent them and their label.

The query language differs by backend, and the queries here are written to mean the same on all:
- DictDB (the default, in memory): `$gt` compares the wrong way round (`b > a`), so only
  `$gte`/`$lt`-style tests are used; a plain `key: value` test compares with the *last* value
  of the query, even an operator dict (a late-bound lambda in `DictDB._match`), so tests are
  written `{'$eq': value}`; a comparison with None raises, so `$ne: None` comes first in a
  test (tests run in order and stop at the first that fails). It culls its oldest 10 % beyond
  `record_limit` (1,024 by default) by `submitted`, pending tasks too (`DictDB._cull_oldest`),
  and `keys=` only shortens the answer: every matching record is deep-copied first.
- SQLiteDB: an empty query is an SQL syntax error (`WHERE ` with nothing), so "every record" is
  `{'msg_id': {'$ne': ''}}`; it has no `$exists`, `$all`, `$mod`.
- NoDB records nothing; every query raises `NoData`. Engines and queue counts still work.
The backend is told apart by one query that costs nothing: `$exists` (DictDB answers, SQLiteDB
refuses the operator, NoDB refuses the query).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ippmon import _compat
from ippmon.records import epoch
from ippmon.text import one_line

if TYPE_CHECKING:
    from ipyparallel import Client

# The record fields a task's line in the view is made of (`keys=` of every detailed query).
TASK_KEYS = [
    "client_uuid",
    "header",
    "label",
    "submitted",
    "engine_uuid",
    "completed",
    "received",
    "result_metadata",
]
EVERY_RECORD = {"msg_id": {"$ne": ""}}  # SQLiteDB rejects `{}`
PENDING = {"submitted": {"$ne": None}, "completed": {"$eq": None}}  # no plain tests (DictDB)
# DictDB tests each record against each id of an `$in`: more unseen pending tasks than this are
# read by PENDING. SQLiteDB's `$in` is an OR per id (indexed) and refuses ~1,000: IN_MAX a query.
UNSEEN_BY_ID = 100
IN_MAX = 500
# The controller's history (its finished tasks' records) is read this many records an ask,
# newest first: one big read would keep the hub from everyone else for as long as it takes
# (bench/bench_top.py: ~0.16 ms a record on DictDB, ~0.4 on SQLiteDB).
HISTORY_PAGE = 2000

NODB = "NoDB"
DICTDB = "DictDB"
SQLITEDB = "SQLiteDB"
UNKNOWN_DB = "unknown"

LIMIT_NODB = (
    "no task history: the controller runs NoDB (jobs, running msg_ids and done/failed counts "
    "are unknown; engines and queue counts are live)"
)
LIMIT_DICTDB = (
    "the controller's DictDB keeps only its newest records (1,024 by default) and culls older "
    "ones, pending tasks too: jobs count the tasks it still holds"
)
LIMIT_START = "a task's start time is known only once it ends (the hub records it with the result)"
LIMIT_HWM = (
    "running = handed to an engine: it may wait there behind a DirectView request (or, with "
    "TaskScheduler.hwm > 1, other tasks)"
)
LIMIT_QUEUED = "{n} queued tasks are not in the task records (culled, or not yet recorded)"
LIMIT_HISTORY = (
    "the older tasks' counts yet: {n:,} records of the controller's history left to read (a "
    "page an ask, newest first)"
)


class QueryError(Exception):
    """The controller refused a task-record query (its text: why, in one line)."""


@dataclass(frozen=True)
class EngineView:
    id: int
    state: str  # busy | idle | gone
    msg_id: str | None = None  # the task it runs (the oldest handed to it), when known
    job: str | None = None  # that task's JobView.id


@dataclass(frozen=True)
class JobView:
    session: str
    user: str
    label: str | None
    first_seen: float | None  # epoch seconds: its first task's submission (the client's clock)
    queued: int = 0
    running: int = 0
    done: int = 0  # succeeded
    failed: int = 0  # error or aborted
    history: int = 0  # of done and failed: found already finished in a page of the history

    @property
    def id(self) -> str:
        """The job's key: its session, and its label when it has one."""
        return self.session if self.label is None else f"{self.session}/{self.label}"

    @property
    def submitted(self) -> int:
        return self.queued + self.running + self.done + self.failed


@dataclass(frozen=True)
class ClusterSnapshot:
    taken: float  # epoch seconds
    engines: tuple[EngineView, ...]
    jobs: tuple[JobView, ...]
    unassigned: int  # load-balanced tasks the scheduler has not handed to an engine
    db: str  # the controller's task database: DictDB, SQLiteDB, NoDB or unknown
    limits: tuple[str, ...]  # what this view cannot know on this controller
    vanished: int = 0  # tasks seen pending that left the records without a result (culled)
    history_left: int = 0  # records of the controller's history not read yet (paged)

    def to_json(self) -> dict[str, Any]:
        """The `ippmon status --json` object (its fields are documented in the README)."""
        return {
            "taken": _iso(self.taken),
            "engines": [
                {"id": e.id, "state": e.state, "msg_id": e.msg_id, "job": e.job}
                for e in self.engines
            ],
            "jobs": [
                {
                    "id": j.id,
                    "session": j.session,
                    "user": j.user,
                    "label": j.label,
                    "first_seen": _iso(j.first_seen),
                    "submitted": j.submitted,
                    "queued": j.queued,
                    "running": j.running,
                    "done": j.done,
                    "failed": j.failed,
                }
                for j in self.jobs
            ],
            "unassigned": self.unassigned,
            "db": self.db,
            "vanished": self.vanished,
            "limits": list(self.limits),
        }


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat()


@dataclass
class _Task:
    job: tuple[str, str | None]  # (session, label)
    submitted: float
    engine_uuid: str | None = None
    state: str = "queued"  # queued | running | done | failed
    lost: bool = False  # failed because its engine unregistered, before the controller says so


@dataclass
class _Job:
    session: str
    user: str
    label: str | None
    first_seen: float
    counts: dict[str, int] = field(default_factory=dict)
    history: int = 0


class ClusterObserver:
    """The cluster as its controller's records and queue counts show it, kept incrementally.

    The first `poll` reads the pending tasks (a few fields each) and the newest `page` records
    of the controller's history; each later one reads the pending tasks' engine
    (`keys=['engine_uuid']`), the details of pending tasks not seen before, the tasks whose
    result the hub received since the last poll (by `received`, the hub's own clock, from the
    moment the first poll's queue counts were answered, so a submitter's clock does not
    matter), and one more page of the history until it is all read (`history_left`). A page is
    a range of `submitted` times cut from the hub's own ordered list of msg_ids
    (`hub_history`, which costs the hub no record copies). A task seen pending that leaves the
    records without a result was culled: it is dropped and counted in `vanished`. Many unseen
    pending tasks at once (a burst of one `map_async`) are read by one more pass over the
    pending ones (DictDB), or by msg_id a few hundred at a time (SQLiteDB). Without the hub's
    clock (a client lacking the internals `_compat.queue_status_at` uses) the first poll reads
    every record at once. Not thread-safe: poll from one thread."""

    def __init__(
        self, client: Client, clock: Callable[[], float] = time.time, page: int = HISTORY_PAGE
    ) -> None:
        self.client = client
        self.clock = clock
        self.page = page
        # the history not yet read: (lowest, highest `submitted`, records), oldest first
        self._pages: list[tuple[Any, Any, int]] = []
        self.db: str | None = None
        self._tasks: dict[str, _Task] = {}
        self._jobs: dict[tuple[str, str | None], _Job] = {}
        self._received_mark: dt.datetime | None = None
        self._first = True
        self.vanished = 0
        # msg_id -> (session, label) of the job a task is shown in instead of its record's:
        # set by whoever resubmitted it (the hub records a resubmitted task without its label)
        self.regroup: dict[str, tuple[str, str | None]] = {}

    def poll(self, history: bool = True) -> ClusterSnapshot:
        """Ask the controller once more; raises what the client raises if it is gone. The queue
        counts come first: the two answers are not one moment, and tasks sent in between then
        show in the records only, never as queued tasks missing from them. `history=False`
        reads no page of the history (an ask out of turn, for tasks that print already)."""
        client = self.client
        queues, hub_now = _compat.queue_status_at(client)
        if self.db is None:
            self.db = probe_db(client)
        if self.db != NODB:
            self._read_records(hub_now, history)
        by_uuid = _compat.engines_by_uuid(client)  # registered now, read after the records
        if hasattr(client, "_engines"):
            self._lose(set(by_uuid))
        return self._snapshot(list(client.ids), queues, by_uuid)

    def knows(self, msg_id: str) -> bool:
        """Whether the task's record has been read (its job is known)."""
        return msg_id in self._tasks

    def waiting(self, job_id: str) -> list[str]:
        """The msg_ids of job `job_id`'s tasks that have not finished, as the records last read
        say (queued, or handed to an engine), oldest first."""
        out = []
        for msg_id, task in self._tasks.items():
            session, label = task.job
            this = session if label is None else f"{session}/{label}"
            if this == job_id and task.state in ("queued", "running"):
                out.append((task.submitted, msg_id))
        return [msg_id for _t, msg_id in sorted(out)]

    def failed(self, job_id: str) -> list[str]:
        """The msg_ids of job `job_id`'s tasks that ended failed or aborted, oldest first."""
        out = [
            (task.submitted, msg_id)
            for msg_id, task in self._tasks.items()
            if task.state == "failed" and _key_id(task.job) == job_id
        ]
        return [msg_id for _t, msg_id in sorted(out)]

    def job_of(self, msg_id: str, session: str) -> str:
        """The id of the job a task belongs to (`JobView.id`); its sending session's while
        its record has not been read (or there are no records)."""
        task = self._tasks.get(msg_id)
        if task is None:
            return session
        session, label = task.job
        return session if label is None else f"{session}/{label}"

    # -- task records ----------------------------------------------------------------------

    def _query(self, query: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
        try:
            return list(self.client.db_query(query, keys=list(keys)))
        except Exception as exc:
            if _is_nodata(exc):
                self.db = NODB
                return []
            raise QueryError(f"the controller refused a task query: {one_line(exc)}") from exc

    @property
    def history_left(self) -> int:
        """Records of the controller's history not read yet (0 once all are)."""
        return sum(n for _lo, _hi, n in self._pages)

    def _read_records(self, hub_now: dt.datetime | None, history: bool) -> None:
        if self._first:
            self._first = False
            self._read_first(hub_now)
            return
        pending = {r["msg_id"]: r.get("engine_uuid") for r in self._query(PENDING, ["engine_uuid"])}
        unseen = [m for m in pending if m not in self._tasks]
        if self.db != SQLITEDB and len(unseen) > UNSEEN_BY_ID:  # a burst: one more pass
            self._take(self._query(PENDING, TASK_KEYS))
        else:
            for i in range(0, len(unseen), IN_MAX):
                self._take(self._query({"msg_id": {"$in": unseen[i : i + IN_MAX]}}, TASK_KEYS))
        if self._received_mark is None:
            finished_query: dict[str, Any] = {"received": {"$ne": None}}
        else:
            finished_query = {"received": {"$ne": None, "$gte": self._received_mark}}
        finished = self._query(finished_query, TASK_KEYS)
        self._take(finished)
        self._mark(finished)
        ended = {r["msg_id"] for r in finished}
        left = []
        for msg_id, task in list(self._tasks.items()):
            if task.state not in ("queued", "running") and not task.lost:
                continue
            if msg_id in pending:
                self._move(task, "running" if pending[msg_id] else "queued", pending[msg_id])
            elif msg_id not in ended:
                left.append(msg_id)
        if left:  # ended without a result (`Hub._handle_stranded_msgs`), or culled
            found = self._query({"msg_id": {"$in": left}}, TASK_KEYS)
            self._take(found)
            for msg_id in set(left) - {r["msg_id"] for r in found}:
                self._drop(msg_id)
        if history:
            self._read_page()

    def _read_first(self, hub_now: dt.datetime | None) -> None:
        """The pending tasks now, the newest page of the history, and the plan for the rest.
        Tasks that end from here on have `received` at or after `hub_now` (the hub answers
        one request at a time, and stamped `hub_now` before this read)."""
        history = self._history() if hub_now is not None else []
        if len(history) <= self.page:
            records = self._query(EVERY_RECORD, TASK_KEYS)
            self._take(records)
            self._mark(records)
            return
        self._received_mark = hub_now
        self._take(self._query(PENDING, TASK_KEYS))
        cuts = list(range(0, len(history), self.page)) + [len(history) - 1]
        cut_ids = [history[i] for i in cuts]
        submitted: dict[str, Any] = {}
        for i in range(0, len(cut_ids), IN_MAX):
            query = {"msg_id": {"$in": cut_ids[i : i + IN_MAX]}}
            submitted.update(
                (r["msg_id"], r.get("submitted")) for r in self._query(query, ["submitted"])
            )
        for (a, lo_id), (b, hi_id) in zip(zip(cuts, cut_ids), zip(cuts[1:], cut_ids[1:])):
            lo, hi = submitted.get(lo_id), submitted.get(hi_id)
            if lo is not None and hi is not None:  # else culled since: the oldest records
                self._pages.append((lo, hi, b - a))
        self._read_page()

    def _history(self) -> list[str]:
        """Every msg_id the controller holds, oldest submitted first (`Hub.get_history`: the
        database's keys sorted, no record copied); [] when it will not say."""
        try:
            return list(self.client.hub_history())
        except Exception:
            return []

    def _read_page(self) -> None:
        """The newest page of the history not read yet. Pages share their bounds (a record
        read twice is counted once); a record that moves on since is read again as it is."""
        if not self._pages:
            return
        lo, hi, _n = self._pages.pop()
        query = {"submitted": {"$ne": None, "$gte": lo, "$lte": hi}}
        self._take(self._query(query, TASK_KEYS), history=True)

    def _mark(self, finished: list[dict[str, Any]]) -> None:
        """Move the `received` mark to the newest of `finished`: every record the hub received
        before it has been read (`finished` is all received since the mark, or every record)."""
        for rec in finished:
            received = rec.get("received")
            if isinstance(received, dt.datetime) and (
                self._received_mark is None or received > self._received_mark
            ):
                self._received_mark = received

    def _lose(self, live: set[str]) -> None:
        """A task handed to an engine that is no longer registered is lost: counted failed now,
        as its submitter sees it (an `EngineError`) and as the controller records it later: 5 s
        on for a load-balanced task (the scheduler's stand-in reply), `registration_timeout`
        (30 s) on for a direct one, which then has `completed` and no `received`. Handed again
        (retries), it runs again."""
        for task in self._tasks.values():
            if task.state == "running" and task.engine_uuid not in live:
                self._move(task, "failed", task.engine_uuid)
                task.lost = True

    def _take(self, records: Iterable[dict[str, Any]], history: bool = False) -> None:
        """Note each record's task; `history`: they come from a page of the history, and those
        first seen finished are counted as such (they ended before the watch began: no rate)."""
        for rec in records:
            submitted = epoch(rec.get("submitted"))
            if submitted is None:  # made from output before (or after culling) its request
                continue
            state = _state_of(rec)
            task = self._tasks.get(rec["msg_id"])
            if task is None:
                task = self._new_task(rec, submitted)
                if history and state in ("done", "failed"):
                    self._jobs[task.job].history += 1
            self._move(task, state, rec.get("engine_uuid"))

    def _new_task(self, rec: dict[str, Any], submitted: float) -> _Task:
        header = rec.get("header") or {}
        session = str(rec.get("client_uuid") or header.get("session") or "?")
        label = rec.get("label")
        key = self.regroup.get(rec["msg_id"]) or (session, None if label is None else str(label))
        job = self._jobs.get(key)
        if job is None:
            user = str(header.get("username") or "?")
            job = self._jobs[key] = _Job(session, user, key[1], submitted)
        job.first_seen = min(job.first_seen, submitted)
        task = self._tasks[rec["msg_id"]] = _Task(key, submitted, state="new")
        return task

    def _move(self, task: _Task, state: str, engine_uuid: str | None) -> None:
        counts = self._jobs[task.job].counts
        if task.state != "new":
            counts[task.state] -= 1
        counts[state] = counts.get(state, 0) + 1
        task.state = state
        task.lost = False
        task.engine_uuid = engine_uuid or task.engine_uuid

    def _drop(self, msg_id: str) -> None:
        task = self._tasks.pop(msg_id)
        self._jobs[task.job].counts[task.state] -= 1
        self.vanished += 1

    # -- the snapshot ----------------------------------------------------------------------

    def _snapshot(
        self, ids: list[int], queues: dict[Any, Any], by_uuid: dict[str, int]
    ) -> ClusterSnapshot:
        running: dict[int, tuple[float, str, _Task]] = {}
        for msg_id, task in self._tasks.items():
            if task.state != "running" or task.engine_uuid not in by_uuid:
                continue
            eid = by_uuid[task.engine_uuid]
            if eid not in running or task.submitted < running[eid][0]:
                running[eid] = (task.submitted, msg_id, task)
        engines = []
        for eid in sorted(ids):
            q = queues.get(eid) or {}
            busy = eid in running or (q.get("tasks", 0) + q.get("queue", 0)) > 0
            if eid in running:
                _, msg_id, task = running[eid]
                job = self._jobs[task.job]
                engines.append(EngineView(eid, "busy", msg_id, _job_id(job)))
            else:
                engines.append(EngineView(eid, "busy" if busy else "idle"))
        for eid in sorted(k for k in queues if isinstance(k, int) and k not in ids):
            q = queues[eid] or {}
            if q.get("completed", 0) or q.get("tasks", 0) or q.get("queue", 0):
                engines.append(EngineView(eid, "gone"))
        jobs = sorted(
            (
                JobView(
                    j.session,
                    j.user,
                    j.label,
                    j.first_seen,
                    **{s: j.counts.get(s, 0) for s in ("queued", "running", "done", "failed")},
                    history=j.history,
                )
                for j in self._jobs.values()
            ),
            key=lambda j: (j.first_seen or 0.0, j.id),
        )
        unassigned = int(queues.get("unassigned", 0) or 0)
        return ClusterSnapshot(
            taken=self.clock(),
            engines=tuple(engines),
            jobs=tuple(jobs),
            unassigned=unassigned,
            db=self.db or UNKNOWN_DB,
            limits=tuple(self._limits(jobs, unassigned)),
            vanished=self.vanished,
            history_left=self.history_left,
        )

    def _limits(self, jobs: list[JobView], unassigned: int) -> list[str]:
        if self.db == NODB:
            return [LIMIT_NODB]
        limits = [LIMIT_START, LIMIT_HWM]
        if self.db == DICTDB:
            limits.insert(0, LIMIT_DICTDB)
        if self.history_left:
            limits.insert(0, LIMIT_HISTORY.format(n=self.history_left))
        missing = unassigned - sum(j.queued for j in jobs)
        if missing > 0:
            limits.append(LIMIT_QUEUED.format(n=missing))
        return limits


def _key_id(key: tuple[str, str | None]) -> str:
    session, label = key
    return session if label is None else f"{session}/{label}"


def _job_id(job: _Job) -> str:
    return job.session if job.label is None else f"{job.session}/{job.label}"


def _state_of(rec: dict[str, Any]) -> str:
    if rec.get("completed") is None and rec.get("received") is None:
        return "running" if rec.get("engine_uuid") else "queued"
    status = (rec.get("result_metadata") or {}).get("status")
    return "done" if status == "ok" else "failed"


def _is_nodata(exc: Exception) -> bool:
    return getattr(exc, "ename", type(exc).__name__) == "NoData" or "NoDB" in str(exc)


def probe_db(client: Client) -> str:
    """Which task database the controller runs, from one query that matches nothing: DictDB
    answers `$exists`, SQLiteDB refuses the operator, NoDB refuses every query."""
    try:
        client.db_query({"msg_id": {"$exists": False}}, keys=["msg_id"])
    except Exception as exc:
        if _is_nodata(exc):
            return NODB
        if "Unsupported operator" in str(exc):
            return SQLITEDB
        return UNKNOWN_DB
    return DICTDB
