"""Several clusters are running and none was named: let the user pick one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Footer, Header, Label, OptionList
from textual.widgets.option_list import Option

from ippmon.protocols import ClusterChoice
from ippmon.ui.screens.base import StepScreen
from ippmon.ui.screens.connecting import Attempt
from ippmon.ui.widgets.list_keys import LIST_KEYS

DEFAULT_LOCAL_ENGINES = 2


def choice_prompt(choice: ClusterChoice, name_width: int) -> Content:
    engines = "?" if choice.engines is None else f"{choice.engines}"
    return Content.from_markup(
        "[b]$name[/b]  $engines engines  [dim]$controller[/dim]",
        name=choice.name.ljust(name_width),
        engines=engines.rjust(3),
        controller=choice.controller,
    )


class ClusterList(OptionList):
    """The running clusters; Home, End and the arrows are OptionList's own."""

    BINDINGS = LIST_KEYS


class ClusterPickerScreen(StepScreen[Attempt]):
    """Dismisses with the Attempt to make: connect to the chosen cluster, or start a local one."""

    BINDINGS = [
        Binding("enter", "select", "Connect", id="connect", priority=True),
        Binding("l", "local", "Start local cluster", id="local"),
        Binding(
            "t",
            "top",
            "Top",
            id="cluster-top",
            tooltip="Connect to the highlighted cluster and watch every client's tasks (top)",
        ),
    ]

    def __init__(self, choices: list[ClusterChoice], *, local_engines: int = DEFAULT_LOCAL_ENGINES):
        super().__init__()
        self.choices = list(choices)
        self.local_engines = local_engines

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="picker-box") as box:
            box.border_title = "Running clusters"
            yield Label(
                f"{len(self.choices)} clusters are running. Pick the one to connect to:",
                id="picker-intro",
            )
            width = max(len(c.name) for c in self.choices)
            yield ClusterList(
                *(Option(choice_prompt(c, width), id=str(i)) for i, c in enumerate(self.choices)),
                id="clusters",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    def action_select(self) -> None:
        index = self.query_one(OptionList).highlighted
        if index is not None:
            self.finish(Attempt.connect(self.choices[index]))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.finish(Attempt.connect(self.choices[event.option_index]))

    def action_top(self) -> None:
        index = self.query_one(OptionList).highlighted
        if index is not None:
            self.finish(Attempt.connect(self.choices[index], top=True))

    def action_local(self) -> None:
        self.finish(Attempt.local(self.local_engines))
