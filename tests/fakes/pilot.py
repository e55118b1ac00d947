"""Apps on recorded state, and waiting for them: what a pilot test or a snapshot drives.

`make_app` builds the whole app (connect, pick, monitor) on the fakes; `watch_app` the app for
one job; `ScreenApp` one screen on its own. All have a fixed clock and no animation. `settle`
waits until workers are done and the screens they lead to are up.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Footer, Header, Input
from textual.worker import WorkerCancelled, WorkerFailed

from ippmon.jobspec import Catalog
from ippmon.runs import RunSummary
from ippmon.ui import IppmonApp

from .backends import FakeBackend, FakeJob, FakeSession
from .recorded import RUNS_DIR, catalog, fixed_clock, recorded_runs


class RecordedApp(IppmonApp):
    """The app with recorded runs behind its runs list (`IppmonApp.read_runs`, the seam for
    where runs come from); `runs_read` notes the runs folder of each read."""

    def __init__(self, *args: object, runs: Sequence[RunSummary] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.recorded = list(recorded_runs() if runs is None else runs)
        self.runs_read: list[str | None] = []

    def read_runs(self) -> list[RunSummary]:
        self.runs_read.append(self.runs_dir)
        return list(self.recorded)


def make_app(
    backend: FakeBackend | None = None,
    *,
    catalog_: Catalog | None = None,
    job_name: str | None = None,
    poll_interval: float = 0.0,
    local_engines: int | None = None,
    runs: Sequence[RunSummary] | None = None,
) -> RecordedApp:
    """An app on recorded state: fixed clock, no animation, no polling thread by default, and
    recorded runs (`runs`, default `recorded_runs()`) behind the runs list."""
    app = RecordedApp(
        backend or FakeBackend(),
        catalog_ or catalog(),
        runs_dir=RUNS_DIR,
        job_name=job_name,
        clock=fixed_clock,
        local_engines=local_engines,
        poll_interval=poll_interval,
        runs=runs,
    )
    app.animation_level = "none"
    return app


def watch_app(job: FakeJob, *, attached: bool = False, poll_interval: float = 0.0) -> IppmonApp:
    """The app for one job (`ippmon attach` with `attached`): the monitor alone, as quick to
    start as an app gets; it looks exactly like the monitor reached through the picker."""
    app = IppmonApp.for_job(job, attached=attached, clock=fixed_clock, poll_interval=poll_interval)
    app.animation_level = "none"
    return app


def monitor_app(job: FakeJob, *, job_name: str | None = None, **kwargs) -> RecordedApp:
    """Connects, submits `job_name` (default: the job's own name) and shows `job`."""
    session = FakeSession(lambda spec: job)
    return make_app(FakeBackend(session), job_name=job_name or job.name, **kwargs)


class ScreenApp(App[None]):
    """Shows `factory()` over an empty ippmon screen and records what it dismisses with."""

    TITLE = "ippmon"
    SUB_TITLE = "default (4 engines, local)"

    def __init__(self, factory: Callable[[], Screen]) -> None:
        super().__init__()
        self.factory = factory
        self.results: list[object] = []
        self.animation_level = "none"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Footer()

    def on_mount(self) -> None:
        self.push_screen(self.factory(), self.results.append)


async def settle(pilot: Pilot, *, rounds: int = 100) -> None:
    """Let every worker finish and every screen they lead to mount: pause until the screen stack
    and the worker set have stayed the same for two rounds with nothing running. Then stop
    text cursors blinking, so a picture never catches one half-way."""
    app = pilot.app
    last: object = None
    stable = 0
    for _ in range(rounds):
        for worker in list(app.workers):
            # A worker made to fail (exit_on_error=False, e.g. a connect that finds no
            # controller) is the screen's to handle; Textual drops it from app.workers a moment
            # after it ends, and waiting on it in between raises WorkerFailed.
            with contextlib.suppress(WorkerFailed, WorkerCancelled):
                await worker.wait()
        await pilot.pause()
        state = (tuple(app.screen_stack), tuple((id(w), w.state) for w in app.workers))
        busy = any(worker.is_running for worker in app.workers)
        stable = stable + 1 if state == last and not busy else 0
        if stable >= 2:
            break
        last = state
    else:
        raise TimeoutError("the app did not settle")
    for widget in app.screen.query(Input):
        widget.cursor_blink = False


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Pause until `condition()` holds (a thread of the fakes reached a point)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await pilot.pause(0.01)


def release_on_exit(app: IppmonApp, gate: threading.Event) -> None:
    """Open a FakeBackend gate when the app exits, so its blocked worker thread ends with it."""
    exit_ = app.exit

    def exit_and_release(*args: object, **kwargs: object) -> None:
        gate.set()
        exit_(*args, **kwargs)  # type: ignore[arg-type]

    app.exit = exit_and_release  # type: ignore[method-assign]
