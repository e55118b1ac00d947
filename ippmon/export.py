"""Exporting a run: one row per task (its final attempt) as CSV, JSON lines or Parquet."""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ippmon.records import RESULTS_FILE, latest_offsets, read_line_at

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


def rows(folder: Path) -> Iterator[dict[str, object]]:
    """Flat rows, sorted by index, one at a time (a big record is never all in memory: where
    each task's line is comes first, then each line is read); `result` as JSON text so every
    format holds any value."""
    path = folder / RESULTS_FILE
    try:
        where = latest_offsets(folder)
        for _index, offset in sorted(where.items()):
            line = read_line_at(path, offset)
            error = line.get("error") or {}
            row = {k: line.get(k) for k in COLUMNS}
            row["result"] = json.dumps(line.get("result"))
            row["ename"] = error.get("ename")
            row["evalue"] = error.get("evalue")
            row["traceback"] = error.get("traceback")
            yield row
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # RunError (the readers' own) passes through; anything else is a damaged record
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ExportError(f"{path}: cannot read: {why}") from None


PARQUET_BATCH = 10_000  # rows a parquet row group holds (and memory holds at once)


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
        write_private(target, _parquet(data))
    elif fmt == "csv":
        write_private(target, _csv(data))
    else:
        write_private(target, ((json.dumps(row) + "\n").encode("utf-8") for row in data))
    return target


def _csv(data: Iterable[dict[str, object]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    for row in data:
        writer.writerow({k: neutralise(v) for k, v in row.items()})
        if buf.tell() >= 1 << 16:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


class _Sink(io.RawIOBase):
    """What pyarrow writes, handed on in pieces (see `_parquet`)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.pieces.append(bytes(b))
        return len(b)


def _parquet(data: Iterable[dict[str, object]]) -> Iterator[bytes]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError(
            "parquet export needs pyarrow: pip install pyarrow (or use --format csv|jsonl)"
        ) from None
    text, whole, real = pa.string(), pa.int64(), pa.float64()
    types = dict.fromkeys(COLUMNS, text) | {
        "index": whole,
        "attempt": whole,
        "engine": whole,
        "duration_s": real,
    }
    schema = pa.schema([(name, types[name]) for name in COLUMNS])
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema)
    rows_left = iter(data)
    while batch := list(itertools.islice(rows_left, PARQUET_BATCH)):
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
        yield from sink.pieces
        sink.pieces.clear()
    writer.close()
    yield from sink.pieces


def write_private(target: Path, data: Iterable[bytes]) -> None:
    """Write `data` (pieces, written as they come) to `target`, readable by its owner only,
    never through a symlink nor into somebody else's file: a new file is created exclusively
    (0600); an existing one is replaced atomically (a temporary file in the same folder, renamed
    over it) only when it is the user's own regular file. Raises ExportError."""
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
            for piece in data:
                f.write(piece)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)  # a reader's error midway: no half-written export left
        raise


def _replace_own(target: Path, data: Iterable[bytes]) -> None:
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
            for piece in data:
                f.write(piece)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
