"""Overall progress of a job: the bar, the throughput over the job as a sparkline, done/total,
tasks/s and ETA (both from recent throughput), a count per task state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Label, ProgressBar, Sparkline

from ippmon.model import JobSnapshot, TaskState, format_duration
from ippmon.ui.widgets.states import state_rules
from ippmon.ui.widgets.text import set_content, set_progress

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

    DEFAULT_CSS = (
        """
    ProgressPanel { height: auto; }
    ProgressPanel #progress-row { height: 1; }
    ProgressPanel ProgressBar { width: 1fr; }
    ProgressPanel ProgressBar Bar { width: 1fr; }
    ProgressPanel #progress-text { width: auto; margin-left: 1; }
    ProgressPanel #throughput { width: 16; margin-left: 1; display: none; }
    ProgressPanel #throughput.-shown { display: block; }
    ProgressPanel #counts { height: 1; }
    ProgressPanel .count { width: auto; margin-right: 2; }
    """
        + state_rules(  # queued stays in the text colour: waiting is not news
            "ProgressPanel Label.-{}", states=STATES[1:]
        )
        + """
    ProgressPanel .count.-zero { color: $text-muted; }
    """
    )  # (two classes: more specific than a state's rule, so a zero count is muted)

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=None, show_eta=False, id="bar")
            spark = Sparkline(id="throughput")
            spark.tooltip = "tasks finished per second, from the start of the job to now"
            yield spark
            yield Label(id="progress-text")
        with Horizontal(id="counts"):
            for state in STATES:
                yield Label(
                    f"{state.label} 0", id=f"count-{state.value}", classes=f"count -{state.value}"
                )

    def apply(self, snapshot: JobSnapshot) -> None:
        set_progress(self.query_one(ProgressBar), snapshot.done, snapshot.total)
        spark = self.query_one("#throughput", Sparkline)
        spark.set_class(len(snapshot.throughput) >= 2, "-shown")
        if spark.data != snapshot.throughput:
            spark.data = snapshot.throughput
        rate = f"{snapshot.tasks_per_s:.1f}" if snapshot.tasks_per_s > 0 else "--"
        eta = format_duration(snapshot.eta_s) if snapshot.eta_s is not None else "--"
        set_content(
            self.query_one("#progress-text", Label),
            Content.from_markup(
                "[b]$done[/b] / $total [dim]·[/dim] $rate tasks/s [dim]·[/dim] ETA [b]$eta[/b]",
                done=f"{snapshot.done:,}",
                total=f"{snapshot.total:,}",
                rate=rate,
                eta=eta,
            ),
            grow_only=True,  # rate and ETA change width every tick
        )
        for state in STATES:
            n = snapshot.count(state)
            label = self.query_one(f"#count-{state.value}", Label)
            set_content(
                label,
                Content.from_markup("$word [b]$n[/b]", word=state.label, n=f"{n:,}"),
                grow_only=True,  # gaining a digit lays the row out; losing one does not
            )
            label.set_class(n == 0, "-zero")
