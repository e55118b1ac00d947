"""The `ippmon` command: parse arguments, load job specs, connect, then run the TUI or headless.

Exit codes (DESIGN.md): 0 every task succeeded; 1 some task failed or was cancelled;
2 usage or job-spec error; 3 could not connect to a cluster.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from ippmon import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ippmon",
        description="Submit a job to an ipyparallel cluster and watch it live.",
    )
    conn = p.add_argument_group("connection (default: find running clusters of the profile)")
    conn.add_argument("--profile", help="IPython profile name (default: 'default')")
    conn.add_argument("--cluster-id", help="cluster id within the profile")
    conn.add_argument("--file", metavar="PATH", help="a client connection JSON file")
    conn.add_argument("--sshserver", metavar="[USER@]HOST", help="tunnel through this ssh host")
    conn.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="connect timeout (10)"
    )
    conn.add_argument(
        "--local",
        type=int,
        metavar="N",
        help="start a private local cluster of N engines for this session",
    )
    p.add_argument("--jobs", metavar="FILE", help="job-spec file (default: ./ippmon.toml)")
    p.add_argument("--job", metavar="NAME", help="submit this job at once")
    p.add_argument("--headless", action="store_true", help="no TUI (automatic when piped)")
    p.add_argument("--runs-dir", metavar="DIR", help="where run records go")
    p.add_argument(
        "--retry-failed",
        type=int,
        default=0,
        metavar="N",
        help="headless: resubmit failed and lost tasks up to N times",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"ippmon {__version__}")
    return p


def _fail(code: int, message: str) -> int:
    print(f"ippmon: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.local is not None and args.local < 1:
        return _fail(EXIT_USAGE, f"--local needs at least 1 engine, got {args.local}")
    if args.retry_failed < 0:
        return _fail(EXIT_USAGE, f"--retry-failed must be 0 or more, got {args.retry_failed}")
    if args.timeout <= 0:
        return _fail(EXIT_USAGE, f"--timeout must be positive, got {args.timeout:g}")
    # SIGTERM ends the process through `finally` blocks, so a --local cluster is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_FAILED))
    try:
        return _run(args)
    except KeyboardInterrupt:
        return _fail(EXIT_FAILED, "interrupted")
    except Exception as exc:
        if args.debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        name = type(exc).__name__
        return _fail(EXIT_FAILED, f"unexpected error: {name}: {first} (--debug shows more)")


def _run(args: argparse.Namespace) -> int:
    from ippmon.connect import ClusterBackend, ConnectOptions
    from ippmon.jobspec import SpecError, load_catalog
    from ippmon.session import ConnectError

    headless = args.headless or not sys.stdout.isatty()
    catalog = load_catalog(args.jobs)
    spec = None
    if args.job or headless:
        if not args.job:
            names = ", ".join(catalog.specs)
            return _fail(EXIT_USAGE, f"--headless needs --job NAME (available: {names})")
        try:
            spec = catalog.get(args.job)
        except SpecError as exc:
            return _fail(EXIT_USAGE, str(exc))
    options = ConnectOptions(
        profile=args.profile,
        cluster_id=args.cluster_id,
        file=args.file,
        sshserver=args.sshserver,
        timeout=args.timeout,
        local=args.local,
    )
    backend = ClusterBackend(options)
    if not headless:
        from ippmon.ui.app import IppmonApp

        app = IppmonApp(
            backend,
            catalog,
            runs_dir=args.runs_dir,
            job_name=args.job,
            local_engines=args.local,
        )
        code = app.run()
        return EXIT_FAILED if code is None else int(code)

    assert spec is not None
    from ippmon.headless import run_headless

    try:
        if args.local:
            print(f"ippmon: starting a local cluster of {args.local} engines...", file=sys.stderr)
            session = backend.start_local(args.local)
        else:
            session = backend.connect()
    except ConnectError as exc:
        return _fail(EXIT_CONNECT, str(exc))
    try:
        print(f"ippmon: connected to {session.info.label}", file=sys.stderr)
        try:
            job = session.submit(spec, runs_dir=args.runs_dir)
        except SpecError as exc:
            return _fail(EXIT_USAGE, str(exc))
        record = str(job.record.folder) if hasattr(job, "record") else None
        return run_headless(
            job, err=sys.stderr, out=sys.stdout, record=record, retry_failed=args.retry_failed
        )
    finally:
        session.close()
