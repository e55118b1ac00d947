"""The monitor's top line (job, phase, what the phase is doing) and its notice bar."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Label, ProgressBar, Static

from ippmon.model import JobSnapshot, Phase, TaskState
from ippmon.ui.widgets.states import badge
from ippmon.ui.widgets.text import set_content, set_progress


def phase_detail(snapshot: JobSnapshot, *, hint: bool = True) -> str:
    """What the phase is doing, in a few words (`hint`: with the key for what to do next)."""
    if snapshot.phase is Phase.SUBMITTING:
        return f"sending {snapshot.submitted:,} / {snapshot.total:,}"
    if snapshot.phase is Phase.CANCELLING:
        return "aborting queued tasks, interrupting running ones"
    if snapshot.phase is Phase.FINISHED:
        if snapshot.succeeded:
            return "every task ok"
        not_ok = snapshot.total - snapshot.count(TaskState.OK)
        return f"{not_ok:,} not ok" + (": r resubmits them" if hint else "")
    if snapshot.submitted < snapshot.total and snapshot.phase is Phase.RUNNING:
        sent = f"sent {snapshot.submitted:,} / {snapshot.total:,} (more as tasks finish)"
        return " · ".join(part for part in (sent, snapshot.output_wait) if part)
    return snapshot.output_wait


def status_detail(snapshot: JobSnapshot, *, attached: bool = False) -> str:
    """`attached · attempt 2 · sending 40 / 50`: how this job is watched, which attempt, and
    what the phase is doing (the key hint only when nothing else needs the room at 80 columns)."""
    parts = ["attached"] if attached else []
    if snapshot.attempt > 1:
        parts.append(f"attempt {snapshot.attempt}")
    detail = phase_detail(snapshot, hint=not parts)
    return " · ".join([*parts, detail] if detail else parts)


class JobStatus(Horizontal):
    """`squares  RUNNING  sending 1,200 / 20,000 ... run 20260509-1"` in one line."""

    DEFAULT_CSS = """
    JobStatus { height: 1; }
    JobStatus #job-name { width: auto; text-style: bold; margin-right: 1; }
    JobStatus #phase {
        width: auto;
        padding: 0 1;
        margin-right: 1;
        text-style: bold;
        color: $text;
        background: $primary-muted;
    }
    JobStatus #phase.-submitting { background: $warning-muted; color: $text-warning; }
    JobStatus #send-bar { width: auto; display: none; margin-right: 1; }
    JobStatus #send-bar Bar { width: 24; }
    JobStatus.-submitting #send-bar { display: block; }
    JobStatus #phase-detail {
        width: 1fr;
        margin-right: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    JobStatus #stragglers {
        width: auto;
        display: none;
        margin-right: 1;
        padding: 0 1;
        text-style: bold;
        background: $warning-muted;
        color: $text-warning;
    }
    JobStatus #stragglers.-shown { display: block; }
    JobStatus #run-id { width: auto; color: $text-muted; }
    """ + "\n".join(  # the phases that are about tasks, in their states' colours
        f"JobStatus #phase.-{phase} {{ {badge(state)} }}"
        for phase, state in (
            ("running", TaskState.RUNNING),
            ("cancelling", TaskState.CANCELLED),
            ("succeeded", TaskState.OK),
            ("failed", TaskState.ERROR),
        )
    )

    def compose(self) -> ComposeResult:
        yield Label(id="job-name", markup=False)
        yield Label(id="phase")
        yield ProgressBar(id="send-bar", show_eta=False, show_percentage=False)
        yield Label(id="phase-detail", markup=False)
        yield Label(id="stragglers", markup=False)
        yield Label(id="run-id", markup=False)

    def show_pending(self, name: str, what: str) -> None:
        """Before there is a snapshot (the job is being handed to the cluster)."""
        set_content(self.query_one("#job-name", Label), name)
        self._phase("submitting", Phase.SUBMITTING.value)
        set_content(self.query_one("#phase-detail", Label), what)

    def apply(self, snapshot: JobSnapshot, *, attached: bool = False) -> None:
        """`attached`: the job was sent by an earlier ippmon (`ippmon attach`, the runs list)."""
        set_content(self.query_one("#job-name", Label), snapshot.name)
        outcome = snapshot.phase.value
        if snapshot.phase is Phase.FINISHED:
            outcome = "succeeded" if snapshot.succeeded else "failed"
        self._phase(snapshot.phase.value.upper(), outcome)
        set_content(
            self.query_one("#phase-detail", Label), status_detail(snapshot, attached=attached)
        )
        self.set_class(snapshot.phase is Phase.SUBMITTING, "-submitting")
        if snapshot.phase is Phase.SUBMITTING:
            set_progress(
                self.query_one("#send-bar", ProgressBar), snapshot.submitted, snapshot.total
            )
        stragglers = self.query_one("#stragglers", Label)
        n = snapshot.stragglers
        set_content(stragglers, f"{n} straggler{'' if n == 1 else 's'}" if n else "")
        stragglers.set_class(n > 0, "-shown")
        run_id = f"run {snapshot.run_id}" if snapshot.run_id else ""
        set_content(self.query_one("#run-id", Label), run_id)

    def _phase(self, text: str, kind: str) -> None:
        label = self.query_one("#phase", Label)
        set_content(label, text.upper())
        label.set_classes(f"-{kind}")


class Notice(Static):
    """A one-line notice (`JobSnapshot.message`, a poll or submit error); hidden when empty."""

    DEFAULT_CSS = """
    Notice { display: none; height: auto; padding: 0 1; text-style: bold; }
    Notice.-shown { display: block; }
    """

    def show(self, text: str) -> None:
        set_content(self, Content(text))
        self.set_class(bool(text), "-shown")
