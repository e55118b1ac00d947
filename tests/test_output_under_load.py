"""No task output is lost under load, on a cluster started the way users start theirs.

The cluster here is `ipcluster start` at normal priority (not ippmon's `--local`, which ippmon
lowers below itself), and a CPU burner keeps the machine busy meanwhile. Under such
load the engines' output reaches the client seconds after their results; every line must still
reach the run record and the output pane, once each, in order per task.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from cluster_helpers import write_spec
from test_cli import IPPMON
from test_tui_cluster import wait_for

from ippmon.cluster_process import RemoteBackend
from ippmon.connect import unbound_ports
from ippmon.jobspec import load_catalog
from ippmon.model import Phase
from ippmon.records import latest_lines, read_results
from ippmon.ui import IppmonApp
from ippmon.ui.widgets.output_log import OutputLog

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(300)]

TASKS = 2000
LINES = 10

PRINTER = f"""
    import os, sys, time

    def print_lines(x, gate=None, gated_from=0):
        # with a gate: items from `gated_from` on wait for the gate file (at most 120 s)
        deadline = time.time() + 120
        while gate and x >= gated_from and not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.01)
        for i in range({LINES}):
            print(f"task {{x}} line {{i}}")
        print(f"task {{x}} warning", file=sys.stderr)
        return x
"""


def spec(tasks: int, kwargs: str = "{}") -> str:
    return f"""
    [jobs.printing]
    function = "printer.py:print_lines"
    inputs = {{ range = [0, {tasks}] }}
    kwargs = {kwargs}
    """


def expected_stdout(i: int) -> str:
    return "".join(f"task {i} line {n}\n" for n in range(LINES))


def start_user_cluster(*controller_args: str) -> Iterator[str]:
    """`ipcluster start -n 2` as a user runs it (normal priority, daemonized); its cluster-id.
    `controller_args` go to the controller (after `--`). Started again (up to 3 times) if its
    controller lost a port to a controller starting at the same time (`unbound_ports`)."""
    import ipyparallel as ipp

    extra = ["--", *controller_args] if controller_args else []
    for _ in range(3):
        cluster_id = f"user-{secrets.token_hex(3)}"
        subprocess.run(
            ["ipcluster", "start", "-n", "2", "--daemonize", f"--cluster-id={cluster_id}", *extra],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster = ipp.Cluster.from_file(cluster_id=cluster_id)
        try:
            client = ipp.Client(cluster_id=cluster_id, timeout=30)
            client.wait_for_engines(2, timeout=60)
            client.close()
        except BaseException:
            stop_at_once(cluster)
            raise
        if not unbound_ports(cluster):
            break
        stop_at_once(cluster)
    else:
        raise RuntimeError("ipcluster's controller could not listen on its ports, 3 times")
    try:
        yield cluster_id
    finally:
        stop_at_once(cluster)


def stop_at_once(cluster: Any) -> None:
    """Kill a daemonized cluster's controller and engines (with their children), then let
    ipyparallel tidy its files: ~1 s, where its own stop takes 6-12 s (it waits on each)."""
    pids = [cluster.controller.pid]
    pids += [one.pid for engines in cluster.engines.values() for one in engines.launchers.values()]
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            procs += [proc, *proc.children(recursive=True)]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)
    cluster.stop_cluster_sync()


@pytest.fixture(scope="module")
def user_cluster() -> Iterator[str]:
    yield from start_user_cluster()


@pytest.fixture(scope="module")
def user_cluster_keeping_tasks() -> Iterator[str]:
    """One whose controller keeps every task's record, as the README tells users who mean to
    attach to big jobs. (Its task database then slows the controller down: under the CPU
    burners its output trails the results by over a minute.)"""
    yield from start_user_cluster("--DictDB.record_limit=100000")


# Spins until its parent (this test run) is gone, or 10 minutes at most: a test run that is
# killed before its teardown must not leave the machine busy for whatever runs next.
BURNER = """
import os, time
parent, end = os.getppid(), time.monotonic() + 600
while os.getppid() == parent and time.monotonic() < end:
    for _ in range(100_000):
        pass
"""


@pytest.fixture()
def busy_machine() -> Iterator[None]:
    """One core kept busy by another program (in a session of its own, normal priority), the
    other by the job. (Two such programs starve the controller: 35 tasks/s instead of 400.)"""
    burners = [
        subprocess.Popen(
            [sys.executable, "-c", BURNER], start_new_session=True, stdin=subprocess.DEVNULL
        )
    ]
    yield
    for proc in burners:
        proc.kill()
        proc.wait()


def check_record(folder: Path, tasks: int = TASKS, *, once: bool = True) -> None:
    """Every task's full stdout and stderr in results.jsonl; `once`: in one line each, else in
    the line that stands for the task (a task recorded before its output was complete is
    recorded again, amended, when it is)."""
    lines = read_results(folder)
    if once:
        assert sorted(line["index"] for line in lines) == list(range(tasks)), "recorded twice"
    else:
        assert set(latest_lines(folder)) == set(range(tasks))
        lines = list(latest_lines(folder).values())
    incomplete = [x["index"] for x in lines if x["stdout"] != expected_stdout(x["index"])]
    assert not incomplete, f"{len(incomplete)} tasks without their full stdout: {incomplete[:10]}"
    wrong_stderr = [x["index"] for x in lines if x["stderr"] != f"task {x['index']} warning\n"]
    assert not wrong_stderr, f"{len(wrong_stderr)} tasks without their stderr: {wrong_stderr[:10]}"
    assert not any("output_incomplete" in line for line in lines)


def test_headless_records_every_line_of_every_task_on_a_busy_machine(
    user_cluster: str, busy_machine: None, tmp_path: Path
) -> None:
    spec_file = write_spec(tmp_path / "spec", spec(TASKS), {"printer.py": PRINTER})
    runs = tmp_path / "runs"
    proc = subprocess.run(
        IPPMON
        + ["--cluster-id", user_cluster, "--jobs", str(spec_file), "--job", "printing"]
        + ["--headless"]
        + ["--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unreachable" not in proc.stderr
    (folder,) = runs.iterdir()
    check_record(folder)


def test_attach_records_every_line_of_tasks_that_ended_before_and_while_attached(
    user_cluster_keeping_tasks: str, busy_machine: None, tmp_path: Path
) -> None:
    """Hang up on a headless run early; attach at once. Tasks that ended while nobody watched,
    ran when attach began or started after: every line of each in the record."""
    tasks = 1000
    gate = tmp_path / "gate"  # the last 100 wait for it: the job cannot end before the hang-up
    kwargs = f'{{ gate = "{gate}", gated_from = 900 }}'
    spec_file = write_spec(tmp_path / "spec", spec(tasks, kwargs), {"printer.py": PRINTER})
    runs = tmp_path / "runs"
    args = ["--cluster-id", user_cluster_keeping_tasks, "--runs-dir", str(runs), "--headless"]
    proc = subprocess.Popen(
        [*IPPMON, "--jobs", str(spec_file), "--job", "printing", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # every task sent (a hang-up stops the sending), some done
        sending = "sending" in line
        if "done (ok" in line and not sending and not line.split("]")[1].strip().startswith("0/"):
            break
    proc.send_signal(signal.SIGHUP)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "detached" in err, err[-2000:]
    (folder,) = runs.iterdir()
    assert len(read_results(folder)) < tasks
    gate.touch()  # the rest run now: some end before attach begins, some while it watches
    attach = subprocess.run([*IPPMON, "attach", *args], capture_output=True, text=True, timeout=300)
    assert attach.returncode == 0, attach.stderr[-2000:]
    check_record(folder, tasks, once=False)


async def test_the_tui_shows_and_records_every_line_once_in_order_on_a_busy_machine(
    user_cluster: str,
    busy_machine: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the cluster process (`RemoteBackend`), as the TUI runs every job."""
    shown: list[str] = []
    write_texts = OutputLog.write_texts

    def seen(self: OutputLog, lines: list[str], dropped: int = 0, whose: str = "the") -> None:
        assert dropped == 0, f"the pane dropped {dropped} lines"
        shown.extend(lines)
        write_texts(self, lines, dropped, whose)

    monkeypatch.setattr(OutputLog, "write_texts", seen)
    catalog = load_catalog(write_spec(tmp_path / "spec", spec(TASKS), {"printer.py": PRINTER}))
    from ippmon.connect import ConnectOptions

    backend = RemoteBackend(ConnectOptions(cluster_id=user_cluster, timeout=10))
    notices: set[str] = set()
    try:
        app = IppmonApp(backend, catalog, runs_dir=str(tmp_path / "runs"), job_name="printing")
        app.animation_level = "none"
        async with app.run_test(size=(100, 30)) as pilot:

            def finished() -> bool:
                monitor = app.monitor()
                snapshot = monitor.snapshot if monitor is not None else None
                if snapshot is not None and snapshot.message:
                    notices.add(snapshot.message)
                return snapshot is not None and snapshot.phase is Phase.FINISHED

            await wait_for(pilot, finished, "the job FINISHED", timeout=300)
            monitor = app.monitor()
            assert monitor is not None and monitor.snapshot is not None
            assert monitor.snapshot.succeeded
            folder = Path(tmp_path / "runs" / monitor.snapshot.run_id)
            app.exit()
    finally:
        backend.close()
    assert not [n for n in notices if "unreachable" in n], notices
    check_record(folder)
    by_task: dict[tuple[int, str], list[str]] = defaultdict(list)
    for text in shown:  # "[e1 #17] text", "[e1 #17]! text" (stderr)
        found = re.fullmatch(r"\[e(?:\d+|\?) #(\d+)\](!?) (.*)", text)
        assert found is not None, f"not a task's line: {text!r}"
        index, mark, said = found.groups()
        by_task[int(index), "stderr" if mark else "stdout"].append(said)
    for i in range(TASKS):
        assert by_task[i, "stdout"] == expected_stdout(i).splitlines(), f"task {i} on screen"
        assert by_task[i, "stderr"] == [f"task {i} warning"], f"task {i}'s stderr on screen"
    assert len(shown) == TASKS * (LINES + 1)
