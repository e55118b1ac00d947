"""Telling the user that a long job has ended, in the terminal they watch it from: the bell,
and a desktop notification by the escape codes terminals understand through SSH (OSC 9, as
iTerm2, WezTerm, kitty and Windows Terminal show it; OSC 777, as VTE terminals and foot do).
A terminal that knows neither ignores them."""

from __future__ import annotations

from ippmon.model import JobSnapshot, Phase, TaskState
from ippmon.terminal import plain

NOTIFY_AFTER_S = 10.0  # jobs that ran at least this long are told of (`--notify-after`)


def worth_telling(snapshot: JobSnapshot, after_s: float | None) -> bool:
    """A finished job that ran `after_s` seconds or longer (None: never tell)."""
    if after_s is None or snapshot.phase is not Phase.FINISHED:
        return False
    ran = snapshot.wall_s if snapshot.wall_s is not None else snapshot.elapsed_s
    return ran >= after_s


def summary(snapshot: JobSnapshot) -> str:
    """ "squares: all 100 tasks ok" / "flaky: 45 of 50 ok, 3 failed, 1 cancelled, 1 lost"."""
    ok, total = snapshot.count(TaskState.OK), snapshot.total
    if ok == total:
        return f"{snapshot.name}: all {total:,} task{'' if total == 1 else 's'} ok"
    bad = [
        f"{snapshot.count(s):,} {s.label}"
        for s in (TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST)
        if snapshot.count(s)
    ]
    return f"{snapshot.name}: {ok:,} of {total:,} ok, " + ", ".join(bad)


def sequence(title: str, body: str) -> str:
    """The bell, then OSC 9 and OSC 777 notifications carrying `title` and `body` (made plain:
    nothing in them can end or extend the sequence)."""
    title, body = _field(title), _field(body)
    return f"\a\x1b]9;{title}: {body}\x07\x1b]777;notify;{title};{body}\x07"


def _field(text: str) -> str:
    return plain(text).replace("\n", " ").replace(";", ",")[:200]
