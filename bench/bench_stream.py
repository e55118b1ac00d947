"""Cost of one task-stream tick at 64 engines x 20,000 tasks: the job side's binning
(`Tracker.stream`), the answer's trip through pickle (it crosses to the TUI's process), and the
screen's redraw of every visible row (`StreamChart.apply` + `render_line`, no cached lines).

Baseline, measured in the same run: the monitor's engine table (`EngineTable`) given the same 64
engines and redrawn the same way, the widget the stream stands beside. Prints times and ratios;
asserts nothing.

    python bench/bench_stream.py            # 64 engines x 20,000 tasks, 150 cells (160 columns)
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


def build(n: int, engines: int) -> Tracker:
    """A job of `n` tasks of 0.5-3 s spread over `engines` engines, all but one per engine
    finished (one in 50 failed), the last one on each engine running now."""
    rng = random.Random(1)
    clocks = [T0] * engines
    plan = []
    for i in range(n):
        e = i % engines
        d = rng.uniform(0.5, 3.0)
        plan.append((e, clocks[e], clocks[e] + d))
        clocks[e] += d + rng.uniform(0, 0.2)
    now = max(clocks)
    clock = [T0]
    tracker = Tracker("bench", n, clock=lambda: clock[0])
    mds = [{"engine_id": None, "submitted": T0, "started": None, "completed": None} for _ in plan]
    tracker.add_chunks([([i], md) for i, md in enumerate(mds)], attempt=1)
    tracker.set_engines(range(engines))
    last = {e: i for i, (e, _s, _c) in enumerate(plan)}
    for i, (e, started, completed) in enumerate(plan):
        mds[i].update(engine_id=e, started=started)
        tracker.notify(i, Event.ACTIVITY)
        if last[e] != i:
            mds[i]["completed"] = completed
            if i % 50 == 0:
                tracker.notify(i, Event.DONE, Recorded(TaskState.ERROR, None, ("E", "x", "")))
            else:
                tracker.notify(i, Event.DONE, [i])
            tracker.notify(i, Event.OUTPUT_DONE)
    clock[0] = now
    tracker.poll()
    return tracker


def timed(fn: Callable[[], object], repeat: int) -> float:
    """The median of `repeat` runs, in ms."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


class Bench(App[None]):
    def compose(self) -> ComposeResult:
        yield StreamChart()
        yield EngineTable()


def redraw(widget: StreamChart | EngineTable) -> None:
    widget._strips.clear()
    for y in range(widget.size.height):
        widget.render_line(y)


async def measure(tracker: Tracker, width: int, height: int, repeat: int) -> None:
    snapshot = tracker.snapshot()
    app = Bench()
    async with app.run_test(size=(width + 10, height)) as pilot:
        chart, table = app.query_one(StreamChart), app.query_one(EngineTable)
        chart.styles.height = table.styles.height = height // 2
        await pilot.pause()
        cells = chart.cells_width

        def engine_table() -> None:
            table.apply(snapshot.engines)
            redraw(table)

        base = timed(engine_table, repeat)
        print(f"baseline: engine table, {len(snapshot.engines)} engines: {base:6.2f} ms a tick")
        print(f"stream, {cells} cells x {len(snapshot.engines)} engines, {tracker.total:,} tasks:")
        for zoom in Zoom:
            stream = tracker.stream(zoom, cells)
            wire = pickle.dumps(stream, protocol=pickle.HIGHEST_PROTOCOL)
            binning = timed(lambda z=zoom: tracker.stream(z, cells), repeat)
            trip = timed(lambda w=wire: pickle.loads(pickle.dumps(pickle.loads(w))), repeat)

            def render(s=stream) -> None:
                chart.apply(s)
                redraw(chart)

            drawing = timed(render, repeat)
            tick = binning + trip + drawing
            print(
                f"  {zoom.label:16} binning {binning:6.2f} ms · pickle {trip:5.2f} ms "
                f"({len(wire):,} bytes) · render {drawing:5.2f} ms · tick {tick:6.2f} ms "
                f"= {tick / base:4.1f}× the engine table"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--engines", type=int, default=64)
    parser.add_argument("--width", type=int, default=150, help="columns of the chart")
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    tracker = build(args.tasks, args.engines)
    print(f"built the job in {time.perf_counter() - started:.1f} s")
    asyncio.run(measure(tracker, args.width, args.height, args.repeat))


if __name__ == "__main__":
    main()
