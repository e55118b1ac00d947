"""Wall-clock time against the time the tasks would have taken one after another."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from ippmon.model import Finding, JobSnapshot, format_duration
from ippmon.ui.widgets.text import set_content


def speedup_text(snapshot: JobSnapshot) -> str:
    return "--" if snapshot.speedup is None else f"{snapshot.speedup:.2f}×"


def efficiency_text(snapshot: JobSnapshot) -> str:
    return "--" if snapshot.efficiency is None else f"{snapshot.efficiency:.0%}"


def timing_content(snapshot: JobSnapshot) -> Content:
    """One line: elapsed, serial, speedup, efficiency (shared with the summary panel). Elapsed
    is the job's own time; the wall-clock span follows it when pauses made them differ."""
    wall = snapshot.wall_s
    paused = wall is not None and wall - snapshot.elapsed_s >= 1.0
    return Content.from_markup(
        "elapsed [b]$elapsed[/b]$wall [dim]·[/dim] serial [b]$serial[/b] [dim]·[/dim] "
        "speedup [b]$speedup[/b] [dim]·[/dim] efficiency [b]$efficiency[/b] "
        "[dim]($engines)[/dim]",
        elapsed=format_duration(snapshot.elapsed_s),
        wall=f" (wall {format_duration(wall)})" if paused and wall is not None else "",
        serial=format_duration(snapshot.serial_s),
        speedup=speedup_text(snapshot),
        efficiency=efficiency_text(snapshot),
        engines=f"{snapshot.n_engines} engine{'s' if snapshot.n_engines != 1 else ''}",
    )


def advice_content(findings: tuple[Finding, ...], rerun_key: str = "") -> Content:
    """A line per finding: why the job is slow, and the change to make (plain text from the
    diagnosis, never parsed as markup)."""
    lines = []
    for finding in findings:
        change = ""
        if finding.change:
            change = f" → {finding.change}"
            if finding.chunksize and rerun_key:
                change += f" ({rerun_key} reruns with it)"
        lines.append(
            Content.from_markup(
                "[b $warning]advice[/] $text$change", text=finding.text, change=change
            )
        )
    return Content("\n").join(lines)


class AdviceLine(Static):
    """While the job runs: what the diagnosis says so far (hidden when it says nothing)."""

    DEFAULT_CSS = """
    AdviceLine { height: auto; max-height: 3; display: none; }
    AdviceLine.-shown { display: block; }
    """

    def apply(self, snapshot: JobSnapshot) -> None:
        self.set_class(bool(snapshot.findings), "-shown")
        if snapshot.findings:
            set_content(self, advice_content(snapshot.findings))


class TimingPanel(Static):
    """Elapsed vs serial time, speedup and efficiency; the arithmetic is `JobSnapshot`'s."""

    DEFAULT_CSS = """
    TimingPanel { height: 1; }
    """

    def apply(self, snapshot: JobSnapshot) -> None:
        set_content(self, timing_content(snapshot))
