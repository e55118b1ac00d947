"""Wall-clock time against the time the tasks would have taken one after another."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from ippmon.model import JobSnapshot, format_duration
from ippmon.ui.widgets.text import set_content


def speedup_text(snapshot: JobSnapshot) -> str:
    return "--" if snapshot.speedup is None else f"{snapshot.speedup:.2f}×"


def efficiency_text(snapshot: JobSnapshot) -> str:
    return "--" if snapshot.efficiency is None else f"{snapshot.efficiency:.0%}"


def timing_content(snapshot: JobSnapshot) -> Content:
    """One line: elapsed, serial, speedup, efficiency (shared with the summary panel)."""
    return Content.from_markup(
        "elapsed [b]$elapsed[/b] [dim]·[/dim] serial [b]$serial[/b] [dim]·[/dim] "
        "speedup [b]$speedup[/b] [dim]·[/dim] efficiency [b]$efficiency[/b] "
        "[dim]($engines)[/dim]",
        elapsed=format_duration(snapshot.elapsed_s),
        serial=format_duration(snapshot.serial_s),
        speedup=speedup_text(snapshot),
        efficiency=efficiency_text(snapshot),
        engines=f"{snapshot.n_engines} engine{'s' if snapshot.n_engines != 1 else ''}",
    )


class TimingPanel(Static):
    """Elapsed vs serial time, speedup and efficiency; the arithmetic is `JobSnapshot`'s."""

    DEFAULT_CSS = """
    TimingPanel { height: 1; }
    """

    def apply(self, snapshot: JobSnapshot) -> None:
        set_content(self, timing_content(snapshot))
