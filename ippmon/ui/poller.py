"""The loops behind the monitor's (and `ippmon top`'s) one polling thread, kept free of
Textual so they can be tested alone.

It asks the job (or the cluster watch) for a snapshot and new output about four times a second
and hands both to `post` (the screen's thread-safe `post_message`). It waits on `stop` (a
`threading.Event`, the worker's `cancelled_event`) instead of sleeping, so quitting or leaving
the screen ends it at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from textual.message import Message

from ippmon.model import JobSnapshot, OutputBatch, Phase
from ippmon.protocols import ClusterWatch
from ippmon.text import one_line
from ippmon.ui.messages import ClusterUpdate, JobUpdate, PollFailed


class Polled(Protocol):
    """What the poller asks of a job (a JobHandle, or the monitor's view of a resubmitted one)."""

    def poll(self) -> JobSnapshot: ...

    def output_batch(self, seq: int) -> OutputBatch: ...


def poll_job(
    job: Polled,
    post: Callable[[Message], object],
    stop: threading.Event,
    *,
    interval: float = 0.25,
    last_seq: int = 0,
) -> int:
    """Poll until the job finishes or `stop` is set; returns the seq of the last line posted."""

    def ask(seq: int) -> tuple[Message, int, bool]:
        snapshot = job.poll()
        output = job.output_batch(seq)
        return JobUpdate(snapshot, output), output.last, snapshot.phase is Phase.FINISHED

    return _poll(ask, post, stop, interval, last_seq)


def poll_cluster(
    watch: ClusterWatch,
    post: Callable[[Message], object],
    stop: threading.Event,
    *,
    interval: float = 0.25,
    last_seq: int = 0,
) -> int:
    """`ippmon top`'s loop: as `poll_job`, until `stop` is set (a cluster never finishes)."""

    def ask(seq: int) -> tuple[Message, int, bool]:
        snapshot = watch.poll()
        lines, dropped = watch.output_since(seq)
        last = lines[-1].seq if lines else seq
        return ClusterUpdate(snapshot, list(lines), dropped), last, False

    return _poll(ask, post, stop, interval, last_seq)


def _poll(
    ask: Callable[[int], tuple[Message, int, bool]],
    post: Callable[[Message], object],
    stop: threading.Event,
    interval: float,
    last_seq: int,
) -> int:
    """Post what `ask(last_seq)` makes of the source now (an update with the output since
    `last_seq`; the seq that output reaches; whether the source is over) until it is over or
    `stop` is set; a failed ask is posted as PollFailed, and asked again."""
    while not stop.is_set():
        try:
            message, seq, over = ask(last_seq)
        except Exception as error:  # the client can fail in many ways; say so and keep going
            post(PollFailed(one_line(error, with_type=True)))
        else:
            last_seq = seq
            post(message)
            if over:
                break
        stop.wait(interval)
    return last_seq
