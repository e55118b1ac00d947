"""One submitted job, live: progress, timing, every engine, and the tasks' output.

The screen hands the spec to the cluster in a thread worker (`session.submit`), then ONE polling
thread (`poll_job`) sends `JobUpdate`s; each update is drawn by the widgets' `apply`. With
`poll_interval=0` there is no polling thread: the screen shows what the job had at submit time
(`job.snapshot()` and `job.output_batch(0)`), which is how tests and screenshots feed it recorded
state. Messages that arrive after the screen is gone are ignored.

Resubmitting (`r` the failed, cancelled and lost tasks; `R` all of them, after a confirm) sends
from a thread worker and keeps this screen on the same job: the indices stay, the attempt grows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import get_current_worker

from ippmon.model import JobSnapshot, OutputBatch, Phase, TaskState
from ippmon.protocols import JobHandle, Session
from ippmon.stream import Zoom
from ippmon.ui import collector
from ippmon.ui.messages import (
    Exported,
    JobEnded,
    JobSubmitted,
    JobUpdate,
    PollFailed,
    Resubmitted,
)
from ippmon.ui.poller import poll_job
from ippmon.ui.screens.confirm import CancelConfirm, ResubmitAllConfirm
from ippmon.ui.screens.stream import StreamScreen
from ippmon.ui.screens.tasks import TasksScreen
from ippmon.ui.widgets.engine_panel import EngineBoard
from ippmon.ui.widgets.job_status import JobStatus, Notice
from ippmon.ui.widgets.output_log import OutputLog
from ippmon.ui.widgets.progress_panel import ProgressPanel
from ippmon.ui.widgets.states import colour, text_colour
from ippmon.ui.widgets.summary_panel import FailureList, SummaryPanel
from ippmon.ui.widgets.task_stream import STREAM_INTERVAL_S, TaskStreamPanel
from ippmon.ui.widgets.timing_panel import AdviceLine, TimingPanel
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed

if TYPE_CHECKING:
    from ippmon.jobspec import JobSpec


PALETTE: tuple[tuple[str, str, str], ...] = (  # action, command, what it does
    ("cancel", "Cancel job", "Abort queued tasks, interrupt running ones"),
    ("tasks", "Show tasks", "Every task in a table: filter, sort, open one"),
    ("follow", "Toggle follow", "Auto-scroll the output on or off"),
    ("stream", "Task stream", "Every engine's tasks over time, full screen: zoom, scroll"),
    (
        "toggle_stream",
        "Toggle the stream here",
        "The last minute of the task stream, or the engines",
    ),
    ("resubmit", "Resubmit failed tasks", "Send the failed, cancelled and lost tasks again"),
    ("resubmit_all", "Resubmit all tasks", "Send every task again as a new attempt (asks first)"),
    ("export", "Export results (CSV)", "One row per task, into the run folder"),
    ("rerun_advised", "Rerun with the advice", "Same inputs, a new run, the advised chunksize"),
    ("back", "Back to the jobs", "Pick another job to run"),
)


def retryable_count(snapshot: JobSnapshot) -> int:
    """How many tasks `r` would send again, from the counts (`job.retryable()` is O(total))."""
    return sum(snapshot.count(s) for s in (TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST))


class AttemptSent:
    """A job just resubmitted as `attempt`, until its tracker has taken the attempt in.

    `job.submit` returns before the sender thread registers the new tasks, and until it does a
    snapshot still says the earlier attempt FINISHED: the screen would stop following the job
    (and the poller stop polling). Seen through this, such a snapshot reads SUBMITTING."""

    def __init__(self, job: JobHandle, attempt: int) -> None:
        self.job = job
        self.attempt = attempt

    def seen(self, snapshot: JobSnapshot) -> JobSnapshot:
        if snapshot.phase is Phase.FINISHED and snapshot.attempt < self.attempt:
            return replace(snapshot, phase=Phase.SUBMITTING, attempt=self.attempt)
        return snapshot

    def poll(self) -> JobSnapshot:
        return self.seen(self.job.poll())

    def output_batch(self, seq: int) -> OutputBatch:
        return self.job.output_batch(seq)


@dataclass(frozen=True)
class MonitorResult:
    """What the monitor dismisses with: the job's last snapshot (None: the job never got one)
    and, when `a` reruns the job with the advice, the spec to run next."""

    snapshot: JobSnapshot | None
    rerun: JobSpec | None = None


class MonitorScreen(AnswersFromWorkers, Screen[MonitorResult]):
    """Dismisses (Escape, once the job finished; `a`, to rerun it) with a `MonitorResult`."""

    # The box of recent failures in the colour of failed tasks (its layout is in app.tcss).
    DEFAULT_CSS = (
        f"MonitorScreen #recent-failures {{ border: round {colour(TaskState.ERROR)} 60%;"
        f" border-title-color: {text_colour(TaskState.ERROR)}; }}"
    )

    RESUBMIT = Binding.Group("Resubmit", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel", "Cancel", id="cancel"),
        Binding("t", "tasks", "Tasks", id="tasks"),
        Binding(
            "r",
            "resubmit",
            "Resubmit failed",
            id="resubmit",
            group=RESUBMIT,
            tooltip="Send the failed, cancelled and lost tasks again",
        ),
        Binding(
            "R",
            "resubmit_all",
            "Resubmit all",
            id="resubmit-all",
            group=RESUBMIT,
            tooltip="Send every task again (asks first)",
        ),
        # Not in the footer (no room at 80 columns): the output's border says "f to pause".
        Binding("f", "follow", "Follow", id="follow", show=False),
        Binding("x", "export", "Export CSV", id="export", show=False),
        Binding(
            "s",
            "stream",
            "Stream",
            id="stream",
            show=False,
            tooltip="The task stream, full screen: every engine's tasks over time",
        ),
        Binding(
            "v",
            "toggle_stream",
            "Stream here",
            id="stream-here",
            show=False,
            tooltip="The last minute of the task stream in place of the engines (again: back)",
        ),
        Binding(
            "a",
            "rerun_advised",
            "Rerun advised",
            id="rerun-advised",
            show=False,
            tooltip="Run the job again (a new run) with the chunksize the advice suggests",
        ),
        Binding("escape,b", "back", "Back", id="back", key_display="esc"),
    ]

    phase: reactive[Phase | None] = reactive(None)  # the footer follows `_keys_state`
    submit_failed: reactive[bool] = reactive(False, bindings=True)

    def __init__(
        self,
        spec: JobSpec | None = None,
        *,
        session: Session | None = None,
        job: JobHandle | None = None,
        runs_dir: str | None = None,
        poll_interval: float = 0.25,
        attached: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Submit `spec` through `session`, or watch a `job` submitted before; `attached` says
        it was sent by an earlier ippmon (`ippmon attach`, the runs list) in the status line.
        `clock` goes to the tasks screens."""
        super().__init__()
        if job is not None:
            self.job_name = job.name
        elif spec is not None and session is not None:
            self.job_name = spec.name
        else:
            raise ValueError("MonitorScreen needs a spec and a session, or a job")
        self.spec = spec
        self.session = session
        self.runs_dir = runs_dir
        self.poll_interval = poll_interval
        self.attached = attached
        self.clock = clock
        self.job: JobHandle | None = None
        self._given_job = job
        self._job_closed = False
        self._last_seq = 0  # newest output line shown; a restarted poller goes on from there
        self._keys_state: tuple[object, ...] = ()  # what the greyed-out keys were decided from
        self.snapshot: JobSnapshot | None = None

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield JobStatus(id="status")
        yield Notice(id="notice")
        with Vertical(id="live"):
            yield ProgressPanel(id="progress")
            yield TimingPanel(id="timing")
            yield AdviceLine(id="advice")
        yield EngineBoard(id="engines")
        yield SummaryPanel(id="summary")
        with Horizontal(id="bottom"):
            yield OutputLog(id="output")
            yield FailureList(id="recent-failures")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OutputLog).focus()
        collector.start_watching()
        if self._given_job is not None:
            self._start_watching(self._given_job)
            return
        n = self.spec.n_inputs if self.spec is not None else None
        self.query_one(JobStatus).show_pending(
            self.job_name, f"sending {n:,} tasks to the cluster…" if n else "sending tasks…"
        )
        self._submit()

    # -- what the app asks ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while tasks may still run on the cluster because of this screen."""
        if self.submit_failed:
            return False
        return self.snapshot is None or self.snapshot.phase is not Phase.FINISHED

    @property
    def remaining(self) -> int:
        if self.snapshot is None:
            return (self.spec.n_inputs if self.spec is not None else None) or 0
        return max(0, self.snapshot.total - self.snapshot.done)

    # -- workers --------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="submit", description="session.submit")
    def _submit(self) -> JobSubmitted:
        assert self.session is not None and self.spec is not None
        return JobSubmitted(self.session.submit(self.spec, self.runs_dir))

    @work(thread=True, exit_on_error=False, exclusive=True, group="poll", description="job.poll")
    def _poll(self, job: JobHandle | AttemptSent, last_seq: int) -> None:
        stop = get_current_worker().cancelled_event
        poll_job(job, self.post_message, stop, interval=self.poll_interval, last_seq=last_seq)

    @work(thread=True, exit_on_error=False, group="cancel", description="job.cancel")
    def _cancel(self, job: JobHandle) -> None:
        job.cancel()

    @work(thread=True, exit_on_error=False, group="resubmit", description="job.submit")
    def _resubmit(self, job: JobHandle, indices: range | None = None) -> Resubmitted:
        """Send `indices` again, or (None) what `job.retryable()` says: O(total), so here."""
        todo = job.retryable() if indices is None else list(indices)
        return Resubmitted(len(todo), job.submit(todo)) if todo else Resubmitted(0, 0)

    @work(thread=True, exit_on_error=False, group="export", description="job.export")
    def _export(self, job: JobHandle) -> Exported:
        return Exported(job.export("csv"))

    FAILED_TO = {  # a worker's group -> what failed, for the notice
        "submit": "Could not submit",
        "cancel": "Could not cancel",
        "poll": "Stopped polling",
        "resubmit": "Could not resubmit",
        "export": "Could not export",
    }

    def worker_failed(self, failure: WorkerFailed) -> None:
        if not self.is_attached:
            return
        what = self.FAILED_TO.get(failure.group, "Failed:")
        self.show_notice(f"{what} {self.job_name}: {failure.text}")
        if self.job is None:  # the job never got to the cluster
            self.submit_failed = True
            self.query_one(JobStatus).show_pending(self.job_name, "not submitted")
        self.refresh_bindings()

    def on_job_submitted(self, message: JobSubmitted) -> None:
        if self.is_attached:
            self._start_watching(message.job)

    def on_resubmitted(self, message: Resubmitted) -> None:
        if self.is_attached:
            self._resubmitted(message.count, message.attempt)

    def on_exported(self, message: Exported) -> None:
        if self.is_attached:
            text = f"results written to {message.path}"
            self.notify(text, title="Exported", timeout=15, markup=False)

    def _start_watching(self, job: JobHandle) -> None:
        self.job = job
        self._apply(job.snapshot(), job.output_batch(0))
        self._follow_job()

    def _follow_job(self) -> None:
        if self.job is not None and self.poll_interval > 0 and self.running:
            self._poll(self.job, self._last_seq)

    def _resubmitted(self, count: int, attempt: int) -> None:
        self.refresh_bindings()
        if not count or self.job is None:
            self.notify("nothing to resubmit: no task failed, was cancelled or lost")
            return
        tasks = f"{count:,} task{'s' if count != 1 else ''}"
        self.notify(f"resubmitted {tasks} as attempt {attempt}", timeout=5)
        sent = AttemptSent(self.job, attempt)
        self._apply(sent.seen(self.job.snapshot()), OutputBatch.of([], 0, self._last_seq))
        for panel in self.query(TaskStreamPanel):
            panel.zoom_when_finished = Zoom.JOB
            panel.set_zoom(Zoom.MINUTE)  # the new attempt runs: the last minute again
        if self.poll_interval > 0:
            self._poll(sent, self._last_seq)

    # -- updates --------------------------------------------------------------------------------

    def on_job_update(self, message: JobUpdate) -> None:
        message.stop()
        if self.is_attached:
            self._apply(message.snapshot, message.output)

    def on_poll_failed(self, message: PollFailed) -> None:
        message.stop()
        if self.is_attached:
            self.show_notice(f"Lost touch with the cluster: {message.error} (retrying)")

    def _apply(self, snapshot: JobSnapshot, output: OutputBatch) -> None:
        finished = snapshot.phase is Phase.FINISHED
        self._last_seq = max(self._last_seq, output.last)
        try:
            self.query_one(JobStatus).apply(snapshot, attached=self.attached)
            self.show_notice(snapshot.message)
            self.query_one(ProgressPanel).apply(snapshot)
            self.query_one(TimingPanel).apply(snapshot)
            self.query_one(AdviceLine).apply(snapshot)
            if finished:
                rerun = "a" if self.advised_spec(snapshot) is not None else ""
                self.query_one(SummaryPanel).apply(snapshot, rerun_key=rerun)
            else:
                self.query_one(EngineBoard).apply(snapshot)
                self.query_one("#recent-failures", FailureList).apply(snapshot)
            self.query_one(OutputLog).write_texts(output.texts, output.dropped, "the job's")
        except NoMatches:  # the screen is being torn down
            return
        if finished and self.phase in (Phase.SUBMITTING, Phase.RUNNING, Phase.CANCELLING):
            self.post_message(JobEnded(snapshot))  # it ended while watched, not read back ended
        self.snapshot = snapshot
        self.phase = snapshot.phase
        self.sub_title = snapshot.cluster or self.sub_title
        self.set_class(finished, "-finished")
        self.set_class(bool(snapshot.failures) and not finished, "-has-failures")
        keys_state = (snapshot.phase, retryable_count(snapshot) > 0, snapshot.total > 0)
        if keys_state != self._keys_state:  # not every tick: the footer redraws on a refresh
            self._keys_state = keys_state
            self.refresh_bindings()

    def show_notice(self, text: str) -> None:
        """The notice bar under the status line (the next snapshot's message replaces it)."""
        with contextlib.suppress(NoMatches):
            self.query_one(Notice).show(text)

    # -- keys -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.job is not None and self.phase in (Phase.SUBMITTING, Phase.RUNNING) or None
        if action == "back":
            return self.phase is Phase.FINISHED or self.submit_failed or None
        if action in ("resubmit", "resubmit_all"):
            return self._can_resubmit(all_tasks=action == "resubmit_all") or None
        if action in ("export", "tasks", "stream", "toggle_stream"):
            return self.job is not None or None
        if action == "rerun_advised":
            snapshot = self.snapshot
            finished = snapshot is not None and snapshot.phase is Phase.FINISHED
            return finished and self.advised_spec(snapshot) is not None or None
        return True

    def advised_spec(self, snapshot: JobSnapshot | None) -> JobSpec | None:
        """The job spec with the advised chunksize, when there is advice and a spec to change
        (a job this screen submitted)."""
        if snapshot is None or self.spec is None:
            return None
        for finding in snapshot.findings:
            if finding.chunksize:
                return dataclasses.replace(self.spec, chunksize=finding.chunksize)
        return None

    def action_rerun_advised(self) -> None:
        spec = self.advised_spec(self.snapshot)
        if spec is None or self.check_action("rerun_advised", ()) is not True:
            return
        self.dismiss(MonitorResult(self.snapshot, rerun=spec))

    def _can_resubmit(self, *, all_tasks: bool) -> bool:
        """Not while the job is being sent or cancelled, nor twice at once; `r` only when some
        task failed, was cancelled or lost (from the snapshot's counts, not `job.retryable()`)."""
        snapshot = self.snapshot
        if self.job is None or snapshot is None or self._busy("resubmit"):
            return False
        if snapshot.phase in (Phase.SUBMITTING, Phase.CANCELLING):
            return False
        if snapshot.submitted < snapshot.total and snapshot.phase is not Phase.FINISHED:
            return False  # still sending, a few at a time (the send window)
        return snapshot.total > 0 if all_tasks else retryable_count(snapshot) > 0

    def palette_commands(self) -> Iterator[SystemCommand]:
        """The actions that apply right now, by name, for the command palette."""
        for action, title, what in PALETTE:
            if self.check_action(action, ()) is True:
                yield SystemCommand(title, what, getattr(self, f"action_{action}"))

    def _busy(self, group: str) -> bool:
        return any(w.group == group and w.is_running for w in self.workers)

    def action_resubmit(self) -> None:
        if self.job is not None and self.check_action("resubmit", ()) is True:
            self._resubmit(self.job)
            self.refresh_bindings()

    def action_resubmit_all(self) -> None:
        snapshot = self.snapshot
        if snapshot is None or self.check_action("resubmit_all", ()) is not True:
            return

        def answered(yes: bool | None) -> None:
            if yes and self.job is not None and self.check_action("resubmit_all", ()) is True:
                self._resubmit(self.job, range(snapshot.total))
                self.refresh_bindings()

        self.app.push_screen(
            ResubmitAllConfirm(
                snapshot.name,
                snapshot.total,
                snapshot.attempt + 1,
                ok=snapshot.count(TaskState.OK),
                unfinished=snapshot.total - snapshot.done,
            ),
            answered,
        )

    def action_tasks(self) -> None:
        if self.job is not None:
            self.app.push_screen(TasksScreen(self.job, clock=self.clock))

    @property
    def stream_interval(self) -> float:
        return STREAM_INTERVAL_S if self.poll_interval > 0 else 0.0

    def action_stream(self) -> None:
        if self.job is not None:
            self.app.push_screen(StreamScreen(self.job, interval=self.stream_interval))

    def action_toggle_stream(self) -> None:
        """The compact stream (the last minute; the whole job once it finished) in place of
        the engines, or the engines again."""
        if self.job is None:
            return
        shown = self.query(TaskStreamPanel)
        if shown:
            shown.remove()
        else:
            panel = TaskStreamPanel(
                self.job,
                zoom=Zoom.JOB if self.phase is Phase.FINISHED else Zoom.MINUTE,
                zoom_when_finished=Zoom.JOB,
                interval=self.stream_interval,
                scroll_hint="tab, ↑↓ to scroll · s full screen",
                id="stream-compact",
            )
            self.mount(panel, after=self.query_one(SummaryPanel))
        self.set_class(not shown, "-stream")

    def action_export(self) -> None:
        if self.job is not None:
            self._export(self.job)

    def action_follow(self) -> None:
        self.query_one(OutputLog).toggle_follow()  # its border says which

    def action_cancel(self) -> None:
        snapshot, job = self.snapshot, self.job
        if snapshot is None or job is None or self.check_action("cancel", ()) is not True:
            return

        def answered(yes: bool | None) -> None:
            if yes and self.job is not None and self.running:
                self.show_notice("Cancelling: aborting queued tasks, interrupting running ones…")
                self._cancel(self.job)

        self.app.push_screen(
            CancelConfirm(
                snapshot.name, snapshot.count(TaskState.QUEUED), snapshot.count(TaskState.RUNNING)
            ),
            answered,
        )

    def action_back(self) -> None:
        if self.check_action("back", ()) is True:
            self.dismiss(MonitorResult(self.snapshot))

    def stop_polling(self) -> None:
        self.workers.cancel_group(self, "poll")

    def close_job(self) -> None:
        """Flush the run record, once; the tasks themselves are left alone. Any thread."""
        job = self.job
        if job is not None and not self._job_closed:
            self._job_closed = True
            job.close()

    def on_unmount(self) -> None:
        collector.stop_watching()
        self.close_job()
