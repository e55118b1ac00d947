"""How far below the screen ippmon runs the cluster side (`IPPMON_NICE`), and how to get there
on Linux, where a nice value counts only within a session."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any

NICE_ENV = "IPPMON_NICE"
DEFAULT_NICE = 19


def background_nice() -> int:
    """How far below the screen the cluster side runs: `$IPPMON_NICE`, default 19 (0: as is)."""
    try:
        return max(0, min(19, int(os.environ.get(NICE_ENV, DEFAULT_NICE))))
    except ValueError:
        return DEFAULT_NICE


def lower_priority(procs: Iterable[Any], nice: int) -> None:
    """Run processes below the screen, so it stays responsive while they are busy on the same
    cores. Best effort.

    Their nice value alone does not do it on Linux: the CPU is first shared fairly between
    sessions (autogroups), and a nice value counts only within one. ipyparallel starts the
    controller and each engine in a session of its own (and ippmon its cluster process), so
    the autogroups' nice values are raised too (allowed for one's own processes)."""
    import psutil

    if nice <= 0:
        return
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            proc.nice(max(nice, proc.nice()))
        with contextlib.suppress(OSError), open(f"/proc/{proc.pid}/autogroup", "w") as f:
            f.write(str(nice))
        if nice >= 19:
            idle_policy(proc.pid)


def idle_policy(pid: int) -> None:
    """Every thread of process `pid` under SCHED_IDLE (Linux; threads and processes it starts
    later inherit it). Best effort.

    Even at nice 19, with their sessions lowered too, a `--local` cluster of 64 engines kept
    the screen's thread waiting for a CPU 2.1 s in 20 s (a bare asyncio loop beside it stalled
    28-57 ms): the kernel shares the CPU between some 130 sessions first. A task under
    SCHED_IDLE gives way as soon as a normal one wakes up: 1.0 s of waiting, the bare loop's
    worst 9-12 ms (`bench/bench_ui_stall.py --engines 64`)."""
    if not hasattr(os, "SCHED_IDLE"):
        return
    try:
        tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
