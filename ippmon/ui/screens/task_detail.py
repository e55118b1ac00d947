"""One task in full: where and when it ran, its input, its result or traceback, its output.

Everything the task produced is shown as plain text (`Log` panes, `rich.text.Text` in the head),
so nothing a task prints or raises can inject markup. `job.task()` and the formatting of large
results run in a thread worker; a task that has not finished is read again every second.
"""

from __future__ import annotations

import datetime as dt
import pprint
import reprlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Log, Static

from ippmon import terminal
from ippmon.model import TaskDetail, TaskState, format_duration
from ippmon.protocols import JobHandle
from ippmon.ui.widgets.states import STATE_CLASSES, colour, state_rules
from ippmon.ui.widgets.text import text_style
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed

MAX_RESULT_CHARS = 20_000
SHORT_PANE = 5  # lines up to which a pane is only as tall as its text
SHORT = reprlib.Repr()
SHORT.maxstring = SHORT.maxother = 160
SHORT.maxlist = SHORT.maxtuple = SHORT.maxset = 12
SHORT.maxdict = 8
FAILED = colour(TaskState.ERROR)
NOT_DONE = {
    TaskState.QUEUED: "not started yet",
    TaskState.RUNNING: "still running",
    TaskState.CANCELLED: "none: cancelled before it finished",
    TaskState.LOST: "none: the task was lost",
}


def plain(text: str) -> str:
    """Text as a terminal shows it (no escape codes: `ippmon.terminal`), less trailing blank
    lines."""
    return terminal.plain(text).rstrip("\n")


def clock_time(ts: float, tz: dt.tzinfo | None) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def timeline(detail: TaskDetail, now: float, tz: dt.tzinfo | None) -> list[tuple[str, str]]:
    """[("submitted", "2026-01-01 00:00:00"), ("ran", "2.1s (started +0.3s, done +2.4s)")]."""
    if detail.submitted is None:
        return [("submitted", "not yet")]
    times = [("submitted", clock_time(detail.submitted, tz))]
    after = []
    if detail.started is not None:
        after.append(f"started +{format_duration(detail.started - detail.submitted)}")
    if detail.completed is not None:
        after.append(f"done +{format_duration(detail.completed - detail.submitted)}")
    when = f" ({', '.join(after)} after submit)" if after else ""
    if detail.duration_s is not None:
        times.append(("ran", f"{format_duration(detail.duration_s)}{when}"))
    elif detail.state is TaskState.RUNNING and detail.started is not None:
        times.append(("running", f"for {format_duration(max(0.0, now - detail.started))}{when}"))
    elif after:
        times.append(("times", ", ".join(after) + " after submit"))
    return times


@dataclass(frozen=True)
class TaskText:
    """A TaskDetail turned into the strings the screen shows (built off the UI loop)."""

    detail: TaskDetail
    times: list[tuple[str, str]]
    input: str | None
    outcome_title: str  # "result", "traceback", or "" when there is nothing to show
    outcome: str
    stdout: str
    stderr: str


@dataclass
class TaskRead(Message):
    """The read worker's answer: one task, in the strings the task view shows."""

    bubble = False

    text: TaskText


def describe(detail: TaskDetail, now: float, tz: dt.tzinfo | None = None) -> TaskText:
    if detail.state is TaskState.OK:
        # a result's repr is the task's text too (a class of its own may print anything)
        title, outcome = (
            "result",
            plain(pprint.pformat(detail.result, width=100, compact=True, sort_dicts=False)),
        )
        if len(outcome) > MAX_RESULT_CHARS:
            outcome = outcome[:MAX_RESULT_CHARS] + f"\n… ({len(outcome):,} characters in all)"
    elif detail.traceback or detail.ename:
        title = "traceback"
        outcome = plain(detail.traceback or f"{detail.ename}: {detail.evalue}".rstrip(": "))
    else:
        title, outcome = "", ""
    has_input = "input" in detail.extra
    return TaskText(
        detail=detail,
        times=timeline(detail, now, tz),
        input=plain(SHORT.repr(detail.extra["input"])) if has_input else None,
        outcome_title=title,
        outcome=outcome,
        stdout=plain(detail.stdout),
        stderr=plain(detail.stderr),
    )


def count_lines(text: str) -> str:
    if not text:
        return "empty"
    n = text.count("\n") + 1
    return f"{n:,} line{'s' if n != 1 else ''}"


class TaskDetailScreen(AnswersFromWorkers, Screen[None]):
    """Dismisses with None (Escape)."""

    BINDINGS = [
        Binding("escape", "back", "Back", key_display="esc", id="back"),
        Binding("tab", "pane(1)", "Next pane", id="next-pane"),
        Binding("shift+tab", "pane(-1)", "Previous pane", show=False),
        Binding("j", "scroll('down')", "Down", show=False),
        Binding("k", "scroll('up')", "Up", show=False),
    ]

    COMPONENT_CLASSES = {f"task--{name}" for name in STATE_CLASSES.values()} | {"task--label"}

    DEFAULT_CSS = (
        """
    TaskDetailScreen #task-head { height: auto; padding: 0 1; background: $boost; }
    TaskDetailScreen Log {
        height: 1fr;
        min-height: 3;
        margin: 0 1;
        border: round $panel-lighten-2;
        border-title-style: bold;
        background: $surface;
        overflow: auto auto;
    }
    TaskDetailScreen Log:focus { border: round $primary; }
    TaskDetailScreen Log.-short { height: auto; }
    TaskDetailScreen #task-outcome.-result { height: auto; max-height: 12; }
    TaskDetailScreen #task-outcome.-traceback.-long { height: 2fr; }
    TaskDetailScreen .-empty { display: none; }
    TaskDetailScreen > .task--label { color: $text-muted; }
    """
        # a traceback: the task failed
        + f"TaskDetailScreen #task-outcome.-traceback {{ border: round {FAILED} 60%; }}\n"
        + f"TaskDetailScreen #task-outcome.-traceback:focus {{ border: round {FAILED}; }}\n"
        + state_rules("TaskDetailScreen > .task--{}", bold=TaskState)
    )

    def __init__(
        self,
        job: JobHandle,
        index: int,
        *,
        clock: Callable[[], float] = time.time,
        tz: dt.tzinfo | None = None,
        refresh_interval: float = 1.0,
    ) -> None:
        """`tz` for the submit time (None: local time); `refresh_interval` 0 reads once."""
        super().__init__()
        self.job = job
        self.index = index
        self.clock = clock
        self.tz = tz
        self.refresh_interval = refresh_interval
        self.text: TaskText | None = None
        self._bodies: dict[str, str] = {}  # pane id -> what it holds
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text(f"task {self.index}: reading…"), id="task-head")
        with Vertical(id="task-panes"):
            yield Log(id="task-outcome", auto_scroll=True, classes="-empty")
            yield Log(id="task-stdout", auto_scroll=True, classes="-empty")
            yield Log(id="task-stderr", auto_scroll=True, classes="-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.job.name} · task {self.index}"
        self._load()
        if self.refresh_interval > 0:
            self._timer = self.set_interval(self.refresh_interval, self._load)

    def _load(self) -> None:
        if self.text is None or not self.text.detail.state.finished:
            self._read()
        elif self._timer is not None:
            self._timer.stop()

    @work(thread=True, exclusive=True, group="task", exit_on_error=False, description="job.task")
    def _read(self) -> TaskRead:
        return TaskRead(describe(self.job.task(self.index), self.clock(), self.tz))

    def on_task_read(self, message: TaskRead) -> None:
        if self.is_attached:
            self._show(message.text)

    def worker_failed(self, failure: WorkerFailed) -> None:
        if self.is_attached:
            text = f"task {self.index}: cannot read it: {failure.text}"
            self.query_one("#task-head", Static).update(Text(text))

    # -- drawing --------------------------------------------------------------------------------

    def _head(self, text: TaskText) -> Text:
        d = text.detail
        label = text_style(self, "task--label")
        state = text_style(self, f"task--{STATE_CLASSES[d.state]}")

        def line(name: str, value: str | Text) -> Text:
            return Text.assemble((f"{name:<10}", label), value)

        engine = "-" if d.engine is None else str(d.engine)
        lines = [
            Text.assemble(
                (f"task {d.index}", "bold"),
                "  ",
                (d.state.label, state),
                ("   attempt ", label),
                str(d.attempt or "-"),
                ("   engine ", label),
                engine,
            ),
            *(line(name, value) for name, value in text.times),
        ]
        if text.input is not None:
            lines.append(line("input", text.input))
        if d.ename and d.state is not TaskState.OK:
            error = f"{d.ename}: {d.evalue}" if d.evalue else d.ename
            lines.append(line("error", Text(plain(error).splitlines()[0], style=state)))
        elif not text.outcome_title:
            lines.append(line("result", NOT_DONE.get(d.state, "none")))
        chunk = d.extra.get("chunk")
        if chunk:
            lines.append(
                line("chunk", f"tasks {chunk[0]}-{chunk[1]} ran together; output is on {chunk[0]}")
            )
        lines.append(
            line("output", f"stdout {count_lines(text.stdout)} · stderr {count_lines(text.stderr)}")
        )
        head = Text("\n").join(lines)
        head.no_wrap, head.overflow = True, "ellipsis"
        return head

    def _show(self, text: TaskText) -> None:
        first = self.text is None
        self.text = text
        self.query_one("#task-head", Static).update(self._head(text))
        outcome = self.query_one("#task-outcome", Log)
        outcome.set_class(text.outcome_title == "traceback", "-traceback")
        outcome.set_class(text.outcome_title == "result", "-result")
        panes = (
            (outcome, text.outcome_title, text.outcome),
            (self.query_one("#task-stdout", Log), "stdout", text.stdout),
            (self.query_one("#task-stderr", Log), "stderr", text.stderr),
        )
        for pane, title, body in panes:
            pane.border_title = title
            pane.border_subtitle = count_lines(body) if body and title != "result" else ""
            pane.set_class(not title or not body, "-empty")
            pane.set_class(body.count("\n") < SHORT_PANE, "-short")
            pane.set_class(body.count("\n") >= SHORT_PANE, "-long")
            if self._bodies.get(pane.id or "") != body:  # a running task wrote more
                self._bodies[pane.id or ""] = body
                y, at_end = pane.scroll_y, first or pane.scroll_y >= pane.max_scroll_y
                pane.clear()
                pane.write(body, scroll_end=False)
                if at_end:  # the end is what a task wrote last; a reader scrolled up stays put
                    self.call_after_refresh(pane.scroll_end, animate=False)
                else:
                    self.call_after_refresh(pane.scroll_to, y=y, animate=False)
        if first:
            shown = [pane for pane, title, body in panes if title and body]
            if shown:
                shown[0].focus()
        self.refresh_bindings()

    # -- keys -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pane":
            return len(self._panes()) > 1 or None
        return True

    def _panes(self) -> list[Log]:
        return list(self.query(Log).exclude(".-empty"))

    def action_pane(self, step: int) -> None:
        panes = self._panes()
        if panes:
            at = panes.index(self.focused) if self.focused in panes else -step
            panes[(at + step) % len(panes)].focus()

    def action_scroll(self, direction: str) -> None:
        focused = self.focused
        if isinstance(focused, Log):
            if direction == "down":
                focused.scroll_down(animate=False)
            else:
                focused.scroll_up(animate=False)

    def action_back(self) -> None:
        self.dismiss(None)
