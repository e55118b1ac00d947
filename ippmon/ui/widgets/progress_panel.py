"""Overall progress of a job: the bar with done/total, tasks/s and ETA, a count per task state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Label, ProgressBar

from ippmon.model import JobSnapshot, TaskState, format_duration

# The order people read a job in: what waits, what runs, how it ended.
STATES = (
    TaskState.QUEUED,
    TaskState.RUNNING,
    TaskState.OK,
    TaskState.ERROR,
    TaskState.CANCELLED,
    TaskState.LOST,
)


class ProgressPanel(Vertical):
    """Renders `JobSnapshot` progress; every number comes from the snapshot."""

    DEFAULT_CSS = """
    ProgressPanel { height: auto; }
    ProgressPanel #progress-row { height: 1; }
    ProgressPanel ProgressBar { width: 1fr; }
    ProgressPanel ProgressBar Bar { width: 1fr; }
    ProgressPanel #progress-text { width: auto; margin-left: 1; }
    ProgressPanel #counts { height: 1; }
    ProgressPanel .count { width: auto; margin-right: 2; }
    """

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=None, show_eta=False, id="bar")
            yield Label(id="progress-text")
        with Horizontal(id="counts"):
            for state in STATES:
                yield Label(
                    f"{state.label} 0", id=f"count-{state.value}", classes=f"count -{state.value}"
                )

    def apply(self, snapshot: JobSnapshot) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=max(snapshot.total, 1), progress=snapshot.done)
        rate = f"{snapshot.tasks_per_s:.1f}" if snapshot.tasks_per_s > 0 else "--"
        eta = format_duration(snapshot.eta_s) if snapshot.eta_s is not None else "--"
        self.query_one("#progress-text", Label).update(
            Content.from_markup(
                "[b]$done[/b] / $total [dim]·[/dim] $rate tasks/s [dim]·[/dim] ETA [b]$eta[/b]",
                done=f"{snapshot.done:,}",
                total=f"{snapshot.total:,}",
                rate=rate,
                eta=eta,
            )
        )
        for state in STATES:
            n = snapshot.count(state)
            label = self.query_one(f"#count-{state.value}", Label)
            label.update(Content.from_markup("$word [b]$n[/b]", word=state.label, n=f"{n:,}"))
            label.set_class(n == 0, "-zero")
