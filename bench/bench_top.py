"""What `ippmon top` costs the controller and a foreign job, and how smooth its screen stays.

For each controller task database (`--backends`: DictDB with `DictDB.record_limit` raised above
everything the run sends, and SQLiteDB) and each hub size (`--tasks`: finished task records put
in the hub first), a private 2-engine cluster (normal priority, `ipyparallel.Cluster`) is
started and filled with no-op tasks (`abs`, a load-balanced map, chunksize 1; the fill time is
printed), then:

1. queries: top's watcher (`ClusterWatcher`, in this process, as top's cluster process runs it)
   - first poll: the pending tasks and the newest page of the history (wall, controller CPU,
     this process's CPU); then the rest of the history, a page an ask, at the watcher's pace
     (how long, and the slowest ask);
   - steady: `--refreshes` seconds of `poll()` every 0.25 s (it asks the controller once a
     second) against as many idle seconds before it: the controller's CPU per refresh (watching
     less idle), the wall round trip of an ask and this process's CPU per poll;
   - each query top makes, alone on the quiet hub (median of 3): its controller CPU and wall,
     `$in` with 100 and 1,000 msg_ids among them (top asks that way for tasks it has not seen);
   - busy: the same watcher (poll and output_since every 0.25 s, as the screen calls them)
     while a foreign job runs: its asks, the largest `$in`, the wall of the slowest ask.
   Controller CPU is the hub process's (all its threads, /proc/PID/task/*/schedstat, in ns):
   that is where task-record queries are answered; its scheduler children are not counted.
2. job: a foreign job (a separate process: `--job-tasks` tiny tasks that each print a line,
   one load-balanced map, label "foreign") timed from submit to its last result, without and
   with top watching (`IppmonApp(top=True)` through `RemoteBackend`, a process of its own at
   normal priority, started and past its reading of the hub's history before the job), in
   `--pairs` pairs of alternating order; the median of the paired ratios with / without.
3. stall: in each run with top, how late an `asyncio.sleep(5 ms)` on top's UI loop wakes up
   while the job runs (bench_ui_stall.py's measure), and the same for a bare asyncio loop in a
   process of its own, run during every job (with top and without, so the pairs stay alike):
   the floor this machine sets while the job keeps its cores busy.

Prints, asserts nothing. Targets (issue 10): top adds < 5 % to the foreign job's wall time; the
worst stall of top's UI loop < 50 ms.

    python bench/bench_top.py                                   # 10,000 tasks, both backends
    python bench/bench_top.py --tasks 10000 100000 --backends dict sqlite
    python bench/bench_top.py --parts queries                   # part 1 only

Every hub is filled by running the tasks, SQLiteDB's too: reusing a filled task file is not
possible with ipyparallel 9.2. Its SQLiteDB checks an existing table's column types against its
own spelling ('TEXT' from SQLite, 'text' in `SQLiteDB._types`), never finds them equal, and
writes to a new table (`<table>_1`): a controller started on a filled file holds none of its
records (checked: its first `db_query` answered 0). The first poll's count of records read says
what the controller really held. The bench runs in a private IPYTHONDIR unless one is set.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MS = 1e3
TICK_S = 0.25  # how often the top screen polls its watch

FOREIGN = """
import json, sys, time
import ipyparallel as ipp

def shout(x):
    print(f"foreign task {x}")
    return x

cluster_id, n = sys.argv[1], int(sys.argv[2])
rc = ipp.Client(cluster_id=cluster_id, timeout=30)
rc.wait_for_engines(2, timeout=60)
view = rc.load_balanced_view()
print(json.dumps({"ready": True}), flush=True)
sys.stdin.readline()
start = time.perf_counter()
ar = view.map_async(shout, range(n), chunksize=1, label="foreign")
sent = time.perf_counter() - start
ar.get()
print(json.dumps({"wall": time.perf_counter() - start, "sent": sent}), flush=True)
rc.close()
"""

# Samples until a line arrives on stdin (asyncio sleep lateness, as bench_ui_stall's PROBE).
FLOOR = """
import asyncio, json, sys, threading
async def main():
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    stalls = []
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.005)
        stalls.append(loop.time() - t - 0.005)
    print(json.dumps(stalls))
asyncio.run(main())
"""

# `ippmon top` on the cluster: headless Textual driver, its cluster process via RemoteBackend.
# Prints "ready" once its first snapshot is drawn and the hub's history is read; samples its UI
# loop's lateness between the lines "go" and "stop" on stdin; then prints the stalls and the CPU
# of its two processes.
TOP = """
import asyncio, json, sys, threading, time
import psutil
from ippmon.cluster_process import RemoteBackend
from ippmon.connect import ConnectOptions
from ippmon.jobspec import Catalog
from ippmon.ui import IppmonApp
from ippmon.ui.screens.top import TopScreen

def cpu(procs):
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total

async def main(cluster_id):
    backend = RemoteBackend(ConnectOptions(cluster_id=cluster_id, timeout=30))
    app = IppmonApp(backend, Catalog({}), top=True)
    lines = []
    got = threading.Event()
    def read():
        for line in sys.stdin:
            lines.append(line.strip())
            got.set()
    threading.Thread(target=read, daemon=True).start()
    async with app.run_test(size=(120, 40)) as pilot:
        start = time.perf_counter()
        while not (isinstance(app.screen, TopScreen) and app.screen.snapshot is not None):
            await pilot.pause(0.1)
        first = time.perf_counter() - start
        # the controller's history read whole (a page an ask) before the job: steady watching
        while any("history left" in limit for limit in app.screen.snapshot.limits):
            await pilot.pause(0.25)
        await pilot.pause(1.0)
        procs = [psutil.Process(), psutil.Process(backend.pid)]
        print(json.dumps({"ready": first}), flush=True)
        await asyncio.to_thread(got.wait)
        loop = asyncio.get_running_loop()
        stalls = []
        cpu0 = [cpu([p]) for p in procs]
        while "stop" not in lines:
            t = loop.time()
            await asyncio.sleep(0.005)
            stalls.append(loop.time() - t - 0.005)
        used = [cpu([p]) - c for p, c in zip(procs, cpu0)]
        snap = app.screen.snapshot
        jobs = {j.title: [j.done, j.submitted] for j in snap.jobs} if snap else {}
        await pilot.press("q")
        await pilot.pause(0.5)
    backend.close()
    print(json.dumps({"stalls": stalls, "cpu": used, "jobs": jobs}), flush=True)

asyncio.run(main(sys.argv[1]))
"""


# -- the controller ------------------------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """CPU seconds every thread of process `pid` has run (ns resolution, /proc schedstat)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


class Timed:
    """A Client whose `db_query` and `queue_status` are logged: the kind of query, its size,
    wall seconds, and the hub's CPU seconds meanwhile (the call waits for the answer, so on a
    quiet hub that is the query's cost). Everything else is the client's own."""

    def __init__(self, client: Any, hub_pid: int) -> None:
        self._client = client
        self._hub = hub_pid
        self.log: list[tuple[str, int, float, float]] = []  # kind, ids/records, wall, hub cpu

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _timed(self, kind: str, call: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        c0, t0 = cpu_s(self._hub), time.perf_counter()
        out = call()
        wall, cpu = time.perf_counter() - t0, cpu_s(self._hub) - c0
        self.log.append((kind, size(out), wall, cpu))
        return out

    def queue_status(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(
            "queue_status", lambda: self._client.queue_status(*args, **kwargs), lambda _: 0
        )

    def _send(self, *args: Any, **kwargs: Any) -> Any:  # `_compat.queue_status_at`'s way
        def answered() -> Any:
            future = self._client._send(*args, **kwargs)
            future.wait()
            return future

        return self._timed("queue_status", answered, lambda _: 0)

    def hub_history(self) -> Any:
        return self._timed("history", self._client.hub_history, len)

    def db_query(self, query: dict[str, Any], keys: Any = None) -> Any:
        ids = (query.get("msg_id") or {}).get("$in")
        if ids is not None:
            kind = "$in msg_ids"
        elif "received" in query:
            kind = "finished since" if "$gte" in query["received"] else "every received"
        elif "completed" in query:
            kind = "pending"
        elif "submitted" in query:
            kind = "history page"
        elif "$exists" in (query.get("msg_id") or {}):
            kind = "probe"
        else:
            kind = "every record"
        return self._timed(kind, lambda: self._client.db_query(query, keys=keys), len)


def start_cluster(
    backend: str, cluster_id: str, record_limit: int, sqlite_file: Path | None
) -> Any:
    import ipyparallel as ipp

    if backend == "dict":
        args = [f"--DictDB.record_limit={record_limit}"]
    else:
        assert sqlite_file is not None
        args = [
            "--sqlitedb",
            f"--SQLiteDB.location={sqlite_file.parent}",
            f"--SQLiteDB.filename={sqlite_file.name}",
            "--SQLiteDB.table=bench",
        ]
    cluster = ipp.Cluster(n=2, cluster_id=cluster_id, controller_args=args, log_level=40)
    cluster.start_cluster_sync()
    return cluster


def fill(client: Any, n: int) -> float:
    """Run `n` no-op tasks (a load-balanced map of `abs`, one task each); seconds taken."""
    view = client.load_balanced_view()
    start = time.perf_counter()
    done = 0
    while done < n:
        batch = min(10_000, n - done)
        view.map_async(abs, range(done, done + batch), chunksize=1).get()
        done += batch
        client.results.clear()  # the hub keeps the records; this client needs none of them
        client.metadata.clear()
    return time.perf_counter() - start


# -- part 1: the queries -------------------------------------------------------------------------


def queries(client: Any, hub_pid: int, cluster_id: str, refreshes: int, job_tasks: int) -> None:
    from ippmon.clusterview import PENDING, TASK_KEYS, ClusterObserver
    from ippmon.clusterwatch import ClusterWatcher

    timed = Timed(client, hub_pid)
    # the engines' messages through the real client's iopub stream, the controller's records
    # through the timed one
    watcher = ClusterWatcher(client, observer=ClusterObserver(timed))
    try:
        c0, p0, t0 = cpu_s(hub_pid), time.process_time(), time.perf_counter()
        watcher.poll()
        wall, top_cpu, hub = time.perf_counter() - t0, time.process_time() - p0, cpu_s(hub_pid) - c0
        read = sum(size for kind, size, _, _ in timed.log if kind not in ("history", "probe"))
        held = sum(size for kind, size, _, _ in timed.log if kind == "history")
        print(
            f"  first poll: {read:,} records read of {held or read:,} held, wall "
            f"{wall * MS:,.0f} ms, controller CPU {hub * MS:,.0f} ms, "
            f"top's CPU {top_cpu * MS:,.0f} ms"
        )
        # the rest of the history, a page an ask, at the pace the watcher asks
        asks: list[float] = []
        t0 = time.perf_counter()
        while watcher.observer.history_left:
            n_log, a0 = len(timed.log), time.perf_counter()
            watcher.poll()
            if len(timed.log) > n_log:
                asks.append(time.perf_counter() - a0)
            time.sleep(TICK_S)
        if asks:
            print(
                f"  whole history read in {time.perf_counter() - t0:.1f} s more, {len(asks)} "
                f"asks: wall median {_med(asks) * MS:.0f} ms, max {max(asks) * MS:.0f} ms; "
                f"{sum(j.submitted for j in watcher.observer.poll().jobs):,} tasks in its jobs"
            )
        time.sleep(2.0)

        idle0 = cpu_s(hub_pid)
        time.sleep(refreshes * watcher.records_every)
        idle = cpu_s(hub_pid) - idle0
        timed.log.clear()
        polls: list[tuple[bool, float, float]] = []  # asked?, wall, cpu in this process
        w0 = cpu_s(hub_pid)
        end = time.perf_counter() + refreshes * watcher.records_every
        while time.perf_counter() < end:
            n_log = len(timed.log)
            p0, t0 = time.process_time(), time.perf_counter()
            watcher.poll()
            polls.append(
                (len(timed.log) > n_log, time.perf_counter() - t0, time.process_time() - p0)
            )
            time.sleep(max(0.0, TICK_S - (time.perf_counter() - t0)))
        watched = cpu_s(hub_pid) - w0
        asks = [p for p in polls if p[0]]
        cached = [p for p in polls if not p[0]]
        per_refresh = (watched - idle) / max(1, len(asks))
        in_calls = sum(cpu for *_, cpu in timed.log) / max(1, len(asks))
        print(
            f"  steady: {len(asks)} asks in {refreshes * watcher.records_every:.0f} s; "
            f"controller CPU idle {idle * MS:.0f} ms, watching {watched * MS:.0f} ms: "
            f"{per_refresh * MS:.1f} ms per refresh ({in_calls * MS:.1f} ms inside the calls), "
            f"{per_refresh / watcher.records_every * 100:.1f} % of a core"
        )
        print(
            f"          ask round trip median {_med(p[1] for p in asks) * MS:.1f} ms, "
            f"max {max(p[1] for p in asks) * MS:.1f} ms; top's CPU per poll: "
            f"asking {_med(p[2] for p in asks) * MS:.2f} ms, "
            f"between asks {_med(p[2] for p in cached) * MS:.3f} ms"
        )

        # Each query alone on the quiet hub; "scan" rows are the finished-since query with its
        # mark moved back to answer k records (a full pass that returns k records).
        timed.log.clear()
        received = client.db_query({"received": {"$ne": None}}, keys=["received"])
        received.sort(key=lambda r: r["received"])
        ids = [r["msg_id"] for r in received]

        def since(k: int) -> Callable[[], Any]:
            mark = received[-min(k, len(received))]["received"]
            query = {"received": {"$ne": None, "$gte": mark}}
            return lambda: timed.db_query(query, keys=list(TASK_KEYS))

        def among(k: int) -> Callable[[], Any]:
            return lambda: timed.db_query({"msg_id": {"$in": ids[-k:]}}, keys=list(TASK_KEYS))

        menu: list[tuple[str, Callable[[], Any]]] = [
            ("queue_status", timed.queue_status),
            ("pending (engine_uuid)", lambda: timed.db_query(PENDING, keys=["engine_uuid"])),
            ("scan returning 1 (TASK_KEYS)", since(1)),
            ("scan returning 100", since(100)),
            ("scan returning 1,000", since(1000)),
            ("$in 100 msg_ids (TASK_KEYS)", among(100)),
            ("$in 999 msg_ids", among(999)),
            ("$in 1,000 msg_ids", among(1000)),
        ]
        for name, call in menu if received else []:
            timed.log.clear()
            try:
                for _ in range(3):
                    call()
            except Exception as exc:
                print(f"    {name:<30} refused: {str(exc).strip().splitlines()[-1][:90]}")
                continue
            print(
                f"    {name:<30} controller CPU {_med(x[3] for x in timed.log) * MS:8.1f} ms  "
                f"wall {_med(x[2] for x in timed.log) * MS:8.1f} ms  "
                f"({timed.log[0][1]} records answered)"
            )

        # Busy: a foreign job while the watcher polls as the screen does.
        timed.log.clear()
        seq = 0
        job = ForeignJob(cluster_id, job_tasks)
        b0, h0 = time.perf_counter(), cpu_s(hub_pid)
        job.go()
        ask_walls: list[float] = []
        failed: list[str] = []
        while job.running():
            n_log = len(timed.log)
            t0 = time.perf_counter()
            try:
                watcher.poll()
                _lines, seq = watcher.output_since(seq)
            except Exception as exc:  # as the screen does: say so, ask again next tick
                failed.append(str(exc).strip().splitlines()[-1][:100])
            if len(timed.log) > n_log:
                ask_walls.append(time.perf_counter() - t0)
            time.sleep(max(0.0, TICK_S - (time.perf_counter() - t0)))
        wall = job.result()["wall"]
        ins = [size for kind, size, *_ in timed.log if kind == "$in msg_ids"]
        slow = max(timed.log, key=lambda x: x[2])
        print(
            f"  busy ({job_tasks:,}-task foreign job, {wall:.1f} s): {len(ask_walls)} asks over "
            f"{time.perf_counter() - b0:.1f} s, ask wall median {_med(ask_walls) * MS:.0f} ms "
            f"max {max(ask_walls, default=0) * MS:.0f} ms; $in queries {len(ins)}, "
            f"largest {max(ins, default=0)} ids; slowest query: {slow[0]} "
            f"{slow[2] * MS:.0f} ms wall"
        )
        if failed:
            print(f"  busy: {len(failed)} polls failed; the first: {failed[0]}")
        used = cpu_s(hub_pid) - h0
        print(f"  busy: controller CPU {used * MS:,.0f} ms over the job; by query:")
        for kind in sorted({x[0] for x in timed.log}):
            mine = [x for x in timed.log if x[0] == kind]
            print(
                f"    {kind:<14} x{len(mine):<3} records {sum(x[1] for x in mine):>7,}  "
                f"wall {sum(x[2] for x in mine) * MS:>7,.0f} ms  "
                f"controller CPU meanwhile {sum(x[3] for x in mine) * MS:>7,.0f} ms"
            )
    finally:
        watcher.close()


def _med(values: Any) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


# -- parts 2 and 3: a foreign job with and without top -------------------------------------------


class ForeignJob:
    """The foreign job's process, connected and waiting; `go()` submits."""

    def __init__(self, cluster_id: str, n: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FOREIGN, cluster_id, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if not ready:
            raise SystemExit(f"foreign job failed: {self.proc.stderr.read()[-800:]}")  # type: ignore[union-attr]

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def running(self) -> bool:
        return self.proc.poll() is None

    def result(self) -> dict[str, float]:
        out, err = self.proc.communicate()
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise SystemExit(f"foreign job failed: {err[-800:]}") from None


def line_process(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def say(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def last_json(proc: subprocess.Popen[str], what: str) -> Any:
    out, err = proc.communicate(timeout=120)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"{what} failed: {err[-1500:]}") from None


def run_job(cluster_id: str, n: int, with_top: bool, hub_pid: int) -> dict[str, Any]:
    """One foreign job, the floor probe beside it, and top watching when `with_top`."""
    top = None
    ready_s = None
    if with_top:
        top = line_process(TOP, cluster_id)
        assert top.stdout is not None
        line = top.stdout.readline()
        if not line:
            last_json(top, "top")
        ready_s = json.loads(line)["ready"]
    job = ForeignJob(cluster_id, n)
    floor = line_process(FLOOR)
    if top is not None:
        say(top, "go")
    h0 = cpu_s(hub_pid)
    job.go()
    result = job.result()
    hub = cpu_s(hub_pid) - h0
    say(floor, "stop")
    if top is not None:
        say(top, "stop")
    out: dict[str, Any] = {"wall": result["wall"], "hub": hub, "top_ready": ready_s}
    out["floor"] = last_json(floor, "floor probe")
    if top is not None:
        out.update(last_json(top, "top"))
    return out


def jobs_part(cluster_id: str, n: int, pairs: int, hub_pid: int) -> None:
    from bench_ui_stall import report  # the same stall line as the monitor's bench

    ratios = []
    worst_top, worst_floor = 0.0, 0.0
    for i in range(pairs):
        order = [False, True] if i % 2 == 0 else [True, False]
        runs = {}
        for with_top in order:
            runs[with_top] = r = run_job(cluster_id, n, with_top, hub_pid)
            worst_floor = max(worst_floor, max(r["floor"]))
            if with_top:
                worst_top = max(worst_top, max(r["stalls"]))
        ratio = runs[True]["wall"] / runs[False]["wall"]
        ratios.append(ratio)
        top = runs[True]
        print(
            f"  pair {i + 1} ({'without first' if i % 2 == 0 else 'with first'}): "
            f"without {runs[False]['wall']:.2f} s, with top {top['wall']:.2f} s, "
            f"ratio {ratio:.3f}; controller CPU {runs[False]['hub']:.1f} s / "
            f"{top['hub']:.1f} s; top's CPU during the job: TUI {top['cpu'][0]:.1f} s, "
            f"its cluster process {top['cpu'][1]:.1f} s; "
            f"its first snapshot after {top['top_ready']:.1f} s; "
            f"top saw {top['jobs'].get('foreign', '?')}"
        )
        report(f"    top UI loop (pair {i + 1})", top["stalls"])
        report("    bare asyncio (floor)", top["floor"])
        report("    floor without top", runs[False]["floor"])
    print(
        f"  median ratio with / without top: {statistics.median(ratios):.3f} "
        f"(+{(statistics.median(ratios) - 1) * 100:.1f} %; target < +5 %); "
        f"worst top UI stall {worst_top * MS:.1f} ms (target < 50 ms), "
        f"worst floor stall {worst_floor * MS:.1f} ms"
    )


# -- the whole run -------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--tasks", type=int, nargs="+", default=[10_000], help="records in the hub")
    ap.add_argument("--backends", nargs="+", default=["dict", "sqlite"], choices=["dict", "sqlite"])
    ap.add_argument("--parts", nargs="+", default=["queries", "job"], choices=["queries", "job"])
    ap.add_argument("--refreshes", type=int, default=20, help="steady refreshes measured")
    ap.add_argument("--job-tasks", type=int, default=5_000, help="tasks of the foreign job")
    ap.add_argument("--pairs", type=int, default=3, help="foreign-job pairs without/with top")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the clusters on `kill`
    tmp = Path(tempfile.mkdtemp(prefix="ippmon-bench-top-"))
    os.environ.setdefault("IPYTHONDIR", str(tmp / "ipython"))
    sys.path.insert(0, str(Path(__file__).parent))
    print(f"IPYTHONDIR {os.environ['IPYTHONDIR']}; {os.cpu_count()} cores; load {os.getloadavg()}")
    extra = args.job_tasks * (1 + 2 * args.pairs) * 2
    try:
        for n in args.tasks:
            for backend in args.backends:
                sqlite_file = tmp / f"tasks-{n}.db" if backend == "sqlite" else None
                cluster_id = f"bench-top-{os.getpid()}-{backend}-{n}"
                name = "DictDB" if backend == "dict" else "SQLiteDB"
                print(f"\n== {name}, {n:,} finished tasks in the hub ==", flush=True)
                t0 = time.perf_counter()
                cluster = start_cluster(backend, cluster_id, n + extra, sqlite_file)
                try:
                    client = cluster.connect_client_sync()
                    client.wait_for_engines(2, timeout=60)
                    hub_pid = cluster.controller.process.pid
                    print(f"  cluster up in {time.perf_counter() - t0:.1f} s", flush=True)
                    took = fill(client, n)
                    print(f"  fill: {n:,} no-op tasks in {took:.1f} s ({n / took:.0f}/s)")
                    time.sleep(2.5)  # SQLiteDB commits every 2 s
                    sys.stdout.flush()
                    if "queries" in args.parts:
                        queries(client, hub_pid, cluster_id, args.refreshes, args.job_tasks)
                    if "job" in args.parts:
                        jobs_part(cluster_id, args.job_tasks, args.pairs, hub_pid)
                    client.close()
                finally:
                    cluster.stop_cluster_sync()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
