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
from typing import Any, Protocol

from textual.message import Message

from ippmon.model import JobSnapshot, OutputBatch, Phase
from ippmon.protocols import ClusterWatch
from ippmon.text import one_line
from ippmon.topmodel import TopLine, TopSnapshot
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

    def ask(seq: int) -> tuple[JobSnapshot, OutputBatch, int]:
        snapshot = job.poll()
        output = job.output_batch(seq)
        return snapshot, output, output.last

    return _poll(
        ask,
        lambda snap, output: post(JobUpdate(snap, output)),
        lambda snap: snap.phase is Phase.FINISHED,
        post,
        stop,
        interval,
        last_seq,
    )


def poll_cluster(
    watch: ClusterWatch,
    post: Callable[[Message], object],
    stop: threading.Event,
    *,
    interval: float = 0.25,
    last_seq: int = 0,
) -> int:
    """`ippmon top`'s loop: as `poll_job`, until `stop` is set (a cluster never finishes)."""

    def ask(seq: int) -> tuple[TopSnapshot, tuple[list[TopLine], int], int]:
        snapshot = watch.poll()
        lines, dropped = watch.output_since(seq)
        return snapshot, (lines, dropped), lines[-1].seq if lines else seq

    return _poll(
        ask,
        lambda snap, output: post(ClusterUpdate(snap, list(output[0]), output[1])),
        lambda _snap: False,
        post,
        stop,
        interval,
        last_seq,
    )


def _poll(
    ask: Callable[[int], tuple[Any, Any, int]],
    update: Callable[[Any, Any], object],
    over: Callable[[Any], bool],
    post: Callable[[Message], object],
    stop: threading.Event,
    interval: float,
    last_seq: int,
) -> int:
    """`ask(last_seq)` for a snapshot, the output since `last_seq` and the seq it reaches, hand
    the first two to `update`, until `over(snapshot)` or `stop`; a failed ask is posted as
    PollFailed, and asked again."""
    while not stop.is_set():
        try:
            snapshot, output, seq = ask(last_seq)
        except Exception as error:  # the client can fail in many ways; say so and keep going
            post(PollFailed(one_line(error, with_type=True)))
        else:
            last_seq = seq
            update(snapshot, output)
            if over(snapshot):
                break
        stop.wait(interval)
    return last_seq
