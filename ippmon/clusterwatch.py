"""`ClusterWatcher`: the live view of `ippmon top`, kept where the ipyparallel client lives.

It joins two sources (see `topmodel`): the controller's records and queue counts, asked by a
`ClusterObserver` at most once every `records_every` seconds (each ask costs the hub a query
over its task records), and the engines' iopub messages, read all the time by an
`IopubWatcher` into an `EngineLedger`. `poll()` is cheap between two asks of the controller:
the engines' side is always current.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ippmon.clusterview import NODB, ClusterObserver, ClusterSnapshot
from ippmon.iopub_watch import IopubWatcher
from ippmon.topmodel import EngineLedger, Rate, TopEngine, TopJob, TopLine, TopSnapshot, eta

if TYPE_CHECKING:
    from ipyparallel import Client

    from ippmon.adopt import Adopted, Resubmitted
    from ippmon.model import ClusterInfo

RECORDS_EVERY_S = 1.0
RECORDS_SOONER_S = 0.2  # asking again this soon, for the records of tasks that print already
# The controller answers nobody else while it answers top, and an answer costs it in proportion
# to the records it holds (bench/bench_top.py: ~0.16 ms a record on DictDB, ~0.4 on SQLiteDB):
# top waits at least this many times as long as its last ask took before asking again.
ASK_COST_FACTOR = 5.0
# Every task's engine says busy and idle through the controller's iopub relay. Not one engine
# message this long into watching while the records show tasks ending: the relay is down (its
# process could not bind its port as the controller started, say), and top says so.
RELAY_SILENT_S = 60.0
RELAY_DOWN = (
    "what the engines say: none of their messages came through the controller's iopub relay "
    f"in {RELAY_SILENT_S:g} s while tasks ended (is it down? restart the cluster); engines, "
    "output and rates are from the records only"
)


class ClusterWatcher:
    """The `ClusterWatch` protocol (`ippmon.protocols`) on a real client. Starts watching the
    engines at once; `close()` stops. `poll` and `output_since` may be called from any one
    thread at a time (they share a lock)."""

    def __init__(
        self,
        client: Client,
        *,
        clock: Callable[[], float] = time.time,
        records_every: float = RECORDS_EVERY_S,
        observer: ClusterObserver | None = None,
        start: bool = True,
    ) -> None:
        self.clock = clock
        self.records_every = records_every
        self.observer = observer or ClusterObserver(client, clock)
        self.ledger = EngineLedger(clock)
        self._lock = threading.Lock()
        self._cluster: ClusterSnapshot | None = None
        self._asked = 0.0
        self._ask_took = 0.0  # seconds the last ask of the controller took, by `timer`
        self.timer: Callable[[], float] = time.monotonic
        self._rates: dict[str, Rate] = {}
        self._total_rate = Rate()
        self.watcher: IopubWatcher | None = None
        self.closed = False
        if start:
            self.watcher = IopubWatcher(
                client,
                on_status=self.ledger.status,
                clock=clock,
                on_output=self.ledger.output,
                on_error=self.ledger.error,
            )
            self.watcher.start()

    def poll(self) -> TopSnapshot:
        with self._lock:
            now = self.clock()
            cluster = self._cluster
            if cluster is None or now - self._asked >= self._wait(self.records_every):
                cluster = self._ask(now)
            return self._snapshot(cluster, self.clock())

    def output_since(self, seq: int) -> tuple[list[TopLine], int]:
        """New lines, each with its job. A task prints before its record is read at the next
        ask of the controller (the hub records it when the request passes): then the
        controller is asked at once, so the line names its job (label included), not only
        the session that sent it."""
        with self._lock:
            lines, dropped = self.ledger.lines_since(seq, self.observer.job_of)
            observer = self.observer
            unknown = any(not observer.knows(line.msg_id) for line in lines)
            now = self.clock()
            if unknown and observer.db != NODB and now - self._asked >= RECORDS_SOONER_S:
                self._ask(now, history=False)
                lines, dropped = self.ledger.lines_since(seq, observer.job_of)
            return lines, dropped

    def _wait(self, least: float) -> float:
        """Seconds between two regular asks of the controller: `least` (0: every poll), or
        ASK_COST_FACTOR times the last ask's own time when that is longer (a busy or big
        controller is asked less)."""
        return max(least, ASK_COST_FACTOR * self._ask_took) if least else 0.0

    def _ask(self, now: float, history: bool = True) -> ClusterSnapshot:
        started = self.timer()
        self._cluster = cluster = self.observer.poll(history=history)
        self._ask_took = self.timer() - started
        self._asked = now
        self.ledger.seen([e.id for e in cluster.engines if e.state != "gone"])
        self.ledger.gone([e.id for e in cluster.engines if e.state == "gone"])
        return cluster

    def abort(self, job_id: str) -> int:
        """Abort job `job_id`'s tasks that have not started: those its records show unfinished,
        less those an engine says it runs now (they run on). Always by explicit msg_ids: an
        empty list would abort every queued task of every client. Returns how many."""
        with self._lock:
            running = {e.msg_id for e in self.ledger.engines().values() if e.msg_id}
            msg_ids = [m for m in self.observer.waiting(job_id) if m not in running]
            if msg_ids:
                self.observer.client.abort(msg_ids, block=True)
            return len(msg_ids)

    def interrupt(self, job_id: str) -> list[int]:
        """Send SIGINT (through each engine's nanny) to the engines that run one of job
        `job_id`'s tasks now, as their own messages say; returns their ids. An engine may have
        moved on to its next task by the time the signal lands: that task is interrupted."""
        with self._lock:
            targets = sorted(
                eid
                for eid, e in self.ledger.engines().items()
                if e.msg_id and self.observer.job_of(e.msg_id, e.session or "") == job_id
            )
            if targets:
                self.observer.client.send_signal("SIGINT", targets=targets, block=True)
            return targets

    def close(self) -> None:
        self.closed = True
        if self.watcher is not None:
            self.watcher.close()

    def _snapshot(self, cluster: ClusterSnapshot, now: float) -> TopSnapshot:
        watched = self.ledger.engines()
        engines = []
        for e in cluster.engines:
            w = watched.get(e.id)
            if w is None or e.state == "gone":
                engines.append(TopEngine(e.id, e.state, e.msg_id, e.job))
                continue
            state, msg_id, job = e.state, e.msg_id, e.job
            if w.msg_id is not None:  # the engine's own word on what it runs now
                state, msg_id = "busy", w.msg_id
                job = self.observer.job_of(w.msg_id, w.session)
            engines.append(
                TopEngine(
                    e.id,
                    state,
                    msg_id,
                    job,
                    w.running_for_s if w.msg_id is not None else None,
                    w.done,
                    w.failed,
                    w.busy_pct,
                    w.last_line,
                )
            )
        jobs = []
        for j in cluster.jobs:
            # tasks read from the history ended before watching: not part of the rate
            ended = j.done + j.failed - j.history
            rate = self._rates.setdefault(j.id, Rate()).add(now, ended)
            jobs.append(
                TopJob(
                    j.id,
                    j.session,
                    j.user,
                    j.label,
                    j.first_seen,
                    j.queued,
                    j.running,
                    j.done,
                    j.failed,
                    rate,
                    eta(j.queued + j.running, rate),
                )
            )
        done, failed = self.ledger.totals()
        limits = cluster.limits
        if (
            not self.ledger.heard
            and now - self.ledger.started >= RELAY_SILENT_S
            and any(j.done + j.failed > j.history for j in cluster.jobs)  # ended since watching
        ):
            limits = (RELAY_DOWN, *limits)
        return TopSnapshot(
            taken=now,
            watching_s=now - self.ledger.started,
            engines=tuple(engines),
            jobs=tuple(jobs),
            unassigned=cluster.unassigned,
            done=done,
            failed=failed,
            tasks_per_s=self._total_rate.add(now, done + failed),
            db=cluster.db,
            limits=limits,
            vanished=cluster.vanished,
        )

    # -- acting on a job through the hub (`R`, `a`; see `ippmon.adopt`) ---------------------

    def resubmit(self, job_id: str) -> Resubmitted:
        """Resubmit job `job_id`'s tasks that raised, by explicit msg_ids, through the hub.

        The hub records the new tasks without their label, under the sending notebook's
        session: left alone they would join that session's unlabelled job (or make one), where
        nobody would look for them. They are shown as a job of their own instead, named after
        the job with "(resubmitted)": its row says how the second try went, while the original
        job keeps its counts (its failed tasks stay failed in the hub's records and in the
        notebook, which never sees the new results)."""
        from ippmon.adopt import resubmit_failed, resubmitted_label, split_job_id
        from ippmon.topmodel import job_title

        with self._lock:
            failed = self.observer.failed(job_id)
            outcome = resubmit_failed(self.observer.client, failed, self.observer.db or "")
            if outcome.new_ids:
                session, label = split_job_id(job_id)
                key = (session, resubmitted_label(job_title(session, label)))
                for msg_id in outcome.new_ids:
                    self.observer.regroup[msg_id] = key
            return outcome

    def adopt(self, job_id: str, runs_dir: str | None, cluster: ClusterInfo) -> Adopted:
        """Write job `job_id` as an ippmon run record (its msg_ids in the order they were sent,
        one task each) so that `ippmon attach`, `export` and the tasks view work on it."""
        from ippmon.adopt import (
            NODB_ADOPT,
            AdoptError,
            job_records,
            submission_order,
            write_adopted,
        )
        from ippmon.topmodel import job_title

        with self._lock:
            if self.observer.db == NODB:
                raise AdoptError(NODB_ADOPT)
            job = next(
                (j for j in (self._cluster.jobs if self._cluster else ()) if j.id == job_id), None
            )
            if job is None:
                raise AdoptError(f"no job {job_id} in the controller's records (any more)")
            records = self.observer.client.db_query(
                {"client_uuid": {"$eq": job.session}},
                keys=["msg_id", "submitted", "label", "resubmitted"],
            )
            grouped = {
                m: (s if lab is None else f"{s}/{lab}")
                for m, (s, lab) in self.observer.regroup.items()
            }
            msg_ids = submission_order(job_records(records, job_id, grouped))
        return write_adopted(
            runs_dir,
            msg_ids,
            title=job_title(job.session, job.label),
            session=job.session,
            label=job.label,
            user=job.user,
            cluster=cluster,
            first_seen=job.first_seen,
            clock=self.clock,
        )
