"""The ippmon app: which screen comes next, app-wide keys, and the exit code.

Flow: connecting (discover / connect / start a local cluster) → [cluster picker | no cluster] →
job picker → monitor (pushed over the picker, so Escape after the job returns to it). From the
picker, `a` lists the recorded runs; choosing one re-attaches to it (`Job.restore`, in a
thread) and opens the monitor on it; `t` opens the top screen (every client's tasks), as does
`t` in the cluster picker once connected. `ippmon top` shows the top screen alone.

How screens hand results to the app, one rule:
- A screen the app pushes ends by dismissing with what was decided (a `Session`, a cluster
  choice, a `RunSummary`, a `MonitorResult`, a confirm's bool); the `push_screen` callback here
  routes to the next screen. A monitor that reruns its job with the advice says so in its
  `MonitorResult`, like Escape says it is done.
- The job picker is the app's base screen and is never dismissed, so it cannot answer that way:
  it asks by posting `JobPickerScreen.Submit`, `OpenRuns` and `OpenTop`, handled below.
  No other screen posts a request to the app.
(Thread workers answer the node that started them with a message, `messages.py`; that is how
work comes back, not how screens end.)

Quitting while a job runs asks what becomes of its tasks (`LeaveScreen`: leave them running,
cancel them, or stay), except on a local cluster ippmon started, which stops with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from ippmon import _compat, runs
from ippmon.exit_codes import ExitCode
from ippmon.model import JobSnapshot
from ippmon.notify import NOTIFY_AFTER_S, sequence, summary, worth_telling
from ippmon.protocols import Backend, ClusterChoice, ConnectError, JobHandle, Session
from ippmon.runs import RunSummary
from ippmon.ui.messages import Attached, CancelledBeforeQuitting, JobEnded
from ippmon.ui.screens.closing import ClosingScreen
from ippmon.ui.screens.cluster_picker import DEFAULT_LOCAL_ENGINES, ClusterPickerScreen
from ippmon.ui.screens.confirm import ConfirmScreen, QuitConfirm
from ippmon.ui.screens.connecting import Attempt, AttemptKind, ConnectingScreen
from ippmon.ui.screens.help import HelpScreen
from ippmon.ui.screens.job_picker import JobPickerScreen
from ippmon.ui.screens.leave import CANCEL, LEAVE, LeaveScreen
from ippmon.ui.screens.monitor import MonitorResult, MonitorScreen
from ippmon.ui.screens.no_cluster import NoClusterScreen
from ippmon.ui.screens.runs import RunsScreen
from ippmon.ui.screens.top import TopScreen
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed

if TYPE_CHECKING:
    from ippmon.jobspec import Catalog, JobSpec


class _NoBackend:
    """The backend of an app made `for_job`: it never connects."""

    def target_given(self) -> bool:
        return True

    def discover(self) -> list[ClusterChoice]:
        return []

    def connect(self, choice: ClusterChoice | None = None) -> Session:
        raise ConnectError("this ippmon watches one job and does not connect")

    def start_local(self, n: int) -> Session:
        raise ConnectError("this ippmon watches one job and does not start clusters")


class IppmonApp(AnswersFromWorkers, App[int]):
    """Returns the exit code: 0 all tasks ok (or nothing run), 1 some failed, were cancelled or
    were left running, 3 no cluster was reached."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it
    TITLE = "ippmon"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
    ]

    def __init__(
        self,
        backend: Backend,
        catalog: Catalog,
        *,
        runs_dir: str | None = None,
        job_name: str | None = None,
        clock: Callable[[], float] = time.time,
        local_engines: int | None = None,
        poll_interval: float = 0.25,
        notify_after: float | None = NOTIFY_AFTER_S,
        top: bool = False,
    ) -> None:
        """`notify_after`: a job that ran this many seconds or longer rings the bell and sends a
        desktop notification when it ends (`ippmon.notify`); None never does. `top`: once
        connected, show only the top screen (`ippmon top`), no job picker."""
        super().__init__()
        self.top_only = top
        self._top_next = False  # the cluster picker's `t`: the top screen once connected
        self.notify_after = notify_after
        self.backend = backend
        self.catalog = catalog
        self.runs_dir = runs_dir
        self.job_name = job_name
        self.clock = clock
        self.local_engines = local_engines
        self.poll_interval = poll_interval
        self._pending_job = job_name
        self._given_job: JobHandle | None = None
        self._given_attached = False
        self._quitting = False  # cancelling the tasks before quitting
        self._owns_cluster = False  # the session is a local cluster this app started
        self.session: Session | None = None
        self._monitor: MonitorScreen | None = None  # set when pushed, cleared when dismissed
        self.last_snapshot: JobSnapshot | None = None

    @classmethod
    def for_job(
        cls,
        job: JobHandle,
        *,
        attached: bool = False,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,
        notify_after: float | None = NOTIFY_AFTER_S,
    ) -> IppmonApp:
        """Watch one job: no connecting, no picker; the caller owns the session and closes it.
        `attached=True` for a job an earlier ippmon sent (`ippmon attach`, `ippmon resume`):
        the monitor says so in its status line."""
        from ippmon.jobspec import Catalog

        app = cls(
            _NoBackend(),
            Catalog({}),
            clock=clock,
            poll_interval=poll_interval,
            notify_after=notify_after,
        )
        app._given_job = job
        app._given_attached = attached
        return app

    # -- routing --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._given_job is not None:
            self._watch(job=self._given_job, attached=self._given_attached)
        elif self.local_engines:
            self.attempt(Attempt.local(self.local_engines))
        elif self.backend.target_given():
            self.attempt(Attempt.connect(None))
        else:
            self.attempt(Attempt.discover())

    def attempt(self, attempt: Attempt | None) -> None:
        if attempt is not None:
            self._owns_cluster = attempt.kind is AttemptKind.LOCAL
            self._top_next = self._top_next or attempt.top
            self.push_screen(ConnectingScreen(self.backend, attempt, self.clock), self._reached)

    def _reached(self, outcome: Session | list[ClusterChoice] | None) -> None:
        if isinstance(outcome, list):
            self._route_discovery(outcome)
        elif outcome is not None:
            self.session = outcome
            self.sub_title = outcome.info.label
            if self.top_only:
                self.push_screen(self._top_screen(outcome, can_go_back=False))
                return
            self.push_screen(JobPickerScreen(self.catalog, outcome.info))
            if self._top_next:
                self._top_next = False
                self.open_top()
            if self._pending_job:
                name, self._pending_job = self._pending_job, None
                self._submit_named(name)

    def _route_discovery(self, choices: list[ClusterChoice]) -> None:
        engines = self.local_engines or DEFAULT_LOCAL_ENGINES
        if not choices:
            self.push_screen(NoClusterScreen(engines), self.attempt)
        elif len(choices) == 1:
            self.attempt(Attempt.connect(choices[0]))
        else:
            self.push_screen(ClusterPickerScreen(choices, local_engines=engines), self.attempt)

    def _submit_named(self, name: str) -> None:
        from ippmon.jobspec import SpecError

        try:
            spec = self.catalog.get(name)
        except SpecError as error:
            self.notify(str(error), title="Cannot run that job", severity="error", timeout=15)
        else:
            self.submit(spec)

    def submit(self, spec: JobSpec) -> None:
        """Open the monitor for `spec`; it submits the job itself."""
        if self.session is None or self.running_monitor() is not None:
            return
        self._watch(spec)

    def _watch(
        self, spec: JobSpec | None = None, *, job: JobHandle | None = None, attached: bool = False
    ) -> None:
        """Push the monitor that submits `spec`, or watches `job`, and hold on to it."""
        self._monitor = MonitorScreen(
            spec,
            session=self.session if spec is not None else None,
            job=job,
            runs_dir=self.runs_dir,
            poll_interval=self.poll_interval,
            attached=attached,
            clock=self.clock,
        )
        self.push_screen(self._monitor, self._monitor_closed)

    def on_job_picker_screen_submit(self, message: JobPickerScreen.Submit) -> None:
        self.submit(message.spec)

    # -- top: every client's tasks ----------------------------------------------------------------

    def on_job_picker_screen_open_top(self, message: JobPickerScreen.OpenTop) -> None:
        self.open_top()

    def open_top(self) -> None:
        """The top screen over the job picker (Escape returns to it)."""
        if self.session is None or self.running_monitor() is not None:
            return
        self.push_screen(self._top_screen(self.session, can_go_back=True))

    def _top_screen(self, session: Session, *, can_go_back: bool) -> TopScreen:
        return TopScreen(session, poll_interval=self.poll_interval, can_go_back=can_go_back)

    def _top_screens(self) -> list[TopScreen]:
        return [screen for screen in self.screen_stack if isinstance(screen, TopScreen)]

    # -- the runs list: attach to a recorded run ------------------------------------------------

    def on_job_picker_screen_open_runs(self, message: JobPickerScreen.OpenRuns) -> None:
        self.open_runs()

    def open_runs(self) -> None:
        """List the recorded runs (read in the screen's worker); choosing one attaches to it."""
        if self.session is None or self.running_monitor() is not None:
            return
        screen = RunsScreen(
            self.read_runs,
            clock=self.clock,
            where=str(runs.runs_root(self.runs_dir)),
        )
        self.push_screen(screen, self._run_chosen)

    def read_runs(self) -> list[RunSummary]:
        """The recorded runs, newest first, for the runs list (called in its worker thread).
        The one seam for where runs come from: the tests' `RecordedApp` overrides it."""
        return runs.list_runs(self.runs_dir)

    def _run_chosen(self, summary: RunSummary | None) -> None:
        session = self.session
        if summary is None or session is None or self.running_monitor() is not None:
            return
        self.notify(f"reading run {summary.run_id}…", timeout=3, markup=False)
        self._reattach(summary, session)

    @work(thread=True, exclusive=True, exit_on_error=False, group="attach", description="reattach")
    def _reattach(self, summary: RunSummary, session: Session) -> Attached | None:
        job = session.attach(summary.folder)
        if get_current_worker().is_cancelled:  # another run was chosen meanwhile
            job.close()
            return None
        return Attached(summary, job)

    def on_attached(self, message: Attached) -> None:
        summary, job = message.summary, message.job
        if self.session is None or self.running_monitor() is not None:
            job.close()  # the app is leaving, or watches another job by now
            return
        unfinished = summary.done < summary.total
        if unfinished and summary.cluster != self.session.info.name:
            self.notify(
                f"run {summary.run_id} was sent to cluster {summary.cluster}, not to "
                f"{self.session.info.name}: tasks this controller does not know show "
                "as lost",
                title="Another cluster",
                severity="warning",
                timeout=15,
                markup=False,
            )
        self._watch(job=job, attached=True)

    def worker_failed(self, failure: WorkerFailed) -> None:
        if self._quitting:  # cancelling before quitting failed: quit anyway
            self.log.error("cancelling before quitting failed", failure.error)
            self.leave()
        else:
            text = failure.text
            self.notify(text, title="Cannot attach", severity="error", timeout=20, markup=False)

    def on_cancelled_before_quitting(self, message: CancelledBeforeQuitting) -> None:
        self.leave()

    def _monitor_closed(self, result: MonitorResult | None) -> None:
        self._monitor = None
        if result is not None and result.snapshot is not None:
            self.last_snapshot = result.snapshot
        if self._given_job is not None:
            self.exit(self.exit_code())  # watching one given job: nothing to go back to
        elif result is not None and result.rerun is not None:
            self.submit(result.rerun)  # the same job again, with the advised chunksize

    def jobs(self) -> list[JobHandle]:
        """Every job this app has watched: the one given (`for_job`) and the session's. For a
        hard exit that must close their records without the screen (see `ippmon.cli`)."""
        given = [self._given_job] if self._given_job is not None else []
        return given + list(getattr(self.session, "jobs", []))

    def on_job_ended(self, message: JobEnded) -> None:
        if worth_telling(message.snapshot, self.notify_after):
            _compat.write_to_terminal(self, sequence("ippmon", summary(message.snapshot)))

    def monitor(self) -> MonitorScreen | None:
        """The monitor of the job being watched, until it is dismissed."""
        return self._monitor

    def running_monitor(self) -> MonitorScreen | None:
        monitor = self._monitor
        return monitor if monitor is not None and monitor.running else None

    # -- exit -----------------------------------------------------------------------------------

    def exit_code(self) -> int:
        if self.session is None and self._given_job is None:
            return ExitCode.CONNECT
        monitor = self._monitor
        if monitor is not None:
            if monitor.running or monitor.submit_failed:
                return ExitCode.FAILED
            snapshot = monitor.snapshot
        else:
            snapshot = self.last_snapshot
        if snapshot is None:
            return ExitCode.OK
        return ExitCode.OK if snapshot.succeeded else ExitCode.FAILED

    async def action_quit(self) -> None:
        if isinstance(self.screen, (ConfirmScreen, ClosingScreen)) or self._quitting:
            return
        monitor = self.running_monitor()
        if monitor is None:
            self.leave()
        elif self._owns_cluster:  # the cluster stops with ippmon: nothing can be left running

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self.leave()

            self.push_screen(QuitConfirm(monitor.job_name, monitor.remaining), confirmed)
        else:
            run_id = monitor.snapshot.run_id if monitor.snapshot is not None else ""
            leave = LeaveScreen(monitor.remaining, run_id, job_name=monitor.job_name)
            self.push_screen(leave, partial(self._leave_answered, monitor))

    def _leave_answered(self, monitor: MonitorScreen, answer: str | None) -> None:
        if answer == LEAVE:
            self.leave()
        elif answer == CANCEL:
            job = monitor.job
            if job is None or not monitor.running:
                self.leave()
                return
            self._quitting = True
            monitor.stop_polling()  # the notice stays until ippmon is gone
            monitor.show_notice("Cancelling the tasks, then quitting…")
            self._cancel_then_leave(job)

    @work(thread=True, exit_on_error=False, group="quit-cancel", description="job.cancel")
    def _cancel_then_leave(self, job: JobHandle) -> CancelledBeforeQuitting:
        job.cancel()
        return CancelledBeforeQuitting()

    def leave(self) -> None:
        """Exit with the exit code, after flushing the run record and closing the session in a
        thread (stopping a cluster we started takes seconds) with a screen that says so."""
        code = self.exit_code()
        session, self.session = self.session, None
        if session is None:
            self.exit(code)
            return
        monitor = self._monitor
        if monitor is not None:
            monitor.stop_polling()
        tops = self._top_screens()
        for top in tops:
            top.stop_polling()

        def close() -> None:
            for top in tops:
                top.close_watch()
            if monitor is not None:
                monitor.close_job()
            session.close()

        closing = ClosingScreen(close, stopping_cluster=self._owns_cluster)
        self.push_screen(closing, lambda _: self.exit(code))

    def on_unmount(self) -> None:
        """Exits that bypass `leave` (signals, errors) still disconnect, on the UI loop."""
        if self.session is not None:
            session, self.session = self.session, None
            session.close()

    # -- help and command palette ---------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, (HelpScreen, ClosingScreen)):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, JobPickerScreen) and self.running_monitor() is None:
            for name, spec in self.catalog.specs.items():
                yield SystemCommand(
                    f"Submit job: {name}", spec.description, partial(self.submit, spec)
                )
            yield SystemCommand(
                "Attach to a run", "List the recorded runs and watch one again", self.open_runs
            )
            yield SystemCommand("Top", "Every client's tasks on this cluster, live", self.open_top)
        if isinstance(screen, MonitorScreen):
            yield from screen.palette_commands()
        yield SystemCommand("Help", "Every key ippmon answers to", self.action_help)
        yield SystemCommand(
            "Quit", "Quit ippmon (asks what to do with a running job)", self.action_quit
        )
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Quit the application"):
                yield command
