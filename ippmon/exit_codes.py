"""ippmon's exit codes, for the command line and the TUI alike."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every task succeeded (or nothing was run)
    FAILED = 1  # some task failed or was cancelled, or the run was left running (detached)
    USAGE = 2  # usage, job-spec or run-record error
    CONNECT = 3  # could not connect to a cluster
