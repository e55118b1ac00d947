"""The end of a job: how many tasks ended how, the timing, and the failures worth reading."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Label, Static

from ippmon.model import Failure, JobSnapshot, TaskState
from ippmon.ui.widgets.durations import DurationLine
from ippmon.ui.widgets.progress_panel import STATES
from ippmon.ui.widgets.states import colour, text_colour
from ippmon.ui.widgets.text import set_content
from ippmon.ui.widgets.timing_panel import advice_content, timing_content


def failure_content(failure: Failure) -> Content:
    """`#21 e1  ValueError: math domain error` (first line only; never parsed as markup)."""
    return Content.from_markup(
        "[b]#$index[/b] [dim]$engine[/dim]$what",
        index=str(failure.index),
        engine="" if failure.engine is None else f"e{failure.engine} ",
        what=failure.line if failure.state is TaskState.ERROR else failure.state.label,
    )


def failures_title(snapshot: JobSnapshot) -> str:
    shown = len(snapshot.failures)
    if snapshot.n_failures > shown:
        return f"failures: {snapshot.n_failures:,}, the last {shown} below"
    return f"failures: {snapshot.n_failures:,}"


class FailureList(VerticalScroll):
    """The most recent failures, one line each, newest last."""

    DEFAULT_CSS = """
    FailureList { height: auto; }
    FailureList > .failure { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def apply(self, snapshot: JobSnapshot) -> None:
        title = failures_title(snapshot)
        if self.border_title != title:  # setting it redraws, even to the same text
            self.border_title = title
        lines = list(self.query_children(FailureLine))
        failures = list(snapshot.failures)
        if [line.failure for line in lines] == failures:
            return
        if len(lines) == len(failures):  # as many lines as before: new text, no new layout
            for line, failure in zip(lines, failures, strict=True):
                line.show(failure)
            return
        self.remove_children()
        self.mount_all(FailureLine(failure) for failure in failures)


class FailureLine(Static):
    DEFAULT_CSS = "FailureLine { height: 1; }"

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure_content(failure), classes="failure")
        self.failure = failure

    def show(self, failure: Failure) -> None:
        self.failure = failure
        set_content(self, failure_content(failure))


class SummaryPanel(Vertical):
    """Shown in place of the live panels once `Phase.FINISHED` arrives."""

    DEFAULT_CSS = (
        """
    SummaryPanel { height: auto; max-height: 50%; }
    SummaryPanel #summary-counts { height: 1; }
    SummaryPanel #summary-timing { height: 1; }
    SummaryPanel #summary-advice { height: auto; }
    SummaryPanel #failures-title { margin-top: 1; text-style: bold; }
    SummaryPanel #failures { max-height: 12; }
    """
        + (  # its border says how the job ended; the failures in the colour of failed tasks
            f"SummaryPanel {{ border: round {colour(TaskState.OK)}; }}\n"
            f"SummaryPanel.-failed {{ border: round {colour(TaskState.ERROR)}; }}\n"
            f"SummaryPanel #failures-title {{ color: {text_colour(TaskState.ERROR)}; }}"
        )
    )

    def compose(self) -> ComposeResult:
        yield Static(id="summary-counts")
        yield Static(id="summary-timing")
        yield DurationLine(id="summary-durations")
        yield Static(id="summary-advice")
        yield Label(id="failures-title")
        yield FailureList(id="failures")

    def apply(self, snapshot: JobSnapshot, rerun_key: str = "") -> None:
        """`rerun_key`: the key that reruns the job with the advised chunksize ("" if none)."""
        ok = snapshot.count(TaskState.OK)
        self.border_title = (
            f"finished · all {snapshot.total:,} task{'' if snapshot.total == 1 else 's'} ok"
            if snapshot.succeeded
            else f"finished · {ok:,} of {snapshot.total:,} tasks ok"
        )
        self.set_class(not snapshot.succeeded, "-failed")
        parts = [
            Content.from_markup("$word [b]$n[/b]", word=state.label, n=f"{snapshot.count(state):,}")
            for state in STATES
            if state is not TaskState.QUEUED and state is not TaskState.RUNNING
        ]
        self.query_one("#summary-counts", Static).update(Content("   ").join(parts))
        self.query_one("#summary-timing", Static).update(timing_content(snapshot))
        self.query_one(DurationLine).apply(snapshot.durations)
        advice = self.query_one("#summary-advice", Static)
        advice.display = bool(snapshot.findings)
        advice.update(advice_content(snapshot.findings, rerun_key))
        title = self.query_one("#failures-title", Label)
        title.display = bool(snapshot.failures)
        title.update(failures_title(snapshot))
        box = self.query_one(FailureList)
        box.display = bool(snapshot.failures)
        box.apply(snapshot)
