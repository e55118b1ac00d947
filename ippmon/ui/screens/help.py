"""Every key ippmon answers to, where, and what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, str, str], ...] = (
    ("?", "anywhere", "this help"),
    ("q", "anywhere", "quit (asks first while a job runs)"),
    ("ctrl+p", "anywhere", "command palette: every action by name"),
    ("↑ ↓ j k", "lists, output", "move / scroll"),
    ("enter", "lists", "connect / submit the highlighted job"),
    ("l", "cluster screens", "start a private local cluster instead"),
    ("+ -", "no cluster", "more / fewer local engines"),
    ("r", "no cluster", "look for running clusters again"),
    ("r", "connect failed", "retry"),
    ("c", "monitor", "cancel the job (asks first)"),
    ("r", "finished job", "resubmit the failed, cancelled and lost tasks"),
    ("x", "monitor", "export the results so far to CSV (run folder)"),
    ("f", "monitor", "follow the output on / off (off to scroll back)"),
    ("tab", "monitor", "focus engines or output, then ↑ ↓ scroll"),
    ("esc b", "finished job", "back to the jobs, to run another"),
    ("y n esc", "dialogs", "yes / no"),
)

OUTPUT_NOTE = (
    "Output lines start with the engine and task: [e1 #17] for stdout, [e1 #17]! for stderr."
)


def keys_table() -> Content:
    key_width = max(len(key) for key, _, _ in KEYS) + 2
    where_width = max(len(where) for _, where, _ in KEYS) + 2
    rows = [
        Content.from_markup(
            "[b]$key[/b][dim]$where[/dim]$what",
            key=key.ljust(key_width),
            where=where.ljust(where_width),
            what=what,
        )
        for key, where, what in KEYS
    ]
    return Content("\n").join(rows)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark", "dismiss", "Close", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "ippmon keys"
            dialog.border_subtitle = "esc to close"
            with VerticalScroll(id="keys"):
                yield Static(keys_table(), id="keys-table")
            yield Static(OUTPUT_NOTE, id="note", markup=False)
