"""The ippmon app: which screen comes next, app-wide keys, and the exit code.

Flow: connecting (discover / connect / start a local cluster) → [cluster picker | no cluster] →
job picker → monitor (pushed over the picker, so Escape after the job returns to it). Screens end
by dismissing with what they decided; the callbacks here route to the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ippmon.model import JobSnapshot
from ippmon.session import Backend, ClusterChoice, ConnectError, JobHandle, Session
from ippmon.ui.screens.closing import ClosingScreen
from ippmon.ui.screens.cluster_picker import DEFAULT_LOCAL_ENGINES, ClusterPickerScreen
from ippmon.ui.screens.confirm import ConfirmScreen, QuitConfirm
from ippmon.ui.screens.connecting import Attempt, ConnectingScreen
from ippmon.ui.screens.help import HelpScreen
from ippmon.ui.screens.job_picker import JobPickerScreen
from ippmon.ui.screens.monitor import MonitorScreen
from ippmon.ui.screens.no_cluster import NoClusterScreen

if TYPE_CHECKING:
    from ippmon.jobspec import Catalog, JobSpec

EXIT_OK, EXIT_FAILED, EXIT_NO_CLUSTER = 0, 1, 3


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


class IppmonApp(App[int]):
    """Returns the exit code: 0 all tasks ok (or nothing run), 1 some failed, were cancelled or
    were left running, 3 no cluster was reached."""

    CSS_PATH = "app.tcss"
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
    ) -> None:
        super().__init__()
        self.backend = backend
        self.catalog = catalog
        self.runs_dir = runs_dir
        self.job_name = job_name
        self.clock = clock
        self.local_engines = local_engines
        self.poll_interval = poll_interval
        self._pending_job = job_name
        self._given_job: JobHandle | None = None
        self._owns_cluster = False  # the session is a local cluster this app started
        self.session: Session | None = None
        self.last_snapshot: JobSnapshot | None = None

    @classmethod
    def for_job(
        cls,
        job: JobHandle,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,
    ) -> IppmonApp:
        """Watch a job submitted earlier (`ippmon attach`): no connecting, no picker; the caller
        owns the session and closes it."""
        from ippmon.jobspec import Catalog

        app = cls(_NoBackend(), Catalog({}), clock=clock, poll_interval=poll_interval)
        app._given_job = job
        return app

    # -- routing --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._given_job is not None:
            monitor = MonitorScreen(job=self._given_job, poll_interval=self.poll_interval)
            self.push_screen(monitor, self._monitor_closed)
        elif self.local_engines:
            self.attempt(Attempt.local(self.local_engines))
        elif self.backend.target_given():
            self.attempt(Attempt.connect(None))
        else:
            self.attempt(Attempt.discover())

    def attempt(self, attempt: Attempt | None) -> None:
        if attempt is not None:
            self._owns_cluster = attempt.kind == "local"
            self.push_screen(ConnectingScreen(self.backend, attempt, self.clock), self._reached)

    def _reached(self, outcome: Session | list[ClusterChoice] | None) -> None:
        if isinstance(outcome, list):
            self._route_discovery(outcome)
        elif outcome is not None:
            self.session = outcome
            self.sub_title = outcome.info.label
            self.push_screen(JobPickerScreen(self.catalog, outcome.info))
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
        monitor = MonitorScreen(
            spec, session=self.session, runs_dir=self.runs_dir, poll_interval=self.poll_interval
        )
        self.push_screen(monitor, self._monitor_closed)

    def on_job_picker_screen_submit(self, message: JobPickerScreen.Submit) -> None:
        self.submit(message.spec)

    def _monitor_closed(self, snapshot: JobSnapshot | None) -> None:
        if snapshot is not None:
            self.last_snapshot = snapshot
        if not any(isinstance(screen, JobPickerScreen) for screen in self.screen_stack):
            self.exit(self.exit_code())  # watching one given job: nothing to go back to

    def monitor(self) -> MonitorScreen | None:
        """The monitor in the screen stack, if a job is being watched."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, MonitorScreen):
                return screen
        return None

    def running_monitor(self) -> MonitorScreen | None:
        monitor = self.monitor()
        return monitor if monitor is not None and monitor.running else None

    # -- exit -----------------------------------------------------------------------------------

    def exit_code(self) -> int:
        if self.session is None and self._given_job is None:
            return EXIT_NO_CLUSTER
        monitor = self.monitor()
        if monitor is not None:
            if monitor.running or monitor.submit_failed:
                return EXIT_FAILED
            snapshot = monitor.snapshot
        else:
            snapshot = self.last_snapshot
        if snapshot is None:
            return EXIT_OK
        return EXIT_OK if snapshot.succeeded else EXIT_FAILED

    async def action_quit(self) -> None:
        if isinstance(self.screen, (ConfirmScreen, ClosingScreen)):
            return
        monitor = self.running_monitor()
        if monitor is None:
            self.leave()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.leave()

        self.push_screen(QuitConfirm(monitor.job_name, monitor.remaining), answered)

    def leave(self) -> None:
        """Exit with the exit code, after flushing the run record and closing the session in a
        thread (stopping a cluster we started takes seconds) with a screen that says so."""
        code = self.exit_code()
        session, self.session = self.session, None
        if session is None:
            self.exit(code)
            return
        monitor = self.monitor()
        if monitor is not None:
            monitor.stop_polling()

        def close() -> None:
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
        if isinstance(screen, MonitorScreen):
            if screen.check_action("cancel", ()) is True:
                yield SystemCommand(
                    "Cancel job", "Abort queued tasks, interrupt running ones", screen.action_cancel
                )
            yield SystemCommand(
                "Toggle follow", "Auto-scroll the output on or off", screen.action_follow
            )
            if screen.check_action("resubmit", ()) is True:
                yield SystemCommand(
                    "Resubmit failed tasks",
                    "Send the failed, cancelled and lost tasks again",
                    screen.action_resubmit,
                )
            if screen.check_action("export", ()) is True:
                yield SystemCommand(
                    "Export results (CSV)",
                    "One row per task, into the run folder",
                    screen.action_export,
                )
            if screen.check_action("back", ()) is True:
                yield SystemCommand(
                    "Back to the jobs", "Pick another job to run", screen.action_back
                )
        yield SystemCommand("Help", "Every key ippmon answers to", self.action_help)
        yield SystemCommand("Quit", "Quit ippmon (asks first while a job runs)", self.action_quit)
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Quit the application"):
                yield command
