"""No cluster is running: say so, and offer to start a private local one."""

from __future__ import annotations

import contextlib

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Footer, Header, Label, Static

from ippmon.ui.screens.base import StepScreen
from ippmon.ui.screens.connecting import Attempt

MAX_LOCAL_ENGINES = 64


class NoClusterScreen(StepScreen[Attempt]):
    """Dismisses with the Attempt to make next: start a local cluster, or look again."""

    BINDINGS = [
        Binding("enter,l", "local", "Start local cluster", id="local"),
        Binding("plus,equals_sign", "engines(1)", "More engines", show=False),
        Binding("minus", "engines(-1)", "Fewer engines", show=False),
        Binding("r", "rescan", "Look again", id="rescan"),
    ]

    engines: reactive[int] = reactive(2)

    def __init__(self, engines: int = 2) -> None:
        super().__init__()
        self.set_reactive(NoClusterScreen.engines, max(1, engines))

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="no-cluster-box", classes="step-box") as box:
            box.border_title = "No cluster"
            yield Label(
                "No running ipyparallel cluster was found.",
                id="no-cluster-title",
                classes="step-status",
            )
            yield Static(
                "ippmon can start a private one on this machine for this session and stop it "
                "when you quit. To use a cluster of your own, start it (ipcluster start -n 4) "
                "and press r, or pass --profile / --cluster-id / --file.",
                id="no-cluster-text",
            )
            yield Label(id="no-cluster-offer")
        yield Footer()

    def on_mount(self) -> None:
        self._show_offer()

    def watch_engines(self) -> None:
        self._show_offer()

    def _show_offer(self) -> None:
        with contextlib.suppress(NoMatches):
            self.query_one("#no-cluster-offer", Label).update(
                f"[b]enter[/b]  start a local cluster with [b]{self.engines}[/b] "
                f"engine{'s' if self.engines != 1 else ''}   [dim]+ / - to change[/dim]"
            )

    def action_engines(self, step: int) -> None:
        self.engines = min(MAX_LOCAL_ENGINES, max(1, self.engines + step))

    def action_local(self) -> None:
        self.finish(Attempt.local(self.engines))

    def action_rescan(self) -> None:
        self.finish(Attempt.discover())
