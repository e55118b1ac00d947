"""`ippmon status`: one snapshot of the cluster (`ClusterObserver`), printed once.

With `--json`, one JSON object on stdout (`ClusterSnapshot.to_json`; the README documents its
fields). Without, compact tables through Rich, plain text when piped. Exit 0, or 3 when the
cluster cannot be reached (one line on stderr naming what was tried).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from ippmon.clusterview import ClusterObserver, ClusterSnapshot
from ippmon.exit_codes import ExitCode
from ippmon.model import format_duration
from ippmon.text import one_line

SHORT = 8  # characters of a session id shown in the table (the JSON has them whole)


def status(args: argparse.Namespace, options: Any) -> int:
    from ippmon.connect import ClusterBackend
    from ippmon.protocols import ConnectError

    try:
        session = ClusterBackend(options).connect()
    except ConnectError as exc:
        print(f"ippmon: {exc}", file=sys.stderr)
        return ExitCode.CONNECT
    try:
        observer = ClusterObserver(session.client)
        snapshot = observer.poll()
        while snapshot.history_left:  # a long history is read a page an ask
            snapshot = observer.poll()
    except Exception as exc:  # the controller went away between connecting and asking
        if args.debug:
            raise
        print(
            f"ippmon: lost the controller of {options.describe()}: {one_line(exc, with_type=True)}",
            file=sys.stderr,
        )
        return ExitCode.CONNECT
    finally:
        session.close()
    if args.json:
        json.dump(snapshot.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print_snapshot(snapshot, session.info.label)
    return ExitCode.OK


def print_snapshot(snap: ClusterSnapshot, where: str, file: IO[str] | None = None) -> None:
    """The snapshot as a person reads it: a header line, engines, jobs, then what is unknown."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ippmon.terminal import plain

    console = Console(file=file, highlight=False)
    states = [e.state for e in snap.engines]
    head = (
        f"{where}: {states.count('busy')} busy, {states.count('idle')} idle"
        + (f", {states.count('gone')} gone" if "gone" in states else "")
        + f" engines; {snap.unassigned} unassigned; task db {snap.db}"
    )
    console.print(Text(head))
    short = {j.id: _short(j.session) + (f"/{j.label}" if j.label else "") for j in snap.jobs}
    if snap.engines:
        table = Table(box=None, pad_edge=False)
        for col in ("engine", "state", "job", "task"):
            table.add_column(col, justify="right" if col == "engine" else "left")
        for e in snap.engines:
            job = short.get(e.job or "", "") if e.job else ""
            table.add_row(str(e.id), e.state, Text(plain(job)), e.msg_id or "")
        console.print(table)
    if snap.jobs:
        table = Table(box=None, pad_edge=False)
        cols = ("job", "user", "age", "submitted", "queued", "running", "done", "failed")
        for col in cols:
            table.add_column(col, justify="left" if col in ("job", "user") else "right")
        for j in snap.jobs:
            age = format_duration(snap.taken - j.first_seen) if j.first_seen else "--"
            table.add_row(
                Text(plain(short[j.id])),  # names from other clients: text, never markup
                Text(plain(j.user)),
                age,
                *(str(n) for n in (j.submitted, j.queued, j.running, j.done, j.failed)),
            )
        console.print(table)
    elif snap.db != "NoDB":
        console.print("no tasks in the controller's records")
    for limit in snap.limits:
        console.print(Text(f"note: {limit}"))


def _short(session: str) -> str:
    return session[:SHORT]
