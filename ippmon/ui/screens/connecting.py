"""Finding, reaching or starting a cluster, with what is being tried on screen the whole time.

The blocking backend call runs in a thread worker; the screen dismisses with its result (a
Session, or the clusters discovery found). A ConnectError stays on screen as one sentence with
retry/quit, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Header, Label, Static

from ippmon.protocols import Backend, ClusterChoice, Session
from ippmon.ui.messages import Reached
from ippmon.ui.screens.base import StepScreen
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class AttemptKind(Enum):
    """What an attempt does."""

    DISCOVER = "discover"
    CONNECT = "connect"
    LOCAL = "local"


TITLES = {
    AttemptKind.DISCOVER: "Looking for running clusters",
    AttemptKind.CONNECT: "Connecting",
    AttemptKind.LOCAL: "Starting a local cluster",
}
FAILED_TITLES = {
    AttemptKind.DISCOVER: "Could not look for clusters",
    AttemptKind.CONNECT: "Could not connect",
    AttemptKind.LOCAL: "Could not start a local cluster",
}


@dataclass(frozen=True)
class Attempt:
    """One thing the connecting screen tries: discover, connect, or start a local cluster."""

    kind: AttemptKind
    choice: ClusterChoice | None = None
    engines: int = 0
    top: bool = False  # once connected, open `ippmon top` (the cluster picker's `t`)

    @classmethod
    def discover(cls) -> Attempt:
        return cls(AttemptKind.DISCOVER)

    @classmethod
    def connect(cls, choice: ClusterChoice | None = None, *, top: bool = False) -> Attempt:
        return cls(AttemptKind.CONNECT, choice=choice, top=top)

    @classmethod
    def local(cls, engines: int) -> Attempt:
        return cls(AttemptKind.LOCAL, engines=engines)

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    @property
    def failed_title(self) -> str:
        return FAILED_TITLES[self.kind]

    @property
    def detail(self) -> str:
        """What is being tried, in a few words."""
        if self.kind is AttemptKind.DISCOVER:
            return "in the profile's cluster files"
        if self.kind is AttemptKind.LOCAL:
            return f"with {self.engines} engines on this machine, for this session"
        if self.choice is None:
            return "to the cluster named on the command line"
        where = f" at {self.choice.controller}" if self.choice.controller else ""
        return f"to {self.choice.label}{where}"

    def run(self, backend: Backend) -> Session | list[ClusterChoice]:
        """The blocking call; for a worker thread."""
        if self.kind is AttemptKind.DISCOVER:
            return backend.discover()
        if self.kind is AttemptKind.LOCAL:
            return backend.start_local(self.engines)
        return backend.connect(self.choice)


class ConnectingScreen(AnswersFromWorkers, StepScreen["Session | list[ClusterChoice]"]):
    """Runs one `Attempt`; dismisses with its result, or shows the failure with retry."""

    BINDINGS = [
        Binding("r,enter", "retry", "Retry", id="retry"),
    ]

    failed: reactive[bool] = reactive(False, bindings=True)

    def __init__(self, backend: Backend, attempt: Attempt, clock: Callable[[], float]) -> None:
        super().__init__()
        self.backend = backend
        self.attempt = attempt
        self.clock = clock
        self._started = clock()
        self._frame = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="connect-box", classes="step-box") as box:
            box.border_title = self.attempt.title
            yield Label(id="connect-status", classes="step-status")
            yield Static(id="connect-error", markup=False)
            yield Static(
                self.attempt.detail, id="connect-detail", classes="step-detail", markup=False
            )
            yield Label("[b]r[/b] retry  ·  [b]q[/b] quit", id="connect-hint")
        yield Footer()

    def on_mount(self) -> None:
        if self.app.animation_level != "none":
            self.set_interval(0.1, self._tick)
        self.set_interval(1.0, self._show_status)
        self._start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            return self.failed
        return True

    def action_retry(self) -> None:
        if self.failed:
            self._start()

    def _start(self) -> None:
        self.failed = False
        self._started = self.clock()
        self._show_status()
        self._run(self.attempt)

    @work(thread=True, exit_on_error=False, exclusive=True, group="connect", description="connect")
    def _run(self, attempt: Attempt) -> Reached:
        return Reached(attempt.run(self.backend))

    def on_reached(self, message: Reached) -> None:
        self.finish(message.outcome)

    def worker_failed(self, failure: WorkerFailed) -> None:
        if self.is_attached:
            self.failed = True
            self.query_one("#connect-error", Static).update(failure.text)
            self._show_status()

    def watch_failed(self, failed: bool) -> None:
        self.set_class(failed, "-failed")
        box = self.query_one("#connect-box")
        box.border_title = self.attempt.failed_title if failed else self.attempt.title

    def _tick(self) -> None:
        self._frame += 1
        self._show_status()

    def _show_status(self) -> None:
        label = self.query_one("#connect-status", Label)
        detail = self.query_one("#connect-detail", Static)
        if self.failed:
            detail.update(f"{self.attempt.title} {self.attempt.detail}.")
            return
        detail.update(self.attempt.detail)
        seconds = max(0, int(self.clock() - self._started))
        spinner = SPINNER[self._frame % len(SPINNER)]
        label.update(f"{spinner} {self.attempt.title}…  [dim]{seconds}s[/dim]")
