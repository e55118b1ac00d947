"""Damaged run records, read by every reader: `runs`, `export`, `attach`, `resume` and the runs
list the TUI shows. Each record was written by a real run, then damaged one way.

Every reader ends with exit 0 or 2, in at most three lines on stderr, never a traceback, in a
few seconds; a record it refuses keeps its bytes; and `runs` still lists the healthy run beside
the damaged one. Damage that leaves a usable record (a torn last line: the line being written
when the process stopped) is read with a warning.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster_helpers import write_spec

from ippmon import cli
from ippmon.connect import ClientSession
from ippmon.jobspec import load_catalog
from ippmon.records import RESULTS_FILE, RUN_FILE, SENT_FILE, latest_lines
from ippmon.runs import UNREADABLE, list_runs

pytestmark = pytest.mark.cluster

TOTAL = 12
HEALTHY = "healthy"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _edit_line(name: str, n: int, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Replace line n of a .jsonl file by what `change` makes of it (dumped as JSON)."""

    def damage(folder: Path) -> None:
        path = folder / name
        lines = _lines(path)
        value = json.loads(lines[n])
        new = change(value)
        lines[n] = (json.dumps(value if new is None else new) + "\n").encode()
        path.write_bytes(b"".join(lines))

    return damage


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda line: line.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict], None]:
    return lambda line: line.pop(key)


def _raw_line(name: str, n: int, raw: bytes) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / name
        lines = _lines(path)
        lines[n] = raw
        path.write_bytes(b"".join(lines))

    return damage


def _torn_last(name: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / name
        data = path.read_bytes()
        last = data.rstrip(b"\n").rfind(b"\n") + 1
        path.write_bytes(data[: last + (len(data) - last) // 2])

    return damage


def _edit_meta(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        meta = json.loads((folder / RUN_FILE).read_text())
        change(meta)
        (folder / RUN_FILE).write_text(json.dumps(meta))

    return damage


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def _pickle(name: str, value: object) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(pickle.dumps(value))


def _duplicate_as_lost(folder: Path) -> None:
    """Two writers before the lock: a later "lost" line for a task already recorded "ok"."""
    path = folder / RESULTS_FILE
    first = json.loads(_lines(path)[0])
    lost = dict(first, status="lost", result=None, error={"ename": "TaskLost", "evalue": "x"})
    with path.open("a") as f:
        f.write(json.dumps(lost) + "\n")


def _results_is_a_folder(folder: Path) -> None:
    (folder / RESULTS_FILE).unlink()
    (folder / RESULTS_FILE).mkdir()


NESTED = b"[" * 100_000 + b"]" * 100_000 + b"\n"

# (kind, damage, usable): usable records are read (exit 0); the others are refused (exit 2).
CORPUS: list[tuple[str, Callable[[Path], None], bool]] = [
    ("results: torn last line", _torn_last(RESULTS_FILE), True),
    ("results: blank lines", _raw_line(RESULTS_FILE, 3, b"\n\n"), False),
    ("results: a later 'lost' duplicate of an 'ok'", _duplicate_as_lost, True),
    ("results: torn middle line", _raw_line(RESULTS_FILE, 4, b'{"index": 4, "sta\n'), False),
    ("results: bad UTF-8", _raw_line(RESULTS_FILE, 2, b'{"index": 2, "x": "\xff"}\n'), False),
    ("results: NUL bytes", _raw_line(RESULTS_FILE, 2, b"\x00\x00\x00\n"), False),
    ("results: a JSON list", _raw_line(RESULTS_FILE, 1, b"[1, 2]\n"), False),
    ("results: a number", _raw_line(RESULTS_FILE, 1, b"42\n"), False),
    ("results: deeply nested", _raw_line(RESULTS_FILE, 1, NESTED), False),
    ("results: status running", _edit_line(RESULTS_FILE, 0, _set("status", "running")), False),
    ("results: no status", _edit_line(RESULTS_FILE, 0, _drop("status")), False),
    ("results: index too big", _edit_line(RESULTS_FILE, 0, _set("index", TOTAL)), False),
    ("results: index negative", _edit_line(RESULTS_FILE, 0, _set("index", -1)), False),
    ("results: index text", _edit_line(RESULTS_FILE, 0, _set("index", "3")), False),
    ("results: index true", _edit_line(RESULTS_FILE, 0, _set("index", True)), False),
    ("results: no index", _edit_line(RESULTS_FILE, 0, _drop("index")), False),
    ("results: attempt 0", _edit_line(RESULTS_FILE, 0, _set("attempt", 0)), False),
    ("results: attempt text", _edit_line(RESULTS_FILE, 0, _set("attempt", "1")), False),
    ("results: stdout a number", _edit_line(RESULTS_FILE, 0, _set("stdout", 7)), False),
    ("results: error a list", _edit_line(RESULTS_FILE, 0, _set("error", [1])), False),
    ("results: a folder", _results_is_a_folder, False),
    ("run.json: torn", lambda f: _write(RUN_FILE, (f / RUN_FILE).read_bytes()[:40])(f), False),
    ("run.json: empty", _write(RUN_FILE, b""), False),
    ("run.json: a list", _write(RUN_FILE, b"[]"), False),
    ("run.json: bad UTF-8", _write(RUN_FILE, b'{"job": "\xfe"}'), False),
    ("run.json: deeply nested", _write(RUN_FILE, NESTED), False),
    ("run.json: inputs_count -3", _edit_meta(_set("inputs_count", -3)), False),
    ("run.json: inputs_count text", _edit_meta(_set("inputs_count", "12")), False),
    ("run.json: no job", _edit_meta(_drop("job")), False),
    ("run.json: state bogus", _edit_meta(_set("state", "bogus")), False),
    ("run.json: cluster text", _edit_meta(_set("cluster", "x")), False),
    ("run.json: attempts text", _edit_meta(_set("attempts", "x")), False),
    ("sent: torn last line", _torn_last(SENT_FILE), True),
    ("sent: index too big", _edit_line(SENT_FILE, 0, _set("indices", [TOTAL])), False),
    ("sent: msg_id a number", _edit_line(SENT_FILE, 0, _set("msg_id", 5)), False),
    ("sent: a JSON list", _raw_line(SENT_FILE, 0, b"[]\n"), False),
    ("inputs.pickle: torn", _write("inputs.pickle", b"\x80\x05\x95"), False),
    ("inputs.pickle: fewer inputs", _pickle("inputs.pickle", [1, 2]), False),
    ("spec.pickle: not a spec", _pickle("spec.pickle", 12), False),
]
# the blank-lines case is usable too: blank lines are skipped
CORPUS = [(k, d, u or k == "results: blank lines") for k, d, u in CORPUS]
# files only `attach` and `resume` read (to watch or resend tasks); `runs` and `export` don't
TO_WATCH = ("inputs.pickle", "spec.pickle", "sent")


@pytest.fixture(scope="module")
def healthy(cluster: ClientSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of TOTAL tasks that each print, recorded by a real job."""
    runs = tmp_path_factory.mktemp("healthy")
    spec_file = write_spec(
        tmp_path_factory.mktemp("spec"),
        f"""
        [jobs.squares]
        function = "ippmon.demo:slow_square"
        inputs = {{ range = [0, {TOTAL}] }}
        kwargs = {{ delay = 0.0, steps = 2 }}
        """,
    )
    job = cluster.submit(load_catalog(spec_file).get("squares"), runs_dir=str(runs))
    assert job.wait(timeout=60)
    job.close()
    (folder,) = runs.iterdir()
    assert len(latest_lines(folder)) == TOTAL
    return folder


@pytest.fixture()
def quiet_signals() -> Iterator[None]:
    """cli.main installs SIGHUP/SIGTERM handlers: put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGHUP, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".")  # the writer's lock file
    }


def _reader(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, float]:
    start = time.monotonic()
    code = cli.main(args)
    took = time.monotonic() - start
    return code, capsys.readouterr().err, took


@pytest.mark.parametrize(("kind", "damage", "usable"), CORPUS, ids=[c[0] for c in CORPUS])
def test_every_reader_copes_with_a_damaged_record(
    kind: str,
    damage: Callable[[Path], None],
    usable: bool,
    healthy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    quiet_signals: None,
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o700)
    shutil.copytree(healthy, runs / HEALTHY)
    folder = runs / "damaged"
    shutil.copytree(healthy, folder)
    damage(folder)
    before = _bytes(folder)
    to_watch = kind.split(":")[0] in TO_WATCH
    where = ["--runs-dir", str(runs)]

    listed = {r.run_id: r for r in list_runs(str(runs))}  # what the TUI's runs list shows
    assert listed[HEALTHY].state == "finished" and listed[HEALTHY].done == TOTAL
    assert (listed["damaged"].state == UNREADABLE) == (not usable and not to_watch)

    readers = {
        "runs": (["runs", *where], {0}),
        "export": (["export", "damaged", *where, "-o", str(tmp_path / "x.csv")], None),
        "attach": (["attach", "damaged", "--headless", *where], None),
        "resume": (["resume", "damaged", "--headless", *where], None),
    }
    for reader, (args, expected) in readers.items():
        if expected is None:  # refused records: exit 2; pickles matter only to attach/resume
            refused = not usable and (reader in ("attach", "resume") or not to_watch)
            expected = {2} if refused else {0}
        code, err, took = _reader(capsys, args)
        lines = err.strip().splitlines()
        assert code in expected, f"{kind}: {reader} exit {code}: {err}"
        assert len(lines) <= 3 and "Traceback" not in err, f"{kind}: {reader}: {err}"
        assert "unexpected error" not in err, f"{kind}: {reader}: {err}"
        assert took < 20, f"{kind}: {reader} took {took:.1f} s"
        if code == 2:
            assert lines and str(folder) in err or "damaged" in err, f"{kind}: {reader}: {err}"
        if not usable:
            assert _bytes(folder) == before, f"{kind}: {reader} changed the record"
    if usable:  # read with a warning at most, and complete: each task once, with its outcome
        latest = latest_lines(folder)
        assert sorted(latest) == list(range(TOTAL))
        assert all(line["status"] == "ok" for line in latest.values())
        assert all(line["result"] == i * i for i, line in latest.items())
    assert os.stat(runs / HEALTHY / RESULTS_FILE).st_size > 0


@pytest.mark.parametrize("still_out", [True, False], ids=["some sent tasks unrecorded", "none"])
def test_attach_to_a_run_killed_while_sending_records_the_unsent_as_cancelled(
    still_out: bool,
    healthy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    quiet_signals: None,
) -> None:
    """The record a `kill -9` leaves while inputs are still going out: sent.jsonl names only the
    first chunks, results.jsonl fewer still (or all of those sent). `attach` takes in the sent
    ones' results from the controller and records every never-sent task as cancelled: each
    index once."""
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o700)
    folder = runs / "killed"
    shutil.copytree(healthy, folder)
    sent_lines = _lines(folder / SENT_FILE)
    kept_sent = sent_lines[: max(1, len(sent_lines) // 2)]
    sent = sorted(i for raw in kept_sent for i in json.loads(raw)["indices"])
    assert 0 < len(sent) < TOTAL
    (folder / SENT_FILE).write_bytes(b"".join(kept_sent))
    recorded = sent[: len(sent) // 2] if still_out else sent
    kept_results = [r for r in _lines(folder / RESULTS_FILE) if json.loads(r)["index"] in recorded]
    (folder / RESULTS_FILE).write_bytes(b"".join(kept_results))
    _edit_meta(_set("state", "running"))(folder)

    code, err, _took = _reader(capsys, ["attach", "killed", "--headless", "--runs-dir", str(runs)])

    assert code == 1 and "unexpected error" not in err, err  # 1: some were cancelled
    latest = latest_lines(folder)
    assert sorted(latest) == list(range(TOTAL))
    for i, line in latest.items():
        if i in sent:
            assert line["status"] == "ok" and line["result"] == i * i, line
        else:
            assert line["status"] == "cancelled", line
    per_index = [json.loads(r)["index"] for r in _lines(folder / RESULTS_FILE)]
    assert sorted(per_index) == list(range(TOTAL)), "a task recorded twice"
