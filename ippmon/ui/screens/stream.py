"""The task stream full screen: every engine's tasks over time, zoomed with `z` (the last
minute, the last ten minutes, the whole job), engines scrolled with ↑ ↓."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header

from ippmon.protocols import JobHandle
from ippmon.stream import Zoom
from ippmon.ui.widgets.task_stream import STREAM_INTERVAL_S, StreamChart, TaskStreamPanel


class StreamScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "z",
            "zoom",
            "Zoom",
            id="zoom",
            tooltip="Zoom: the last minute, the last 10 minutes, the whole job",
        ),
        Binding("escape", "back", "Back", id="stream-back", key_display="esc"),
    ]
    DEFAULT_CSS = """
    StreamScreen #stream { height: 1fr; margin: 0 1; }
    StreamScreen #stream StreamChart { height: 1fr; }
    """

    def __init__(
        self, job: JobHandle, *, zoom: Zoom = Zoom.MINUTE, interval: float = STREAM_INTERVAL_S
    ) -> None:
        """`interval` 0 asks the job once per zoom or size (tests)."""
        super().__init__()
        self.job = job
        self.zoom = zoom
        self.interval = interval

    def compose(self) -> ComposeResult:
        yield Header()
        yield TaskStreamPanel(
            self.job,
            zoom=self.zoom,
            zoom_when_finished=Zoom.JOB,
            interval=self.interval,
            id="stream",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.job.name} · task stream"
        self.query_one(StreamChart).focus()

    def action_zoom(self) -> None:
        panel = self.query_one(TaskStreamPanel)
        self.zoom = panel.zoom.next()
        panel.set_zoom(self.zoom)

    def action_back(self) -> None:
        self.dismiss(None)
