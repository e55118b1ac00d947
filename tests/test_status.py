"""`ippmon status`: every client's tasks, as another process (a notebook, a script) sent them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_helpers import until
from test_cli import fresh_ipython_env, run

from ippmon.connect import ClientSession

SUBMITTER = Path(__file__).with_name("status_submitter.py")


def status_json(cluster: ClientSession) -> dict:
    proc = run(["status", "--json", "--cluster-id", cluster.info.cluster_id], timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def job_of(status: dict, session: str) -> dict | None:
    return next((j for j in status["jobs"] if j["session"] == session), None)


@pytest.mark.cluster
def test_status_shows_another_clients_job_busy_then_with_its_final_counts(
    tmp_path: Path,
    cluster: ClientSession,
    client,  # noqa: ANN001 - the fixture waits for both engines
) -> None:
    flag = tmp_path / "go"
    n = 7  # items 0, 3, 6 fail
    submitter = subprocess.Popen(
        [sys.executable, str(SUBMITTER), cluster.info.cluster_id, str(flag), str(n), "nb"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert submitter.stdout is not None
        sent = json.loads(submitter.stdout.readline() or "{}")
        assert sent, submitter.stderr.read() if submitter.stderr else ""
        session, msg_ids = sent["session"], sent["msg_ids"]
        seen: dict = {}

        def both_engines_run_it() -> bool:
            seen.update(status_json(cluster))
            job = job_of(seen, session)
            return job is not None and job["running"] == 2 and job["submitted"] == n

        assert until(both_engines_run_it, timeout=30), seen
        job = job_of(seen, session)
        assert job is not None
        assert job["id"] == f"{session}/nb" and job["label"] == "nb"
        assert job["user"] == sent["user"] and job["first_seen"]
        assert (job["queued"], job["done"], job["failed"]) == (n - 2, 0, 0)
        # the queue counts are asked before the records: a later snapshot agrees with them
        assert until(lambda: status_json(cluster)["unassigned"] == n - 2, timeout=10)
        assert [e["state"] for e in seen["engines"]] == ["busy", "busy"]
        assert {e["job"] for e in seen["engines"]} == {job["id"]}
        assert {e["msg_id"] for e in seen["engines"]} <= set(msg_ids)
        assert seen["db"] == "DictDB" and seen["limits"]

        flag.touch()
        out, err = submitter.communicate(timeout=60)
        final = json.loads(out.strip().splitlines()[-1])
        assert final == {"tasks": n, "done": 4, "failed": 3}, err
        after = status_json(cluster)
        job = job_of(after, session)
        assert job is not None
        assert job["submitted"] == final["tasks"]
        assert (job["done"], job["failed"]) == (final["done"], final["failed"])
        assert (job["queued"], job["running"]) == (0, 0)
        assert [e["state"] for e in after["engines"]] == ["idle", "idle"]

        table = run(["status", "--cluster-id", cluster.info.cluster_id], timeout=60)
        assert table.returncode == 0, table.stderr
        row = next(line for line in table.stdout.splitlines() if line.startswith(session[:8]))
        assert row.split()[-5:] == ["7", "0", "0", "4", "3"]
        assert "\x1b" not in table.stdout  # piped: plain text
    finally:
        flag.touch()
        if submitter.poll() is None:
            submitter.kill()
            submitter.wait()


@pytest.mark.parametrize("as_json", [False, True])
def test_status_without_a_cluster_exits_3_with_one_line(tmp_path: Path, as_json: bool) -> None:
    started = time.monotonic()
    proc = run(
        ["status", "--timeout", "2", *(["--json"] if as_json else [])],
        env=fresh_ipython_env(tmp_path),
    )
    assert proc.returncode == 3
    assert "no running cluster" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert time.monotonic() - started < 15
