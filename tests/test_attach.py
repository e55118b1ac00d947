"""Detach on hang-up, attach, resume and export, as a user runs them against a real cluster."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from cluster_helpers import FAIL_ONCE, write_spec
from test_cli import IPPMON, run

from ippmon.connect import ClientSession
from ippmon.records import load_sent, read_results

pytestmark = pytest.mark.cluster

SLOW = """
[jobs.slow]
function = "ippmon.demo:slow_square"
inputs = { range = [0, 24] }
kwargs = { delay = 0.4, steps = 1 }
"""


CHATTY = """
[jobs.chatty]
function = "ippmon.demo:chatty"
inputs = { range = [0, 40] }
kwargs = { lines = 100, delay = 0.5 }
"""


def chatty_output(x: int) -> tuple[str, str]:
    """What `demo.chatty(x, lines=100)` prints on stdout and on stderr."""
    out = err = ""
    for i in range(1, 101):
        if i % 10 == 0:
            err += f"warning: item {x} line {i}: value drifted by {i % 7}\n"
        else:
            out += f"item {x} line {i}: {'.' * (i % 40)}\n"
    return out, err


def detached_run(
    tmp_path: Path, cluster: ClientSession, toml: str = SLOW, job: str = "slow"
) -> Path:
    """Start a headless run, hang up on it after some tasks finished; return its folder."""
    spec = write_spec(tmp_path / "spec", toml)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        IPPMON
        + ["--cluster-id", cluster.info.cluster_id, "--jobs", str(spec), "--job", job]
        + ["--headless", "--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    for line in proc.stderr:
        if "done (ok" in line and not line.split("]")[1].strip().startswith("0/"):
            break
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert "detached" in err and "still queued or running" in out
    (folder,) = runs.iterdir()
    return folder


def test_hangup_leaves_tasks_running_and_attach_completes_the_run_once_each(
    tmp_path: Path, cluster: ClientSession, client
) -> None:
    folder = detached_run(tmp_path, cluster)
    meta = json.loads((folder / "run.json").read_text())
    assert meta["state"] == "detached" and meta["detached"]
    recorded_before = len(read_results(folder))
    assert 0 < recorded_before < 24
    # the tasks kept running: the controller finishes them with nobody watching
    msg_ids = [line["msg_id"] for line in load_sent(folder).lines]
    client.wait(msg_ids, timeout=60)

    proc = run(["attach", "--runs-dir", str(folder.parent), "--headless"])
    assert proc.returncode == 0, proc.stderr
    lines = read_results(folder)
    assert sorted(r["index"] for r in lines) == list(range(24))
    assert all(r["status"] == "ok" and r["result"] == r["index"] ** 2 for r in lines)
    assert json.loads((folder / "run.json").read_text())["state"] == "finished"

    # a second attach shows it finished without any cluster: a bogus profile is never tried
    again = run(
        ["attach", folder.name, "--runs-dir", str(folder.parent), "--headless"]
        + ["--profile", "no-such-profile"]
    )
    assert again.returncode == 0, again.stderr
    assert "24 ok" in again.stdout and "connected" not in again.stderr
    assert len(read_results(folder)) == 24


def test_attach_records_the_full_output_of_tasks_finished_before_and_while_attached(
    tmp_path: Path, cluster: ClientSession, client
) -> None:
    """Some tasks finish while nobody watches, some run when attach starts, some start later:
    each one's output is in the record in full, and each task once."""
    folder = detached_run(tmp_path, cluster, CHATTY, "chatty")
    assert len(read_results(folder)) < 40
    proc = run(["attach", "--runs-dir", str(folder.parent), "--headless"])
    assert proc.returncode == 0, proc.stderr
    lines = read_results(folder)
    assert sorted(r["index"] for r in lines) == list(range(40))
    for r in lines:
        assert (r["stdout"], r["stderr"]) == chatty_output(r["index"]), r["index"]
        assert "output_incomplete" not in r


def test_attach_whose_cluster_is_gone_exits_3_and_leaves_the_record_intact(
    tmp_path: Path, cluster: ClientSession, client
) -> None:
    folder = detached_run(tmp_path, cluster)
    copy = tmp_path / "copy" / folder.name
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "run.json").read_text())
    meta["cluster"]["cluster_id"] = "long-gone"
    (copy / "run.json").write_text(json.dumps(meta))
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    proc = run(
        ["attach", folder.name, "--runs-dir", str(copy.parent), "--headless"] + ["--timeout", "2"]
    )
    assert proc.returncode == 3
    assert "long-gone" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    client.wait([line["msg_id"] for line in load_sent(folder).lines], timeout=60)


def test_resume_reruns_only_the_failures(tmp_path: Path, cluster: ClientSession, client) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    spec = write_spec(
        tmp_path / "spec",
        f"""
        [jobs.once]
        function = "tasks.py:fail_once"
        inputs = {{ range = [0, 9] }}
        kwargs = {{ folder = "{seen}", first = 1, scale = 1 }}
        """,
        {
            "tasks.py": FAIL_ONCE,
        },
    )
    runs = tmp_path / "runs"
    first = run(
        ["--cluster-id", cluster.info.cluster_id, "--jobs", str(spec), "--job", "once"]
        + ["--headless", "--runs-dir", str(runs)]
    )
    assert first.returncode == 1
    (folder,) = runs.iterdir()
    proc = run(["resume", folder.name, "--runs-dir", str(runs), "--headless"])
    assert proc.returncode == 0, proc.stderr
    assert "resubmitted 3 tasks (attempt 2)" in proc.stderr
    lines = read_results(folder)
    assert sorted(r["index"] for r in lines if r["attempt"] == 2) == [1, 4, 7]
    assert all(r["status"] == "ok" for r in lines if r["attempt"] == 2)
    assert len(lines) == 12

    out = tmp_path / "out.csv"
    exp = run(["export", folder.name, "--runs-dir", str(runs), "--format", "csv", "-o", str(out)])
    assert exp.returncode == 0, exp.stderr
    rows = list(csv.DictReader(out.open()))
    assert [int(r["index"]) for r in rows] == list(range(9))
    assert {r["status"] for r in rows} == {"ok"}
    assert [r["attempt"] for r in rows if r["index"] in ("1", "4", "7")] == ["2", "2", "2"]


def test_tasks_the_controller_no_longer_holds_become_lost_with_the_reason_and_resume_reruns_them(
    tmp_path: Path, cluster: ClientSession, client
) -> None:
    folder = detached_run(tmp_path, cluster)
    sent = load_sent(folder).lines
    client.wait([line["msg_id"] for line in sent], timeout=60)
    recorded = {r["index"] for r in read_results(folder)}
    # as if the hub's task database had culled the unrecorded tasks' records, all but the last
    # one sent: the hub knows a task sent after them, so they are lost without waiting for
    # GONE_AFTER_S (that wait has a test of its own, in test_hub_watcher.py)
    unrecorded = [line for line in sent if not set(line["indices"]) <= recorded]
    assert len(unrecorded) >= 2
    for n, line in enumerate(unrecorded[:-1]):
        line["msg_id"] = f"culled-{n}"
    (folder / "sent.jsonl").write_text("".join(json.dumps(line) + "\n" for line in sent))
    missing = sorted(i for line in unrecorded[:-1] for i in line["indices"])

    proc = run(["attach", folder.name, "--runs-dir", str(folder.parent), "--headless"])
    assert proc.returncode == 1, proc.stderr
    lost = [r for r in read_results(folder) if r["status"] == "lost"]
    assert sorted(r["index"] for r in lost) == missing
    assert all("no longer holds" in r["error"]["evalue"] for r in lost)

    proc = run(["resume", folder.name, "--runs-dir", str(folder.parent), "--headless"])
    assert proc.returncode == 0, proc.stderr
    final = {}
    for r in read_results(folder):
        if r["attempt"] >= final.get(r["index"], {}).get("attempt", 0):
            final[r["index"]] = r
    assert sorted(final) == list(range(24))
    assert all(r["status"] == "ok" and r["result"] == r["index"] ** 2 for r in final.values())
