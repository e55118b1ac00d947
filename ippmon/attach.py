"""Watching the tasks an earlier process sent (`ippmon attach`, `ippmon resume`): `HubWatcher`.

Tasks sent but not recorded are asked of the controller by msg_id: its task records
(`db_query`) say which engine runs them and when, and `result_status` fetches a result once it
is there; their output is heard as it streams (see `HubWatcher`). A msg_id the controller no
longer knows (its task database culled it, or it restarted) makes that task `lost`, with the
reason, so `r` can rerun it. `Job.restore` rebuilds the job around this watcher.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ippmon import _compat
from ippmon.model import TaskState
from ippmon.records import epoch
from ippmon.text import one_line
from ippmon.tracker import Event, Recorded, Tracker

if TYPE_CHECKING:
    from ipyparallel import Client

LOST_REASON = (
    "the controller no longer holds this task (its task database culled the record, or the "
    "controller restarted)"
)
GONE_AFTER_S = 30.0  # see HubWatcher._lost; `$IPPMON_GONE_AFTER` overrides
GONE_AFTER_ENV = "IPPMON_GONE_AFTER"


def gone_after_s() -> float:
    """How long a sent task may be missing from the controller's records before it is lost:
    `$IPPMON_GONE_AFTER` seconds (a hub that lags far behind its requests needs more), else
    GONE_AFTER_S."""
    try:
        return max(0.0, float(os.environ[GONE_AFTER_ENV]))
    except (KeyError, ValueError):
        return GONE_AFTER_S


@dataclass(eq=False)
class _Watched:
    """One chunk another process sent, as this process sees it."""

    key: int
    msg_id: str
    md: dict
    order: int  # place in the order the chunks were sent
    gone_since: float | None = None  # monotonic time it was first missing from the records
    in_records: bool = False  # found in the controller's records once
    seen_start: bool = False  # its "busy" status came after we started listening: we saw it all
    seen_end: bool = False  # its engine's "idle" status: all of its output has been sent
    heard: dict[str, str] = field(default_factory=lambda: {"stdout": "", "stderr": ""})
    result_in: bool = False  # its result was taken in (Event.DONE sent)
    completed_at: float | None = None
    settle: tuple[int, int] | None = None  # output lengths at the previous read of the record


class HubWatcher(threading.Thread):
    """Follows tasks another process sent: their state and results from the controller's task
    records (by msg_id), their output as it streams.

    Output: the client receives every engine's iopub messages but drops other clients' ones;
    `_compat.observe_iopub` shows them to this watcher first. A task whose start ("busy") came
    after the hook is heard in full, and its output is complete when its engine says "idle",
    as for tasks ippmon sent itself. For a task already running or finished when the watcher
    started, the output is the controller's record of it, which trails the engine by as much
    as the iopub relay does: taken once the task has ended (its "idle" heard, or completed
    before the watcher started) and two reads of the record a second apart agree.

    The watcher counts as listening from the first message it hears, not from when it hooked
    in: a client's SUB socket gets nothing the relay sends before its subscription reaches the
    relay (ZMQ's "slow joiner"), and `attach` connects a fresh client just before it hooks in.
    A task that ended in that gap had its "idle" sent to nobody; taken as ended while nobody
    listened, it is recorded from the controller's record instead of waited for (it was: for
    `OUTPUT_WAIT_S`, ten minutes)."""

    def __init__(
        self,
        client: Client,
        tracker: Tracker,
        pending: dict[int, tuple[str, dict]],
        every: float = 1.0,
        on_heard: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_heard` is called whenever the controller shows a sign of life (its answers, any
        task's output): the job's controller probe wants to know."""
        super().__init__(name="ippmon-hub-watcher", daemon=True)
        self.client = client
        self.tracker = tracker
        self.every = every
        self.on_heard = on_heard
        self.gone_after_s = gone_after_s()
        self._watched = {
            mid: _Watched(key, mid, md, order)
            for order, (key, (mid, md)) in enumerate(pending.items())
        }
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        # epoch seconds of the first iopub message heard; None: nothing heard (yet)
        self._listening_since: float | None = None
        # monotonic time the controller's records last took in a watched task it lacked before
        self._records_grew_at = float("-inf")
        self._unhook: Callable[[], None] | None = None

    def start(self) -> None:
        self._unhook = _compat.observe_iopub(self.client, self._heard, timeout=10.0)
        super().start()

    def stop(self) -> None:
        self._stop_event.set()
        if self._unhook is not None:
            self._unhook()

    def abort(self) -> None:
        """Abort the queued ones among the watched tasks (running ones get SIGINT from Job)."""
        with self._lock:
            ids = list(self._watched)
        if ids:
            with contextlib.suppress(Exception):
                self.client.abort(ids, block=True)

    def run(self) -> None:
        while self._watched and not self._stop_event.is_set():
            try:
                self._check()
            except Exception as exc:  # the controller went away: the Job's probe says so
                self.tracker.set_notice(
                    "watcher", f"cannot query the controller: {one_line(exc, with_type=True)}"
                )
            else:
                self.tracker.set_notice("watcher", "")
            self._stop_event.wait(self.every)

    def _heard(self, msg: dict[str, Any], topic: bytes = b"") -> None:
        """An iopub message (on the client's IO thread): keep what concerns a watched task."""
        self.on_heard()
        parent = msg.get("parent_header") or {}
        with self._lock:
            if self._listening_since is None:
                self._listening_since = time.time()  # subscribed: the relay reaches us now
            w = self._watched.get(parent.get("msg_id", ""))
            if w is None:
                return
            kind, content = msg["header"]["msg_type"], msg.get("content") or {}
            if kind == "status":
                state = content.get("execution_state")
                if state == "busy" and not any(w.heard.values()):
                    w.seen_start = True
                elif state == "idle":
                    w.seen_end = True
                return
            if kind != "stream" or content.get("name") not in w.heard:
                return
            name = content["name"]
            w.heard[name] += content.get("text", "")
            if w.seen_start:
                w.md[name] = _longer(w.md.get(name), w.heard[name])
        self.tracker.notify(w.key, Event.ACTIVITY)

    def _check(self) -> None:
        client, tracker = self.client, self.tracker
        with self._lock:
            items = list(self._watched.values())
        records = client.db_query(
            {"msg_id": {"$in": [w.msg_id for w in items]}},
            keys=["msg_id", "submitted", "engine_uuid", "started", "completed"],
        )
        # Output from the records only for the tasks not heard in full: those that had reached
        # an engine before the watcher listened (a few per engine), never every pending task's.
        unheard = [
            r["msg_id"]
            for r in records
            if r.get("engine_uuid") and not self._watched_heard_in_full(r["msg_id"])
        ]
        if unheard:
            outputs = client.db_query(
                {"msg_id": {"$in": unheard}}, keys=["msg_id", "stdout", "stderr"]
            )
            texts = {o["msg_id"]: o for o in outputs}
            for r in records:
                r.update(texts.get(r["msg_id"], {}))
        # A record without `submitted` is a stub the controller made from a task's output after
        # it had culled the task itself (the result then never reaches it).
        self.on_heard()
        found = {r["msg_id"]: r for r in records if r.get("submitted")}
        newest = max((w.order for w in items if w.msg_id in found), default=-1)
        engines = _compat.engines_by_uuid(client)
        fetch: list[_Watched] = []
        now = time.monotonic()
        for w in items:
            if not w.in_records and w.msg_id in found:
                w.in_records = True
                self._records_grew_at = now
        for w in items:
            rec = found.get(w.msg_id)
            if rec is None:
                if self._lost(w, newest, now):
                    tracker.notify(
                        w.key,
                        Event.DONE,
                        Recorded(TaskState.LOST, None, ("TaskLost", LOST_REASON, "")),
                    )
                    self._forget(w)
                continue
            w.gone_since = None
            uuid = rec.get("engine_uuid")
            with self._lock:
                w.md.update(
                    engine_id=engines.get(uuid) if uuid else None, started=rec.get("started")
                )
                for name in ("stdout", "stderr"):
                    w.md[name] = _longer(w.md.get(name), rec.get(name))
            tracker.notify(w.key, Event.ACTIVITY)
            if w.result_in:
                if self._output_over(w):
                    tracker.notify(w.key, Event.OUTPUT_DONE)
                    self._forget(w)
            elif rec.get("completed"):
                w.completed_at = epoch(rec["completed"])
                fetch.append(w)
        if fetch:
            self._take_results(fetch)

    def _watched_heard_in_full(self, msg_id: str) -> bool:
        with self._lock:
            w = self._watched.get(msg_id)
            return w is not None and w.seen_start

    def _take_results(self, items: list[_Watched]) -> None:
        client = self.client
        from ipyparallel.error import CompositeError, RemoteError

        # ipyparallel raises when some of the fetched results are errors; it has stored them all
        with contextlib.suppress(CompositeError, RemoteError):
            client.result_status([w.msg_id for w in items], status_only=False)
        for w in items:
            full = client.metadata.get(w.msg_id, {})
            with self._lock:
                for name in ("engine_id", "submitted", "started", "completed"):
                    if full.get(name) is not None:
                        w.md[name] = full[name]
            w.result_in = True
            self.tracker.notify(w.key, Event.DONE, client.results.get(w.msg_id))
            if self._output_over(w):
                self.tracker.notify(w.key, Event.OUTPUT_DONE)
                self._forget(w)

    def _lost(self, w: _Watched, newest: int, now: float) -> bool:
        """A task missing from the controller's records is gone for good once a task sent after
        it is there (the controller takes in requests in order, so it had this one and culled
        it), or once the records have taken in none of the missing tasks for `gone_after_s()`
        (it may just not have reached them yet: a controller working through a backlog takes
        them in a few at a time)."""
        if w.gone_since is None:
            w.gone_since = now
        waited = now - max(w.gone_since, self._records_grew_at)
        return newest > w.order or waited >= self.gone_after_s

    def _output_over(self, w: _Watched) -> bool:
        """Whether the task's output, as this watcher has it, is all there is (see the class)."""
        if w.seen_start:
            return w.seen_end
        ended_before = (
            self._listening_since is not None
            and w.completed_at is not None
            and w.completed_at < self._listening_since
        )
        if not (w.seen_end or ended_before or self._listening_since is None):
            return False
        lens = (len(w.md.get("stdout") or ""), len(w.md.get("stderr") or ""))
        if w.settle == lens:
            return True
        w.settle = lens
        return False

    def _forget(self, w: _Watched) -> None:
        with self._lock:
            self._watched.pop(w.msg_id, None)


def _longer(a: str | None, b: str | None) -> str:
    """Of two readings of one growing stream (each a prefix of the whole), the fuller one."""
    a, b = a or "", b or ""
    return b if len(b) > len(a) else a
