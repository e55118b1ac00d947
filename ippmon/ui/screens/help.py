"""Every key ippmon answers to, where, and what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "anywhere",
        (
            ("?", "this help"),
            ("q", "quit; while a job runs: leave it running, cancel it, or stay"),
            ("ctrl+p", "command palette: every action by name"),
            ("↑ ↓ j k", "move in lists, scroll the output"),
            ("esc", "back (or close a dialog)"),
        ),
    ),
    (
        "finding a cluster",
        (
            ("enter", "connect to the highlighted cluster"),
            ("l", "start a private local cluster instead"),
            ("+ -", "more / fewer local engines"),
            ("r", "look for running clusters again; retry a failed connect"),
        ),
    ),
    (
        "job picker",
        (
            ("enter", "submit the highlighted job"),
            ("a", "the recorded runs: attach to one to watch or resubmit it"),
        ),
    ),
    (
        "monitor",
        (
            ("c", "cancel the job (asks first)"),
            ("t", "every task in a table"),
            ("r", "resubmit the failed, cancelled and lost tasks"),
            ("R", "resubmit every task as the next attempt (asks first)"),
            ("x", "export the results so far to CSV (into the run folder)"),
            ("f", "follow the output on / off (off to scroll back)"),
            ("tab", "focus the engines or the output, then ↑ ↓ scroll"),
            ("esc b", "once the job finished: back to the jobs"),
        ),
    ),
    (
        "tasks",
        (
            ("enter", "open the highlighted task"),
            ("s S", "next / previous state filter"),
            ("/", "filter by text in the output or error line"),
            ("d", "sort by duration, longest first (again: by index)"),
            ("a", "all tasks again, no filter"),
            ("tab", "in a task: next pane (result or traceback, stdout, stderr)"),
        ),
    ),
    ("runs", (("enter", "attach to the highlighted run"), ("ctrl+r", "read the runs again"))),
    (
        "dialogs",
        (
            ("l c", "quitting: leave the tasks running / cancel them, then quit"),
            ("y n", "yes / no"),
        ),
    ),
)

OUTPUT_NOTE = "Output lines begin [e1 #17] (engine 1, task 17); [e1 #17]! marks stderr."


def keys_table() -> Content:
    """A section per screen: its name, then a line per key."""
    key_width = max(len(key) for _, keys in KEYS for key, _ in keys) + 2
    lines = []
    for section, keys in KEYS:
        if lines:
            lines.append(Content(""))
        lines.append(Content.from_markup("[b $text-accent]$section[/]", section=section))
        lines += [
            Content.from_markup("  [b]$key[/b]$what", key=key.ljust(key_width), what=what)
            for key, what in keys
        ]
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark", "dismiss", "Close", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "ippmon keys"
            dialog.border_subtitle = "esc to close"
            with VerticalScroll(id="keys"):
                yield Static(keys_table(), id="keys-table")
                yield Static(OUTPUT_NOTE, id="note", markup=False)
