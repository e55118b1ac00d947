"""Cost of one task-stream tick at 64 engines x 20,000 tasks while the job runs: the job side's
binning (`Tracker.stream`), the answer's trip through pickle (it crosses to the TUI's process),
and the screen's redraw of every visible row (`StreamChart.apply` + `render_line`, no cached
lines). The job is played into the tracker up to 90 % of its time, then each tick moves the clock
on a second and feeds what started and finished in it before asking for the stream, so what is
measured is the incremental path; the first tick at each zoom (a zoom change: the cells binned
from the tasks in sight) is printed on its own line.

Baseline, measured in the same run: the monitor's engine table (`EngineTable`) given the same 64
engines and redrawn the same way, the widget the stream stands beside. Prints times and ratios;
asserts nothing.

    python bench/bench_stream.py            # 64 engines x 20,000 tasks, 150 cells (160 columns)
    python bench/bench_stream.py --width 133  # the whole job steps from 4 s to 5 s cells
    python bench/bench_stream.py --engines 512 --tasks 100000
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import random
import statistics
import time
from collections.abc import Callable

from textual.app import App, ComposeResult

from ippmon.model import TaskState
from ippmon.stream import Zoom
from ippmon.tracker import Event, Recorded, Tracker
from ippmon.ui.widgets.engine_panel import EngineTable
from ippmon.ui.widgets.task_stream import StreamChart

T0 = 1_767_225_600.0
HISTORY = 0.9  # the share of the job seen before the measured ticks


class Job:
    """A job of `n` tasks of 0.5-3 s spread over `engines` engines (one in 50 failed), played
    into a `Tracker` as it happens: `run_to(t)` feeds what started and finished up to `t`."""

    def __init__(self, n: int, engines: int) -> None:
        rng = random.Random(1)
        clocks = [T0] * engines
        self.events: list[tuple[float, int, int]] = []  # (when, 0 started / 1 finished, task)
        self.plan: list[tuple[int, float, float]] = []
        for i in range(n):
            e = i % engines
            d = rng.uniform(0.5, 3.0)
            self.plan.append((e, clocks[e], clocks[e] + d))
            self.events += [(clocks[e], 0, i), (clocks[e] + d, 1, i)]
            clocks[e] += d + rng.uniform(0, 0.2)
        self.events.sort()
        self.end = max(clocks)
        self.clock = [T0]
        self.tracker = Tracker("bench", n, clock=lambda: self.clock[0])
        self.mds = [
            {"engine_id": None, "submitted": T0, "started": None, "completed": None}
            for _ in self.plan
        ]
        self.tracker.add_chunks([([i], md) for i, md in enumerate(self.mds)], attempt=1)
        self.tracker.set_engines(range(engines))
        self.next = 0

    def run_to(self, t: float) -> int:
        """Feed the events up to `t`, then poll at `t`; how many tasks finished."""
        tracker, events, done = self.tracker, self.events, 0
        while self.next < len(events) and events[self.next][0] <= t:
            when, what, i = events[self.next]
            self.next += 1
            engine, started, completed = self.plan[i]
            if what == 0:
                self.mds[i].update(engine_id=engine, started=started)
                tracker.notify(i, Event.ACTIVITY)
                continue
            self.mds[i]["completed"] = completed
            if i % 50 == 0:
                tracker.notify(i, Event.DONE, Recorded(TaskState.ERROR, None, ("E", "x", "")))
            else:
                tracker.notify(i, Event.DONE, [i])
            tracker.notify(i, Event.OUTPUT_DONE)
            done += 1
        self.clock[0] = t
        tracker.poll()
        return done


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def timed(fn: Callable[[], object], repeat: int) -> float:
    """The median of `repeat` runs, in ms."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(ms(start))
    return statistics.median(times)


class Bench(App[None]):
    def compose(self) -> ComposeResult:
        yield StreamChart()
        yield EngineTable()


def redraw(widget: StreamChart | EngineTable) -> None:
    widget._strips.clear()
    for y in range(widget.size.height):
        widget.render_line(y)


async def measure(args: argparse.Namespace) -> None:
    width, height, ticks = args.width, args.height, args.ticks
    app = Bench()
    async with app.run_test(size=(width + 10, height)) as pilot:
        chart, table = app.query_one(StreamChart), app.query_one(EngineTable)
        chart.styles.height = table.styles.height = height // 2
        await pilot.pause()
        cells = chart.cells_width
        for zoom in Zoom:
            started = time.perf_counter()
            job = Job(args.tasks, args.engines)
            start = job.events[0][0] + HISTORY * (job.end - job.events[0][0])
            job.run_to(start)
            built = time.perf_counter() - started
            if zoom is Zoom.MINUTE:

                def engine_table(engines: tuple = job.tracker.snapshot().engines) -> None:
                    table.apply(engines)
                    redraw(table)

                base = timed(engine_table, 30)
                print(f"built {args.tasks:,} tasks on {args.engines} engines in {built:.1f} s")
                print(f"baseline: engine table, {args.engines} engines: {base:6.2f} ms a tick")
                print(
                    f"stream, {cells} cells x {args.engines} engines, {ticks} ticks of 1 s while "
                    f"the job runs (from {HISTORY:.0%} of it on), median [max]:"
                )
            first = time.perf_counter()
            job.tracker.stream(zoom, cells)
            cold = ms(first)
            rows: dict[str, list[float]] = {k: [] for k in ("intake", "bin", "pickle", "render")}
            finished, size, steps = 0, 0, []
            for k in range(1, ticks + 1):
                t = time.perf_counter()
                finished += job.run_to(start + k)
                rows["intake"].append(ms(t))
                t = time.perf_counter()
                stream = job.tracker.stream(zoom, cells)
                rows["bin"].append(ms(t))
                t = time.perf_counter()
                wire = pickle.dumps(stream, protocol=pickle.HIGHEST_PROTOCOL)
                stream = pickle.loads(wire)
                rows["pickle"].append(ms(t))
                t = time.perf_counter()
                chart.apply(stream)
                redraw(chart)
                rows["render"].append(ms(t))
                size = len(wire)
                if not steps or steps[-1] != f"{stream.cell_s:.3g}":
                    steps.append(f"{stream.cell_s:.3g}")
            tick = [b + p + r for b, p, r in zip(rows["bin"], rows["pickle"], rows["render"])]
            med = statistics.median
            print(
                f"  {zoom.label:16} binning {med(rows['bin']):5.2f} ms · pickle "
                f"{med(rows['pickle']):4.2f} ms ({size:,} bytes) · render "
                f"{med(rows['render']):4.2f} ms · tick {med(tick):5.2f} ms [{max(tick):5.2f}] "
                f"= {med(tick) / base:4.1f}× the engine table"
            )
            print(
                f"  {'':16} first tick (zoom change) binning {cold:6.2f} ms · cells of "
                f"{' → '.join(steps)} s · {finished / ticks:.0f} tasks done a tick, taken in "
                f"{med(rows['intake']):.2f} ms (not in the tick)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--engines", type=int, default=64)
    parser.add_argument("--width", type=int, default=150, help="columns of the chart")
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--ticks", type=int, default=30, help="ticks measured at each zoom")
    args = parser.parse_args()
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
