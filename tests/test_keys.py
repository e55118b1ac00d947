"""Keys are declared once, in the bindings: the help screen, the README's key table and the
monitor's command palette must say what the bindings do, or these tests fail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from ippmon.ui import IppmonApp
from ippmon.ui.screens.cluster_picker import ClusterList, ClusterPickerScreen
from ippmon.ui.screens.confirm import ConfirmScreen
from ippmon.ui.screens.connecting import ConnectingScreen
from ippmon.ui.screens.help import KEYS, PLACES, HelpScreen, bindings, key_names, unmentioned
from ippmon.ui.screens.job_picker import JobList, JobPickerScreen
from ippmon.ui.screens.leave import LeaveScreen
from ippmon.ui.screens.monitor import PALETTE, MonitorScreen
from ippmon.ui.screens.no_cluster import NoClusterScreen
from ippmon.ui.screens.runs import RunsScreen, RunTable
from ippmon.ui.screens.stream import StreamScreen
from ippmon.ui.screens.task_detail import TaskDetailScreen
from ippmon.ui.screens.tasks import TasksScreen, TaskTable
from ippmon.ui.screens.top import TopScreen
from ippmon.ui.widgets.line_table import LineTable
from ippmon.ui.widgets.output_log import OutputLog
from ippmon.ui.widgets.task_stream import StreamChart
from ippmon.ui.widgets.top_panels import JobTable

README = Path(__file__).resolve().parent.parent / "README.md"
EVERYWHERE = tuple({place for places in PLACES.values() for place in places})


def bound(places: tuple[type[DOMNode], ...]) -> set[str]:
    keys = {binding.key for place in places for binding in bindings(place)}
    if any(issubclass(place, App) for place in places):
        keys.add(App.COMMAND_PALETTE_BINDING)
    return keys


@pytest.mark.parametrize("section", [name for name, _ in KEYS])
def test_every_key_the_help_names_is_bound_where_it_says(section: str) -> None:
    places = PLACES[section] or (IppmonApp, HelpScreen, Screen, OutputLog, *EVERYWHERE)
    keys = bound(places)
    rows = dict(KEYS)[section]
    missing = [key for key_text, _ in rows for key in key_names(key_text) if key not in keys]
    assert missing == [], f"{section}: not bound: {missing}"


def test_a_binding_with_an_id_the_help_does_not_mention_is_added_to_its_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Paused(MonitorScreen):
        BINDINGS = [Binding("p", "pause", "Pause", id="pause", tooltip="Pause the output")]

    assert unmentioned("monitor") == []
    monkeypatch.setitem(PLACES, "monitor", (Paused,))
    assert unmentioned("monitor") == [("p", "pause the output")]


README_PLACES: dict[str, tuple[type[DOMNode], ...]] = {
    "anywhere": (IppmonApp,),
    "lists": (LineTable, JobList, ClusterList, RunTable),
    "output": (OutputLog,),
    "job picker": (JobPickerScreen, JobList),
    "tasks": (TasksScreen, TaskTable),
    "task": (TaskDetailScreen,),
    "cluster picker": (ClusterPickerScreen, ClusterList),
    "no cluster": (NoClusterScreen,),
    "connection failed": (ConnectingScreen,),
    "monitor": (MonitorScreen,),
    "finished job": (MonitorScreen,),
    "task stream": (StreamScreen, StreamChart),
    "runs": (RunsScreen, RunTable),
    "top": (TopScreen, JobTable),
    "dialogs": (ConfirmScreen, LeaveScreen, HelpScreen),
    "confirms": (ConfirmScreen,),
}
README_KEYS = {"enter": "enter", "esc": "escape", "tab": "tab", "home": "home", "end": "end"}


def readme_rows() -> list[tuple[list[str], list[str]]]:
    """The README's key table: (the key names of a row, the places it names)."""
    text = README.read_text("utf-8")
    table = text.split("## Keys", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("key", "---"):
            continue
        words = re.split(r"[\s/()]+", cells[0].replace("`", " "))
        keys = [README_KEYS.get(w.lower(), w) for w in words if w]
        rows.append((key_names(" ".join(keys)), [w.strip() for w in cells[1].split(",")]))
    return rows


def test_the_readme_key_table_is_read() -> None:
    rows = readme_rows()
    assert len(rows) > 20
    assert (["c"], ["monitor"]) in rows


@pytest.mark.parametrize(("keys", "places"), readme_rows(), ids=lambda v: " ".join(v))
def test_every_key_in_the_readme_is_bound_on_every_place_it_names(
    keys: list[str], places: list[str]
) -> None:
    for place in places:
        classes = README_PLACES[place]
        if place in ("monitor", "task"):
            classes = (*classes, Screen)  # tab moves the focus on every screen
        missing = [key for key in keys if key not in bound(classes)]
        assert missing == [], f"README says {keys} on {place}; not bound: {missing}"


def test_the_monitor_palette_offers_every_monitor_binding_and_nothing_else() -> None:
    actions = {binding.action for binding in bindings(MonitorScreen) if binding.id}
    assert {action for action, _, _ in PALETTE} == actions
