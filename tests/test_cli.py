"""The `ippmon` command end to end, as a user runs it: exit codes, run records, no orphans."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from cluster_helpers import FAIL_ONCE

from ippmon.connect import ClientSession
from ippmon.records import read_results

IPPMON = [sys.executable, "-m", "ippmon"]


def run(args: list[str], *, env: dict | None = None, timeout: float = 120, cwd=None):  # noqa: ANN001
    return subprocess.run(
        IPPMON + args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


class Descendants:
    """Every process a running command starts (sampled while it runs), so a test can check
    that all of them are gone afterwards, whatever else runs on the machine meanwhile."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.seen: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                for child in self.root.children(recursive=True):
                    self.seen.setdefault(child.pid, child)
            except psutil.Error:
                return
            self._stop.wait(0.1)

    def stop(self) -> list[psutil.Process]:
        self._stop.set()
        self._thread.join()
        return list(self.seen.values())


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def all_gone(procs: list[psutil.Process], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        psutil.wait_procs([], timeout=0.1)
    return not any(alive(p) for p in procs)


def run_watched(args: list[str], timeout: float = 120) -> tuple[subprocess.CompletedProcess, list]:
    proc = subprocess.Popen(
        IPPMON + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    watch = Descendants(proc.pid)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), watch.stop()


def fresh_ipython_env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(tmp_path / "empty-ipython")
    return env


@pytest.mark.cluster
def test_local_squares_headless_exits_0_with_100_right_results_and_no_orphans(
    tmp_path: Path, cluster: ClientSession
) -> None:
    runs = tmp_path / "runs"
    quick = tmp_path / "quick.toml"  # the built-in squares without its sleeps
    quick.write_text(
        '[jobs.squares]\nfunction = "ippmon.demo:slow_square"\ninputs = { range = [0, 100] }\n'
        "kwargs = { delay = 0.02 }\n"
    )
    proc, spawned = run_watched(
        ["--local", "2", "--jobs", str(quick), "--job", "squares", "--headless"]
        + ["--runs-dir", str(runs)]
    )
    assert proc.returncode == 0, proc.stderr
    (results,) = runs.glob("*/results.jsonl")
    lines = read_results(results.parent)
    assert len(lines) == 100
    assert all(r["status"] == "ok" and r["result"] == r["index"] ** 2 for r in lines)
    assert "100 ok" in proc.stdout and "speedup" in proc.stdout
    assert "done" in proc.stderr  # progress lines go to stderr
    assert len(spawned) >= 3 and all_gone(spawned)


@pytest.mark.cluster
def test_flaky_job_exits_1_with_failures_recorded(
    tmp_path: Path, cluster: ClientSession, client
) -> None:
    spec = tmp_path / "jobs.toml"
    spec.write_text(
        '[jobs.flaky]\nfunction = "ippmon.demo:flaky"\ninputs = { range = [0, 30] }\n'
        "kwargs = { rate = 0.5, delay = 0.0 }\n"
    )
    runs = tmp_path / "runs"
    proc = run(
        ["--cluster-id", cluster.info.cluster_id, "--jobs", str(spec), "--job", "flaky"]
        + ["--headless", "--runs-dir", str(runs)]
    )
    assert proc.returncode == 1, proc.stderr
    (results,) = runs.glob("*/results.jsonl")
    lines = read_results(results.parent)
    failed = [r for r in lines if r["status"] == "error"]
    assert len(lines) == 30 and failed
    assert all(r["error"]["ename"] == "TransientError" and r["error"]["traceback"] for r in failed)
    assert "failures" in proc.stdout and "TransientError" in proc.stdout


@pytest.mark.cluster
def test_function_from_a_py_file_beside_the_spec_runs_on_the_cluster(
    tmp_path: Path, cluster: ClientSession, client
) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "helpers.py").write_text("def triple(x):\n    return 3 * x\n")
    (folder / "work.py").write_text(
        "from helpers import triple\n\ndef run(x, offset=0):\n"
        "    print('running', x)\n    return triple(x) + offset\n"
    )
    (folder / "ippmon.toml").write_text(
        '[jobs.mine]\nfunction = "work.py:run"\ninputs = [1, 2, 3]\nkwargs = { offset = 1 }\n'
    )
    runs = tmp_path / "runs"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run(
        ["--cluster-id", cluster.info.cluster_id, "--jobs", str(folder / "ippmon.toml")]
        + ["--job", "mine", "--headless", "--runs-dir", str(runs)],
        cwd=elsewhere,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (results,) = runs.glob("*/results.jsonl")
    assert sorted(r["result"] for r in read_results(results.parent)) == [4, 7, 10]


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        (
            '[jobs.x]\nfunction = "ippmon.demo:slow_square"\ninputs = [1]\nchunksize = -1\n',
            "chunksize",
        ),
        ('[jobs.x]\nfunction = "no_such_module:f"\ninputs = [1]\n', "function"),
        ("[jobs.x\n", None),
    ],
)
def test_broken_spec_exits_2_with_one_line_naming_file_and_field(
    tmp_path: Path, toml: str, field: str | None
) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(toml)
    proc = run(["--jobs", str(spec), "--job", "x", "--headless"], env=fresh_ipython_env(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.toml" in lines[0] and "Traceback" not in proc.stderr
    if field:
        assert field in lines[0] and "'x'" in lines[0]


def test_unknown_job_exits_2_listing_the_jobs(tmp_path: Path) -> None:
    proc = run(["--job", "nope", "--headless"], env=fresh_ipython_env(tmp_path))
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "squares" in proc.stderr


def test_no_running_cluster_exits_3_at_once_with_a_hint(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = run(
        ["--job", "squares", "--headless", "--timeout", "2"], env=fresh_ipython_env(tmp_path)
    )
    assert proc.returncode == 3
    assert "no running cluster" in proc.stderr and "--local" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 15


def test_a_named_cluster_that_is_not_there_is_one_line_on_stderr_and_nothing_on_stdout(
    tmp_path: Path,
) -> None:
    """ipyparallel says "Waiting for connection file" on stdout while it waits: headless
    output (or a script's pipe) would start with it."""
    env = fresh_ipython_env(tmp_path)
    (Path(env["IPYTHONDIR"]) / "profile_default" / "security").mkdir(parents=True)
    proc = run(
        ["--cluster-id", "nope", "--job", "squares", "--headless", "--timeout", "1"], env=env
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert "cluster-id 'nope'" in line and "ipcontroller-nope-client.json" in line, line
    assert "(waited 1 s)" in line and "--local" in line, line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stale_connection_file_exits_3_within_the_timeout_without_printing_the_key(
    tmp_path: Path,
) -> None:
    key = "0123456789abcdef-secret-key"
    conn = {
        "ssh": "",
        "interface": "tcp://127.0.0.1",
        "registration": _free_port(),
        "control": _free_port(),
        "mux": _free_port(),
        "task": _free_port(),
        "iopub": _free_port(),
        "hb_ping": _free_port(),
        "hb_pong": _free_port(),
        "broadcast": [_free_port(), _free_port()],
        "notification": _free_port(),
        "location": "127.0.0.1",
        "pack": "json",
        "unpack": "json",
        "signature_scheme": "hmac-sha256",
        "key": key,
        "task_scheme": "leastload",
    }
    path = tmp_path / "client.json"
    path.write_text(json.dumps(conn))
    started = time.monotonic()
    proc = run(
        ["--file", str(path), "--job", "squares", "--headless", "--timeout", "2"],
        env=fresh_ipython_env(tmp_path),
    )
    took = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert "client.json" in proc.stderr and "2 s" in proc.stderr
    assert key not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    assert took < 2 + 10  # the timeout plus interpreter start-up, not a hang


@pytest.mark.cluster
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_local_cluster_is_stopped_when_interrupted(
    tmp_path: Path, sig: signal.Signals, cluster: ClientSession
) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        IPPMON + ["--local", "1", "--job", "squares", "--headless", "--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    watch = Descendants(proc.pid)
    # Wait until tasks are running: the first progress line with a finished task.
    for line in proc.stderr:
        if "done (ok" in line and not line.split("]")[1].strip().startswith("0/"):
            break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    if sig == signal.SIGINT:
        (results,) = runs.glob("*/results.jsonl")
        statuses = {r["status"] for r in read_results(results.parent)}
        assert "cancelled" in statuses and "ok" in statuses
        assert "cancelled" in out
    spawned = watch.stop()
    assert len(spawned) >= 3 and all_gone(spawned)


@pytest.mark.cluster
def test_retry_failed_resubmits_transient_failures_until_none_are_left(
    tmp_path: Path, cluster: ClientSession, client
) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "tasks.py").write_text(textwrap.dedent(FAIL_ONCE))
    seen = tmp_path / "seen"
    seen.mkdir()
    (folder / "ippmon.toml").write_text(
        '[jobs.once]\nfunction = "tasks.py:fail_once"\ninputs = { range = [0, 10] }\n'
        f'kwargs = {{ folder = "{seen}", every = 2, scale = 1 }}\n'
    )
    runs = tmp_path / "runs"
    proc = run(
        ["--cluster-id", cluster.info.cluster_id, "--jobs", str(folder / "ippmon.toml")]
        + ["--job", "once", "--headless", "--runs-dir", str(runs), "--retry-failed", "2"]
    )
    assert proc.returncode == 0, proc.stderr
    assert "retrying 5 failed tasks (attempt 2" in proc.stderr
    (results,) = runs.glob("*/results.jsonl")
    lines = read_results(results.parent)
    assert len(lines) == 15
    assert sorted(r["index"] for r in lines if r["attempt"] == 2) == [0, 2, 4, 6, 8]
    assert all(r["status"] == "ok" for r in lines if r["attempt"] == 2)
