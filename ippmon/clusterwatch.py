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

RECORDS_EVERY_S = 1.0
RECORDS_SOONER_S = 0.2  # asking again this soon, for the records of tasks that print already


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
        self._rates: dict[str, Rate] = {}
        self._total_rate = Rate()
        self.watcher: IopubWatcher | None = None
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
            if cluster is None or now - self._asked >= self.records_every:
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
                self._ask(now)
                lines, dropped = self.ledger.lines_since(seq, observer.job_of)
            return lines, dropped

    def _ask(self, now: float) -> ClusterSnapshot:
        self._cluster = cluster = self.observer.poll()
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
            rate = self._rates.setdefault(j.id, Rate()).add(now, j.done + j.failed)
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
            limits=cluster.limits,
            vanished=cluster.vanished,
        )
