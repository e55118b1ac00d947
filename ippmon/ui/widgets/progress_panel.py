"""Overall progress of a job: the bar, the throughput over the job as a sparkline, done/total,
tasks/s and ETA (both from recent throughput), a count per task state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.style import Style
from textual.widgets import Label, ProgressBar, Sparkline

from ippmon.model import JobSnapshot, TaskState, format_duration
from ippmon.ui.widgets.states import state_rules
from ippmon.ui.widgets.text import set_content, set_progress, text_style

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
    ProgressPanel #throughput { width: 16; margin-left: 1; display: none; }
    ProgressPanel #throughput.-shown { display: block; }
    ProgressPanel #counts { height: 1; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    ProgressPanel > .progress--muted { color: $text-muted; }
    """ + state_rules(  # queued stays in the text colour: waiting is not news
        "ProgressPanel > .progress--{}", states=STATES[1:]
    )
    COMPONENT_CLASSES = {"progress--muted"} | {f"progress--{s.value}" for s in STATES[1:]}

    def compose(self) -> ComposeResult:
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=None, show_eta=False, id="bar")
            spark = Sparkline(id="throughput")
            spark.tooltip = "tasks finished per second, from the start of the job to now"
            yield spark
            yield Label(id="progress-text")
        yield Label(id="counts")

    def on_mount(self) -> None:
        self._shown: JobSnapshot | None = None
        self._looks: dict[str, Style] = {}  # the counts' colours, resolved once per theme
        self._counts(None)
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self._looks.clear()
        self._counts(self._shown)

    def apply(self, snapshot: JobSnapshot) -> None:
        set_progress(self.query_one(ProgressBar), snapshot.done, snapshot.total)
        spark = self.query_one("#throughput", Sparkline)
        spark.set_class(len(snapshot.throughput) >= 2, "-shown")
        if spark.data != snapshot.throughput:
            spark.data = snapshot.throughput
        rate = f"{snapshot.tasks_per_s:.1f}" if snapshot.tasks_per_s > 0 else "--"
        eta = format_duration(snapshot.eta_s) if snapshot.eta_s is not None else "--"
        total = f"{snapshot.total:,}"
        set_content(
            self.query_one("#progress-text", Label),
            Content.from_markup(
                "$pad[b]$done[/b] / $total [dim]·[/dim] $rate tasks/s [dim]·[/dim] ETA [b]$eta[/b]",
                # done as wide as the total from the start: a done count that gains a digit
                # would lay the whole screen out (the longest stalls of a busy job)
                pad=" " * (len(total) - len(f"{snapshot.done:,}")),
                done=f"{snapshot.done:,}",
                total=total,
                rate=rate,
                eta=eta,
            ),
            grow_only=True,  # rate and ETA change width every tick
        )
        self._counts(snapshot)

    def _counts(self, snapshot: JobSnapshot | None) -> None:
        """`queued 39  running 3  ok 55  ...`: each state's count in its colour (queued in the
        text's, a zero muted; before there is a snapshot, zeros in the states' colours). One
        label, not one per state: a count that gains a digit then lays out nothing (a layout
        pass redraws the whole screen, the longest stalls of a busy job)."""
        self._shown = snapshot
        parts = []
        for state in STATES:
            n = snapshot.count(state) if snapshot is not None else 0
            number = Content(f"{n:,}")
            part = Content(f"{state.label} ") + (number.stylize("bold") if snapshot else number)
            look = "muted" if snapshot is not None and n == 0 else state.value
            if look != TaskState.QUEUED.value:
                part = part.stylize(self._look(look))
            parts.append(part)
        set_content(self.query_one("#counts", Label), Content("  ").join(parts))

    def _look(self, name: str) -> Style:
        style = self._looks.get(name)
        if style is None:
            style = Style.from_rich_style(text_style(self, f"progress--{name}"))
            self._looks[name] = style
        return style
