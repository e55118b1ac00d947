"""Finding, reaching or starting a cluster, with what is being tried on screen the whole time.

The blocking backend call runs in a thread worker; the screen dismisses with its result (a
Session, or the clusters discovery found). A ConnectError stays on screen as one sentence with
retry/quit, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Footer, Header, Label, Static
from textual.worker import Worker, WorkerState

from ippmon.protocols import Backend, ClusterChoice, ConnectError, Session
from ippmon.text import one_line
from ippmon.ui.screens.base import StepScreen

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@dataclass(frozen=True)
class Attempt:
    """One thing the connecting screen tries: discover, connect, or start a local cluster."""

    kind: str  # "discover" | "connect" | "local"
    choice: ClusterChoice | None = None
    engines: int = 0

    @classmethod
    def discover(cls) -> Attempt:
        return cls("discover")

    @classmethod
    def connect(cls, choice: ClusterChoice | None = None) -> Attempt:
        return cls("connect", choice=choice)

    @classmethod
    def local(cls, engines: int) -> Attempt:
        return cls("local", engines=engines)

    @property
    def title(self) -> str:
        return {
            "discover": "Looking for running clusters",
            "connect": "Connecting",
            "local": "Starting a local cluster",
        }[self.kind]

    @property
    def failed_title(self) -> str:
        return {
            "discover": "Could not look for clusters",
            "connect": "Could not connect",
            "local": "Could not start a local cluster",
        }[self.kind]

    @property
    def detail(self) -> str:
        """What is being tried, in a few words."""
        if self.kind == "discover":
            return "in the profile's cluster files"
        if self.kind == "local":
            return f"with {self.engines} engines on this machine, for this session"
        if self.choice is None:
            return "to the cluster named on the command line"
        where = f" at {self.choice.controller}" if self.choice.controller else ""
        return f"to {self.choice.label}{where}"

    def run(self, backend: Backend) -> Session | list[ClusterChoice]:
        """The blocking call; for a worker thread."""
        if self.kind == "discover":
            return backend.discover()
        if self.kind == "local":
            return backend.start_local(self.engines)
        return backend.connect(self.choice)


def error_text(error: BaseException | None) -> str:
    """One line for people: a ConnectError says it all; anything else gets its type name."""
    return one_line(error, with_type=not isinstance(error, ConnectError))


class ConnectingScreen(StepScreen["Session | list[ClusterChoice]"]):
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
        with Vertical(id="connect-box") as box:
            box.border_title = self.attempt.title
            yield Label(id="connect-status")
            yield Static(id="connect-error", markup=False)
            yield Static(self.attempt.detail, id="connect-detail", markup=False)
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

    @work(thread=True, exit_on_error=False, exclusive=True, group="connect")
    def _run(self, attempt: Attempt) -> Session | list[ClusterChoice]:
        return attempt.run(self.backend)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "connect" or not self.is_attached:
            return
        if event.state is WorkerState.SUCCESS:
            self.finish(event.worker.result)
        elif event.state is WorkerState.ERROR:
            self.failed = True
            self.query_one("#connect-error", Static).update(error_text(event.worker.error))
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
