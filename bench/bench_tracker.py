"""Cost of one tracker poll vs ipyparallel's own `ar.progress` + `ar.elapsed`, same metadata.

Synthetic job: N tasks (one per chunk) on E engines, half finished, E running, the rest queued.
Each measured poll takes in 100 changed tasks (50 finish, 50 start or print), the way the client's
IO thread reports them. The baseline is ipyparallel's AsyncResult over the very same metadata
dicts and futures, measured in the same run. Prints ratios; asserts nothing.

    python bench/bench_tracker.py            # full grid (2k/20k/100k tasks x 8/64/512 engines)
    python bench/bench_tracker.py --quick    # smaller grid for a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from types import SimpleNamespace

from ipyparallel.client.asyncresult import AsyncResult
from ipyparallel.client.client import Metadata
from ipyparallel.client.futures import MessageFuture

from ippmon.tracker import Event, Tracker

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def iso(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def build(n: int, engines: int):
    """Metadata, futures, an AsyncResult over them, and a tracker fed the same state."""
    mds, children = [], []
    for i in range(n):
        md = Metadata()
        md["submitted"] = iso(0)
        fut = MessageFuture(f"msg-{i}")
        fut.output = MessageFuture(f"msg-{i}")
        fut.output.metadata = md
        mds.append(md)
        children.append(fut)
    client = SimpleNamespace(outstanding={f"msg-{i}" for i in range(n)}, metadata={})
    ar = AsyncResult(client, children, return_exceptions=True)

    clock = [1000.0]
    tracker = Tracker("bench", n, clock=lambda: clock[0], max_output_lines=10_000)
    tracker.add_chunks([([i], md) for i, md in enumerate(mds)], attempt=1)
    tracker.set_engines(range(engines))
    half = n // 2
    for i in range(half):  # finished
        md = mds[i]
        md.update(engine_id=i % engines, started=iso(1), completed=iso(2), stdout="line\n")
        client.outstanding.discard(f"msg-{i}")
        tracker.notify(i, Event.ACTIVITY)
        tracker.notify(i, Event.DONE, [i])
        tracker.notify(i, Event.OUTPUT_DONE)
    for k in range(engines):  # running
        i = half + k
        if i < n:
            mds[i].update(engine_id=k, stdout="working\n")
            tracker.notify(i, Event.ACTIVITY)
    tracker.poll()
    return mds, client, ar, tracker, clock, half + engines


def measure(n: int, engines: int, rounds: int) -> dict[str, float]:
    mds, client, ar, tracker, clock, nxt = build(n, engines)
    polls, snaps, baseline = [], [], []
    running = list(range(nxt - engines, nxt))
    for _ in range(rounds):
        # 50 running tasks finish, 50 queued ones start (or, with few engines, print lines)
        changed = 0
        while changed < 100 and nxt < n:
            if running and changed % 2 == 0:
                i = running.pop(0)
                mds[i].update(started=iso(2), completed=iso(3), stdout=mds[i]["stdout"] + "x\n")
                client.outstanding.discard(f"msg-{i}")
                tracker.notify(i, Event.DONE, [i])
                tracker.notify(i, Event.OUTPUT_DONE)
            else:
                i = nxt
                nxt += 1
                mds[i].update(engine_id=i % engines, stdout="start\n")
                tracker.notify(i, Event.ACTIVITY)
                running.append(i)
            changed += 1
        clock[0] += 0.25
        t = time.perf_counter()
        tracker.poll()
        polls.append(time.perf_counter() - t)
        t = time.perf_counter()
        tracker.snapshot()
        snaps.append(time.perf_counter() - t)
        t = time.perf_counter()
        _ = ar.progress, ar.elapsed
        baseline.append(time.perf_counter() - t)
    ms = 1e3
    return {
        "poll_med": statistics.median(polls) * ms,
        "poll_max": max(polls) * ms,
        "snap_med": statistics.median(snaps) * ms,
        "ipp_med": statistics.median(baseline) * ms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2k/20k tasks and 8/64 engines only")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    sizes = (2_000, 20_000) if args.quick else (2_000, 20_000, 100_000)
    engine_counts = (8, 64) if args.quick else (8, 64, 512)
    head = (
        f"{'tasks':>8} {'engines':>7} | {'poll med':>9} {'poll max':>9} {'snapshot':>9} |"
        f" {'ipp progress+elapsed':>20} | {'ipp / poll':>10}"
    )
    print("one poll taking in 100 changed tasks (ms)")
    print(head)
    print("-" * len(head))
    for n in sizes:
        for e in engine_counts:
            r = measure(n, e, args.rounds)
            print(
                f"{n:>8} {e:>7} | {r['poll_med']:>9.3f} {r['poll_max']:>9.3f}"
                f" {r['snap_med']:>9.3f} | {r['ipp_med']:>20.3f} |"
                f" {r['ipp_med'] / r['poll_med']:>9.0f}x"
            )


if __name__ == "__main__":
    main()
