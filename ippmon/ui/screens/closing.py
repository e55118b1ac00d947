"""Leaving: flush the run record and close the session off the UI loop, saying so on screen.

Stopping a cluster ippmon started takes seconds; a frozen last frame would look like a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import Header, Label, Static

from ippmon.ui.messages import Closed
from ippmon.ui.screens.base import StepScreen
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed


class ClosingScreen(AnswersFromWorkers, StepScreen[None]):
    """Runs `close` in a thread worker, then dismisses (whatever `close` raised)."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, close: Callable[[], None], *, stopping_cluster: bool) -> None:
        super().__init__()
        self._close = close
        self._stopping_cluster = stopping_cluster

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(classes="step-box") as box:
            box.border_title = "Closing"
            if self._stopping_cluster:
                yield Label("Stopping the local cluster ippmon started…", classes="step-status")
                yield Static(
                    "Its engines and controller shut down; this takes a few seconds.",
                    classes="step-detail",
                )
            else:
                yield Label("Disconnecting…", classes="step-status")
                yield Static(
                    "Tasks still running stay on the cluster; any the send window still held "
                    "back are sent first.",
                    classes="step-detail",
                )

    def on_mount(self) -> None:
        self._run()

    @work(thread=True, exit_on_error=False, group="close", description="session.close")
    def _run(self) -> Closed:
        self._close()
        return Closed()

    def on_closed(self, message: Closed) -> None:
        self.finish(None)

    def worker_failed(self, failure: WorkerFailed) -> None:
        self.log.error("closing failed", failure.error)  # leaving anyway
        self.finish(None)
