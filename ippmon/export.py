"""Exporting a run: one row per task (its final attempt) as CSV, JSON lines or Parquet."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ippmon.records import latest_lines

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
    out = []
    for _index, line in sorted(latest_lines(folder).items()):
        error = line.get("error") or {}
        row = {k: line.get(k) for k in COLUMNS}
        row["result"] = json.dumps(line.get("result"))
        row["ename"] = error.get("ename")
        row["evalue"] = error.get("evalue")
        row["traceback"] = error.get("traceback")
        out.append(row)
    return out


def export_run(folder: Path, fmt: str, output: str | None = None) -> Path:
    """Write the export and return where it went (default: inside the run folder)."""
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
        pq.write_table(table, target)
        os.chmod(target, 0o600)
        return target
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(data)
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(row) + "\n" for row in data)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return target
