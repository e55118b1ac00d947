"""Messages from threads to the screens: the polling thread's updates, and the answers of the
thread workers (see `workers.py`), one type per answer.

The poller can outrun the screen (a slow terminal over SSH), so a newer `JobUpdate` (or
`ClusterUpdate`, for `ippmon top`) replaces a queued older one (`can_replace`). The snapshot of
the older one is stale and can go; its output lines cannot, so the surviving message takes them
over before the older one is dropped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from ippmon.model import JobSnapshot, OutputBatch
from ippmon.protocols import ClusterChoice, ClusterWatch, JobHandle, Session
from ippmon.runs import RunSummary
from ippmon.topmodel import TopLine, TopSnapshot

_stamps = itertools.count(1)


@dataclass
class JobEnded(Message):
    """A job the monitor followed while it ran has just finished (the app may tell the user)."""

    snapshot: JobSnapshot


class _CarriesLines:
    """A snapshot with the output lines that arrived since the previous one: a newer message
    of the same type replaces a queued older one, and takes its lines over (`_take`)."""

    stamp: int
    _absorbed: set[int]

    def can_replace(self, message: Message) -> bool:
        """True for any other message of this type; the newer of the two keeps both sets of
        lines.

        Textual asks the queued message whether the next one may replace it, so either object
        may be the older: the merge goes by `stamp`, and is idempotent (asking twice is harmless).
        """
        if type(message) is not type(self) or message is self:
            return False
        assert isinstance(message, _CarriesLines)
        older, newer = (self, message) if self.stamp < message.stamp else (message, self)
        newer.absorb(older)
        return True

    def absorb(self, older: _CarriesLines) -> None:
        """Take over the lines and drop count of an older update that will not be handled."""
        if older.stamp in self._absorbed:
            return
        self._absorbed.add(older.stamp)
        self._absorbed.update(older._absorbed)
        self._take(older)

    def _take(self, older: Any) -> None:
        raise NotImplementedError


@dataclass
class JobUpdate(_CarriesLines, Message):
    """A fresh snapshot plus the output lines that arrived since the previous update."""

    snapshot: JobSnapshot
    output: OutputBatch = field(default_factory=OutputBatch)
    stamp: int = field(default_factory=lambda: next(_stamps))
    _absorbed: set[int] = field(default_factory=set, repr=False)

    def _take(self, older: JobUpdate) -> None:
        self.output = self.output.after(older.output)


@dataclass
class ClusterUpdate(_CarriesLines, Message):
    """`ippmon top`: the cluster now, plus the output lines since the previous update."""

    snapshot: TopSnapshot
    lines: list[TopLine] = field(default_factory=list)
    dropped: int = 0  # lines lost from the watch's bounded buffer before they were read
    stamp: int = field(default_factory=lambda: next(_stamps))
    _absorbed: set[int] = field(default_factory=set, repr=False)

    def _take(self, older: ClusterUpdate) -> None:
        first = self.lines[0].seq if self.lines else None
        carried = [line for line in older.lines if first is None or line.seq < first]
        self.lines = carried + self.lines
        self.dropped += older.dropped


@dataclass
class PollFailed(Message):
    """`job.poll()` raised; the poller keeps trying. `error` is one line for people."""

    error: str


# -- the answers of thread workers, each to the node that started the worker --------------------


@dataclass
class Reached(Message):
    """The connecting screen's attempt got a session, or the clusters discovery found."""

    bubble = False

    outcome: Session | list[ClusterChoice]


@dataclass
class JobSubmitted(Message):
    """The monitor's spec is on its way to the cluster as `job`."""

    bubble = False

    job: JobHandle


@dataclass
class Watching(Message):
    """`ippmon top` is watching the cluster through `watch`."""

    bubble = False

    watch: ClusterWatch


@dataclass
class Resubmitted(Message):
    """`count` tasks were sent again as `attempt` (0, 0: there was nothing to send)."""

    bubble = False

    count: int
    attempt: int


@dataclass
class Exported(Message):
    """The job's results were written to `path`."""

    bubble = False

    path: str


@dataclass
class Attached(Message):
    """The recorded run `summary` is being watched again as `job`."""

    bubble = False

    summary: RunSummary
    job: JobHandle


@dataclass
class CancelledBeforeQuitting(Message):
    """The tasks were cancelled; the app can go."""

    bubble = False


@dataclass
class Closed(Message):
    """The run record is flushed and the session closed."""

    bubble = False


@dataclass
class RunsRead(Message):
    """The recorded runs, newest first."""

    bubble = False

    runs: list[RunSummary]
