"""Finding and reaching clusters: the command line's connection options, discovery of running
clusters, and private `--local` clusters that are always stopped again.

Every failure becomes a ConnectError whose text is one line: what was tried, and what to do.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ippmon.model import ClusterInfo
from ippmon.priority import background_nice, lower_priority
from ippmon.protocols import ClusterChoice, ConnectError
from ippmon.text import first_line, one_line

if TYPE_CHECKING:
    from ipyparallel import Client, Cluster

    from ippmon.job import Job
    from ippmon.jobspec import JobSpec

HINT = "start one with `ipcluster start -n 4`, or run `ippmon --local 2`"


@dataclass(frozen=True)
class ConnectOptions:
    profile: str | None = None
    cluster_id: str | None = None
    file: str | None = None
    sshserver: str | None = None
    timeout: float = 10.0
    local: int | None = None

    def named(self) -> bool:
        return any(v is not None for v in (self.profile, self.cluster_id, self.file, self.local))

    def describe(self) -> str:
        if self.file:
            what = f"connection file {self.file}"
        else:
            what = f"profile '{self.profile or 'default'}'"
            if self.cluster_id:
                what += f", cluster-id '{self.cluster_id}'"
        if self.sshserver:
            what += f" via ssh {self.sshserver}"
        return what


class ClientSession:
    """A connected ipyparallel Client (Session protocol); stops its cluster if it owns one."""

    def __init__(
        self,
        client: Client,
        info: ClusterInfo,
        *,
        cluster: Cluster | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.info = info
        self.cluster = cluster
        self.clock = clock
        self.jobs: list[Job] = []
        self.processes: list[Any] = []  # of a cluster we started, seen at start

    def submit(self, spec: JobSpec, runs_dir: str | None = None) -> Job:
        from ippmon.job import Job

        job = Job(
            self.client,
            spec,
            info=self.info,
            runs_dir=runs_dir,
            clock=self.clock,
            controller_timeout=self.timeout,
        )
        self.jobs.append(job)
        job.start()
        return job

    def attach(self, folder: Path) -> Job:
        """A recorded run of this cluster, watched again (`Job.restore`)."""
        from ippmon.job import Job

        job = Job.restore(
            Path(folder), self.client, self.info, clock=self.clock, controller_timeout=self.timeout
        )
        self.jobs.append(job)
        return job

    def engine_ids(self) -> list[int]:
        return list(self.client.ids)

    def close(self) -> None:
        for job in self.jobs:
            with contextlib.suppress(Exception):
                job.close()
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            stop_cluster(self.cluster, known=self.processes)
            self.cluster = None

    def __enter__(self) -> ClientSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cluster_processes(cluster: Any) -> list[Any]:
    """The controller, the engines' nannies and their kernels: every process the cluster made."""
    import psutil

    pids = [getattr(cluster.controller, "pid", None)] if cluster.controller else []
    for engine_set in cluster.engines.values():
        pids += [getattr(el, "pid", None) for el in getattr(engine_set, "launchers", {}).values()]
    procs = []
    for pid in filter(None, pids):
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            procs += [proc, *proc.children(recursive=True)]
    return procs


def stop_cluster(cluster: Cluster, wait_s: float = 10.0, known: Iterable[Any] = ()) -> None:
    """Stop a cluster we started and wait until its processes are gone (kill what lingers), so
    that nothing outlives ippmon. `known`: processes seen at start (a controller killed since
    then leaves its scheduler processes orphaned, out of reach of the tree walk)."""
    import psutil

    procs = list(known)
    with contextlib.suppress(Exception):
        procs += _cluster_processes(cluster)
    procs = [p for p in {p.pid: p for p in procs}.values() if _same_process(p)]
    with contextlib.suppress(Exception):
        cluster.stop_cluster_sync()
    _, alive = psutil.wait_procs(procs, timeout=wait_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=3)  # reap them


def _same_process(proc: Any) -> bool:
    """Still the process we saw (not a new one that reused its pid)."""
    try:
        return proc.is_running() and proc.status() != "zombie"
    except Exception:
        return False


def _engine_count(cluster: Any) -> int | None:
    try:
        return sum(int(es.n or 0) for es in cluster.engines.values())
    except Exception:
        return None


class ClusterBackend:
    """The Backend protocol over real ipyparallel clusters."""

    def __init__(self, options: ConnectOptions, clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self.clock = clock

    def target_given(self) -> bool:
        return self.options.named()

    def discover(self) -> list[ClusterChoice]:
        """Running clusters of the profile (default: 'default'), newest cluster files first."""
        from ipyparallel import ClusterManager

        profile = self.options.profile or "default"
        try:
            clusters = ClusterManager().load_clusters(profile=profile)
        except Exception:
            return []
        found = []
        for cluster in clusters.values():
            controller = getattr(cluster, "controller", None)
            if controller is None or not _process_alive(controller):
                continue
            found.append(
                ClusterChoice(
                    profile=profile,
                    cluster_id=cluster.cluster_id or "",
                    engines=_engine_count(cluster),
                )
            )
        return found

    def connect(self, choice: ClusterChoice | None = None) -> ClientSession:
        opts = self.options
        if choice is not None:
            opts = ConnectOptions(
                profile=choice.profile,
                cluster_id=choice.cluster_id,
                sshserver=opts.sshserver,
                timeout=opts.timeout,
            )
        elif not opts.named():
            found = self.discover()
            if not found:
                raise ConnectError(f"no running cluster found for profile 'default'; {HINT}")
            if len(found) > 1:
                ids = ", ".join(c.cluster_id or "''" for c in found)
                raise ConnectError(
                    f"{len(found)} clusters are running (cluster-ids: {ids}); "
                    "choose one with --cluster-id"
                )
            choice = found[0]
            opts = ConnectOptions(
                profile=choice.profile,
                cluster_id=choice.cluster_id,
                sshserver=opts.sshserver,
                timeout=opts.timeout,
            )
        client = connect_client(opts)
        info = _info(opts, len(client.ids))
        return ClientSession(client, info, clock=self.clock, timeout=opts.timeout)

    def start_local(self, n: int) -> ClientSession:
        return start_local(n, timeout=max(self.options.timeout, 60.0), clock=self.clock)


def _process_alive(launcher: Any) -> bool:
    pid = getattr(launcher, "process", None)
    pid = getattr(pid, "pid", None) or getattr(launcher, "pid", None)
    if not pid:
        return getattr(launcher, "state", "") == "running"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _info(opts: ConnectOptions, engines: int = 0) -> ClusterInfo:
    location = opts.sshserver or (opts.file and os.path.basename(opts.file)) or "local"
    return ClusterInfo(
        profile=opts.profile or "default",
        cluster_id=opts.cluster_id or "",
        engines=engines,
        location=location,
    )


def connect_client(opts: ConnectOptions) -> Client:
    """A connected Client within `opts.timeout`, or ConnectError (one line, no key, no trace)."""
    import ipyparallel as ipp

    kwargs: dict[str, Any] = {"timeout": opts.timeout}
    if opts.sshserver:
        kwargs["sshserver"] = opts.sshserver
    args: list[str] = []
    if opts.file:
        if not os.path.exists(opts.file):
            raise ConnectError(f"connection file {opts.file} does not exist")
        args.append(opts.file)  # url_file= is ignored by ipyparallel 9: positional only
    else:
        kwargs["profile"] = opts.profile or "default"
        if opts.cluster_id:
            kwargs["cluster_id"] = opts.cluster_id
    try:
        return ipp.Client(*args, **kwargs)
    except TimeoutError:
        raise ConnectError(
            f"could not reach the controller of {opts.describe()} within {opts.timeout:g} s "
            f"(its connection file may be stale); {HINT}"
        ) from None
    except OSError as exc:
        reason = (exc.strerror or first_line(str(exc))).rstrip(".")
        raise ConnectError(f"could not connect to {opts.describe()}: {reason}; {HINT}") from None
    except Exception as exc:
        raise ConnectError(f"could not connect to {opts.describe()}: {one_line(exc)}") from None


def start_local(
    n: int, *, timeout: float = 60.0, clock: Callable[[], float] = time.time
) -> ClientSession:
    """A private cluster of n engines, stopped by the session's close() (also on errors here)."""
    import ipyparallel as ipp

    if n < 1:
        raise ConnectError(f"--local needs at least 1 engine, got {n}")
    cluster_id = f"ippmon-{os.getpid()}-{secrets.token_hex(3)}"
    cluster = ipp.Cluster(n=n, cluster_id=cluster_id, log_level=40)
    try:
        client = cluster.start_and_connect_sync()
        client.wait_for_engines(n, timeout=timeout)
    except BaseException as exc:
        stop_cluster(cluster)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise ConnectError(
            f"could not start a local cluster of {n} engines: {type(exc).__name__}: {exc}"
        ) from None
    info = ClusterInfo(profile="default", cluster_id=cluster_id, engines=n, location="local")
    session = ClientSession(client, info, cluster=cluster, clock=clock)
    with contextlib.suppress(Exception):
        session.processes = _cluster_processes(cluster)
    lower_priority(session.processes, background_nice())
    return session
