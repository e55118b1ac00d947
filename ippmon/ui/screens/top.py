"""`ippmon top`: every task on the cluster, whoever sent it (notebooks, scripts, ippmon), live.

The screen asks the session for a `ClusterWatch` in a thread worker, then ONE polling thread
(`poll_cluster`) sends `ClusterUpdate`s, each drawn by the widgets' `apply`. With
`poll_interval=0` there is no polling thread: the screen shows the watch's first poll and
output (how tests and screenshots feed it recorded state).

Enter on a job shows only that job: the engines running its tasks now and its output (again,
or Escape: everything). The output pane keeps the last `MAX_LINES` lines of every job, so
choosing a job shows what it printed among those at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import get_current_worker

from ippmon.clusterview import NODB
from ippmon.model import ClusterInfo
from ippmon.protocols import ClusterWatch, Session
from ippmon.text import one_line
from ippmon.topmodel import TopJob, TopLine, TopSnapshot
from ippmon.ui import collector
from ippmon.ui.messages import ClusterUpdate, PollFailed, Watching
from ippmon.ui.poller import poll_cluster
from ippmon.ui.screens.confirm import (
    AbortJobConfirm,
    AdoptJobConfirm,
    ConfirmScreen,
    InterruptJobConfirm,
    ResubmitJobConfirm,
)
from ippmon.ui.widgets.job_status import Notice
from ippmon.ui.widgets.line_table import LineTable
from ippmon.ui.widgets.output_log import MAX_LINES, OutputLog
from ippmon.ui.widgets.top_panels import JobTable, Limits, TopEngineBoard, TopStatus
from ippmon.ui.workers import AnswersFromWorkers, WorkerFailed


def top_line(line: TopLine, snap: TopSnapshot | None) -> str:
    """`[e1 squares] text`, `[e1 squares]! text` for stderr: engine, then job."""
    job = snap.title_of(line.job) if snap is not None else line.job[:8]
    mark = "!" if line.stream == "stderr" else ""
    return f"[e{line.engine} {job}]{mark} {line.text}"


def belongs(line: TopLine, job: str) -> bool:
    """A line is the job's when its job is; a line read before its task's record names only the
    session that sent it, which is enough when the job is that session's."""
    return line.job == job or line.job == job.partition("/")[0]


class TopScreen(AnswersFromWorkers, Screen[None]):
    """Dismissed with Escape (back to the job picker) unless it is the app's first screen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "follow", "Follow", id="top-follow", show=False),
        Binding(
            "i",
            "limits",
            "Limits",
            id="top-limits",
            tooltip="Everything this controller cannot tell (again: one line)",
        ),
        Binding(
            "x",
            "abort_job",
            "Abort job",
            id="top-abort",
            tooltip="Abort the highlighted job's tasks that have not started (asks first)",
        ),
        Binding(
            "K",
            "interrupt_job",
            "Interrupt job",
            id="top-interrupt",
            show=False,  # in the help and the command palette: the footer is full at 80 columns
            tooltip="Interrupt the engines running the highlighted job's tasks (asks first)",
        ),
        Binding(
            "R",
            "resubmit_job",
            "Resubmit failed",
            id="top-resubmit",
            show=False,
            tooltip="Resubmit the highlighted job's failed tasks through the controller "
            "(asks first; results come here, not to the client that sent them)",
        ),
        Binding(
            "a",
            "adopt_job",
            "Adopt job",
            id="top-adopt",
            show=False,
            tooltip="Record the highlighted job as an ippmon run, for attach and export "
            "(asks first)",
        ),
        Binding("escape", "back", "Back", id="top-back", key_display="esc"),
    ]

    def __init__(
        self,
        session: Session | None = None,
        *,
        watch: ClusterWatch | None = None,
        poll_interval: float = 0.25,
        can_go_back: bool = True,
    ) -> None:
        """Watch through `session.watch()`, or a `watch` made before; `can_go_back`: Escape
        (with no job picked) returns to the screen below."""
        super().__init__()
        self.session = session
        self.cluster: ClusterWatch | None = watch
        self.poll_interval = poll_interval
        self.can_go_back = can_go_back
        self.snapshot: TopSnapshot | None = None
        self.picked: str | None = None  # the job shown alone
        self._lines: deque[TopLine] = deque(maxlen=MAX_LINES)
        self._last_seq = 0
        self._watch_closed = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield TopStatus(id="top-status")
        yield Limits(id="limits")
        yield Notice(id="notice")
        jobs = JobTable(id="top-jobs")
        jobs.border_title = "jobs"
        yield jobs
        yield TopEngineBoard(id="top-engines")
        yield OutputLog(id="output")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(JobTable).focus()
        collector.start_watching()
        if self.cluster is not None:
            self._start(self.cluster)
        elif self.session is not None:
            self.show_notice("starting to watch the cluster…")
            self._open_watch(self.session)

    # -- workers --------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="watch", description="session.watch")
    def _open_watch(self, session: Session) -> Watching:
        return Watching(session.watch())

    @work(thread=True, exit_on_error=False, exclusive=True, group="poll", description="watch.poll")
    def _poll(self, watch: ClusterWatch, last_seq: int) -> None:
        stop = get_current_worker().cancelled_event
        poll_cluster(watch, self.post_message, stop, interval=self.poll_interval, last_seq=last_seq)

    def worker_failed(self, failure: WorkerFailed) -> None:
        if self.is_attached:
            what = "Cannot watch the cluster:" if failure.group == "watch" else "Stopped polling:"
            self.show_notice(f"{what} {failure.text}")

    def on_watching(self, message: Watching) -> None:
        if self.is_attached and not self._watch_closed:
            self._start(message.watch)
        else:
            with contextlib.suppress(Exception):
                message.watch.close()

    def _start(self, watch: ClusterWatch) -> None:
        self.cluster = watch
        self.show_notice("")
        if self.poll_interval > 0:
            self._poll(watch, self._last_seq)
        else:
            lines, dropped = watch.output_since(0)
            self._apply(watch.poll(), lines, dropped)

    # -- updates --------------------------------------------------------------------------------

    def on_cluster_update(self, message: ClusterUpdate) -> None:
        message.stop()
        if self.is_attached:
            self._apply(message.snapshot, message.lines, message.dropped)

    def on_poll_failed(self, message: PollFailed) -> None:
        message.stop()
        if self.is_attached:
            self.show_notice(f"Lost touch with the cluster: {message.error} (retrying)")

    def _apply(self, snap: TopSnapshot, lines: list[TopLine], dropped: int) -> None:
        self.snapshot = snap
        if lines:
            self._last_seq = max(self._last_seq, lines[-1].seq)
            self._lines.extend(lines)
        if self.picked is not None and snap.job(self.picked) is None:
            self.picked = None  # its tasks left the controller's records
            self._show_output_again()
        try:
            self.query_one(TopStatus).apply(snap)
            self.query_one(Limits).apply(snap)
            self.query_one(JobTable).apply(snap)
            self.query_one(TopEngineBoard).apply(snap, self.picked)
            shown = [line for line in lines if self.picked is None or belongs(line, self.picked)]
            self.query_one(OutputLog).write_texts(
                [top_line(line, snap) for line in shown], dropped, "the watch's"
            )
        except NoMatches:  # the screen is being torn down
            return
        info = getattr(self.session, "info", None)
        if isinstance(info, ClusterInfo):  # the engines registered now, not at connect time
            alive = sum(1 for e in snap.engines if e.state != "gone")
            self.sub_title = dataclasses.replace(info, engines=alive).label
        self._titles()

    def _titles(self) -> None:
        snap = self.snapshot
        jobs = self.query_one(JobTable)
        board = self.query_one(TopEngineBoard)
        n = len(snap.engines) if snap is not None else 0
        if self.picked is None or snap is None:
            jobs.border_title = f"jobs ({len(snap.jobs) if snap else 0}) · enter: only one"
            board.border_title = f"engines ({n})"
            self.query_one(OutputLog).border_title = "output"
            return
        title = snap.title_of(self.picked)
        running = sum(1 for e in snap.engines if e.job == self.picked)
        jobs.border_title = f"jobs · only {title} (enter or esc: every job)"
        board.border_title = f"engines running {title}: {running} of {n}"
        self.query_one(OutputLog).border_title = f"output of {title}"

    def _show_output_again(self) -> None:
        """Fill the output pane again from the lines kept, for the job picked (or all)."""
        log = self.query_one(OutputLog)
        log.restart()
        picked = self.picked
        lines = [line for line in self._lines if picked is None or belongs(line, picked)]
        log.write_texts([top_line(line, self.snapshot) for line in lines])

    def show_notice(self, text: str) -> None:
        with contextlib.suppress(NoMatches):
            self.query_one(Notice).show(text)

    # -- keys -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return self.picked is not None or self.can_go_back or None
        return True

    def on_line_table_selected(self, event: LineTable.Selected) -> None:
        event.stop()
        self.action_pick_job()

    def action_pick_job(self) -> None:
        table = self.query_one(JobTable)
        job = table.job_at(table.cursor_row)
        if job is None:
            return
        self.pick(None if job.id == self.picked else job.id)

    def pick(self, job_id: str | None) -> None:
        """Show only `job_id`'s engines and output (None: every job's)."""
        self.picked = job_id
        if self.snapshot is not None:
            self.query_one(TopEngineBoard).apply(self.snapshot, job_id)
        self._show_output_again()
        self._titles()
        self.refresh_bindings()

    def _highlighted(self) -> tuple[TopJob, str] | None:
        """The job under the jobs table's cursor and its title (None: no job, or not watching)."""
        table = self.query_one(JobTable)
        job = table.job_at(table.cursor_row)
        if job is None or self.cluster is None or self.snapshot is None:
            return None
        return job, self.snapshot.title_of(job.id)

    def action_abort_job(self) -> None:
        if (picked := self._highlighted()) is None:
            return
        job, title = picked
        if not job.queued + job.running:
            self.show_notice(f"{title} has no task waiting: nothing to abort")
            return

        def abort(watch: ClusterWatch) -> str:
            n = watch.abort(job.id)
            if not n:
                return f"{title} has no task left that has not started: nothing aborted"
            return (
                f"Asked the engines to abort {n:,} task{'s' if n != 1 else ''} of {title} not "
                "started yet; running ones run on"
            )

        self._confirm_then(
            AbortJobConfirm(title, job.user, job.queued + job.running, job.running),
            abort,
            f"Could not abort {title}",
        )

    def action_interrupt_job(self) -> None:
        if (picked := self._highlighted()) is None or self.snapshot is None:
            return
        job, title = picked
        engines = [e.id for e in self.snapshot.engines if e.job == job.id and e.state == "busy"]
        if not engines:
            self.show_notice(f"No engine runs a task of {title} now: nothing to interrupt")
            return

        def interrupt(watch: ClusterWatch) -> str:
            sent = watch.interrupt(job.id)
            if not sent:
                return f"No engine ran a task of {title} any more: nothing interrupted"
            return f"Sent SIGINT to {', '.join(f'e{e}' for e in sent)}, running {title}"

        self._confirm_then(
            InterruptJobConfirm(title, job.user, len(engines)),
            interrupt,
            f"Could not interrupt {title}",
        )

    def action_resubmit_job(self) -> None:
        from ippmon.adopt import NODB_RESUBMIT

        if self.snapshot is not None and self.snapshot.db == NODB:
            self.show_notice(f"Cannot resubmit: {NODB_RESUBMIT}")
            return
        if (picked := self._highlighted()) is None:
            return
        job, title = picked
        if not job.failed:
            self.show_notice(f"{title} has no failed task: nothing to resubmit")
            return

        def resubmit(watch: ClusterWatch) -> str:
            text = watch.resubmit(job.id).text(title)
            return text[:1].upper() + text[1:]

        self._confirm_then(
            ResubmitJobConfirm(title, job.user, job.failed),
            resubmit,
            f"Could not resubmit {title}",
        )

    def action_adopt_job(self) -> None:
        from ippmon.adopt import NODB_ADOPT, AdoptError, attach_hint
        from ippmon.runs import runs_root

        if self.snapshot is not None and self.snapshot.db == NODB:
            self.show_notice(f"Cannot adopt: {NODB_ADOPT}")
            return
        if (picked := self._highlighted()) is None:
            return
        job, title = picked
        runs_dir = getattr(self.app, "runs_dir", None)
        info = getattr(self.session, "info", None)
        cluster = info if isinstance(info, ClusterInfo) else ClusterInfo()

        def adopt(watch: ClusterWatch) -> str:
            try:
                run = watch.adopt(job.id, runs_dir, cluster)
            except AdoptError as exc:
                return f"Could not adopt {title}: {exc}"
            n = f"{run.tasks:,} task{'s' if run.tasks != 1 else ''}"
            return f"Adopted {title} as run {run.run_id} ({n}); {attach_hint(run.run_id, runs_dir)}"

        self._confirm_then(
            AdoptJobConfirm(title, job.user, job.submitted, str(runs_root(runs_dir))),
            adopt,
            f"Could not adopt {title}",
        )

    def _confirm_then(
        self, question: ConfirmScreen, act: Callable[[ClusterWatch], str], failed: str
    ) -> None:
        """Ask `question`; on yes, `act` on the watch in a thread, and say what it returns."""

        def answered(yes: bool | None) -> None:
            if yes and self.cluster is not None:
                self._act(self.cluster, act, failed)

        self.app.push_screen(question, answered)

    @work(thread=True, exit_on_error=False, group="act", description="acting on a job")
    def _act(self, watch: ClusterWatch, act: Callable[[ClusterWatch], str], failed: str) -> None:
        try:
            text = act(watch)
        except Exception as exc:
            text = f"{failed}: {one_line(exc, with_type=True)}"
        self.app.call_from_thread(self.show_notice, text)

    def action_follow(self) -> None:
        self.query_one(OutputLog).toggle_follow()

    def action_limits(self) -> None:
        self.query_one(Limits).toggle()

    def action_back(self) -> None:
        if self.picked is not None:
            self.pick(None)
        elif self.can_go_back:
            self.dismiss(None)

    def stop_polling(self) -> None:
        self.workers.cancel_group(self, "poll")

    def close_watch(self) -> None:
        """Stop watching, once. Any thread."""
        watch, self.cluster = self.cluster, None
        self._watch_closed = True
        if watch is not None:
            with contextlib.suppress(Exception):  # the cluster process may be gone already
                watch.close()

    def on_unmount(self) -> None:
        collector.stop_watching()
        self.stop_polling()
        self.close_watch()
