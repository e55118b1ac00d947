"""ippmon as a user runs it: in a terminal (tmux), driven with keys, read off the screen.

Each test starts `python -m ippmon --cluster-id <the session cluster>` in its own detached tmux
session of 100x30, sends keys with `tmux send-keys` and polls `tmux capture-pane` (bounded, small
waits) until the expected text shows. The session is always killed at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from cluster_helpers import FAIL_ONCE, until, write_spec
from tmux_helpers import TMUX, Tmux, python_stacks

from ippmon.connect import ClientSession
from ippmon.records import read_results

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(TMUX is None, reason="tmux is not on PATH"),
]

IPPMON = [sys.executable, "-m", "ippmon"]


def ippmon_in_tmux(cluster: ClientSession, spec: Path, runs: Path, *extra: str) -> Tmux:
    command = IPPMON + ["--cluster-id", cluster.info.cluster_id, "--jobs", str(spec)]
    command += ["--runs-dir", str(runs), *extra]
    env = {"IPYTHONDIR": os.environ["IPYTHONDIR"]}
    return Tmux(command, env=env, cwd=str(spec.parent), workdir=runs.parent)


def the_run(runs: Path) -> Path:
    (folder,) = [p for p in runs.iterdir() if (p / "run.json").exists()]
    return folder


def choose_last_job(term: Tmux, name: str) -> None:
    """In the picker, End highlights the spec file's (last) job; Enter submits it."""
    term.wait_for(name, what=f"the job {name} in the picker")
    term.send("End")
    term.wait_for(re.compile(rf"─ {re.escape(name)} ─"), what=f"{name} highlighted (detail box)")
    term.send("Enter")


def test_pick_submit_watch_and_finish(cluster: ClientSession, client, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec",
        """
        [jobs.small]
        description = "8 squares, 0.6 s each"
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 8] }
        kwargs = { delay = 0.6, steps = 2 }
        """,
    )
    runs = tmp_path / "runs"
    term = ippmon_in_tmux(cluster, spec, runs, "--notify-after", "0")
    raw = tmp_path / "pane.raw"  # every byte ippmon writes to its terminal
    try:
        term.start()
        term.tmux("pipe-pane", "-o", "-t", term.name, f"cat >> {raw}")
        picker = term.wait_for(
            lambda s: all(n in s for n in ("squares", "flaky", "chatty", "stragglers", "small")),
            what="the picker with the built-in jobs and the spec's job",
        )
        assert cluster.info.cluster_id in picker  # the cluster it connected to
        choose_last_job(term, "small")
        term.wait_for(
            lambda s: (
                "RUNNING" in s
                and "─ e0 ─" in s  # the engine panels' titles
                and "─ e1 ─" in s
                and re.search(r"\b[0-8] / 8 · ", s)
            ),  # the progress line
            what="the monitor running, with engines and progress",
        )
        term.wait_for(re.compile(r"\[e\d #\d\] square \d: step"), what="task output")
        done = term.wait_for("finished · all 8 tasks ok", timeout=30)
        assert re.search(r"FINISHED +every task ok", done) and "ok 8 " in done, done
        # the job ended while watched: the bell and a desktop notification (OSC 9 and 777)
        told = b"\a\x1b]9;ippmon: small: all 8 tasks ok\x07\x1b]777;notify;ippmon;small: all 8"
        assert until(lambda: told in raw.read_bytes(), timeout=10), raw.read_bytes()[-300:]
        term.send("q")  # nothing runs: quits at once
        assert term.wait_exit() == 0
        records = read_results(the_run(runs))
        assert sorted((r["index"], r["status"]) for r in records) == [(i, "ok") for i in range(8)]
    finally:
        term.kill()


def test_cancel_with_c_and_y(cluster: ClientSession, client, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec",
        """
        [jobs.many]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 40] }
        kwargs = { delay = 1.0, steps = 1 }
        """,
    )
    runs = tmp_path / "runs"
    term = ippmon_in_tmux(cluster, spec, runs)
    try:
        term.start()
        choose_last_job(term, "many")
        term.wait_for(re.compile(r"ok [1-9]"), what="some tasks done", timeout=30)
        term.send("c")
        dialog = term.wait_for("Cancel many?", what="the cancel dialog")
        assert "Keep running" in dialog
        confirmed = time.monotonic()
        term.send("y")
        done = term.wait_for("finished · ", timeout=10, what="the job finished after cancel")
        took = time.monotonic() - confirmed
        print(f"\ncancel confirmed → finished on screen in {took:.2f} s")
        cancelled = re.search(r"cancelled (\d+)", done)
        assert cancelled and int(cancelled[1]) >= 30, done
        assert re.search(r"finished · \d+ of 40 tasks ok", done), done
        term.send("q")
        assert term.wait_exit() == 1  # some tasks were cancelled
        records = read_results(the_run(runs))
        assert len(records) == 40
        assert sum(r["status"] == "cancelled" for r in records) == int(cancelled[1])
    finally:
        term.kill()


def test_resubmit_with_r_after_transient_failures(
    cluster: ClientSession, client, tmp_path: Path
) -> None:
    marker = tmp_path / "seen"
    marker.mkdir()
    spec = write_spec(
        tmp_path / "spec",
        f"""
        [jobs.transient]
        function = "tasks.py:fail_once"
        inputs = {{ range = [0, 8] }}
        kwargs = {{ folder = "{marker}" }}
        """,
        {"tasks.py": FAIL_ONCE},
    )
    runs = tmp_path / "runs"
    term = ippmon_in_tmux(cluster, spec, runs)
    try:
        term.start()
        choose_last_job(term, "transient")
        first = term.wait_for("finished · 5 of 8 tasks ok", timeout=30)
        assert "3 not ok: r resubmits them" in first, first
        term.send("r")
        term.wait_for("resubmitted 3 tasks as attempt 2", what="the resubmit notification")
        done = term.wait_for("finished · all 8 tasks ok", timeout=30)
        assert re.search(r"FINISHED +attempt 2 · every task ok", done), done
        term.send("q")
        assert term.wait_exit() == 0
        records = read_results(the_run(runs))
        second = sorted((r["index"], r["status"]) for r in records if r["attempt"] == 2)
        assert second == [(0, "ok"), (3, "ok"), (6, "ok")]
    finally:
        term.kill()


def test_hang_up_detaches_and_attach_completes_the_run(
    cluster: ClientSession, client, tmp_path: Path
) -> None:
    n = 12
    spec = write_spec(
        tmp_path / "spec",
        f"""
        [jobs.longer]
        function = "ippmon.demo:slow_square"
        inputs = {{ range = [0, {n}] }}
        kwargs = {{ delay = 0.5, steps = 1 }}
        """,
    )
    runs = tmp_path / "runs"
    term = ippmon_in_tmux(cluster, spec, runs)
    try:
        term.start()
        proc = term.program()
        assert "ippmon" in " ".join(proc.cmdline())
        choose_last_job(term, "longer")
        term.wait_for(re.compile(r"ok [2-9]"), what="a few tasks done", timeout=30)
        hung_up = time.monotonic()
        term.hang_up()  # the terminal goes away: SIGHUP (and SIGCONT) from the kernel
        try:
            proc.wait(timeout=15)
            print(f"\nippmon exited {time.monotonic() - hung_up:.2f} s after the hang-up")
        except psutil.TimeoutExpired:
            stacks = python_stacks(proc.pid)  # where it is stuck, for the failure message
            proc.kill()  # SIGTERM would not do: ippmon takes it for a hang-up too
            raise AssertionError(
                f"ippmon did not exit within 15 s of the hang-up\n{stacks}"
            ) from None
        folder = the_run(runs)
        run = json.loads((folder / "run.json").read_text())
        assert run["state"] == "detached", run["state"]
        assert len(read_results(folder)) < n  # some were left running
        attach = subprocess.run(
            IPPMON + ["attach", folder.name, "--runs-dir", str(runs), "--headless"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert attach.returncode == 0, attach.stderr + attach.stdout
        records = read_results(folder)
        assert sorted(r["index"] for r in records) == list(range(n))  # each exactly once
        assert all(r["status"] == "ok" and r["result"] == r["index"] ** 2 for r in records)
        assert json.loads((folder / "run.json").read_text())["state"] == "finished"
    finally:
        term.kill()


TERMINAL_TRICKS = """
    import os, sys, time

    def tricks(x, flag):
        out = sys.stdout
        out.write("\\x1b]2;pwned-title\\x07\\x1b]52;c;cHduZWQ=\\x07tricks done\\n")
        for i in range(1, 6):
            out.write(f"\\rprog {x}: {i}/5")
            out.flush()
            if i == 3:  # hold at 3/5 until the test has seen it live
                deadline = time.time() + 60
                while not os.path.exists(flag) and time.time() < deadline:
                    time.sleep(0.01)
        out.write("\\n")
        return x
"""


def test_task_escape_codes_never_reach_the_terminal_and_progress_shows_live(
    cluster: ClientSession, client, tmp_path: Path
) -> None:
    """A task writes an OSC window title and an OSC 52 clipboard sequence, then a `\\r`
    progress counter: the pane's title and tmux's paste buffers stay untouched, the engine
    shows the counter's latest value while the task runs, and the output its final value."""
    flag = tmp_path / "go"
    spec = write_spec(
        tmp_path / "spec",
        f"""
        [jobs.tricks]
        function = "tricks.py:tricks"
        inputs = {{ range = [0, 1] }}
        kwargs = {{ flag = "{flag}" }}
        """,
        {"tricks.py": TERMINAL_TRICKS},
    )
    runs = tmp_path / "runs"
    term = ippmon_in_tmux(cluster, spec, runs)
    try:
        term.start()
        # let applications set tmux's clipboard, so a sequence that got through would show
        term.tmux("set-option", "-g", "set-clipboard", "on")
        title = term.pane("#{pane_title}")
        choose_last_job(term, "tricks")
        live = term.wait_for("prog 0: 3/5", what="the counter's latest value, live")
        assert "prog 0: 1/5" not in live and "prog 0: 2/5" not in live
        flag.touch()
        done = term.wait_for("finished · all 1 task ok", timeout=30)
        assert re.search(r"\[e\d #0\] prog 0: 5/5", done), done
        assert "prog 0: 3/5" not in done.split("output")[-1]  # one line: its final value
        assert re.search(r"\[e\d #0\] tricks done", done), done
        assert term.pane("#{pane_title}") == title != "pwned-title"
        assert term.tmux("list-buffers", check=False).stdout.strip() == ""
        term.send("q")
        assert term.wait_exit() == 0
    finally:
        term.kill()
