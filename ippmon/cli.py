"""The `ippmon` command: parse arguments, load job specs, connect, then run the TUI or headless.

    ippmon [connection] [--jobs FILE] [--job NAME] [--headless] [--runs-dir DIR]
    ippmon runs | attach [RUN_ID] | resume RUN_ID | export RUN_ID --format csv|jsonl|parquet
    ippmon status [connection] [--json]
    ippmon top [connection]
    ippmon adopt JOB [connection]

Exit codes (`ExitCode`): 0 every task succeeded; 1 some task failed or was cancelled (or the run
was left running); 2 usage, job-spec or run-record error; 3 could not connect to a cluster.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ippmon import __version__
from ippmon.exit_codes import ExitCode
from ippmon.model import OUTPUT_CAP, SEND_WINDOW, SEND_WINDOW_PER_ENGINE
from ippmon.notify import NOTIFY_AFTER_S
from ippmon.text import one_line

if TYPE_CHECKING:
    from ippmon.ui.app import IppmonApp

SUBCOMMANDS = ("runs", "attach", "resume", "export", "status", "top", "adopt")

# Set by SIGHUP/SIGTERM (terminal closed, ssh dropped, kill): stop watching, keep tasks running.
DETACH = threading.Event()


# A connect timeout longer than a day is a mistake (and overflows the waits it bounds).
MAX_TIMEOUT_S = 86400.0
# How long a job's inputs (a `call` function) may take before connecting goes on meanwhile.
INPUTS_CHECK_S = 30.0


def max_local_engines() -> int:
    """The most engines `--local N` starts: 4 per CPU this process may use, at least 64.
    Each engine is a Python process (tens of MB); beyond that a typo takes the machine down."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(64, 4 * cpus)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (exit 2) instead of the usage text first."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: {message} (`{self.prog} -h` for help)\n")


def _connection_options() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    conn = p.add_argument_group("connection (default: find running clusters of the profile)")
    conn.add_argument("--profile", help="IPython profile name (default: 'default')")
    conn.add_argument("--cluster-id", help="cluster id within the profile")
    conn.add_argument("--file", metavar="PATH", help="a client connection JSON file")
    conn.add_argument("--sshserver", metavar="[USER@]HOST", help="tunnel through this ssh host")
    conn.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="connect timeout (10)"
    )
    return p


def _common_options() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    p.add_argument("--runs-dir", metavar="DIR", help="where run records are (default: state dir)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _watch_options() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    p.add_argument("--headless", action="store_true", help="no TUI (automatic when piped)")
    p.add_argument(
        "--retry-failed",
        type=int,
        default=0,
        metavar="N",
        help="headless: resubmit failed and lost tasks up to N times",
    )
    p.add_argument(
        "--notify-after",
        type=float,
        default=NOTIFY_AFTER_S,
        metavar="SECONDS",
        help="when a job that ran this long ends: the bell and a desktop notification "
        f"(OSC 9/777; default {NOTIFY_AFTER_S:g})",
    )
    p.add_argument("--no-notify", action="store_true", help="no bell or notification at the end")
    p.add_argument(
        "--output-cap",
        type=_size,
        default=OUTPUT_CAP,
        metavar="SIZE",
        help="of each task's stdout and of its stderr, keep the first and the last half of SIZE "
        "characters, in memory and in the record, and say how much was cut between them "
        "(default 1M; 500k, 20M; 0 keeps everything)",
    )
    p.add_argument(
        "--send-window",
        type=_size,
        default=None,
        metavar="N",
        help="send a job's tasks N at a time: more as earlier ones finish and are recorded "
        f"(bounds memory; default {SEND_WINDOW:,}, or {SEND_WINDOW_PER_ENGINE} per engine if more; "
        "0 sends every task "
        "at once)",
    )
    return p


_UNITS = {"": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}


def _size(text: str) -> int:
    """`--output-cap`, `--send-window`: 1000, 500k, 1M, 2.5MB, 1G (decimal units)."""
    number = text.strip().lower()
    digits = number.rstrip("kmgb")
    unit = number[len(digits) :]
    try:
        value = float(digits) * _UNITS[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a size (a number, optionally with k, M or G)"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}': a size cannot be negative")
    return int(value)


def notify_after(args: argparse.Namespace) -> float | None:
    return None if args.no_notify else args.notify_after


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ippmon",
        description="Submit a job to an ipyparallel cluster and watch it live. "
        "Subcommands: runs, attach [RUN_ID], resume RUN_ID, export RUN_ID, status, top, adopt JOB "
        "(see ippmon CMD -h).",
        parents=[_connection_options(), _common_options(), _watch_options()],
    )
    p.add_argument(
        "--local", type=int, metavar="N", help="start a private local cluster of N engines"
    )
    p.add_argument("--jobs", metavar="FILE", help="job-spec file (default: ./ippmon.toml)")
    p.add_argument("--job", metavar="NAME", help="submit this job at once")
    p.add_argument("--version", action="version", version=f"ippmon {__version__}")
    return p


def build_subparser(command: str) -> argparse.ArgumentParser:
    common = _common_options()
    if command == "runs":
        return _Parser(prog="ippmon runs", description="List runs, newest first.", parents=[common])
    if command == "export":
        p = _Parser(
            prog="ippmon export",
            description="Write one row per task (its final attempt).",
            parents=[common],
        )
        p.add_argument("run_id", metavar="RUN_ID")
        p.add_argument("--format", choices=("csv", "jsonl", "parquet"), default="csv")
        p.add_argument("--output", "-o", metavar="PATH", help="default: inside the run folder")
        return p
    if command == "status":
        p = _Parser(
            prog="ippmon status",
            description="One-shot summary of the cluster: engines busy or idle, the queue, and "
            "every client's jobs with counts. Exit 0, or 3 when it cannot connect.",
            parents=[_connection_options(), common],
        )
        p.add_argument("--json", action="store_true", help="print one JSON object (see README)")
        return p
    if command == "top":
        return _Parser(
            prog="ippmon top",
            description="Every task on the cluster live, whoever sent it (notebooks, scripts, "
            "ippmon): engines, jobs by client session and label, their output, totals. "
            "Exit 0, or 3 when it cannot connect.",
            parents=[_connection_options(), common],
        )
    if command == "adopt":
        p = _Parser(
            prog="ippmon adopt",
            description="Record a job another client sent (a notebook, a script) as an ippmon "
            "run, so that `ippmon attach` and `ippmon export` work on it; prints the run id. "
            "Nothing is sent to the cluster. Exit 0; 2 when the job cannot be adopted; 3 when "
            "it cannot connect.",
            parents=[_connection_options(), common],
        )
        p.add_argument(
            "job",
            metavar="JOB",
            help="the job's id as `ippmon status --json` shows it (session, or session/label), "
            "a unique prefix of it, or the short form `ippmon status` prints",
        )
        return p
    p = _Parser(
        prog=f"ippmon {command}",
        description=(
            "Watch a run again: finished tasks from its record, the rest from the controller."
            if command == "attach"
            else "Resubmit a run's failed, cancelled and lost tasks, and watch them."
        ),
        parents=[_connection_options(), common, _watch_options()],
    )
    p.add_argument("run_id", metavar="RUN_ID", nargs="?" if command == "attach" else None)
    return p


def _fail(code: int, message: str) -> int:
    print(f"ippmon: {message}", file=sys.stderr)
    return code


class _SignalState:
    app: IppmonApp | None = None  # the running TUI, told to exit
    watching = False  # the headless loop is running: it sees DETACH itself
    exited = threading.Event()  # the TUI returned


HARD_EXIT_AFTER_S = 3.0


def _on_detach_signal(signum: int, _frame: object) -> None:
    # A terminal hang-up comes with SIGCONT, whose Textual handler restarts application mode
    # (a second writer thread) and can deadlock the shutdown: not now.
    signal.signal(signal.SIGCONT, signal.SIG_DFL)
    DETACH.set()
    if _SignalState.app is not None:
        app = _SignalState.app
        app.exit(ExitCode.FAILED)
        # With the terminal gone (ssh dropped), Textual's shutdown can block forever writing to
        # it; the run record must not depend on that.
        threading.Thread(target=_detach_hard, args=(app,), daemon=True).start()
    elif not _SignalState.watching:
        raise _Detached()


def _detach_hard(app: IppmonApp) -> None:
    """If the app has not exited within a few seconds: record the run(s) as detached, stop a
    local cluster if the app started one, and leave."""
    import contextlib
    import os

    if not _SignalState.exited.wait(HARD_EXIT_AFTER_S):
        session = app.session
        for job in app.jobs():
            with contextlib.suppress(Exception):
                job.close()
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()
        os._exit(ExitCode.FAILED)


class _Detached(Exception):
    """Raised in the main thread by SIGHUP/SIGTERM outside the headless loop."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    parser = build_subparser(command) if command else build_parser()
    args = parser.parse_args(argv[1:] if command else argv)
    args.command = command
    problem = _check_arguments(args)
    if problem:
        return _fail(ExitCode.USAGE, problem)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, _on_detach_signal)
    try:
        if command == "runs":
            return _runs(args)
        if command == "export":
            return _export(args)
        if command == "status":
            from ippmon.status import status

            return status(args, _options(args))
        if command == "top":
            return _top(args)
        if command == "adopt":
            return _adopt(args)
        if command in ("attach", "resume"):
            return _attach(args, resume=command == "resume")
        return _run(args)
    except _Detached:
        return _fail(ExitCode.FAILED, "detached: tasks keep running on the cluster")
    except KeyboardInterrupt:
        return _fail(ExitCode.FAILED, "interrupted")
    except Exception as exc:
        if args.debug:
            raise
        return _fail(
            ExitCode.FAILED,
            f"unexpected error: {one_line(exc, with_type=True)} (--debug shows more)",
        )


def _check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the options argparse let through, in one line; None if nothing."""
    local = getattr(args, "local", None)
    if local is not None and local < 1:
        return f"--local needs at least 1 engine, got {local}"
    if local is not None and local > (most := max_local_engines()):
        return (
            f"--local {local}: too many engines for this machine (at most {most}: 4 per CPU, "
            "or 64 on small machines); for more, start a cluster with ipcluster"
        )
    if getattr(args, "retry_failed", 0) < 0:
        return f"--retry-failed must be 0 or more, got {args.retry_failed}"
    after = getattr(args, "notify_after", 0.0)
    if not (math.isfinite(after) and after >= 0):
        return f"--notify-after must be a number of seconds >= 0, got {after:g}"
    timeout = getattr(args, "timeout", 1.0)
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
        return (
            f"--timeout must be a number of seconds > 0 and <= {MAX_TIMEOUT_S:g}, got {timeout:g}"
        )
    return None


def _record_errors() -> tuple[type[Exception], ...]:
    """What reading a run record may raise: all of it is a record error (exit 2)."""
    from ippmon.runs import RunError

    return (RunError, OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError)


def _record_fail(where: object, exc: Exception) -> int:
    from ippmon.runs import RunError

    if isinstance(exc, RunError):
        return _fail(ExitCode.USAGE, one_line(exc))
    return _fail(ExitCode.USAGE, f"{where}: cannot read: {one_line(exc, with_type=True)}")


def _headless(args: argparse.Namespace) -> bool:
    return bool(args.headless) or not sys.stdout.isatty()


def _options(args: argparse.Namespace, cluster: dict[str, Any] | None = None) -> Any:
    from ippmon.connect import ConnectOptions

    named = any(getattr(args, k, None) for k in ("profile", "cluster_id", "file"))
    if cluster and not named:  # attach/resume: the run's own cluster unless told otherwise
        return ConnectOptions(
            profile=cluster.get("profile") or "default",
            cluster_id=cluster.get("cluster_id") or None,
            sshserver=args.sshserver,
            timeout=args.timeout,
            output_cap=getattr(args, "output_cap", OUTPUT_CAP),
            send_window=getattr(args, "send_window", None),
        )
    return ConnectOptions(
        profile=args.profile,
        cluster_id=args.cluster_id,
        file=args.file,
        sshserver=args.sshserver,
        timeout=args.timeout,
        local=getattr(args, "local", None),
        output_cap=getattr(args, "output_cap", OUTPUT_CAP),
        send_window=getattr(args, "send_window", None),
    )


def _run(args: argparse.Namespace) -> int:
    from ippmon.connect import ClusterBackend
    from ippmon.jobspec import SpecError, load_catalog

    headless = _headless(args)
    catalog = load_catalog(args.jobs)
    spec = None
    if args.job or headless:
        if not args.job:
            names = ", ".join(catalog.specs)
            return _fail(ExitCode.USAGE, f"--headless needs --job NAME (available: {names})")
        if catalog.file_error is not None:  # never run a built-in instead of the file's job
            return _fail(ExitCode.USAGE, str(catalog.file_error))
        try:
            spec = catalog.get(args.job)
        except SpecError as exc:
            return _fail(ExitCode.USAGE, str(exc))
    if not headless:
        from ippmon.cluster_process import RemoteBackend
        from ippmon.ui.app import IppmonApp

        remote = RemoteBackend(_options(args))  # the cluster side, in its own process
        try:
            app = IppmonApp(
                remote,
                catalog,
                runs_dir=args.runs_dir,
                job_name=args.job,
                local_engines=args.local,
                notify_after=notify_after(args),
            )
            return _run_app(app)
        finally:
            remote.close()
    backend = ClusterBackend(_options(args))
    assert spec is not None
    inputs = _InputsCheck(spec)  # a spec is checked completely, its inputs too, before connecting
    if not inputs.wait(INPUTS_CHECK_S):
        print(
            f"ippmon: the inputs of job {spec.name!r} are still loading after "
            f"{INPUTS_CHECK_S:g} s ({spec.inputs_desc}); connecting meanwhile",
            file=sys.stderr,
        )
    elif inputs.error is not None:
        return _fail(ExitCode.USAGE, str(inputs.error))
    session = _connect_headless(backend, args.local)
    if isinstance(session, int):
        return session
    try:
        inputs.wait(None)
        if inputs.error is not None:
            return _fail(ExitCode.USAGE, str(inputs.error))
        try:
            job = session.submit(inputs.spec or spec, runs_dir=args.runs_dir)
        except SpecError as exc:
            return _fail(ExitCode.USAGE, str(exc))
        return _watch_headless(job, args)
    finally:
        session.close()


def _top(args: argparse.Namespace) -> int:
    """The top screen alone, the cluster side in its own process as for the monitor."""
    if not sys.stdout.isatty():
        return _fail(
            ExitCode.USAGE, "top needs a terminal; `ippmon status` prints the cluster once"
        )
    from ippmon.cluster_process import RemoteBackend
    from ippmon.jobspec import Catalog
    from ippmon.ui.app import IppmonApp

    remote = RemoteBackend(_options(args))
    try:
        return _run_app(IppmonApp(remote, Catalog({}), runs_dir=args.runs_dir, top=True))
    finally:
        remote.close()


class _InputsCheck:
    """A job's inputs loaded in a thread (`JobSpec.preload_inputs`): a `call` function runs
    here once, before connecting, and the job submits the items it returned. A slow one does
    not hold up connecting: after `INPUTS_CHECK_S` the command connects while it finishes."""

    def __init__(self, spec: Any) -> None:
        self._given = spec
        self.spec: Any = None  # the spec with its inputs loaded
        self.error: Exception | None = None  # a SpecError
        self._thread = threading.Thread(target=self._load, name="ippmon-inputs", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        from ippmon.jobspec import SpecError

        spec = self._given
        try:
            self.spec = spec.preload_inputs()
        except SpecError as exc:
            self.error = exc
        except BaseException as exc:  # SystemExit from the user's function too: report it
            why = f"loading the inputs raised {one_line(exc, with_type=True)}"
            self.error = SpecError(why, path=spec.origin, job=spec.name, field="inputs")

    def wait(self, timeout: float | None) -> bool:
        """Whether the inputs are loaded (or failed to), waiting up to `timeout` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _run_app(app: IppmonApp) -> int:
    _SignalState.app = app
    try:
        code = app.run()
    finally:
        _SignalState.app = None
        _SignalState.exited.set()
    return ExitCode.FAILED if code is None else int(code)


def _connect_headless(backend: Any, local: int | None) -> Any:
    from ippmon.protocols import ConnectError

    try:
        if local:
            print(f"ippmon: starting a local cluster of {local} engines...", file=sys.stderr)
            session = backend.start_local(local)
        else:
            session = backend.connect()
    except ConnectError as exc:
        return _fail(ExitCode.CONNECT, str(exc))
    print(f"ippmon: connected to {session.info.label}", file=sys.stderr)
    return session


def _watch_headless(job: Any, args: argparse.Namespace) -> int:
    from ippmon.headless import run_headless

    _SignalState.watching = True
    job.give_back = False  # this process ends with the job: nothing to give back
    try:
        return run_headless(
            job,
            err=sys.stderr,
            out=sys.stdout,
            record=str(job.record.folder),
            retry_failed=args.retry_failed,
            detach=DETACH,
            attach=attach_command(args, job.run_id),
            notify_after=notify_after(args),
        )
    finally:
        _SignalState.watching = False


def attach_command(args: argparse.Namespace, run_id: str) -> str:
    """The command that follows this run again: its id and the options that reached the
    cluster (a connection file or an ssh server is not in the run record)."""
    import shlex

    parts = ["ippmon", "attach", run_id]
    for flag, value in (
        ("--file", args.file),
        ("--sshserver", args.sshserver),
        ("--runs-dir", args.runs_dir),
    ):
        if value:
            parts += [flag, value]
    return shlex.join(parts)


def _runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ippmon.model import format_duration
    from ippmon.runs import list_runs, runs_root
    from ippmon.terminal import plain

    try:
        runs = list_runs(args.runs_dir)
    except _record_errors() as exc:
        return _record_fail(runs_root(args.runs_dir), exc)
    console = Console(highlight=False)
    if not runs:
        console.print(f"no runs in {runs_root(args.runs_dir)}", markup=False)
        return ExitCode.OK
    table = Table(box=None, pad_edge=False)
    for col in ("run id", "job", "state", "done", "ok", "failed", "cancelled", "lost", "age"):
        right = col in ("done", "ok", "failed", "cancelled", "lost", "age")
        table.add_column(col, justify="right" if right else "left", no_wrap=col == "run id")
    now = time.time()
    for r in runs:
        c = r.counts
        age = format_duration(now - r.created) if r.created else "?"
        table.add_row(
            Text(plain(r.run_id)),  # names from files: shown as text, never as markup
            Text(plain(r.job)),
            r.state,
            f"{r.done}/{r.total}",
            str(c.get("ok", 0)),
            str(c.get("error", 0)),
            str(c.get("cancelled", 0)),
            str(c.get("lost", 0)),
            age,
        )
    console.print(table)
    for r in runs:
        if r.problem:  # one line each: a damaged record, or a torn last line skipped
            print(f"ippmon: {plain(r.problem)}", file=sys.stderr)
    return ExitCode.OK


def _export(args: argparse.Namespace) -> int:
    from ippmon.export import ExportError, export_run
    from ippmon.runs import find_run

    folder = None
    try:
        folder = find_run(args.runs_dir, args.run_id)
        target = export_run(folder, args.format, args.output)
    except ExportError as exc:
        return _fail(ExitCode.USAGE, str(exc))
    except _record_errors() as exc:
        return _record_fail(folder or args.run_id, exc)
    print(f"ippmon: wrote {target}", file=sys.stderr)
    return ExitCode.OK


def _attach(args: argparse.Namespace, *, resume: bool) -> int:
    from ippmon.adopt import ADOPTED_RESUME, adopted_folder
    from ippmon.connect import ClusterBackend
    from ippmon.job import INPUTS_FILE, SPEC_FILE, Job
    from ippmon.model import ClusterInfo
    from ippmon.records import scan_results
    from ippmon.runs import RunError, cluster_of, find_run, needs_cluster, runs_root
    from ippmon.trust import check_run_folder

    folder = None
    try:  # everything about the record is checked before connecting: its errors are exit 2
        folder = find_run(args.runs_dir, args.run_id)
        check_run_folder(folder, (SPEC_FILE, INPUTS_FILE))  # nothing unpickled from a stranger
        cluster = cluster_of(folder)
        if (resume or args.retry_failed) and adopted_folder(folder):
            return _fail(ExitCode.USAGE, ADOPTED_RESUME.format(run=folder.name))
        online = resume or needs_cluster(folder)
        scan_results(folder)  # every line checked
    except _record_errors() as exc:
        return _record_fail(folder or args.run_id or runs_root(args.runs_dir), exc)
    headless = _headless(args)
    session = None
    remote = None
    if online:
        options = _options(args, cluster)
        if headless:
            backend: Any = ClusterBackend(options)
        else:
            from ippmon.cluster_process import RemoteBackend

            backend = remote = RemoteBackend(options)  # the cluster side, in its own process
        session = _connect_headless(backend, None)
        if isinstance(session, int):
            if remote is not None:
                remote.close()
            return session
    try:
        try:
            if session:
                job = session.attach(folder)
            else:
                info = ClusterInfo(
                    profile=str(cluster.get("profile") or "default"),
                    cluster_id=str(cluster.get("cluster_id") or ""),
                    engines=int(cluster.get("engines") or 0),
                    location=str(cluster.get("location", "local")),
                )
                job = Job.restore(folder, None, info, controller_timeout=args.timeout)
        except RunError as exc:
            return _fail(ExitCode.USAGE, one_line(exc))
        except _record_errors() as exc:
            if session:  # with a cluster, only RunError is certainly about the record
                raise
            return _record_fail(folder, exc)
        if resume:
            todo = job.retryable()
            if not todo and job.finished():
                print("ippmon: nothing to resume: every task succeeded", file=sys.stderr)
                return ExitCode.OK
            if todo:
                attempt = job.submit(todo)
                print(f"ippmon: resubmitted {len(todo)} tasks (attempt {attempt})", file=sys.stderr)
        if headless:
            return _watch_headless(job, args)
        from ippmon.ui.app import IppmonApp

        return _run_app(IppmonApp.for_job(job, attached=True, notify_after=notify_after(args)))
    finally:
        if session:
            session.close()  # closes the job too: its record says whether it was left running
        if remote is not None:
            remote.close()


def _adopt(args: argparse.Namespace) -> int:
    """`ippmon adopt JOB`: the job as `ippmon status` names it, written as a run record."""
    from ippmon.adopt import AdoptError, find_job
    from ippmon.clusterwatch import ClusterWatcher
    from ippmon.connect import ClusterBackend
    from ippmon.protocols import ConnectError

    options = _options(args)
    try:
        session = ClusterBackend(options).connect()
    except ConnectError as exc:
        return _fail(ExitCode.CONNECT, str(exc))
    try:
        watch = ClusterWatcher(session.client, start=False)  # records only: no iopub socket
        try:
            snapshot = watch.poll()
        except Exception as exc:
            if args.debug:
                raise
            why = one_line(exc, with_type=True)
            return _fail(ExitCode.CONNECT, f"lost the controller of {options.describe()}: {why}")
        try:
            if snapshot.db == "NoDB":
                from ippmon.adopt import NODB_ADOPT

                raise AdoptError(NODB_ADOPT)
            job_id = find_job((j.id for j in snapshot.jobs), args.job)
            run = watch.adopt(job_id, args.runs_dir, session.info)
        except AdoptError as exc:
            return _fail(ExitCode.USAGE, str(exc))
    finally:
        session.close()
    n = f"{run.tasks:,} task{'s' if run.tasks != 1 else ''}"
    print(
        f"ippmon: adopted {run.title} ({n}) as run {run.run_id}; "
        f"follow it with: {attach_command(args, run.run_id)}",
        file=sys.stderr,
    )
    print(run.run_id)
    return ExitCode.OK
