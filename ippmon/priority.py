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
