"""Finding and reaching clusters: the command line's connection options, discovery of running
clusters, and private `--local` clusters that are always stopped again.

Every failure becomes a ConnectError whose text is one line: what was tried, and what to do.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import selectors
import shlex
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ippmon.model import OUTPUT_CAP, ClusterInfo
from ippmon.priority import background_nice, lower_priority
from ippmon.protocols import ClusterChoice, ConnectError
from ippmon.text import first_line, one_line

if TYPE_CHECKING:
    from ipyparallel import Client, Cluster

    from ippmon.clusterwatch import ClusterWatcher
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
    output_cap: int = OUTPUT_CAP  # of the jobs of this session: see `Tracker`
    send_window: int | None = None  # chunks in flight per job at most (None: auto): `Job`

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
        tunnel: SshTunnel | None = None,
        output_cap: int = OUTPUT_CAP,
        send_window: int | None = None,
    ) -> None:
        self.client = client
        self.output_cap = output_cap
        self.send_window = send_window
        self.tunnel = tunnel  # the ssh process carrying the connection (--sshserver)
        self.timeout = timeout
        self.info = info
        self.cluster = cluster
        self.clock = clock
        self.jobs: list[Job] = []  # open ones: closed jobs are let go of (a day of jobs)
        self.watches: list[ClusterWatcher] = []
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
            output_cap=self.output_cap,
            send_window=self.send_window,
        )
        self._keep(job)
        job.start()
        return job

    def attach(self, folder: Path) -> Job:
        """A recorded run of this cluster, watched again (`Job.restore`)."""
        from ippmon.job import Job

        job = Job.restore(
            Path(folder),
            self.client,
            self.info,
            clock=self.clock,
            controller_timeout=self.timeout,
            output_cap=self.output_cap,
            send_window=self.send_window,
        )
        self._keep(job)
        return job

    def _keep(self, job: Job) -> None:
        self.jobs.append(job)
        job.on_close = self._let_go_of_closed  # no reference back to the job

    def _let_go_of_closed(self) -> None:
        self.jobs = [j for j in self.jobs if not j.closed]

    def engine_ids(self) -> list[int]:
        return list(self.client.ids)

    def watch(self) -> ClusterWatcher:
        """Every client's tasks on this cluster, live (`ippmon top`)."""
        from ippmon.clusterwatch import ClusterWatcher

        watch = ClusterWatcher(self.client, clock=self.clock)
        self.watches = [w for w in self.watches if not w.closed] + [watch]
        return watch

    def close(self) -> None:
        for watch in self.watches:
            with contextlib.suppress(Exception):
                watch.close()
        for job in self.jobs:
            with contextlib.suppress(Exception):
                job.close()
        with contextlib.suppress(Exception):
            self.client.close()
        if self.tunnel is not None:
            self.tunnel.close()
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
    # All at once, by signal: ipyparallel's own stop asks and waits on each in turn (6-12 s).
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=wait_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=3)  # reap them
    with contextlib.suppress(Exception):  # now quick: its files, and anything we did not see
        cluster.stop_cluster_sync()


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
        client, tunnel = open_client(opts)
        info = _info(opts, len(client.ids))
        return ClientSession(
            client,
            info,
            clock=self.clock,
            timeout=opts.timeout,
            tunnel=tunnel,
            output_cap=opts.output_cap,
            send_window=opts.send_window,
        )

    def start_local(self, n: int) -> ClientSession:
        return start_local(
            n,
            timeout=max(self.options.timeout, 60.0),
            clock=self.clock,
            output_cap=self.options.output_cap,
            send_window=self.options.send_window,
        )


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


def open_client(opts: ConnectOptions) -> tuple[Client, SshTunnel | None]:
    """A connected Client and, with `opts.sshserver`, the ssh tunnel it talks through (close it
    after the client). Within `opts.timeout` in all, or ConnectError (one line, no key)."""
    if not opts.sshserver:
        return _client(opts, None, opts.timeout), None
    deadline = time.monotonic() + opts.timeout
    info = _connection_info(opts, deadline)
    tunnel = SshTunnel.open(
        opts.sshserver, _forwards(info), deadline, what=opts.describe(), timeout=opts.timeout
    )
    try:
        local = dict(info, interface="tcp://127.0.0.1", ssh="", location=None)
        local.update({name: port for name, (port, _, _) in tunnel.forwards.items()})
        left = max(deadline - time.monotonic(), 1.0)
        return _client(opts, local, left, tunnel), tunnel
    except BaseException:
        tunnel.close()
        raise


def _client(
    opts: ConnectOptions,
    info: dict[str, Any] | None,
    timeout: float,
    tunnel: SshTunnel | None = None,
) -> Client:
    import ipyparallel as ipp

    kwargs: dict[str, Any] = {"timeout": timeout}
    args: list[Any] = []
    if info is not None:
        args.append(info)  # a tunnelled copy of the connection file, never written to disk
    elif opts.file:
        if not os.path.exists(opts.file):
            raise ConnectError(f"connection file {opts.file} does not exist")
        args.append(opts.file)  # url_file= is ignored by ipyparallel 9: positional only
    else:
        # ipyparallel would wait for a missing file too, but saying so on stdout (headless
        # output, or a script's pipe): waited for here, and said in the error if it never came
        path = _connection_file(opts)
        if not _wait_for_file(path, time.monotonic() + timeout):
            raise ConnectError(
                f"could not connect to {opts.describe()}: no connection file "
                f"{path} (waited {timeout:g} s); {HINT}"
            )
        kwargs["profile"] = opts.profile or "default"
        if opts.cluster_id:
            kwargs["cluster_id"] = opts.cluster_id
    try:
        return ipp.Client(*args, **kwargs)
    except TimeoutError:
        why = tunnel.problem() if tunnel is not None else ""
        raise ConnectError(
            f"could not reach the controller of {opts.describe()} within {opts.timeout:g} s "
            + (f"({why})" if why else "(its connection file may be stale)")
            + f"; {HINT}"
        ) from None
    except OSError as exc:
        reason = (exc.strerror or first_line(str(exc))).rstrip(".")
        raise ConnectError(f"could not connect to {opts.describe()}: {reason}; {HINT}") from None
    except Exception as exc:
        raise ConnectError(f"could not connect to {opts.describe()}: {one_line(exc)}") from None


# The controller's sockets a client connects to (the connection file's port fields).
CLIENT_PORTS = ("registration", "control", "mux", "task", "iopub", "notification", "broadcast")

SSH_COMMAND_ENV = "IPPMON_SSH_COMMAND"  # e.g. "ssh -F ~/.ssh/cluster_config"; default "ssh"

# Printed by the tunnel's remote command once logged in; its local ports listen before that.
READY = "ippmon-tunnel-ready"


def _connection_file(opts: ConnectOptions) -> Path:
    if opts.file:
        return Path(opts.file)
    from IPython.core.profiledir import ProfileDir
    from IPython.paths import get_ipython_dir

    ipython_dir = get_ipython_dir()
    try:
        found = ProfileDir.find_profile_dir_by_name(ipython_dir, opts.profile or "default")
    except Exception:
        raise ConnectError(
            f"could not connect to {opts.describe()}: no such profile "
            f"(no profile_{opts.profile or 'default'} in {ipython_dir}); {HINT}"
        ) from None
    cluster = f"-{opts.cluster_id}" if opts.cluster_id else ""
    return Path(found.security_dir) / f"ipcontroller{cluster}-client.json"


def _wait_for_file(path: Path, deadline: float) -> bool:
    """Whether `path` exists, waiting for it until `deadline` (a controller that is starting
    writes it within seconds)."""
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
    return path.exists()


def _connection_info(opts: ConnectOptions, deadline: float) -> dict[str, Any]:
    """The client connection file (copied from the cluster's machine), read here: the tunnel
    forwards its ports. Waits for it until `deadline`, as ipyparallel does."""
    path = _connection_file(opts)
    _wait_for_file(path, deadline)
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict) or not all(
            isinstance(info.get(k), int) for k in CLIENT_PORTS
        ):
            raise ValueError("not a client connection file")
        str(info["interface"]).split("://", 1)[1]
    except FileNotFoundError:
        raise ConnectError(f"connection file {path} does not exist; {HINT}") from None
    except (OSError, ValueError, KeyError, IndexError) as exc:
        reason = one_line(exc) if isinstance(exc, OSError) else "not a client connection file"
        raise ConnectError(f"cannot read connection file {path}: {reason}") from None
    return info


def _forwards(info: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Each client port of the controller as the ssh server must reach it: (host, port).
    A controller listening on every interface is reached at its `location` (its host name),
    or on the ssh server itself when it has none."""
    host = str(info["interface"]).split("://", 1)[1]
    if host in ("*", "0.0.0.0", ""):
        host = str(info.get("location") or "127.0.0.1")
    return {name: (host, int(info[name])) for name in CLIENT_PORTS}


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _split_server(server: str) -> tuple[str, str | None]:
    """`[user@]host[:port]` (ipyparallel's form) as ssh's destination and port."""
    user, _, host = server.rpartition("@")
    port = None
    if host.count(":") == 1 and host.split(":")[1].isdigit():
        host, port = host.split(":")
    return (f"{user}@{host}" if user else host), port


def ssh_problem(stderr: str, server: str) -> str:
    """What ssh's error output means, in a few words for people. ssh runs in batch mode: no
    question (a new host key, a password) can be answered, so each is said as what to do."""
    text = stderr.replace("\r", "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return (
            "the ssh server's host key has CHANGED since you last connected (check with the "
            "cluster's admins why, then fix ~/.ssh/known_hosts)"
        )
    if "Host key verification failed" in text:
        return (
            "the ssh server's host key is not known, and ippmon cannot ask whether to trust it: "
            f"run `ssh {server} true` once to check and accept it"
        )
    if "Permission denied" in text:
        methods = text.split("Permission denied", 1)[1].split(")", 1)[0].strip(" (")
        if not {"password", "keyboard-interactive"}.isdisjoint(methods.split(",")):
            return (
                f"the ssh server asks for a password ({methods}), and ippmon cannot type one: "
                "log in with a key (`ssh-copy-id`; `ssh-add` for a key with a passphrase)"
            )
        return (
            f"the ssh server refused the login ({methods}): it accepts none of your keys "
            "(`ssh-copy-id` installs yours; `ssh-add` loads one with a passphrase)"
        )
    for line in reversed(lines):
        if not line.startswith(("Warning:", "debug", "**")):
            return "ssh: " + line.removeprefix("ssh: ").rstrip(".")
    return "ssh exited without saying why"


class SshTunnel:
    """One `ssh` process that forwards every client port of the controller from 127.0.0.1 here
    to where the ssh server reaches it (ipyparallel's own tunnels need a terminal for host keys
    and passwords, print to stdout, and start one ssh per socket).

    ssh runs in batch mode (never a prompt: the TUI owns the terminal) in its own session, so
    it cannot read the terminal. Its remote command says when the login is done, then waits
    for the end of its input: when this process ends, however abruptly, ssh sees end of input
    and exits once the forwarded connections close. The connection key is never on its
    command line (only host names and port numbers are)."""

    def __init__(
        self, server: str, proc: subprocess.Popen[bytes], forwards: dict[str, tuple[int, str, int]]
    ) -> None:
        self.server = server
        self.proc = proc
        self.forwards = forwards  # name: (local port, remote host, remote port)
        self._stderr = b""

    @classmethod
    def command(
        cls, server: str, forwards: dict[str, tuple[int, str, int]], timeout: float
    ) -> list[str]:
        dest, port = _split_server(server)
        cmd = shlex.split(os.environ.get(SSH_COMMAND_ENV) or "ssh")
        cmd += ["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes"]
        # ssh's own limit comes after ippmon's, which says it the same way for every cause
        cmd += ["-o", f"ConnectTimeout={max(1, math.ceil(timeout)) + 2}"]
        cmd += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
        cmd += ["-o", "ClearAllForwardings=no", "-T"]
        if port:
            cmd += ["-p", port]
        for lport, host, rport in forwards.values():
            cmd += ["-L", f"127.0.0.1:{lport}:{host}:{rport}"]
        return [*cmd, dest, f"echo {READY}; exec cat >/dev/null"]

    @classmethod
    def open(
        cls,
        server: str,
        remote: dict[str, tuple[str, int]],
        deadline: float,
        *,
        what: str,
        timeout: float,
    ) -> SshTunnel:
        """The tunnel, logged in and listening, by `deadline`; or ConnectError."""
        if not server.strip() or server.startswith("-") or any(c.isspace() for c in server):
            raise ConnectError(f"--sshserver {server!r} is not a [user@]host[:port]")
        ports = _free_ports(len(remote))
        forwards = {name: (lport, *remote[name]) for name, lport in zip(remote, ports)}
        cmd = cls.command(server, forwards, deadline - time.monotonic())
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # no terminal: nothing can prompt
            )
        except OSError as exc:
            reason = exc.strerror or one_line(exc)
            raise ConnectError(f"could not run {cmd[0]} for --sshserver: {reason}") from None
        tunnel = cls(server, proc, forwards)
        try:
            tunnel._wait_ready(deadline, what, timeout)
        except BaseException:
            tunnel.close()
            raise
        return tunnel

    def _wait_ready(self, deadline: float, what: str, timeout: float) -> None:
        proc = self.proc
        assert proc.stdout is not None
        seen = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while READY.encode() not in seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.close()
                    raise ConnectError(
                        f"could not connect to {what}: the ssh server did not answer within "
                        f"{timeout:g} s (`ssh {self.server} true` tells more)"
                    )
                if sel.select(min(left, 0.5)):
                    chunk = os.read(proc.stdout.fileno(), 4096)
                    if not chunk:  # ssh exited
                        break
                    seen = seen[-64:] + chunk
        if READY.encode() in seen:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(deadline - time.monotonic(), 1.0))
        self.close()
        raise ConnectError(
            f"could not connect to {what}: {ssh_problem(self._stderr_text(), self.server)}"
        )

    def _read_stderr(self) -> str:
        """ssh's error output, once it has exited (read at most once)."""
        err = self.proc.stderr
        if err is not None and not err.closed and self.proc.poll() is not None:
            with contextlib.suppress(OSError, ValueError):
                self._stderr += err.read()
                err.close()
        return self._stderr_text()

    def _stderr_text(self) -> str:
        return self._stderr.decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def problem(self) -> str:
        """Why the controller may not be reached through the tunnel, or "" if not known."""
        if not self.alive():
            why = ssh_problem(self._read_stderr(), self.server)
            return f"the ssh tunnel to {self.server} closed: {why}"
        return f"through the ssh tunnel to {self.server}: is the controller running there?"

    def close(self) -> None:
        """Stop ssh and wait for it (then kill it)."""
        proc = self.proc
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait(3)
        self._read_stderr()


PORTS_BOUND_S = 10.0  # a controller's scheduler processes bind within ~1 s of its start
START_ATTEMPTS = 3


def unbound_ports(cluster: Any) -> list[str]:
    """The ports a controller we started wrote in its connection files that none of its own
    processes listens on, as "client iopub 45099". A controller picks free ports, lets them go,
    then binds them in its scheduler processes: another process (a controller starting at the
    same time: measured 1 start pair in 60) may bind one in between. The scheduler that cannot
    bind dies and the hub goes on, so the cluster runs without, say, its iopub relay (no
    output, no busy/idle from any engine)."""
    security = Path(cluster.profile_dir, "security")
    wanted: dict[int, str] = {}
    for side in ("client", "engine"):
        path = security / f"ipcontroller-{cluster.cluster_id}-{side}.json"
        info = json.loads(path.read_text())
        for name, value in info.items():
            for port in value if isinstance(value, list) else [value]:
                if isinstance(port, int) and not isinstance(port, bool):
                    wanted.setdefault(port, f"{side} {name} {port}")
    listening: set[int] = set()
    for proc in _cluster_processes(cluster):
        with contextlib.suppress(Exception):
            listening.update(
                c.laddr.port for c in proc.net_connections("tcp") if c.status == "LISTEN"
            )
    return [what for port, what in wanted.items() if port not in listening]


def _start_problem(cluster: Any, timeout: float) -> str:
    """Wait for the controller's connection files (up to `timeout`), then up to PORTS_BOUND_S
    for its processes to listen on every port in them. Returns "" when they do, or why not
    (a port another process took; the controller gone as it started)."""
    files_by = time.monotonic() + timeout
    bound_by: float | None = None
    while True:
        process = getattr(cluster.controller, "process", None)  # a psutil.Process
        if process is not None and not _same_process(process):
            return "its controller exited as it started"
        try:
            missing = unbound_ports(cluster)
        except (OSError, ValueError):  # not written yet, or half written
            if time.monotonic() > files_by:
                why = f"no connection file from the controller in {timeout:g} s"
                raise TimeoutError(why) from None
        else:
            if not missing:
                return ""
            bound_by = bound_by or time.monotonic() + PORTS_BOUND_S
            if time.monotonic() > bound_by:
                return (
                    f"its controller could not listen on {', '.join(missing)} "
                    "(another process took the port)"
                )
        time.sleep(0.05)


def start_checked(
    make: Callable[[], Cluster], n: int, timeout: float, attempts: int = START_ATTEMPTS
) -> tuple[Cluster, Client]:
    """Start the cluster `make()` returns, engines and a connected client, once its controller
    listens on every port it announced (`unbound_ports`). A controller that lost a port to
    another process, or exited as it started, is stopped and a new one started, up to
    `attempts` times. Raises ConnectError (one line) when none starts."""
    problem = ""
    for _ in range(attempts):
        cluster = make()
        try:
            cluster.start_controller_sync()
            problem = _start_problem(cluster, timeout)
            if problem:
                stop_cluster(cluster)
                continue
            cluster.start_engines_sync(n)
            client = cluster.connect_client_sync()
            client.wait_for_engines(n, timeout=timeout)
        except BaseException as exc:
            stop_cluster(cluster)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise ConnectError(
                f"could not start a local cluster of {n} engines: {type(exc).__name__}: {exc}"
            ) from None
        return cluster, client
    raise ConnectError(
        f"could not start a local cluster of {n} engines: {problem} ({attempts} tries)"
    )


def start_local(
    n: int,
    *,
    timeout: float = 60.0,
    clock: Callable[[], float] = time.time,
    output_cap: int = OUTPUT_CAP,
    send_window: int | None = None,
) -> ClientSession:
    """A private cluster of n engines, stopped by the session's close() (also on errors here)."""
    import ipyparallel as ipp

    if n < 1:
        raise ConnectError(f"--local needs at least 1 engine, got {n}")
    cluster, client = start_checked(
        lambda: ipp.Cluster(
            n=n, cluster_id=f"ippmon-{os.getpid()}-{secrets.token_hex(3)}", log_level=40
        ),
        n,
        timeout,
    )
    info = ClusterInfo(
        profile="default", cluster_id=cluster.cluster_id, engines=n, location="local"
    )
    session = ClientSession(
        client,
        info,
        cluster=cluster,
        clock=clock,
        output_cap=output_cap,
        send_window=send_window,
    )
    with contextlib.suppress(Exception):
        session.processes = _cluster_processes(cluster)
    lower_priority(session.processes, background_nice())
    return session
