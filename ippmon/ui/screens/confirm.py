"""Yes/no dialogs for what cannot be undone: stopping a local cluster mid-job, cancelling, and
sending a whole job again."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True for the action, False to stay. The safe button has the focus."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
        Binding("left,h", "app.focus_previous", "Previous", show=False),
        Binding("right,l", "app.focus_next", "Next", show=False),
    ]

    def __init__(
        self,
        title: str,
        question: str,
        *,
        yes: str,
        no: str,
        yes_keys: str = "y",
        danger: bool = True,
    ) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._yes = yes
        self._no = no
        self._yes_keys = yes_keys
        self._danger = danger

    def compose(self) -> ComposeResult:
        self.set_class(not self._danger, "-safe")
        with Vertical(id="dialog") as dialog:
            dialog.border_title = self._title
            yield Static(self._question, id="question", markup=False)
            yield Label(
                f"{self._yes_keys} {self._yes.lower()}  ·  n / esc {self._no.lower()}", id="keys"
            )
            with Horizontal(id="buttons"):
                yield Button(self._yes, id="yes", variant="error" if self._danger else "primary")
                yield Button(self._no, id="no", variant="default")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitConfirm(ConfirmScreen):
    """Quit while a job runs on the local cluster ippmon started (`--local`): the cluster stops
    with ippmon, so its tasks cannot be left running. `q` again means quit."""

    BINDINGS = [Binding("q", "answer(True)", "Quit", show=False)]

    def __init__(self, job_name: str, remaining: int) -> None:
        tasks = f"{remaining:,} unfinished task{'s' if remaining != 1 else ''}"
        super().__init__(
            "Quit and stop the local cluster?",
            f"Job {job_name!r} is still running on the local cluster ippmon started: quitting "
            f"stops the local cluster and its {tasks}. "
            "The run record keeps the results that came back.",
            yes="Quit",
            no="Stay",
            yes_keys="q / y",
        )


class CancelConfirm(ConfirmScreen):
    """Cancel the job: abort what waits, interrupt what runs."""

    def __init__(self, job_name: str, queued: int, running: int) -> None:
        super().__init__(
            f"Cancel {job_name}?",
            f"Abort {queued:,} queued task{'s' if queued != 1 else ''} and interrupt "
            f"{running:,} running one{'s' if running != 1 else ''}? "
            "Tasks that already finished keep their results.",
            yes="Cancel job",
            no="Keep running",
        )


class AbortJobConfirm(ConfirmScreen):
    """Abort another client's job's tasks that have not started (`x` in `ippmon top`)."""

    def __init__(self, title: str, user: str, waiting: int, running: int) -> None:
        super().__init__(
            f"Abort {title}?",
            f"Abort the {waiting:,} task{'s' if waiting != 1 else ''} of {title} (sent by "
            f"{user}) that have not started? Their client gets them back as aborted. The "
            f"{running:,} running now run on; no other job is touched.",
            yes="Abort them",
            no="Keep them",
        )


class InterruptJobConfirm(ConfirmScreen):
    """Interrupt the engines running another client's job (`K` in `ippmon top`)."""

    def __init__(self, title: str, user: str, engines: int) -> None:
        super().__init__(
            f"Interrupt {title}?",
            f"Send SIGINT to the {engines:,} engine{'s' if engines != 1 else ''} running {title} "
            f"(sent by {user}) now? Its running tasks fail with KeyboardInterrupt. An engine may "
            "have moved on to its next task by the time the signal lands: that task is "
            "interrupted instead, whoever sent it.",
            yes="Interrupt",
            no="Leave them",
        )


class ResubmitAllConfirm(ConfirmScreen):
    """Send every input again as the next attempt (`R`); the newest attempt of a task counts."""

    def __init__(self, job_name: str, total: int, attempt: int, ok: int, unfinished: int) -> None:
        tasks = f"all {total:,} tasks" if total != 1 else "its one task"
        parts = [f"Send {tasks} of {job_name!r} again, as attempt {attempt}?"]
        if ok:
            parts.append(
                f"The {ok:,} that succeeded run again too "
                "(the run record keeps every attempt; the newest counts)."
            )
        if unfinished:
            parts.append(
                f"The {unfinished:,} still queued or running are not cancelled "
                "(press c first to stop them)."
            )
        super().__init__(
            f"Resubmit all of {job_name}?",
            " ".join(parts),
            yes=f"Resubmit {total:,}",
            no="Keep as is",
            danger=False,
        )


class ResubmitJobConfirm(ConfirmScreen):
    """Resubmit another client's job's failed tasks through the controller (`R` in `ippmon top`):
    the new results go to the controller's records, which ippmon reads, never to the client
    that sent the tasks (ipyparallel's hub sends them on a socket of its own)."""

    def __init__(self, title: str, user: str, failed: int) -> None:
        tasks = f"{failed:,} failed task{'s' if failed != 1 else ''}"
        super().__init__(
            f"Resubmit {title}'s failed tasks?",
            f"Send the {tasks} of {title} (sent by {user}) again, through the controller? Only "
            "those that raised go (aborted ones stay aborted; any the controller no longer "
            "holds cannot be sent). The results go to the controller and show here as "
            f"'{title} (resubmitted)'; they do NOT go back to the notebook or script that "
            "sent them, whose results keep the old errors. The job's label and flags "
            "(retries, timeout, dependencies) are not sent again.",
            yes="Resubmit",
            no="Leave them",
        )


class AdoptJobConfirm(ConfirmScreen):
    """Make another client's job an ippmon run record (`a` in `ippmon top`)."""

    def __init__(self, title: str, user: str, tasks: int, where: str) -> None:
        super().__init__(
            f"Adopt {title}?",
            f"Record {title} (sent by {user}, {tasks:,} task{'s' if tasks != 1 else ''}) as "
            f"an ippmon run in {where}, so that `ippmon attach` keeps its results and output "
            "and `ippmon export` writes them? Nothing is sent to the cluster. Its inputs stay "
            "unknown to ippmon: the run can be watched and exported, not resumed.",
            yes="Adopt",
            no="Cancel",
            danger=False,
        )
