"""`attach.HubWatcher` on a recorded controller: what it decides from the controller's task
records and the iopub messages it hears (the real thing runs in test_attach.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import ippmon.attach as attach
from ippmon.attach import HubWatcher
from ippmon.model import TaskState
from ippmon.tracker import Tracker


class FakeHub:
    """The few Client calls HubWatcher makes, answered from `records` (msg_id -> record)."""

    def __init__(self, records: dict[str, dict]) -> None:
        self.records = records
        self.results: dict[str, object] = {}
        self.metadata: dict[str, dict] = {}
        self._engines = {0: "uuid-0"}  # as Client._engines: id -> uuid
        self.asked_output: list[str] = []  # msg_ids whose stdout a query asked for

    def db_query(self, query: dict, keys: list[str]) -> list[dict]:
        wanted = query["msg_id"]["$in"]
        if "stdout" in keys:
            self.asked_output.extend(m for m in wanted if m in self.records)
        return [
            {k: rec.get(k) for k in keys} | {"msg_id": mid}
            for mid, rec in self.records.items()
            if mid in wanted
        ]

    def result_status(self, msg_ids: list[str], status_only: bool) -> None:
        for mid in msg_ids:
            self.results[mid] = [mid.upper()]
            self.metadata[mid] = {"completed": self.records[mid]["completed"]}


def record(stdout: str = "", completed: str | None = None) -> dict:
    return {
        "submitted": "2026-01-01T00:00:00+00:00",
        "engine_uuid": "uuid-0",
        "started": "2026-01-01T00:00:01+00:00",
        "completed": completed,
        "stdout": stdout,
        "stderr": "",
    }


def watch(hub: FakeHub, n: int) -> tuple[HubWatcher, Tracker, list[dict]]:
    tracker = Tracker("t", n)
    tracker.set_engines([0])
    mds: list[dict] = [{} for _ in range(n)]
    keys = tracker.add_chunks([([i], md) for i, md in enumerate(mds)], attempt=1)
    watcher = HubWatcher(hub, tracker, {k: (f"m{k}", mds[k]) for k in keys})  # type: ignore[arg-type]
    return watcher, tracker, mds


def iopub(msg_id: str, kind: str, **content: object) -> dict:
    return {"header": {"msg_type": kind}, "parent_header": {"msg_id": msg_id}, "content": content}


def states(tracker: Tracker) -> list[TaskState]:
    tracker.poll()
    return tracker.states()


def test_a_task_heard_from_its_start_is_recorded_at_its_idle_with_all_its_output() -> None:
    hub = FakeHub({"m0": record(stdout="a\n", completed="2026-01-01T00:00:02+00:00")})
    watcher, tracker, mds = watch(hub, 1)
    watcher._listening_since = 0.0
    watcher._heard(iopub("m0", "status", execution_state="busy"))
    watcher._heard(iopub("m0", "stream", name="stdout", text="a\n"))
    watcher._check()  # the result is in; the rest of the output is not
    assert tracker.poll() == []
    watcher._heard(iopub("m0", "stream", name="stdout", text="b\n"))
    watcher._heard(iopub("m0", "status", execution_state="idle"))
    watcher._check()
    (chunk,) = tracker.poll()
    assert tracker.detail(0).stdout == "a\nb\n" and tracker.detail(0).result == "M0"
    assert not chunk.output_note and not watcher._watched


def test_a_task_that_ended_before_listening_is_recorded_when_its_record_stops_growing() -> None:
    hub = FakeHub({"m0": record(stdout="a\n", completed="2026-01-01T00:00:02+00:00")})
    watcher, tracker, mds = watch(hub, 1)
    watcher._listening_since = 2e9  # long after the task completed
    watcher._check()  # result taken in; first read of its output
    assert tracker.poll() == []
    hub.records["m0"]["stdout"] = "a\nb\n"  # the controller's record was still catching up
    watcher._check()
    assert tracker.poll() == []
    watcher._check()  # two reads agree
    (chunk,) = tracker.poll()
    assert tracker.detail(0).stdout == "a\nb\n"


def test_a_task_that_ended_before_anything_was_heard_is_recorded_from_its_record() -> None:
    """attach hooks in right after connecting a fresh client, whose SUB socket hears nothing the
    relay sent before its subscription reached it: a task that ended then is never heard to be
    idle. Listening counts from the first message heard, so it is taken from its record."""
    hub = FakeHub(
        {
            "m0": record(stdout="a\n", completed="2026-01-01T00:00:02+00:00"),
            "m1": record(stdout="b\n", completed="2099-01-01T00:00:00+00:00"),
        }
    )
    watcher, tracker, _mds = watch(hub, 2)
    assert watcher._listening_since is None  # hooked in, nothing heard yet
    watcher._heard(iopub("m9", "status", execution_state="busy"))  # another task: the relay is on
    assert watcher._listening_since is not None
    watcher._check()  # both results in; first read of the records
    watcher._check()  # the reads agree: m0 ended before anything was heard
    (chunk,) = tracker.poll()
    assert chunk.indices == [0] and tracker.detail(0).stdout == "a\n"
    watcher._check()
    assert tracker.poll() == []  # m1 ended after: its idle is on its way, and waited for
    watcher._heard(iopub("m1", "status", execution_state="idle"))
    watcher._check()  # idle heard; its record read twice alike
    watcher._check()
    (chunk,) = tracker.poll()
    assert chunk.indices == [1] and tracker.detail(1).stdout == "b\n"


def test_a_stub_record_of_a_culled_task_is_lost_once_a_later_task_is_known() -> None:
    stub = {"stdout": "output that came after the task was culled"}
    hub = FakeHub({"m0": stub, "m1": record()})
    watcher, tracker, _mds = watch(hub, 2)
    watcher._check()
    assert states(tracker) == [TaskState.LOST, TaskState.RUNNING]
    assert tracker.detail(0).evalue == attach.LOST_REASON
    assert tracker.detail(1).engine == 0  # running on the engine its record names


def test_a_task_not_yet_in_the_records_is_lost_only_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = FakeHub({})
    watcher, tracker, _mds = watch(hub, 1)
    assert watcher.gone_after_s == attach.GONE_AFTER_S
    watcher._check()
    assert states(tracker) == [TaskState.QUEUED]
    watcher.gone_after_s = 0.0
    watcher._check()
    assert states(tracker) == [TaskState.LOST]


def test_a_missing_task_is_not_lost_while_the_records_still_take_in_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A controller working through a backlog (a loaded machine) records the requests a few at
    a time: the wait for a missing task counts from the last one it took in."""
    now = [0.0]
    monkeypatch.setattr(attach, "time", SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    hub = FakeHub({})
    watcher, tracker, _mds = watch(hub, 3)
    watcher.gone_after_s = 5.0
    queued, running, lost = TaskState.QUEUED, TaskState.RUNNING, TaskState.LOST
    for t, appears, expected in [
        (0.0, None, [queued, queued, queued]),
        (4.0, "m0", [running, queued, queued]),
        (8.0, None, [running, queued, queued]),  # 8 s missing, but 4 s since the records grew
        (9.5, "m1", [running, running, queued]),
        (14.0, None, [running, running, queued]),
        (15.0, None, [running, running, lost]),  # nothing taken in for 5.5 s
    ]:
        now[0] = t
        if appears:
            hub.records[appears] = record()
        watcher._check()
        assert states(tracker) == expected, t


def test_how_long_a_missing_task_may_take_to_appear_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(attach.GONE_AFTER_ENV, "5")
    assert watch(FakeHub({}), 1)[0].gone_after_s == 5.0
    monkeypatch.setenv(attach.GONE_AFTER_ENV, "soon")  # not a number: the default
    assert watch(FakeHub({}), 1)[0].gone_after_s == attach.GONE_AFTER_S


def test_output_is_asked_of_the_records_only_for_tasks_not_heard_in_full() -> None:
    """Each second the watcher reads the records of every pending task, but their output only
    for those that reached an engine before it listened: not a 100k-task job's every stdout."""
    queued = dict(record(), engine_uuid=None, started=None)
    hub = FakeHub({"m0": record(), "m1": record(stdout="before\n"), "m2": queued})
    watcher, tracker, mds = watch(hub, 3)
    watcher._listening_since = 0.0
    watcher._heard(iopub("m0", "status", execution_state="busy"))  # started while listening
    watcher._check()
    watcher._check()
    assert hub.asked_output == ["m1", "m1"]
    assert mds[1]["stdout"] == "before\n"
