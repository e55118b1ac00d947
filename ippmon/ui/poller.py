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

from ippmon.model import JobSnapshot, OutputLine, Phase
from ippmon.protocols import ClusterWatch
from ippmon.text import one_line
from ippmon.ui.messages import ClusterUpdate, JobUpdate, PollFailed


class Polled(Protocol):
    """What the poller asks of a job (a JobHandle, or the monitor's view of a resubmitted one)."""

    def poll(self) -> JobSnapshot: ...

    def output_since(self, seq: int) -> tuple[list[OutputLine], int]: ...


def poll_job(
    job: Polled,
    post: Callable[[Message], object],
    stop: threading.Event,
    *,
    interval: float = 0.25,
    last_seq: int = 0,
) -> int:
    """Poll until the job finishes or `stop` is set; returns the seq of the last line posted."""
    return _poll(
        job,
        lambda snap, lines, dropped: post(JobUpdate(snap, lines, dropped)),
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
    return _poll(
        watch,
        lambda snap, lines, dropped: post(ClusterUpdate(snap, lines, dropped)),
        lambda _snap: False,
        post,
        stop,
        interval,
        last_seq,
    )


def _poll(
    source: Any,
    update: Callable[[Any, list, int], object],
    over: Callable[[Any], bool],
    post: Callable[[Message], object],
    stop: threading.Event,
    interval: float,
    last_seq: int,
) -> int:
    """Ask `source` for a snapshot and the output since `last_seq`, hand both to `update`,
    until `over(snapshot)` or `stop`; a failed ask is posted as PollFailed, and asked again."""
    while not stop.is_set():
        try:
            snapshot = source.poll()
            lines, dropped = source.output_since(last_seq)
        except Exception as error:  # the client can fail in many ways; say so and keep going
            post(PollFailed(one_line(error, with_type=True)))
        else:
            if lines:
                last_seq = lines[-1].seq
            update(snapshot, list(lines), dropped)
            if over(snapshot):
                break
        stop.wait(interval)
    return last_seq
