"""Running a job without a screen: progress lines on stderr, a summary at the end.

Ctrl-C cancels the job (queued tasks aborted, running ones interrupted); a second Ctrl-C stops
waiting and leaves whatever still runs on the cluster.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console

from ippmon.model import JobSnapshot, Phase, TaskState, format_duration
from ippmon.notify import sequence, summary, worth_telling

if TYPE_CHECKING:
    from ippmon.job import Job

PROGRESS_EVERY_S = 2.0
POLL_S = 0.2


def progress_line(snap: JobSnapshot) -> str:
    """One line of headless progress."""
    c = snap.count
    parts = [f"[{snap.name}] {snap.done}/{snap.total} done"]
    detail = f"ok {c(TaskState.OK)}"
    for state in (TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST):
        if c(state):
            detail += f", {state.label} {c(state)}"
    parts[0] += f" ({detail})"
    if snap.phase is Phase.SUBMITTING:
        parts.append(f"sending {snap.submitted}/{snap.total}")
    elif snap.submitted < snap.total and snap.phase is Phase.RUNNING:
        parts.append(f"sent {snap.submitted}/{snap.total}")
    parts.append(f"running {c(TaskState.RUNNING)}")
    if snap.tasks_per_s:
        parts.append(f"{snap.tasks_per_s:.1f} tasks/s")
    parts.append(f"elapsed {format_duration(snap.elapsed_s)}")
    if snap.eta_s is not None and snap.phase is not Phase.FINISHED:
        parts.append(f"ETA {format_duration(snap.eta_s)}")
    if snap.output_wait:
        parts.append(snap.output_wait)
    if snap.message:
        parts.append(snap.message)
    return " · ".join(parts)


def summary_lines(snap: JobSnapshot, record: str | None = None) -> list[str]:
    """The end-of-run summary (plain text: rich prints it without interpreting markup)."""
    c = snap.count
    finished = snap.phase is Phase.FINISHED
    head = f"{snap.name} {'finished' if finished else 'stopped waiting'}: {snap.total} tasks"
    counts = ", ".join(
        f"{c(s)} {s.label}"
        for s in (TaskState.OK, TaskState.ERROR, TaskState.CANCELLED, TaskState.LOST)
    )
    pending = c(TaskState.QUEUED) + c(TaskState.RUNNING)
    if pending:
        counts += f", {pending} still queued or running on the cluster"
    lines = [f"{head} - {counts}"]
    timing = f"elapsed {format_duration(snap.elapsed_s)}"
    if snap.wall_s is not None and snap.wall_s - snap.elapsed_s >= 1.0:
        timing += f" (wall clock {format_duration(snap.wall_s)}, pauses not counted)"
    timing += f" · serial {format_duration(snap.serial_s)}"
    if snap.speedup is not None:
        n = snap.n_engines
        timing += f" · speedup {snap.speedup:.2f}x on {n} engine{'' if n == 1 else 's'}"
        if snap.efficiency is not None:
            timing += f" (efficiency {snap.efficiency:.0%})"
    lines.append(timing)
    for finding in snap.findings:
        change = f" → {finding.change}" if finding.change else ""
        lines.append(f"advice: {finding.text}{change}")
    if snap.n_failures:
        shown = [f for f in snap.failures if f.state is not TaskState.CANCELLED]
        lines.append(f"failures ({snap.n_failures}):")
        for f in shown[-10:]:
            engine = f" (engine {f.engine})" if f.engine is not None else ""
            lines.append(f"  #{f.index}{engine} {f.state.label}: {f.line}")
        if snap.n_failures > len(shown[-10:]):
            lines.append(f"  ... {snap.n_failures - len(shown[-10:])} more in the run record")
    if record:
        lines.append(f"run record: {record}")
    return lines


def exit_code(snap: JobSnapshot) -> int:
    return 0 if snap.succeeded else 1


class _Interrupts:
    """Counts Ctrl-C presses while installed; restores the previous handler afterwards."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, _sig: int, _frame: object) -> None:
        self.count += 1
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_headless(
    job: Job,
    *,
    err: TextIO,
    out: TextIO,
    record: str | None = None,
    retry_failed: int = 0,
    controller_grace_s: float = 20.0,
    detach: threading.Event | None = None,
    attach: str = "",
    notify_after: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Wait for the job, printing progress to `err`; print the summary to `out`; exit code.

    `retry_failed`: resubmit failed and lost tasks up to that many times before giving up.
    `detach` (set on SIGHUP/SIGTERM): stop watching at once and leave the tasks running.
    A controller that stays unreachable for `controller_grace_s` ends the wait (exit 1): the
    results finished so far are already in the run record.
    """
    console_err = Console(file=err, highlight=False, markup=False, soft_wrap=True)
    console_out = Console(file=out, highlight=False, markup=False, soft_wrap=True)
    last_print = -PROGRESS_EVERY_S
    retries_left = retry_failed
    lost_at: float | None = None
    again = attach or f"ippmon attach {job.run_id}"  # how to follow the run again
    with _Interrupts() as interrupts:
        while True:
            snap = job.poll()
            now = clock()
            finished = job.finished()
            if finished and retries_left and interrupts.count == 0:
                failed = job.failed()
                if failed:
                    retries_left -= 1
                    attempt = job.submit(failed)
                    console_err.print(
                        f"retrying {len(failed)} failed tasks (attempt {attempt}, "
                        f"{retries_left} retries left)"
                    )
                    continue
            if finished:
                break
            if detach is not None and detach.is_set():
                console_err.print(f"detached: tasks keep running; `{again}` follows them")
                break
            if getattr(job, "controller_lost", False):
                lost_at = now if lost_at is None else lost_at
                if now - lost_at >= controller_grace_s:
                    console_err.print(f"ippmon: {snap.message}")
                    console_err.print(f"ippmon: when the controller answers again, `{again}`")
                    break
            else:
                lost_at = None
            if interrupts.count >= 2:
                console_err.print("second Ctrl-C: leaving the remaining tasks on the cluster")
                break
            if interrupts.count == 1 and interrupts.event.is_set():
                interrupts.event.clear()
                console_err.print("Ctrl-C: cancelling (press again to leave tasks running)")
                job.cancel()
            if now - last_print >= PROGRESS_EVERY_S:
                console_err.print(progress_line(snap))
                last_print = now
            interrupts.event.wait(POLL_S)
    console_err.print(progress_line(snap))
    for line in summary_lines(snap, record):
        console_out.print(line)
    if worth_telling(snap, notify_after) and err.isatty():  # a person is watching stderr
        err.write(sequence("ippmon", summary(snap)))
        err.flush()
    return exit_code(snap) if finished else 1
