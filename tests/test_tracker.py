"""The tracker's arithmetic and bookkeeping on recorded metadata (no cluster, no terminal)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ippmon.model import OutputBatch, Phase, TaskState
from ippmon.tracker import Event, Recorded, Tracker, classify


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class FakeRemoteError(Exception):
    ename: str
    evalue: str
    traceback: str = ""


def md(**kw: object) -> dict:
    base = dict.fromkeys(("engine_id", "started", "completed", "submitted"))
    base.update(stdout="", stderr="")
    base.update(kw)
    return base


def make(n: int, clock: Clock) -> tuple[Tracker, list[dict]]:
    tracker = Tracker("t", n, clock=clock)
    mds = [md() for _ in range(n)]
    tracker.add_chunks([([i], m) for i, m in enumerate(mds)], attempt=1)
    tracker.set_engines([0, 1])
    return tracker, mds


def start(tracker: Tracker, mds: list[dict], i: int, engine: int) -> None:
    mds[i]["engine_id"] = engine
    tracker.notify(i, Event.ACTIVITY)


def finish(tracker: Tracker, mds: list[dict], i: int, t0: float, t1: float, result=None) -> None:
    mds[i]["started"], mds[i]["completed"] = t0, t1
    tracker.notify(i, Event.DONE, [result] if not isinstance(result, BaseException) else result)
    tracker.notify(i, Event.OUTPUT_DONE)


def test_counts_engines_and_timing_follow_events() -> None:
    clock = Clock()
    tracker, mds = make(4, clock)
    start(tracker, mds, 0, 0)
    start(tracker, mds, 1, 1)
    clock.t += 1
    tracker.poll()
    snap = tracker.snapshot()
    assert snap.count(TaskState.RUNNING) == 2 and snap.count(TaskState.QUEUED) == 2
    e0, e1 = snap.engines
    assert (e0.task, e1.task) == (0, 1)
    assert e0.running_for_s == pytest.approx(1.0)

    clock.t += 1
    finish(tracker, mds, 0, 1000.0, 1002.0, result=0)
    finish(tracker, mds, 1, 1000.0, 1001.5, result=FakeRemoteError("ValueError", "bad"))
    ready = tracker.poll()
    assert sorted(c.indices[0] for c in ready) == [0, 1]
    snap = tracker.snapshot()
    assert snap.count(TaskState.OK) == 1 and snap.count(TaskState.ERROR) == 1
    assert snap.serial_s == pytest.approx(3.5)
    assert snap.elapsed_s == pytest.approx(2.0)
    assert snap.speedup == pytest.approx(1.75)
    assert snap.efficiency == pytest.approx(0.875)
    assert snap.engines[0].task is None and snap.engines[0].tasks_done == 1
    assert snap.engines[0].busy_s == pytest.approx(2.0)
    assert snap.engines[0].busy_pct == pytest.approx(100.0)
    assert snap.failures[0].line == "ValueError: bad"
    assert snap.phase is Phase.RUNNING


def test_job_finishes_when_every_task_is_final() -> None:
    clock = Clock()
    tracker, mds = make(2, clock)
    for i in range(2):
        start(tracker, mds, i, i)
    tracker.poll()
    clock.t += 2
    for i in range(2):
        finish(tracker, mds, i, 1000.0, 1002.0, result=i)
    tracker.poll()
    clock.t += 5  # time after the end does not count
    snap = tracker.snapshot()
    assert snap.phase is Phase.FINISHED and tracker.settled
    assert snap.elapsed_s == pytest.approx(2.0)
    assert snap.succeeded and snap.eta_s == 0.0


def test_a_task_started_and_finished_between_polls_is_counted_once() -> None:
    clock = Clock()
    tracker, mds = make(3, clock)
    start(tracker, mds, 0, 1)
    finish(tracker, mds, 0, 1000.0, 1000.5, result=7)
    ready = tracker.poll()
    assert len(ready) == 1 and tracker.poll() == []
    snap = tracker.snapshot()
    assert snap.count(TaskState.OK) == 1 and snap.count(TaskState.QUEUED) == 2
    assert snap.engines[1].tasks_done == 1 and snap.engines[1].task is None
    assert tracker.detail(0).result == 7


def test_output_stream_has_every_line_once_in_order_with_partial_lines_held() -> None:
    clock = Clock()
    tracker, mds = make(2, clock)
    start(tracker, mds, 0, 0)
    mds[0]["stdout"] = "a\nb\npar"
    tracker.poll()
    lines, dropped = tracker.output_since(0)
    assert [ln.text for ln in lines] == ["a", "b"] and dropped == 0
    mds[0]["stdout"] += "tial\nc\n"
    mds[0]["stderr"] = "oops\n"
    tracker.notify(0, Event.ACTIVITY)
    tracker.poll()
    newer, _ = tracker.output_since(lines[-1].seq)
    assert [(ln.stream, ln.text) for ln in newer] == [
        ("stdout", "partial"),
        ("stdout", "c"),
        ("stderr", "oops"),
    ]
    assert [ln.seq for ln in lines + newer] == [1, 2, 3, 4, 5]
    assert tracker.output_since(5) == ([], 0)
    assert tracker.snapshot().engines[0].last_line == "oops"


def test_unterminated_last_line_is_flushed_when_the_task_finishes() -> None:
    clock = Clock()
    tracker, mds = make(1, clock)
    start(tracker, mds, 0, 0)
    mds[0]["stdout"] = "done without newline"
    finish(tracker, mds, 0, 1000.0, 1001.0, result=1)
    tracker.poll()
    lines, _ = tracker.output_since(0)
    assert [ln.text for ln in lines] == ["done without newline"]


def test_bounded_output_reports_what_a_slow_reader_missed() -> None:
    clock = Clock()
    tracker = Tracker("t", 1, clock=clock, max_output_lines=10)
    m = md(engine_id=0, stdout="".join(f"{i}\n" for i in range(25)))
    tracker.add_chunks([([0], m)], attempt=1)
    tracker.notify(0, Event.ACTIVITY)
    tracker.poll()
    lines, dropped = tracker.output_since(0)
    assert [ln.text for ln in lines] == [str(i) for i in range(15, 25)]
    assert dropped == 15


def test_the_output_pane_gets_its_lines_as_text_from_where_it_read_to() -> None:
    clock = Clock()
    tracker = Tracker("t", 1, clock=clock, max_output_lines=10)
    m = md(engine_id=3, stdout="".join(f"{i}\n" for i in range(25)), stderr="bad\n")
    tracker.add_chunks([([0], m)], attempt=1)
    tracker.notify(0, Event.ACTIVITY)
    tracker.poll()
    batch = tracker.output_batch(4)
    assert batch.texts == [f"[e3 #0] {i}" for i in range(16, 25)] + ["[e3 #0]! bad"]
    assert (batch.first, batch.last, batch.dropped) == (17, 26, 12)  # seqs 5..16 were dropped
    assert tracker.output_batch(26) == OutputBatch([], 27, 26, 0)  # nothing newer: where it was


def test_engine_death_makes_its_task_lost_and_remembers_the_engine() -> None:
    clock = Clock()
    tracker, mds = make(2, clock)
    start(tracker, mds, 0, 1)
    tracker.poll()
    mds[0]["engine_id"] = None  # ipyparallel forgets
    tracker.set_engines([0])
    tracker.notify(0, Event.DONE, FakeRemoteError("EngineError", "Engine 1 died"))
    tracker.poll()
    snap = tracker.snapshot()
    assert snap.count(TaskState.LOST) == 1
    assert tracker.detail(0).engine == 1
    gone = [e for e in snap.engines if e.id == 1][0]
    assert not gone.alive and snap.n_engines == 1


def test_resubmitted_items_go_back_to_queued_with_the_next_attempt() -> None:
    clock = Clock()
    tracker, mds = make(2, clock)
    finish(tracker, mds, 1, 1000.0, 1000.1, result=FakeRemoteError("RuntimeError", "transient"))
    finish(tracker, mds, 0, 1000.0, 1000.1, result=0)
    tracker.poll()
    assert tracker.indices_in([TaskState.ERROR]) == [1]
    again = md()
    (key,) = tracker.add_chunks([([1], again)], attempt=2)
    snap = tracker.snapshot()
    assert snap.count(TaskState.ERROR) == 0 and snap.count(TaskState.QUEUED) == 1
    again.update(engine_id=0)
    tracker.notify(key, Event.ACTIVITY)
    tracker.notify(key, Event.DONE, [1])
    tracker.poll()
    assert tracker.snapshot().count(TaskState.OK) == 2
    assert tracker.detail(1).attempt == 2 and tracker.detail(1).result == 1


def test_chunks_spread_results_over_their_items() -> None:
    clock = Clock()
    tracker = Tracker("t", 4, clock=clock)
    mds = [md(engine_id=0), md(engine_id=1)]
    tracker.add_chunks([([0, 1], mds[0]), ([2, 3], mds[1])], attempt=1)
    tracker.notify(0, Event.DONE, [10, 11])
    tracker.notify(1, Event.DONE, FakeRemoteError("ZeroDivisionError", "division by zero"))
    tracker.poll()
    snap = tracker.snapshot()
    assert snap.count(TaskState.OK) == 2 and snap.count(TaskState.ERROR) == 2
    assert [tracker.detail(i).result for i in (0, 1)] == [10, 11]
    assert tracker.detail(3).ename == "ZeroDivisionError"


def test_rate_and_eta_come_from_a_window_of_samples() -> None:
    clock = Clock()
    tracker, mds = make(10, clock)
    tracker.poll()
    for i in range(4):
        clock.t += 1
        finish(tracker, mds, i, clock.t - 1, clock.t, result=i)
        tracker.poll()
    snap = tracker.snapshot()
    assert snap.tasks_per_s == pytest.approx(1.0)
    assert snap.eta_s == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("ename", "cancelling", "state"),
    [
        ("TaskAborted", False, TaskState.CANCELLED),
        ("KeyboardInterrupt", True, TaskState.CANCELLED),
        ("KeyboardInterrupt", False, TaskState.ERROR),
        ("EngineError", False, TaskState.LOST),
        ("ValueError", True, TaskState.ERROR),
    ],
)
def test_classify_maps_errors_to_states(ename: str, cancelling: bool, state: TaskState) -> None:
    got, error = classify(FakeRemoteError(ename, "x", "\x1b[31mred\x1b[0m tb"), cancelling)
    assert got is state
    assert error == (ename, "x", "red tb")


def test_classify_ok_results() -> None:
    assert classify([1, 2], cancelling=False) == (TaskState.OK, None)


def test_task_rows_show_state_engine_attempt_duration_and_the_telling_line() -> None:
    clock = Clock()
    tracker, mds = make(3, clock)
    start(tracker, mds, 0, 1)
    mds[0]["stdout"] = "first\nlast\n"
    finish(tracker, mds, 0, 1000.0, 1001.5, result=0)
    finish(tracker, mds, 1, 1000.0, 1000.5, result=FakeRemoteError("KeyError", "'x'\nmore"))
    tracker.poll()
    rows = tracker.task_rows()
    assert [(r.index, r.state, r.attempt) for r in rows] == [
        (0, TaskState.OK, 1),
        (1, TaskState.ERROR, 1),
        (2, TaskState.QUEUED, 1),
    ]
    assert rows[0].engine == 1 and rows[0].duration_s == pytest.approx(1.5)
    assert rows[0].line == "last" and rows[1].line == "KeyError: 'x'"
    assert [r.index for r in tracker.task_rows([TaskState.ERROR])] == [1]


def test_failures_shown_are_those_of_the_newest_attempts() -> None:
    clock = Clock()
    tracker, mds = make(2, clock)
    finish(tracker, mds, 0, 1000.0, 1000.1, result=FakeRemoteError("RuntimeError", "transient"))
    finish(tracker, mds, 1, 1000.0, 1000.1, result=1)
    tracker.poll()
    assert tracker.snapshot().n_failures == 1
    again = md(engine_id=0)
    (key,) = tracker.add_chunks([([0], again)], attempt=2)
    tracker.notify(key, Event.DONE, [0])
    tracker.notify(key, Event.OUTPUT_DONE)
    tracker.poll()
    snap = tracker.snapshot()
    assert snap.n_failures == 0 and snap.failures == () and snap.succeeded


def test_output_arriving_5_s_after_the_result_is_recorded_once_and_shown_once() -> None:
    """Under load the engine's output (and its end-of-output status) trails the reply by
    seconds: the task waits for it, then is recorded once, with all of it."""
    clock = Clock()
    tracker, mds = make(1, clock)
    start(tracker, mds, 0, 0)
    mds[0]["stdout"] = "line 1\n"
    tracker.poll()
    mds[0].update(started=1000.0, completed=1000.5)
    tracker.notify(0, Event.DONE, [0])  # the reply, before the rest of the output
    assert tracker.poll() == []
    for _ in range(5):
        clock.t += 1
        assert tracker.poll() == [], "recorded before its output was complete"
        assert tracker.snapshot().output_pending == 1
    assert tracker.snapshot().phase is Phase.RUNNING
    assert tracker.snapshot().output_wait == "all done · waiting for the output of 1 task"
    mds[0]["stdout"] += "line 2\nline 3\n"
    mds[0]["stderr"] = "warn\n"
    tracker.notify(0, Event.ACTIVITY)
    tracker.notify(0, Event.OUTPUT_DONE)
    (chunk,) = tracker.poll()
    assert not chunk.output_note and not chunk.amended
    assert tracker.detail(0).stdout == "line 1\nline 2\nline 3\n"
    assert tracker.detail(0).stderr == "warn\n"
    clock.t += 100
    assert tracker.poll() == [] and tracker.late_output() == []
    lines, dropped = tracker.output_since(0)
    assert [(ln.stream, ln.text) for ln in lines] == [
        ("stdout", "line 1"),
        ("stdout", "line 2"),
        ("stdout", "line 3"),
        ("stderr", "warn"),
    ]
    assert dropped == 0
    assert tracker.snapshot().phase is Phase.FINISHED


def test_a_task_whose_engine_is_gone_is_recorded_without_waiting_and_says_why() -> None:
    clock = Clock()
    tracker, mds = make(1, clock)
    start(tracker, mds, 0, 1)
    mds[0]["stdout"] = "partial"
    tracker.poll()
    tracker.set_engines([0])  # engine 1 unregistered
    tracker.notify(0, Event.DONE, FakeRemoteError("EngineError", "Engine 1 died"))
    (chunk,) = tracker.poll()
    assert chunk.state is TaskState.LOST
    assert chunk.output_note == (
        "output may be incomplete: engine 1 stopped before the end of it arrived"
    )
    assert [ln.text for ln in tracker.output_since(0)[0]] == ["partial"]


def test_without_a_controller_waiting_tasks_are_recorded_with_what_they_have() -> None:
    clock = Clock()
    tracker, mds = make(1, clock)
    start(tracker, mds, 0, 0)
    tracker.notify(0, Event.DONE, [0])
    assert tracker.poll() == []
    tracker.set_controller_lost(True)
    (chunk,) = tracker.poll()
    assert "the controller stopped answering" in chunk.output_note


def test_with_the_iopub_relay_silent_results_are_recorded_at_once_and_let_go() -> None:
    clock = Clock()
    tracker = Tracker("t", 2, clock=clock, output_wait_s=600)
    mds = [md(engine_id=0), md(engine_id=1)]
    tracker.add_chunks([([0], mds[0]), ([1], mds[1])], attempt=1)
    tracker.set_engines([0, 1])
    tracker.notify(0, Event.DONE, [0])
    assert tracker.poll() == []  # waits for its output, as usual
    tracker.set_iopub_silent(True)
    (first,) = tracker.poll()
    assert first.output_note == (
        "output may be incomplete: none came through the controller's iopub relay"
    )
    tracker.notify(1, Event.DONE, [1])
    (second,) = tracker.poll()  # no wait at all while the relay is silent
    assert second.output_note == first.output_note and not second.may_grow
    assert tracker.snapshot().phase is Phase.FINISHED
    tracker.release([first, second])  # none will come: not kept whole for an amendment
    assert tracker.released(0) and tracker.released(1)
    assert tracker.late_output() == []


def test_output_later_than_the_last_resort_wait_is_recorded_as_an_amendment() -> None:
    clock = Clock()
    tracker = Tracker("t", 1, clock=clock, output_wait_s=60)
    m = md(engine_id=0, stdout="a\n")
    tracker.add_chunks([([0], m)], attempt=1)
    tracker.set_engines([0])
    tracker.notify(0, Event.ACTIVITY)
    tracker.notify(0, Event.DONE, [0])
    tracker.poll()
    clock.t += 59
    assert tracker.poll() == []
    clock.t += 1
    (first,) = tracker.poll()
    assert "had not arrived 60 s after the result" in first.output_note and not first.amended
    assert tracker.snapshot().phase is Phase.FINISHED  # the job does not wait any longer
    m["stdout"] += "b\n"
    tracker.notify(0, Event.ACTIVITY)
    assert tracker.poll() == []  # more output, but not known to be complete yet
    tracker.notify(0, Event.OUTPUT_DONE)
    (again,) = tracker.poll()
    assert again is first and again.amended and again.output_note == ""
    assert tracker.detail(0).stdout == "a\nb\n"
    assert [ln.text for ln in tracker.output_since(0)[0]] == ["a", "b"]
    assert tracker.poll() == [] and tracker.late_output() == []


def test_late_output_of_a_task_whose_end_never_comes_is_handed_out_when_closing() -> None:
    clock = Clock()
    tracker = Tracker("t", 1, clock=clock, output_wait_s=1)
    m = md(engine_id=0, stdout="a\n")
    tracker.add_chunks([([0], m)], attempt=1)
    tracker.notify(0, Event.DONE, [0])
    tracker.poll()
    clock.t += 1
    (first,) = tracker.poll()
    assert first.output_note and tracker.late_output() == []
    m["stdout"] += "b\n"
    tracker.notify(0, Event.ACTIVITY)
    tracker.poll()
    (again,) = tracker.late_output()
    assert again.amended and again.output_note == first.output_note
    assert tracker.late_output() == []  # nothing new since


def test_notices_from_different_sources_do_not_clear_each_other() -> None:
    tracker = Tracker("t", 1, clock=Clock())
    tracker.set_notice("controller", "controller unreachable")
    tracker.set_notice("watcher", "cannot query the controller")
    tracker.set_notice("controller", "")
    assert tracker.snapshot().message == "cannot query the controller"


def test_an_outcome_known_already_is_recorded_at_once_without_waiting_for_output() -> None:
    """Read back from a run record, or decided by ippmon (a task the controller lost)."""
    tracker = Tracker("t", 2, clock=Clock())
    tracker.add_chunks([([0], md(stdout="as recorded\n")), ([1], md())], attempt=1)
    tracker.notify(0, Event.DONE, Recorded(TaskState.OK, 5))
    tracker.notify(1, Event.DONE, Recorded(TaskState.LOST, None, ("TaskLost", "culled", "")))
    assert [c.indices for c in tracker.poll()] == [[0], [1]]
    assert tracker.snapshot().phase is Phase.FINISHED
    assert tracker.detail(0).result == 5 and tracker.detail(0).stdout == "as recorded\n"


def test_released_chunks_are_let_go_of_and_keep_rows_timeline_and_counts() -> None:
    clock = Clock()
    tracker = Tracker("t", 5, clock=clock)
    mds = [md(engine_id=0, submitted=999.0), md(engine_id=1, submitted=999.0), md()]
    tracker.add_chunks([([0, 1], mds[0]), ([2], mds[1]), ([3, 4], mds[2])], attempt=1)
    tracker.set_engines([0, 1])
    tracker.poll()
    mds[0].update(started=1000.0, completed=1002.0, stdout="a\nlast words\n")
    mds[1].update(started=1000.0, completed=1000.5)
    tracker.notify(0, Event.DONE, [10, 11])
    tracker.notify(1, Event.DONE, FakeRemoteError("KeyError", "'x'", "tb"))
    for key in (0, 1):
        tracker.notify(key, Event.OUTPUT_DONE)
    ready = tracker.poll()
    before = (tracker.task_rows(), tracker.timeline(), tracker.snapshot().counts)
    for chunk in ready:
        chunk.recorded = True
    tracker.release(ready)

    assert tracker._chunks[:2] == [None, None]  # nothing of the chunks themselves is kept
    assert [tracker.released(i) for i in range(5)] == [True, True, True, False, False]
    assert (tracker.task_rows(), tracker.timeline(), tracker.snapshot().counts) == before
    assert before[0][1].line == "last words" and before[0][2].line == "KeyError: 'x'"
    detail = tracker.detail(1)
    assert (detail.state, detail.engine, detail.started, detail.duration_s) == (
        TaskState.OK,
        0,
        1000.0,
        2.0,
    )
    assert detail.extra == {"chunk": [0, 1]}
    # a released failure resubmitted goes back to queued, and is no longer a failure
    (key,) = tracker.add_chunks([([2], md())], attempt=2)
    snap = tracker.snapshot()
    assert snap.count(TaskState.ERROR) == 0 and snap.count(TaskState.QUEUED) == 3
    assert not tracker.released(2) and tracker.detail(2).attempt == 2
