"""Thread workers answer with messages, and fail in one place.

Every blocking call runs in a thread worker declared with `@work(thread=True, group=...,
description=..., exit_on_error=False)` that returns a message saying what it got
(`JobSubmitted`, `Resubmitted`, `Exported`, `Attached`, ...). A screen or app that mixes in
`AnswersFromWorkers` has that message posted to itself once the worker has finished, and its
handler (`on_job_submitted`, ...) takes it from there.

When the worker raises instead, the mixin calls the node's `worker_failed` with a `WorkerFailed`
whose `text` is the error as one line for people: the one place a worker's failure becomes
something to show. It is called at once, in the worker's state change, so the failure is drawn
in the same frame the worker ended in.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.worker import Worker, WorkerState

from ippmon.jobspec import SpecError
from ippmon.protocols import ConnectError
from ippmon.runs import RunError
from ippmon.text import one_line

FOR_PEOPLE = (ConnectError, RunError, SpecError)
"""Errors whose message already says what failed and what to do: shown without their type."""


def error_text(error: BaseException | None) -> str:
    """One line for people: an ippmon error says it all; anything else gets its type's name."""
    return one_line(error, with_type=not isinstance(error, FOR_PEOPLE))


@dataclass(frozen=True)
class WorkerFailed:
    """A worker raised `error`; `group` is the worker's group."""

    group: str
    error: BaseException | None

    @property
    def text(self) -> str:
        return error_text(self.error)


class AnswersFromWorkers:
    """For screens and the app: post a finished worker's message to the node that started it, or
    hand its failure to `worker_failed` (only the node's own workers: others' state changes
    bubble past)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.node is not self:
            return
        if event.state is WorkerState.SUCCESS and isinstance(worker.result, Message):
            worker.node.post_message(worker.result)
        elif event.state is WorkerState.ERROR:
            self.worker_failed(WorkerFailed(worker.group, worker.error))

    def worker_failed(self, failure: WorkerFailed) -> None:
        """Show `failure` (`failure.text`) where this node shows errors."""
        raise NotImplementedError
