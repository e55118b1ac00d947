"""`ippmon top` without a cluster: the engines' ledger, the watch joining it to the controller's
records, the update messages, and the screen's keys on recorded state."""

from __future__ import annotations

import threading

from fakes import recorded_top as rt
from fakes.backends import FakeBackend, FakeSession, FakeWatch
from fakes.pilot import make_app, settle
from test_clusterview import HubStandIn

from ippmon.clusterview import ClusterObserver
from ippmon.clusterwatch import ClusterWatcher
from ippmon.topmodel import (
    EngineLedger,
    Rate,
    TopJob,
    TopLine,
    TopSnapshot,
    job_title,
    short_msg_id,
)
from ippmon.ui.messages import ClusterUpdate
from ippmon.ui.poller import poll_cluster
from ippmon.ui.screens.job_picker import JobPickerScreen
from ippmon.ui.screens.top import TopScreen
from ippmon.ui.widgets.output_log import OutputLog
from ippmon.ui.widgets.top_panels import JobTable, TopEngineTable, job_bar


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_ledger_counts_each_engines_tasks_busy_time_and_failures_since_watching() -> None:
    clock = Clock()
    ledger = EngineLedger(clock)
    ledger.seen([0, 1])
    ledger.status(0, "s_1_1", "s", busy=True)
    clock.t += 3
    ledger.status(0, "s_1_1", "s", busy=False)
    ledger.status(0, "s_1_2", "s", busy=True)
    ledger.error(0, "s_1_2")
    clock.t += 1
    ledger.status(0, "s_1_2", "s", busy=False)
    ledger.status(1, "t_9_5", "t", busy=True)
    clock.t += 6
    engines = ledger.engines()
    assert (engines[0].done, engines[0].failed, engines[0].msg_id) == (1, 1, None)
    assert engines[0].busy_pct == 40.0  # 4 s of 10
    assert (engines[1].msg_id, engines[1].session, engines[1].running_for_s) == ("t_9_5", "t", 6)
    assert engines[1].busy_pct == 60.0
    ledger.seen([2])  # registered now: watched from now on
    clock.t += 1
    assert ledger.engines()[2].busy_pct == 0.0
    assert ledger.totals() == (1, 1)


def test_a_task_already_running_when_watching_began_counts_from_then() -> None:
    clock = Clock()
    ledger = EngineLedger(clock)
    ledger.seen([0])
    clock.t += 2
    assert ledger.engines()[0].running_for_s is None
    ledger.status(0, "old_1_1", "old", busy=False)
    clock.t += 2
    assert (ledger.engines()[0].done, ledger.engines()[0].busy_pct) == (1, 50.0)


def test_output_is_cut_into_lines_an_unended_one_goes_out_with_its_task() -> None:
    clock = Clock()
    ledger = EngineLedger(clock)
    ledger.status(1, "s_1_1", "s", busy=True)
    ledger.output(1, "s_1_1", "s", "stdout", "one\ntw")
    ledger.output(1, "s_1_1", "s", "stdout", "o\nthr")
    ledger.output(1, "s_1_1", "s", "stderr", "\x1b]0;title\x07warn\r\n")
    lines, dropped = ledger.lines_since(0, lambda msg_id, session: f"{session}/job")
    assert [(line.text, line.stream) for line in lines] == [
        ("one", "stdout"),
        ("two", "stdout"),
        ("warn", "stderr"),
    ]
    assert dropped == 0 and {line.job for line in lines} == {"s/job"}
    ledger.status(1, "s_1_1", "s", busy=False)
    lines, _ = ledger.lines_since(3, lambda msg_id, session: session)
    assert [(line.seq, line.engine, line.text) for line in lines] == [(4, 1, "thr")]
    assert ledger.engines()[1].last_line == "thr"


def test_lines_beyond_the_bound_are_dropped_and_counted() -> None:
    ledger = EngineLedger(Clock(), max_lines=3)
    ledger.output(0, "m_1_1", "s", "stdout", "".join(f"{i}\n" for i in range(5)))
    lines, dropped = ledger.lines_since(0, lambda msg_id, session: session)
    assert [line.text for line in lines] == ["2", "3", "4"] and dropped == 2
    assert ledger.lines_since(5, lambda msg_id, session: session) == ([], 0)


def test_the_watcher_checks_messages_apart_from_the_clients_session() -> None:
    """A Session refuses a signature it has seen: the client's IO thread reads every iopub
    message too, so with one shared Session the watcher lost some of them."""
    from jupyter_client.session import Session

    from ippmon.iopub_watch import own_session

    client_session = Session(key=b"cluster-key")
    parts = client_session.serialize(client_session.msg("status", {"execution_state": "busy"}))
    _, frames = client_session.feed_identities(parts)
    client_session.deserialize(frames)
    mine = own_session(client_session)
    assert mine is not client_session and mine.key == b"cluster-key"
    assert mine.deserialize(frames)["content"] == {"execution_state": "busy"}


def test_names_and_ids_are_short_and_say_whose() -> None:
    assert short_msg_id("4f1c-aa_4242_17") == "…_17"
    assert short_msg_id("0123456789abcdef") == "01234567"
    assert job_title("abcdef0123", "ippmon:squares") == "squares"
    assert job_title("abcdef0123", "fit") == "fit"
    assert job_title("abcdef0123", None) == "abcdef01"


def test_jobs_of_two_sessions_with_the_same_name_are_told_apart_by_their_session() -> None:
    """Two notebooks mapping the same function send jobs of the same label."""
    jobs = (
        TopJob("aaaa1111bbbb/fit", "aaaa1111bbbb", "ann", "fit", None, done=3),
        TopJob("cccc2222dddd/fit", "cccc2222dddd", "bob", "fit", None, queued=5),
        TopJob("cccc2222dddd/plot", "cccc2222dddd", "bob", "plot", None),
        TopJob("eeee3333ffff", "eeee3333ffff", "cy", None, None),
    )
    snap = TopSnapshot(1.0, 1.0, (), jobs, 0, 0, 0, 0.0, "DictDB", ())
    assert [snap.title_of(job.id) for job in jobs] == [
        "fit · aaaa1111",
        "fit · cccc2222",
        "plot",
        "eeee3333",
    ]
    assert snap.title_of("9999aaaa0000/fit") == "fit"  # not in the records yet


def test_the_rate_is_over_the_recent_window() -> None:
    rate = Rate(window_s=10)
    assert rate.add(0, 0) == 0.0
    assert rate.add(0.5, 3) == 0.0  # less than a second of it
    assert rate.add(5, 10) == 2.0
    for t in range(6, 30):
        rate.add(t, 10 + (t - 5) * 5)
    assert rate.add(30, 135) == 5.0


def test_the_watch_joins_the_records_jobs_to_what_the_engines_say() -> None:
    hub = HubStandIn(rt_db())
    for i in range(4):
        hub.submit(f"alice_7_{i}", "alice", label="ippmon:squares")
    hub.submit("bob_9_0", "bob")
    hub.assign("alice_7_0", 0)
    clock = Clock()
    watch = watch_of(hub, clock)
    watch.ledger.status(0, "alice_7_0", "alice", busy=True)
    watch.ledger.status(1, "bob_9_0", "bob", busy=True)  # before the scheduler's record says so
    watch.ledger.output(0, "alice_7_0", "alice", "stdout", "hello\n")
    clock.t += 2
    snap = watch.poll()
    assert [(e.id, e.state, e.job, e.running_for_s) for e in snap.engines] == [
        (0, "busy", "alice/ippmon:squares", 2.0),
        (1, "busy", "bob", 2.0),
    ]
    (squares,) = [j for j in snap.jobs if j.ippmon]
    assert (squares.title, squares.queued, squares.running) == ("squares", 3, 1)
    lines, _ = watch.output_since(0)
    assert [(line.job, line.text) for line in lines] == [("alice/ippmon:squares", "hello")]
    queries = len(hub.queries)
    clock.t += 0.5
    watch.poll()
    assert len(hub.queries) == queries  # the controller is asked at most once a second
    for i in range(2):
        hub.finish(f"alice_7_{i}", 0, "ok")
    clock.t += 2
    (squares,) = [j for j in watch.poll().jobs if j.ippmon]
    assert squares.done == 2 and squares.tasks_per_s > 0 and squares.eta_s is not None


def test_an_engine_killed_mid_task_is_gone_and_no_longer_runs_its_task() -> None:
    """It never says idle: the watch stops calling its last task its current one (an interrupt
    would otherwise target a dead engine), and the job counts that task failed."""
    hub = HubStandIn(rt_db())
    hub.submit("gina_1_0", "gina")
    hub.assign("gina_1_0", 1)
    clock = Clock()
    watch = watch_of(hub, clock)
    watch.ledger.status(1, "gina_1_0", "gina", busy=True)
    assert [(e.id, e.state, e.msg_id) for e in watch.poll().engines][1] == (1, "busy", "gina_1_0")
    del hub._engines[1]
    hub.ids = [0]
    hub.queues[1] = {"queue": 0, "completed": 0, "tasks": 1}
    clock.t += 2
    snap = watch.poll()
    assert [(e.id, e.state, e.msg_id) for e in snap.engines] == [
        (0, "idle", None),
        (1, "gone", None),
    ]
    assert watch.ledger.engines()[1].msg_id is None
    assert watch.interrupt("gina") == []
    (job,) = snap.jobs
    assert (job.running, job.failed) == (0, 1)


def test_top_says_the_iopub_relay_is_down_when_tasks_end_and_no_engine_says_a_word() -> None:
    """A controller whose relay process died as it started runs tasks, but no engine message
    reaches anyone: top says so once tasks have ended for a minute without one."""
    from ippmon.clusterwatch import RELAY_DOWN, RELAY_SILENT_S

    def relay_down(watch: ClusterWatcher, clock: Clock, hub: HubStandIn, at: float) -> bool:
        clock.t = at
        return RELAY_DOWN in watch.poll().limits

    for heard in (False, True):
        hub = HubStandIn(rt_db())
        for i in range(3):
            hub.submit(f"carl_3_{i}", "carl")
        clock = Clock()
        start = clock.t
        watch = watch_of(hub, clock)
        assert not relay_down(watch, clock, hub, start + RELAY_SILENT_S)  # nothing ended yet
        if heard:
            watch.ledger.status(0, "carl_3_0", "carl", busy=True)
        hub.assign("carl_3_0", 0)
        hub.finish("carl_3_0", 0, "ok")
        assert not relay_down(watch, clock, hub, start + RELAY_SILENT_S / 2)  # too soon to say
        assert relay_down(watch, clock, hub, start + RELAY_SILENT_S + 2) is not heard


def test_a_controller_slow_to_answer_is_asked_less_often() -> None:
    """Each ask of the records costs the controller (it answers nobody else meanwhile): top
    waits ASK_COST_FACTOR times as long as the last ask took before asking again."""
    hub = HubStandIn(rt_db())
    hub.submit("hana_1_0", "hana")
    clock = Clock()
    watch = watch_of(hub, clock)
    ticks = iter(range(0, 1000, 2))  # each ask takes 2 s by the watch's timer
    watch.timer = lambda: float(next(ticks))
    watch.poll()
    asked = len(hub.queries)
    clock.t += 5  # 2 s x 5 = 10 s must pass, not the usual 1 s
    watch.poll()
    assert len(hub.queries) == asked
    clock.t += 5
    watch.poll()
    assert len(hub.queries) > asked


def watch_of(hub: HubStandIn, clock: Clock) -> ClusterWatcher:
    """A watch of a stand-in hub by its records alone (no iopub watcher)."""
    return ClusterWatcher(
        hub,  # type: ignore[arg-type]
        clock=clock,
        observer=ClusterObserver(hub, clock),  # type: ignore[arg-type]
        start=False,
    )


def rt_db():  # noqa: ANN201
    from ipyparallel.controller.dictdb import DictDB

    return DictDB()


def test_a_newer_update_replaces_a_queued_one_and_keeps_its_lines() -> None:
    snap = rt.top_snapshot(2)
    line = TopLine(1, 0, rt.FIT, "m", "stdout", "a")
    older = ClusterUpdate(snap, [line])
    newer = ClusterUpdate(snap, [TopLine(2, 0, rt.FIT, "m", "stdout", "b")], dropped=1)
    assert older.can_replace(newer) and [x.text for x in newer.lines] == ["a", "b"]


def test_the_poller_posts_updates_until_stopped() -> None:
    stop = threading.Event()
    posted: list[object] = []

    def post(message: object) -> None:
        posted.append(message)
        if len(posted) == 3:
            stop.set()

    last = poll_cluster(FakeWatch(), post, stop, interval=0.01)  # type: ignore[arg-type]
    assert len(posted) == 3 and all(isinstance(m, ClusterUpdate) for m in posted)
    assert last == rt.top_lines()[-1].seq


def test_the_bar_shows_failures_even_when_few() -> None:
    job = rt.JOBS[0]
    cells = job_bar(job, 10, None, None)
    assert isinstance(cells, tuple)
    assert [len(text) for text, _ in cells] == [5, 1, 4]


def top_app(session: FakeSession, **kwargs: object):  # noqa: ANN201
    return make_app(FakeBackend(session, target=True), **kwargs)  # type: ignore[arg-type]


def output_texts(app) -> list[str]:  # noqa: ANN001
    return [str(line) for line in app.screen.query_one(OutputLog).lines]


async def test_t_in_the_job_picker_opens_top_and_esc_returns() -> None:
    session = FakeSession(watch=FakeWatch(rt.top_snapshot(16)))
    app = top_app(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TopScreen) and session.watched == 1
        assert len(output_texts(app)) == 30
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, JobPickerScreen) and session.cluster_watch.closed


async def test_enter_shows_one_job_alone_and_esc_every_job_again() -> None:
    session = FakeSession(watch=FakeWatch(rt.top_snapshot(16)))
    app = top_app(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("down", "enter")  # the second job: fit
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TopScreen) and screen.picked == rt.FIT
        assert output_texts(app) and all(" fit]" in text for text in output_texts(app))
        table = screen.query_one(TopEngineTable)
        assert table.row_count == sum(1 for e in rt.engines(16) if e.job == rt.FIT)
        await pilot.press("escape")
        await settle(pilot)
        assert screen.picked is None and len(output_texts(app)) == 30
        assert table.row_count == 16 and isinstance(app.screen, TopScreen)


async def test_ippmon_top_shows_top_alone_and_quitting_closes_the_watch() -> None:
    session = FakeSession(watch=FakeWatch(rt.top_snapshot(2)))
    app = top_app(session)
    app.top_only = True
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, TopScreen) and len(app.screen_stack) == 2
        assert app.screen.query_one(JobTable).row_count == 3
        await pilot.press("escape")  # nothing to go back to
        await settle(pilot)
        assert isinstance(app.screen, TopScreen)
        await pilot.press("q")
        await settle(pilot)
    assert session.cluster_watch.closed and session.closed
    assert app.return_value == 0


async def test_t_in_the_cluster_picker_connects_then_opens_top() -> None:
    from fakes import recorded as rec

    session = FakeSession()
    app = make_app(FakeBackend(session, choices=rec.CHOICES))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TopScreen)
        assert isinstance(app.screen_stack[-2], JobPickerScreen)
