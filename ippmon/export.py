"""Exporting a run: one row per task (its final attempt) as CSV, JSON lines or Parquet."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from ippmon.records import RESULTS_FILE, latest_lines

FORMATS = ("csv", "jsonl", "parquet")
COLUMNS = (
    "index",
    "attempt",
    "status",
    "engine",
    "submitted",
    "started",
    "completed",
    "duration_s",
    "result",
    "ename",
    "evalue",
    "traceback",
    "stdout",
    "stderr",
)


class ExportError(Exception):
    """One line for people: what could not be exported and why."""


def rows(folder: Path) -> list[dict[str, object]]:
    """Flat rows, sorted by index; `result` as JSON text so every format holds any value."""
    try:
        latest = latest_lines(folder)
        out = []
        for _index, line in sorted(latest.items()):
            error = line.get("error") or {}
            row = {k: line.get(k) for k in COLUMNS}
            row["result"] = json.dumps(line.get("result"))
            row["ename"] = error.get("ename")
            row["evalue"] = error.get("evalue")
            row["traceback"] = error.get("traceback")
            out.append(row)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # RunError (the readers' own) passes through; anything else is a damaged record
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ExportError(f"{folder / RESULTS_FILE}: cannot read: {why}") from None
    return out


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", re.ASCII)


def neutralise(cell: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a
    leading `'`. A plain number (`-3`, `-0.5e-3`, as JSON writes a result) stays as it is."""
    if isinstance(cell, str) and cell.startswith(FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def export_run(folder: Path, fmt: str, output: str | None = None) -> Path:
    """Write the export and return where it went (default: inside the run folder). The file is
    the user's own, 0600 (see `write_private`)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format '{fmt}' (use one of: {', '.join(FORMATS)})")
    target = Path(output) if output else folder / f"{folder.name}.{fmt}"
    data = rows(folder)
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ExportError(
                "parquet export needs pyarrow: pip install pyarrow (or use --format csv|jsonl)"
            ) from None
        table = pa.Table.from_pylist(data) if data else pa.table({c: [] for c in COLUMNS})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        write_private(target, sink.getvalue())
        return target
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: neutralise(v) for k, v in row.items()} for row in data)
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(row) + "\n" for row in data)
    write_private(target, text.encode("utf-8"))
    return target


def write_private(target: Path, data: bytes) -> None:
    """Write `data` to `target`, readable by its owner only, never through a symlink nor into
    somebody else's file: a new file is created exclusively (0600); an existing one is replaced
    atomically (a temporary file in the same folder, renamed over it) only when it is the
    user's own regular file. Raises ExportError."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
    except FileExistsError:
        _replace_own(target, data)
        return
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from None


def _replace_own(target: Path, data: bytes) -> None:
    try:
        st = os.lstat(target)
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from None
    getuid = getattr(os, "getuid", None)
    if stat.S_ISLNK(st.st_mode):
        why = "it is a symlink"
    elif not stat.S_ISREG(st.st_mode):
        why = "it exists and is not a regular file"
    elif getuid is not None and st.st_uid != getuid():
        why = f"it exists and belongs to uid {st.st_uid}, not to you"
    else:
        why = ""
    if why:
        raise ExportError(f"{target}: refusing to overwrite: {why}; choose another -o PATH")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:  # mkstemp: O_EXCL, 0600
            f.write(data)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
