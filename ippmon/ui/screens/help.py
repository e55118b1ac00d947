"""Every key ippmon answers to, where, and what it does.

`KEYS` says it in words for people, a section per place; `PLACES` names the screens and widgets
whose bindings each section covers. A binding with an `id` that no row of its section mentions
is added to the section from the binding itself (its tooltip, or its description), so adding a
key to a screen shows in the help without touching this file; `tests/test_keys.py` checks that
every key a row names is bound where the row says (and the README's key table likewise).
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from ippmon.diagnosis import MIN_STRAGGLER_SAMPLE, STRAGGLER_MIN_S, STRAGGLER_X
from ippmon.ui.screens.cluster_picker import ClusterList, ClusterPickerScreen
from ippmon.ui.screens.confirm import ConfirmScreen
from ippmon.ui.screens.connecting import ConnectingScreen
from ippmon.ui.screens.job_picker import JobList, JobPickerScreen
from ippmon.ui.screens.leave import LeaveScreen
from ippmon.ui.screens.monitor import MonitorScreen
from ippmon.ui.screens.no_cluster import NoClusterScreen
from ippmon.ui.screens.runs import RunsScreen, RunTable
from ippmon.ui.screens.stream import StreamScreen
from ippmon.ui.screens.task_detail import TaskDetailScreen
from ippmon.ui.screens.tasks import TasksScreen, TaskTable
from ippmon.ui.screens.top import TopScreen
from ippmon.ui.widgets.task_stream import StreamChart
from ippmon.ui.widgets.top_panels import JobTable

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
            ("t", "connect to the highlighted cluster and open top"),
        ),
    ),
    (
        "job picker",
        (
            ("enter", "submit the highlighted job"),
            ("a", "the recorded runs: attach to one to watch or resubmit it"),
            ("t", "top: every client's tasks on this cluster, live"),
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
            ("s", "the task stream full screen: every engine's tasks over time"),
            ("v", "the task stream's last minute in place of the engines, or back"),
            ("tab", "focus the engines or the output, then ↑ ↓ scroll"),
            ("esc b", "once the job finished: back to the jobs"),
            ("a", "once finished, with chunksize advice: run it again with that chunksize"),
        ),
    ),
    (
        "tasks",
        (
            ("enter", "open the highlighted task"),
            ("s S", "next / previous state filter (stragglers among them)"),
            ("h H", "the next / previous bar of the durations: only its tasks"),
            ("/", "filter by text in the output or error line"),
            ("d", "sort by duration, longest first (again: by index)"),
            ("a", "all tasks again, no filter"),
            ("tab", "in a task: next pane (result or traceback, stdout, stderr)"),
        ),
    ),
    (
        "task stream",
        (
            ("z", "zoom: the last minute, the last 10 minutes, the whole job"),
            ("↑ ↓ j k", "scroll through the engines (PgUp PgDn, Home End too)"),
            ("esc", "back to the monitor"),
        ),
    ),
    (
        "top",
        (
            ("enter", "only the highlighted job: its engines and output (again: every job)"),
            ("f", "follow the output on / off"),
            ("i", "everything this controller cannot tell, or one line of it"),
            ("x", "abort the highlighted job's tasks that have not started (asks first)"),
            ("K", "interrupt the engines running the highlighted job's tasks (asks first)"),
            ("R", "resubmit its failed tasks through the controller (asks first)"),
            ("a", "adopt it: an ippmon run, for attach and export (asks first)"),
            ("esc", "every job again; then back to the job picker"),
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

PLACES: dict[str, tuple[type[DOMNode], ...]] = {  # the app's own keys are in "anywhere"
    "anywhere": (),
    "finding a cluster": (ClusterPickerScreen, ClusterList, NoClusterScreen, ConnectingScreen),
    "job picker": (JobPickerScreen, JobList),
    "monitor": (MonitorScreen,),
    "tasks": (TasksScreen, TaskTable, TaskDetailScreen),
    "task stream": (StreamScreen, StreamChart),
    "top": (TopScreen, JobTable),
    "runs": (RunsScreen, RunTable),
    "dialogs": (LeaveScreen, ConfirmScreen),
}

KEY_NAMES = {"↑": "up", "↓": "down", "esc": "escape", "?": "question_mark", "/": "slash"}
KEY_NAMES |= {"+": "plus", "-": "minus"}


def key_names(text: str) -> list[str]:
    """The Textual key names of a row's key column: "esc b" -> ["escape", "b"]."""
    return [KEY_NAMES.get(word, word) for word in text.split()]


def bindings(place: type[DOMNode]) -> Iterator[Binding]:
    """Every binding of `place`, its base classes' included, one per key."""
    for cls in place.__mro__:
        if "BINDINGS" in cls.__dict__:
            for keyed in BindingsMap(cls.__dict__["BINDINGS"]).key_to_bindings.values():
                yield from keyed


def unmentioned(section: str) -> list[tuple[str, str]]:
    """Rows for the bindings with an `id` in `section`'s places that no row of the section (or
    of "anywhere") mentions: the key as the footer shows it, and what it does."""
    mentioned = {
        key
        for name, rows in KEYS
        if name in (section, "anywhere")
        for key_text, _ in rows
        for key in key_names(key_text)
    }
    by_id: dict[str, list[Binding]] = {}
    for place in PLACES.get(section, ()):
        for binding in bindings(place):
            if binding.id:
                by_id.setdefault(binding.id, []).append(binding)
    added = []
    for same in by_id.values():
        if not any(binding.key in mentioned for binding in same):
            first = same[0]
            what = first.tooltip or first.description
            added.append((first.key_display or first.key, what[:1].lower() + what[1:]))
    return added


OUTPUT_NOTE = "Output lines begin [e1 #17] (engine 1, task 17); [e1 #17]! marks stderr."
STREAM_NOTE = (
    "Task stream: a row per engine, a cell per slice of time: █ busy most of it, ▄ partly, · idle; "
    "green ok, red failed (▓ lost), yellow cancelled, blue running. With many engines the rows "
    "scroll (the border says which are in sight)."
)
STRAGGLER_NOTE = (
    f"A running task is a straggler once it has run over {STRAGGLER_X:g}× the median (p50) "
    f"of the finished tasks' durations and at least {STRAGGLER_MIN_S:g} s longer than it, "
    f"judged from {MIN_STRAGGLER_SAMPLE} finished tasks on."
)


def keys_table() -> Content:
    """A section per screen: its name, then a line per key."""
    sections = [(section, (*keys, *unmentioned(section))) for section, keys in KEYS]
    key_width = max(len(key) for _, keys in sections for key, _ in keys) + 2
    lines: list[Content] = []
    for section, keys in sections:
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
                yield Static(STRAGGLER_NOTE, classes="note", markup=False)
                yield Static(STREAM_NOTE, classes="note", markup=False)
