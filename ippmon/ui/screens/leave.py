"""Quitting while tasks are still on the cluster: leave them running, cancel them, or stay.

Leaving is safe: the run record keeps what finished, and `ippmon attach RUN_ID` follows the rest
later. Cancelling cannot be undone, so the dialog opens with the focus on Stay.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

LEAVE, CANCEL, STAY = "leave", "cancel", "stay"


class LeaveScreen(ModalScreen[str]):
    """Dismisses with "leave" (tasks keep running), "cancel" (cancel them, then quit) or "stay"."""

    BINDINGS = [
        Binding("l", "answer('leave')", "Leave running", id="leave"),
        Binding("c", "answer('cancel')", "Cancel them and quit", id="cancel-and-quit"),
        Binding("escape", "answer('stay')", "Stay", key_display="esc", id="stay"),
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]

    DEFAULT_CSS = """
    LeaveScreen { align: center middle; }
    LeaveScreen #leave-dialog {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        padding: 1 2;
        border: thick $warning;
        border-title-style: bold;
        background: $surface;
    }
    LeaveScreen #leave-question { text-style: bold; }
    LeaveScreen .choice { margin-top: 1; text-style: bold; }
    LeaveScreen .what { padding-left: 2; }
    LeaveScreen #leave-attach { color: $text-accent; text-style: bold; }
    LeaveScreen #leave-keys { color: $text-muted; margin-top: 1; }
    LeaveScreen #leave-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    LeaveScreen #leave-buttons Button { margin-left: 1; }
    """

    def __init__(self, remaining: int, run_id: str, *, job_name: str = "") -> None:
        super().__init__()
        self.remaining = remaining
        self.run_id = run_id
        self.job_name = job_name

    def compose(self) -> ComposeResult:
        n = self.remaining
        tasks = f"{n:,} task{'s are' if n != 1 else ' is'}"
        attach = f"ippmon attach {self.run_id}" if self.run_id else "ippmon attach"
        with Vertical(id="leave-dialog") as dialog:
            dialog.border_title = (
                f"Quit while “{self.job_name}” runs?" if self.job_name else "Quit?"
            )
            yield Static(
                Text(f"{tasks} still queued or running on the cluster."), id="leave-question"
            )
            yield Static("Leave running", classes="choice")
            yield Static("They go on without ippmon. Follow them later with", classes="what")
            yield Static(Text(attach), id="leave-attach", classes="what")
            yield Static("Cancel them and quit", classes="choice")
            yield Static(
                "Abort the queued ones and interrupt the running ones. "
                "Results that came back are kept.",
                classes="what",
            )
            yield Label("l leave  ·  c cancel them  ·  esc stay", id="leave-keys")
            with Horizontal(id="leave-buttons"):
                yield Button("Leave running", id=LEAVE, variant="primary")
                yield Button("Cancel them and quit", id=CANCEL, variant="error")
                yield Button("Stay", id=STAY, variant="default")

    def on_mount(self) -> None:
        self.query_one(f"#{STAY}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id or STAY)

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)
