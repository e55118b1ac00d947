"""The seams between the screens and the cluster: what the UI may ask of a connection and a job.

The real implementations live in `connect.py` (Backend, Session) and `job.py` (Job); tests and
snapshots pass recorded stand-ins that satisfy the same protocols.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ippmon.model import (
    ClusterInfo,
    JobSnapshot,
    OutputBatch,
    TaskDetail,
    TaskRow,
    TaskState,
    cluster_name,
)

if TYPE_CHECKING:
    from ippmon.adopt import Adopted, Resubmitted
    from ippmon.jobspec import JobSpec
    from ippmon.stream import TaskStream, Zoom
    from ippmon.topmodel import TopLine, TopSnapshot


class ConnectError(Exception):
    """A cluster could not be reached. `str()` is one line for people: what was tried, a hint."""


@dataclass(frozen=True)
class ClusterChoice:
    """A running cluster found by discovery (or named on the command line)."""

    profile: str = "default"
    cluster_id: str = ""
    engines: int | None = None  # as last recorded by the cluster file; None if unknown
    controller: str = ""  # e.g. "tcp://127.0.0.1:50123", for display

    @property
    def name(self) -> str:
        """`profile[:cluster-id]`."""
        return cluster_name(self.profile, self.cluster_id)

    @property
    def label(self) -> str:
        engines = "?" if self.engines is None else str(self.engines)
        return f"{self.name} - {engines} engines"


class JobHandle(Protocol):
    """A submitted job. `poll` is called from the UI's polling thread, never the UI loop."""

    name: str

    def poll(self) -> JobSnapshot:
        """Take in what changed on the cluster (cost ~ what changed) and return a fresh snapshot."""

    def snapshot(self) -> JobSnapshot:
        """The latest snapshot, without polling."""

    def output_batch(self, seq: int) -> OutputBatch:
        """The lines with a `seq` greater than the argument, oldest first, as the output pane
        shows them, and how many were dropped from the bounded buffer before they were read."""

    def task(self, index: int) -> TaskDetail:
        """One task in full."""

    def task_rows(self, states: Iterable[TaskState] | None = None) -> list[TaskRow]:
        """A row per task (O(total): call from a worker, not every tick)."""

    def stream(self, zoom: Zoom, width: int) -> TaskStream:
        """The task stream, binned on the job's side: a row of `width` cells per engine."""

    def retryable(self) -> list[int]:
        """Indices whose newest attempt failed, was cancelled or lost (what `r` resubmits)."""

    def submit(self, indices: Iterable[int], attempt: int | None = None) -> int:
        """Send these inputs again as the next attempt (a background thread sends); returns the
        attempt number. Raises RuntimeError while an earlier submission is still sending."""

    def export(self, fmt: str = "csv") -> str:
        """Write the job's results (one row per task) into its run folder; returns the path."""

    def finished(self) -> bool:
        """Every task final and recorded (blocks on the child process: not from the UI loop)."""

    def cancel(self) -> None:
        """Abort queued tasks and interrupt running ones. Blocks up to ~1 s: call off the UI
        loop."""

    def close(self) -> None:
        """Flush the run record. Leaves tasks running on the cluster."""


class ClusterWatch(Protocol):
    """Every client's tasks on the cluster, live (`ippmon top`). `poll` and `output_since` are
    called from the UI's polling thread, never the UI loop."""

    def poll(self) -> TopSnapshot:
        """Engines, jobs and totals now (asks the controller at most about once a second)."""

    def output_since(self, seq: int) -> tuple[list[TopLine], int]:
        """Lines with `seq` greater than the argument, oldest first, and how many were dropped
        from the bounded buffer before the caller could read them."""

    def abort(self, job_id: str) -> int:
        """Abort the tasks of job `job_id` (a `TopJob.id`) that have not started; returns how
        many were asked to abort. Running tasks are not touched."""

    def interrupt(self, job_id: str) -> list[int]:
        """Interrupt (SIGINT) the engines running job `job_id`'s tasks now; their ids."""

    def resubmit(self, job_id: str) -> Resubmitted:
        """Resubmit job `job_id`'s tasks that raised through the controller (by their msg_ids;
        the results go to the controller's records, not to the client that sent them); says
        how many were sent and why any could not be."""

    def adopt(self, job_id: str, runs_dir: str | None, cluster: ClusterInfo) -> Adopted:
        """Write job `job_id` as a run record in `runs_dir` (its msg_ids, no inputs), so that
        `ippmon attach` and `export` work on it. Raises `adopt.AdoptError` (one line)."""

    def close(self) -> None:
        """Stop watching (the tasks are not touched)."""


class Session(Protocol):
    """A live connection to one cluster."""

    info: ClusterInfo

    def submit(self, spec: JobSpec, runs_dir: str | None = None) -> JobHandle:
        """Start a job: returns at once, sending happens on a background thread."""

    def attach(self, folder: Path) -> JobHandle:
        """Watch a recorded run (its folder) again: blocking, raises attach.RunError."""

    def engine_ids(self) -> list[int]: ...

    def watch(self) -> ClusterWatch:
        """Start watching every client's tasks on this cluster (`ippmon top`)."""

    def close(self) -> None:
        """Disconnect; stop the cluster if this session started it (`--local`)."""


class Backend(Protocol):
    """How the app finds and reaches clusters. Built by the CLI from its arguments."""

    def target_given(self) -> bool:
        """True when the command line named a cluster (or --local), so no picker is needed."""

    def discover(self) -> list[ClusterChoice]:
        """Running clusters of the profile. Blocking but quick; run off the UI loop."""

    def connect(self, choice: ClusterChoice | None = None) -> Session:
        """Blocking; raises ConnectError within the timeout. None = what the command line named."""

    def start_local(self, n: int) -> Session:
        """Start a private local cluster with n engines. Blocking (~7 s); raises ConnectError."""
