"""`--sshserver` through a real SSH server (tests/ssh_server.py) with the real `ssh` client:
a controller that only the login node reaches, the same job and results as without the
tunnel, clear failures, and a tunnel that drops mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from cluster_helpers import until, write_spec
from conftest import CLUSTER_HEAD
from ssh_server import GOOD, PASSWORD, REFUSED_KEY, SILENT, UNKNOWN_KEY, SshSetup
from test_cli import IPPMON, all_gone, run

from ippmon.connect import SSH_COMMAND_ENV, ClientSession, ConnectOptions, _connection_file
from ippmon.records import read_results

pytestmark = pytest.mark.cluster

GATED = """
    import os, time

    def gated(x, flag, free=2):
        # the first `free` items return at once; the others wait for the flag file
        if x >= free:
            deadline = time.time() + 60
            while not os.path.exists(flag) and time.time() < deadline:
                time.sleep(0.01)
        print(f"item {x}")
        return x * 10
"""


def gated_spec(folder: Path, flag: Path, n: int = 6) -> Path:
    return write_spec(
        folder,
        f"""
        [jobs.gated]
        function = "tasks.py:gated"
        inputs = {{ range = [0, {n}] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"tasks.py": GATED},
    )


def hidden_file(cluster: ClientSession, folder: Path) -> tuple[Path, str]:
    """The session cluster's client connection file as a laptop holds it when the controller
    is on the cluster's private network: at a name only the login node resolves. And its key."""
    own = _connection_file(ConnectOptions(cluster_id=cluster.info.cluster_id))
    info = json.loads(own.read_text())
    info.update(interface=f"tcp://{CLUSTER_HEAD}", location=CLUSTER_HEAD)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "client.json"
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    return path, info["key"]


def ssh_env(ssh: SshSetup) -> dict[str, str]:
    return {**os.environ, SSH_COMMAND_ENV: ssh.ssh_command}


def ssh_processes(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "ssh"]
    except psutil.Error:
        return []


class Lines:
    """A process's stderr, read line by line in a thread (so a test can wait for a line)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def join(self) -> str:
        self._thread.join(30)
        return self.text()


def finish(proc: subprocess.Popen[str], err: Lines, timeout: float = 60) -> tuple[str, str]:
    """Wait for the process: its stdout and its whole stderr (`err` reads that one)."""
    proc.wait(timeout)
    assert proc.stdout is not None
    return proc.stdout.read(), err.join()


def results_of(runs: Path) -> list[dict]:
    found = list(runs.glob("*/results.jsonl"))
    return read_results(found[0].parent) if found else []


def headless(args: list[str], ssh: SshSetup) -> subprocess.Popen[str]:
    return subprocess.Popen(
        IPPMON + args + ["--headless"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=ssh_env(ssh),
    )


def test_a_controller_only_the_login_node_reaches_runs_the_same_job_as_directly(
    tmp_path: Path, cluster: ClientSession, client, ssh_login: SshSetup
) -> None:
    ssh = ssh_login
    flag = tmp_path / "go"
    spec = gated_spec(tmp_path / "spec", flag)
    hidden, key = hidden_file(cluster, tmp_path / "laptop")
    job = ["--jobs", str(spec), "--job", "gated"]

    # without the tunnel, this connection file leads nowhere
    direct = run(
        ["--file", str(hidden), *job, "--headless", "--runs-dir", str(tmp_path / "no")]
        + ["--timeout", "2"],
        env=ssh_env(ssh),
    )
    assert direct.returncode == 3, direct.stderr
    assert direct.stderr.count("\n") == 1 and "could not reach the controller" in direct.stderr

    runs = tmp_path / "runs"
    proc = headless(
        ["--file", str(hidden), "--sshserver", GOOD, *job, "--runs-dir", str(runs)], ssh
    )
    err = Lines(proc)
    try:
        assert until(lambda: len(results_of(runs)) >= 2, timeout=30), err.text()
        # connected: the ssh tunnel carries only host names and ports, never the key
        tunnels = ssh_processes(proc.pid)
        assert len(tunnels) == 1
        cmdline = " ".join(tunnels[0].cmdline())
        assert key not in cmdline and "BatchMode=yes" in cmdline
        assert "-L 127.0.0.1:" in cmdline and f":{CLUSTER_HEAD}:" in cmdline
        registration = json.loads(hidden.read_text())["registration"]
        assert (CLUSTER_HEAD, registration) in ssh.server.forwarded
    finally:
        flag.touch()
    out, stderr = finish(proc, err)
    assert proc.returncode == 0, stderr
    assert key not in out + stderr
    assert stderr.startswith(f"ippmon: connected to default (2 engines, {GOOD})")
    assert all_gone(tunnels)  # the tunnel ends with ippmon

    # the same job without a tunnel (the session cluster's own connection file)
    plain_runs = tmp_path / "plain"
    plain = run(
        ["--cluster-id", cluster.info.cluster_id, *job, "--headless"]
        + ["--runs-dir", str(plain_runs)]
    )
    assert plain.returncode == 0, plain.stderr

    def essentials(lines: list[dict]) -> list[tuple]:
        return sorted((r["index"], r["status"], r["result"], r["stdout"]) for r in lines)

    assert essentials(results_of(runs)) == essentials(results_of(plain_runs))
    assert [r[0] for r in essentials(results_of(runs))] == list(range(6))
    assert out.splitlines()[0] == plain.stdout.splitlines()[0]  # "gated finished: 6 tasks - 6 ok"


def test_the_tuis_cluster_process_runs_a_job_through_the_tunnel(
    tmp_path: Path, cluster: ClientSession, ssh_login: SshSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TUI's path: its cluster process (`RemoteBackend`) connects with `--file` and
    `--sshserver` as the command line gives them, and a job's results come back through it."""
    from ippmon.cluster_process import RemoteBackend
    from ippmon.jobspec import load_catalog
    from ippmon.model import Phase

    monkeypatch.setenv(SSH_COMMAND_ENV, ssh_login.ssh_command)  # the child inherits it
    flag = tmp_path / "go"
    flag.touch()
    spec = load_catalog(gated_spec(tmp_path / "spec", flag)).get("gated")
    hidden, key = hidden_file(cluster, tmp_path / "laptop")
    backend = RemoteBackend(ConnectOptions(file=str(hidden), sshserver=GOOD, timeout=10))
    try:
        session = backend.connect()
        assert session.info.location == GOOD and session.info.engines == 2
        tunnels = ssh_processes(backend.pid)
        assert len(tunnels) == 1 and key not in " ".join(tunnels[0].cmdline())
        job = session.submit(spec, str(tmp_path / "runs"))
        assert until(lambda: job.poll().phase is Phase.FINISHED, timeout=60)
        assert sorted(job.task(i).result for i in range(6)) == [0, 10, 20, 30, 40, 50]
        session.close()
        assert all_gone(tunnels)  # closing the session ends its tunnel
    finally:
        backend.close()


def test_top_watches_the_cluster_through_the_tunnel(
    tmp_path: Path, cluster: ClientSession, ssh_login: SshSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ippmon top`'s watch through `--sshserver`: the controller's records (the job and its
    counts) and the engines' own iopub messages (what each runs, every line printed) both come
    through the tunnel."""
    from ippmon.cluster_process import RemoteBackend
    from ippmon.jobspec import load_catalog
    from ippmon.model import Phase

    monkeypatch.setenv(SSH_COMMAND_ENV, ssh_login.ssh_command)
    flag = tmp_path / "go"
    spec = load_catalog(gated_spec(tmp_path / "spec", flag)).get("gated")
    hidden, _key = hidden_file(cluster, tmp_path / "laptop")
    backend = RemoteBackend(ConnectOptions(file=str(hidden), sshserver=GOOD, timeout=10))
    try:
        session = backend.connect()
        watch = session.watch()
        job = session.submit(spec, str(tmp_path / "runs"))

        def engines_busy_with_it() -> bool:
            snap = watch.poll()
            labels = [j.label for j in snap.jobs]
            return [e.state for e in snap.engines] == ["busy", "busy"] and "ippmon:gated" in labels

        assert until(engines_busy_with_it, timeout=60)
        flag.touch()
        lines: list[str] = []

        def every_line_heard() -> bool:
            new, _dropped = watch.output_since(max((0, *seen)))
            seen.extend(line.seq for line in new)
            lines.extend(line.text for line in new)
            return sorted(lines) == sorted(f"item {x}" for x in range(6))

        seen: list[int] = []
        assert until(every_line_heard, timeout=60), lines
        assert until(lambda: job.poll().phase is Phase.FINISHED, timeout=60)
        watch.close()
        session.close()
    finally:
        flag.touch()
        backend.close()


FAILURES = {
    UNKNOWN_KEY: "the ssh server's host key is not known, and ippmon cannot ask whether "
    "to trust it",
    REFUSED_KEY: "the ssh server refused the login (publickey): it accepts none of your keys",
    PASSWORD: "the ssh server asks for a password (keyboard-interactive,password), "
    "and ippmon cannot type one",
    SILENT: "the ssh server did not answer within 3 s",
}


@pytest.mark.parametrize("host", list(FAILURES))
def test_ssh_failures_are_one_line_exit_3_within_the_timeout(
    tmp_path: Path, cluster: ClientSession, ssh_login: SshSetup, host: str
) -> None:
    hidden, key = hidden_file(cluster, tmp_path / "laptop")
    spec = gated_spec(tmp_path / "spec", tmp_path / "go")
    started = time.monotonic()
    proc = run(
        ["--file", str(hidden), "--sshserver", host, "--timeout", "3", "--headless"]
        + ["--jobs", str(spec), "--job", "gated", "--runs-dir", str(tmp_path / "runs")],
        env=ssh_env(ssh_login),
        timeout=30,
    )
    took = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("ippmon: could not connect to connection file ")
    assert f"via ssh {host}: " in line and FAILURES[host] in line
    assert key not in proc.stderr + proc.stdout and proc.stdout == ""
    assert took < 3 + 6  # the timeout, and the start of a Python process on a busy machine
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_tunnel_drops_mid_job_and_attach_through_a_new_one_completes_it(
    tmp_path: Path, cluster: ClientSession, client, ssh_login: SshSetup
) -> None:
    ssh = ssh_login
    flag = tmp_path / "go"
    spec = gated_spec(tmp_path / "spec", flag)
    hidden, _ = hidden_file(cluster, tmp_path / "laptop")
    runs = tmp_path / "runs"
    proc = headless(
        ["--file", str(hidden), "--sshserver", GOOD, "--timeout", "2"]
        + ["--jobs", str(spec), "--job", "gated", "--runs-dir", str(runs)],
        ssh,
    )
    err = Lines(proc)
    try:
        assert until(lambda: len(results_of(runs)) >= 2, timeout=30), err.text()
        tunnels = ssh_processes(proc.pid)
        ssh.server.stop()  # the login node goes away: the tunnel drops
        try:
            assert all_gone(tunnels)
            assert until(lambda: "controller unreachable" in err.text(), timeout=30), err.text()
        finally:
            ssh.server.start()
        proc.send_signal(signal.SIGHUP)  # the user gives up on this window
        out, stderr = finish(proc, err, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, stderr
    hint = f"ippmon attach {folder_name(runs)} --file {hidden} --sshserver {GOOD} --runs-dir {runs}"
    assert f"detached: tasks keep running; `{hint}` follows them" in stderr  # all it needs
    assert "6 tasks - 2 ok, 0 failed, 0 cancelled, 0 lost, 4 still queued or running" in out
    (folder,) = runs.iterdir()
    assert sorted(r["index"] for r in read_results(folder)) == [0, 1]  # saved before the drop

    flag.touch()
    again = run(
        ["attach", folder.name, "--runs-dir", str(runs), "--headless"]
        + ["--file", str(hidden), "--sshserver", GOOD],
        env=ssh_env(ssh),
    )
    assert again.returncode == 0, again.stderr
    lines = read_results(folder)
    assert sorted(r["index"] for r in lines) == list(range(6))  # every index exactly once
    assert all(r["status"] == "ok" and r["result"] == r["index"] * 10 for r in lines)


def folder_name(runs: Path) -> str:
    (folder,) = runs.iterdir()
    return folder.name
