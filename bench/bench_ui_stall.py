"""Worst event-loop stall of the TUI while a 20,000-task job runs, and key-press latency.

Starts a private cluster (2 engines unless `--engines N`), opens the app on it (headless Textual
driver, 100x30 unless `--size`), submits a job of 20,000 tiny tasks that each print a line, and
for `--seconds` measures:
- stall: how late an `asyncio.sleep(5 ms)` on the UI loop wakes up (the loop's longest pause);
- key latency: from a key event ("f", toggle follow) posted to the app until the screen's action
  handler runs (what a person waits for before the screen can change);
- UI thread: how long it ran, and how long it was ready to run but had no CPU (/proc schedstat);
- then the same stalls for 5 s after `t` opens the tasks view of the running job.
Baselines measured in the same run: the idle picker, and a bare asyncio loop in a process of its
own (same nice value as the TUI) sampling the same way during the busy window, which is the
floor this machine sets while its cores are busy with the job. Prints, asserts nothing.

    python bench/bench_ui_stall.py [--tasks 20000] [--seconds 20] [--size 100x30] [--in-process]
                                   [--engines 2 | --cluster-id ID] [--coloured] [--stream]
                                   [--explain]

`--coloured`: every task prints a line coloured with SGR codes, as coloured logging does (the
output pane colours it).

`--explain`: for every stall over 25 ms, the UI thread's CPU time and wait for a CPU during it
(the rest it slept, in `select` or waiting for the GIL), the loop callbacks that ran over 5 ms
and the garbage collections in them.

`--in-process` runs the ipyparallel client in the TUI's process (`ClusterBackend`, as before
`RemoteBackend`); `IPPMON_NICE=0` leaves the cluster side at the TUI's priority.
`--engines N`: the engines of the private `--local` cluster, which ippmon lowers below itself (2
unless given). `--cluster-id ID` uses a cluster you started instead (`ipcluster start -n 2
--cluster-id ID`, normal priority). Every notice the monitor showed during the busy window is
listed (a healthy job should show none).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from textual import events

from ippmon.cluster_process import RemoteBackend
from ippmon.connect import ClusterBackend, ConnectOptions
from ippmon.jobspec import load_catalog
from ippmon.ui.app import IppmonApp
from ippmon.ui.screens.monitor import MonitorScreen

HANDLED: list[float] = []

PROBE = """
import asyncio, json, sys
async def main(seconds):
    loop = asyncio.get_running_loop()
    stalls = []
    end = loop.time() + seconds
    while loop.time() < end:
        t = loop.time()
        await asyncio.sleep(0.005)
        stalls.append(loop.time() - t - 0.005)
    print(json.dumps(stalls))
asyncio.run(main(float(sys.argv[1])))
"""


def _record_follow(original):  # noqa: ANN001, ANN202
    def action_follow(self) -> None:  # noqa: ANN001
        HANDLED.append(time.perf_counter())
        return original(self)

    return action_follow


MonitorScreen.action_follow = _record_follow(MonitorScreen.action_follow)


def ui_thread_times_s() -> tuple[float, float]:
    """Seconds the UI (main) thread has run on a CPU, and been runnable but not running."""
    tid = threading.main_thread().native_id
    try:
        ran, waited = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[:2]
    except OSError:
        return float("nan"), float("nan")
    return int(ran) / 1e9, int(waited) / 1e9


class Explain:
    """Where each long stall of the UI loop went: the loop's own callbacks that ran long (timed
    around `Handle._run`, which every callback and task step goes through), the UI thread's CPU
    time and its wait for a CPU, and the garbage collections (over 2 ms) on the UI thread. The
    rest the UI thread slept: in `select` past its timeout, or waiting for the GIL while another
    thread of the process ran Python."""

    def __init__(self, threshold_s: float = 0.025) -> None:
        self.threshold_s = threshold_s
        self.callbacks: list[tuple[float, float, str]] = []  # (start, seconds, what)
        self.stalls: list[tuple[float, float, float, float]] = []
        original = asyncio.events.Handle._run
        callbacks = self.callbacks

        def timed_run(handle: asyncio.events.Handle) -> None:
            start = time.perf_counter()
            original(handle)
            took = time.perf_counter() - start
            if took > 0.005:
                callbacks.append((start, took, _describe(handle)))

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        self.collections: list[tuple[float, float, int]] = []  # (start, seconds, generation)
        started: list[float] = []

        def collected(phase: str, info: dict[str, int]) -> None:
            if threading.current_thread() is not threading.main_thread():
                return
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                took = time.perf_counter() - started[0]
                if took > 0.002:
                    self.collections.append((started[0], took, info["generation"]))

        gc.callbacks.append(collected)

    def sample(self) -> tuple[float, float, float]:
        return (time.perf_counter(), *ui_thread_times_s())

    def stall(self, before: tuple[float, float, float], stall: float) -> None:
        if stall < self.threshold_s:
            return
        after = self.sample()
        self.stalls.append((before[0], stall, after[1] - before[1], after[2] - before[2]))

    def report(self) -> None:
        ms = 1e3
        print(f"  stalls over {self.threshold_s * ms:.0f} ms, explained ({len(self.stalls)}):")
        for start, stall, ran, waited in self.stalls:
            slow = [
                f"{took * ms:.0f} ms {what}"
                for at, took, what in self.callbacks
                if at < start + stall + 0.005 and at + took > start
            ] + [
                f"of which {took * ms:.0f} ms collecting garbage (generation {generation})"
                for at, took, generation in self.collections
                if at < start + stall + 0.005 and at + took > start
            ]
            print(
                f"    {stall * ms:5.1f} ms: UI thread ran {ran * ms:4.1f}, waited for a CPU "
                f"{waited * ms:4.1f}, slept {max(0.0, stall - ran - waited) * ms:4.1f}; "
                f"callbacks over 5 ms: {'; '.join(slow) or 'none'}"
            )


def _describe(handle: asyncio.events.Handle) -> str:
    callback = handle._callback
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = (
            f" at {frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}" if frame else ""
        )
        return f"task {getattr(coro, '__qualname__', coro)}{where}"
    return getattr(callback, "__qualname__", repr(callback))[:80]


EXPLAIN: Explain | None = None


async def loop_stalls(seconds: float, app, keys: list[float]) -> list[float]:  # noqa: ANN001
    """Sample the loop's lateness; on the monitor, post an "f" key twice a second and time
    how long until its handler ran."""
    loop = asyncio.get_running_loop()
    stalls: list[float] = []
    end = loop.time() + seconds
    next_key = loop.time() + 0.5
    sent: float | None = None
    while loop.time() < end:
        t = loop.time()
        before = EXPLAIN.sample() if EXPLAIN else None
        await asyncio.sleep(0.005)
        stalls.append(loop.time() - t - 0.005)
        if EXPLAIN and before:
            EXPLAIN.stall(before, stalls[-1])
        if sent is not None and HANDLED and HANDLED[-1] >= sent:
            keys.append(HANDLED[-1] - sent)
            sent = None
        if sent is None and loop.time() >= next_key and isinstance(app.screen, MonitorScreen):
            sent = time.perf_counter()
            app.post_message(events.Key("f", "f"))
            next_key = loop.time() + 0.5
    return stalls


async def watch_notices(app, notices: dict[str, int]) -> None:  # noqa: ANN001
    """Count, every 0.1 s, which notice the monitor shows (numbers in it made N)."""
    while True:
        screen = app.screen
        snapshot = getattr(screen, "snapshot", None)
        if isinstance(screen, MonitorScreen) and snapshot is not None and snapshot.message:
            kind = re.sub(r"[\d:]+", "N", snapshot.message)[:70]
            notices[kind] = notices.get(kind, 0) + 1
        await asyncio.sleep(0.1)


def report(
    name: str,
    stalls: list[float],
    keys: list[float] | None = None,
    waited: float | None = None,
    ran: float | None = None,
) -> None:
    ms = 1e3
    q = statistics.quantiles(stalls, n=100)
    line = (
        f"{name:<26} stall p50 {q[49] * ms:5.1f} ms  p99 {q[98] * ms:5.1f} ms  "
        f"max {max(stalls) * ms:6.1f} ms"
    )
    if keys:
        line += (
            f" | key to handler median {statistics.median(keys) * ms:4.1f} ms"
            f"  max {max(keys) * ms:5.1f} ms (n={len(keys)})"
        )
    if waited is not None:
        line += f" | UI thread on CPU {ran:.2f} s, waiting for one {waited:.2f} s"
    print(line)


async def main(
    tasks: int,
    seconds: float,
    in_process: bool = False,
    size: tuple[int, int] = (100, 30),
    cluster_id: str | None = None,
    coloured: bool = False,
    stream: bool = False,
    engines: int = 2,
    explain: bool = False,
) -> None:
    global EXPLAIN
    if explain:
        EXPLAIN = Explain()
    folder = Path(tempfile.mkdtemp(prefix="ippmon-bench-"))
    function, kwargs = (
        ("ippmon.demo:coloured", "{ lines = 1 }")
        if coloured
        else ("ippmon.demo:slow_square", "{ delay = 0.0, steps = 1 }")
    )
    (folder / "ippmon.toml").write_text(
        "[jobs.big]\n"
        f'function = "{function}"\n'
        f"inputs = {{ range = [0, {tasks}] }}\n"
        f"kwargs = {kwargs}\n"
    )
    catalog = load_catalog(folder / "ippmon.toml")
    options = ConnectOptions(cluster_id=cluster_id) if cluster_id else ConnectOptions(local=engines)
    backend = ClusterBackend(options) if in_process else RemoteBackend(options)
    local = None if cluster_id else engines
    app = IppmonApp(backend, catalog, runs_dir=str(folder / "runs"), local_engines=local)
    where = "in the TUI process" if in_process else "in its own process"
    cluster = f"cluster {cluster_id} (started by you)" if cluster_id else f"--local {engines}"
    print(f"cluster side: {where}; {cluster}; screen {size[0]}x{size[1]}")
    async with app.run_test(size=size) as pilot:
        while type(app.screen).__name__ != "JobPickerScreen":
            await pilot.pause(0.2)
        await pilot.pause(1.0)  # its first full render is a screen switch, not idling
        keys: list[float] = []
        stalls = await loop_stalls(min(5.0, seconds), app, keys)
        report("idle picker (baseline)", stalls, keys)

        # submit "big": it is the last spec of the catalog
        await pilot.press("end", "enter")
        while not isinstance(app.screen, MonitorScreen):
            await pilot.pause(0.1)
        await pilot.pause(1.0)  # sending has started
        if stream:  # the compact task stream instead of the engine panels
            await pilot.press("v")
            await pilot.pause(0.5)
        probe = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(seconds)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        keys = []
        notices: dict[str, int] = {}
        watch = asyncio.create_task(watch_notices(app, notices))
        if EXPLAIN:
            EXPLAIN.stalls.clear()
        before = ui_thread_times_s()
        stalls = await loop_stalls(seconds, app, keys)
        after = ui_thread_times_s()
        ran, waited = after[0] - before[0], after[1] - before[1]
        watch.cancel()
        out, _ = await asyncio.to_thread(probe.communicate)
        job = app.screen.job
        snap = await asyncio.to_thread(job.snapshot) if job else None
        done = f"{snap.done}/{snap.total} done, {snap.output_seq} lines" if snap else "?"
        report(f"busy {tasks}-task job", stalls, keys, waited, ran)
        floor = json.loads(out)
        report("bare asyncio (floor)", floor)
        print(
            f"  max stall: TUI / floor = {max(stalls) / max(floor):.1f}x; "
            f"during the measurement: {done}"
        )
        print(f"  notices shown: {notices or 'none'}")
        if EXPLAIN:
            EXPLAIN.report()
            EXPLAIN.stalls.clear()
        # `t` while the job runs: the tasks view loads (rows fetched in a worker) and refreshes
        await pilot.press("t")
        stalls = await loop_stalls(min(5.0, seconds), app, [])
        shown = type(app.screen).__name__
        report("tasks view during the job", stalls)
        print(f"  (screen after the window: {shown})")
        if EXPLAIN:
            EXPLAIN.report()
        await pilot.press("escape")
        if job:
            await asyncio.to_thread(job.cancel)
        await pilot.press("q")
        await pilot.pause(0.5)
    if isinstance(backend, RemoteBackend):
        backend.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="run the ipyparallel client in the TUI's process (as before RemoteBackend)",
    )
    ap.add_argument("--size", default="100x30", help="columns x rows of the screen")
    ap.add_argument("--engines", type=int, default=2, help="engines of the --local cluster")
    ap.add_argument("--cluster-id", help="a running cluster of yours instead of a --local one")
    ap.add_argument(
        "--coloured", action="store_true", help="every task prints a line with SGR colours"
    )
    ap.add_argument("--stream", action="store_true", help="the task stream on screen (`v`)")
    ap.add_argument(
        "--explain", action="store_true", help="what each stall over 25 ms was spent on"
    )
    args = ap.parse_args()
    columns, rows = (int(n) for n in args.size.split("x"))
    asyncio.run(
        main(
            args.tasks,
            args.seconds,
            args.in_process,
            (columns, rows),
            args.cluster_id,
            args.coloured,
            args.stream,
            args.engines,
            args.explain,
        )
    )
