"""Worst event-loop stall of the TUI while a 20,000-task job runs, and key-press latency.

Starts a private 2-engine cluster, opens the app on it (headless Textual driver, 100x30), submits
a job of 20,000 tiny tasks that each print a line, and for `--seconds` measures:
- stall: how late an `asyncio.sleep(5 ms)` on the UI loop wakes up (the loop's longest pause);
- key latency: from a key event ("f", toggle follow) posted to the app until the screen's action
  handler runs (what a person waits for before the screen can change).
The same is measured on the idle picker first (the baseline of this run). Prints, asserts nothing.

    python bench/bench_ui_stall.py [--tasks 20000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from textual import events

from ippmon.connect import ClusterBackend, ConnectOptions
from ippmon.jobspec import load_catalog
from ippmon.ui.app import IppmonApp
from ippmon.ui.screens.monitor import MonitorScreen

HANDLED: list[float] = []


def _record_follow(original):  # noqa: ANN001, ANN202
    def action_follow(self) -> None:  # noqa: ANN001
        HANDLED.append(time.perf_counter())
        return original(self)

    return action_follow


MonitorScreen.action_follow = _record_follow(MonitorScreen.action_follow)


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
        await asyncio.sleep(0.005)
        stalls.append(loop.time() - t - 0.005)
        if sent is not None and HANDLED and HANDLED[-1] >= sent:
            keys.append(HANDLED[-1] - sent)
            sent = None
        if sent is None and loop.time() >= next_key and isinstance(app.screen, MonitorScreen):
            sent = time.perf_counter()
            app.post_message(events.Key("f", "f"))
            next_key = loop.time() + 0.5
    return stalls


def report(name: str, stalls: list[float], keys: list[float]) -> None:
    ms = 1e3
    q = statistics.quantiles(stalls, n=100)
    line = (
        f"{name:<28} stall p50 {q[49] * ms:6.1f} ms  p99 {q[98] * ms:6.1f} ms  "
        f"max {max(stalls) * ms:6.1f} ms"
    )
    if keys:
        line += (
            f" | key to handler median {statistics.median(keys) * ms:5.1f} ms"
            f"  max {max(keys) * ms:6.1f} ms  (n={len(keys)})"
        )
    print(line)


async def main(tasks: int, seconds: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ippmon-bench-"))
    (folder / "ippmon.toml").write_text(
        "[jobs.big]\n"
        'function = "ippmon.demo:slow_square"\n'
        f"inputs = {{ range = [0, {tasks}] }}\n"
        "kwargs = { delay = 0.0, steps = 1 }\n"
    )
    catalog = load_catalog(folder / "ippmon.toml")
    app = IppmonApp(
        ClusterBackend(ConnectOptions(local=2)),
        catalog,
        runs_dir=str(folder / "runs"),
        local_engines=2,
    )
    async with app.run_test(size=(100, 30)) as pilot:
        while type(app.screen).__name__ != "JobPickerScreen":
            await pilot.pause(0.2)
        keys: list[float] = []
        stalls = await loop_stalls(min(5.0, seconds), app, keys)
        report("idle picker (baseline)", stalls, keys)

        # submit "big": it is the last spec of the catalog
        await pilot.press("end", "enter")
        while not isinstance(app.screen, MonitorScreen):
            await pilot.pause(0.1)
        keys = []
        stalls = await loop_stalls(seconds, app, keys)
        snap = app.screen.job.snapshot() if app.screen.job else None
        done = f"{snap.done}/{snap.total} done, {snap.output_seq} lines" if snap else "?"
        report(f"busy {tasks}-task job", stalls, keys)
        print(f"  (during the measurement: {done})")
        if app.screen.job:
            await asyncio.to_thread(app.screen.job.cancel)
        await pilot.press("q")
        await pilot.pause(0.5)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    asyncio.run(main(args.tasks, args.seconds))
