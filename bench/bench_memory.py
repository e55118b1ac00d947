"""Peak memory and wall time of a big job: bare ipyparallel against ippmon, in the same run.

For each task count x output lines a task prints (`ippmon.demo:chatty`, no delay):
- bare: `view.map_async(f, inputs, return_exceptions=True).get()` in a process of its own;
- headless: `ippmon --headless` on the same job (the real command);
- tui: the TUI (Textual's headless driver, as a user's terminal would drive it) with its
  cluster process, summed;
- again: two such jobs one after the other in one ippmon process (the Job path `--headless`
  uses), with its memory before, after the first and after the second job (what stays);
- tui-again: the same in one TUI session, the TUI and its cluster process summed; each mark
  taken back in the picker (the job closed), once a grown cluster process has been replaced
  by a fresh one (or 30 s went by without).
Peak RSS is sampled every 0.1 s over the whole process tree; CPU s is the tree's user + system
time (the client side only: the cluster's processes are not in it). The wall-time ratio is
bare / ippmon (1.0: as fast; below: slower): for headless the whole commands (start, connect,
job, exit), for the others the job alone. Prints a table; asserts nothing.

    python bench/bench_memory.py                              # 10,000 tasks x 0 and 10 lines
    python bench/bench_memory.py --tasks 10000 100000 --lines 0 10 100 --modes bare headless tui
    python bench/bench_memory.py --cluster-id ID              # a cluster you started

Without `--cluster-id` every measurement gets a fresh 2-engine cluster, started with `ipcluster`
(normal priority, as a user would) and stopped after it. A controller keeps working long after a
job whose tasks print: its in-memory task database culls old records on every new message, one
sort of all of them each time (ipyparallel 9.2), and after a 10,000 x 100 job it was still at
100% of a core two hours later. On one cluster each run would race the last one's leftovers.
With `--cluster-id` (a cluster you started) each run waits until that cluster's controller is
idle (at most `--idle-wait` s) and says how long it waited, or that it never was. The controller's
CPU seconds during each run are in the notes either way, and the engines' (when `ipcluster`
started them): engines that got less CPU in the same work waited for tasks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SPEC = """
[jobs.big]
function = "ippmon.demo:chatty"
inputs = {{ range = [0, {n}] }}
kwargs = {{ lines = {lines}, delay = 0.0 }}
"""

BARE = """
import json, sys, time
import ipyparallel as ipp
from ippmon.demo import chatty
n, lines, cluster_id = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rc = ipp.Client(cluster_id=cluster_id)
rc.wait_for_engines(1, timeout=60)
view = rc.load_balanced_view()
start = time.perf_counter()
ar = view.map_async(chatty, range(n), [lines] * n, [0.0] * n, return_exceptions=True)
ar.get()
print(json.dumps({"wall": time.perf_counter() - start}))
"""

AGAIN = """
import gc, json, sys, time
from ippmon.connect import ClusterBackend, ConnectOptions
from ippmon.jobspec import load_catalog
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmRSS"))
spec_file, cluster_id, runs = sys.argv[1], sys.argv[2], sys.argv[3]
session = ClusterBackend(ConnectOptions(cluster_id=cluster_id)).connect()
spec = load_catalog(spec_file).get("big")
marks = [rss()]
walls = []
for _ in range(2):
    start = time.perf_counter()
    job = session.submit(spec, runs_dir=runs)
    assert job.wait(timeout=7200)
    walls.append(time.perf_counter() - start)
    job.close()
    del job
    gc.collect()
    marks.append(rss())
session.close()
print(json.dumps({"rss": marks, "walls": walls}))
"""

TUI = """
import asyncio, json, sys, time
from ippmon.cluster_process import RemoteBackend
from ippmon.connect import ConnectOptions
from ippmon.jobspec import load_catalog
from ippmon.model import Phase
from ippmon.ui.app import IppmonApp
spec_file, cluster_id, runs = sys.argv[1], sys.argv[2], sys.argv[3]

async def main():
    backend = RemoteBackend(ConnectOptions(cluster_id=cluster_id))
    app = IppmonApp(backend, load_catalog(spec_file), runs_dir=runs, job_name="big")
    async with app.run_test(size=(100, 30)) as pilot:
        start = time.perf_counter()
        while app.monitor() is None or app.monitor().snapshot is None:
            await pilot.pause(0.1)
        while app.monitor().snapshot.phase is not Phase.FINISHED:
            await pilot.pause(0.5)
        wall = time.perf_counter() - start
        await pilot.press("q")
    print(json.dumps({"wall": wall}))

asyncio.run(main())
"""

TUI_AGAIN = """
import asyncio, json, os, sys, time
from ippmon.cluster_process import RemoteBackend
from ippmon.connect import ConnectOptions
from ippmon.jobspec import load_catalog
from ippmon.model import Phase
from ippmon.ui.app import IppmonApp
sys.path.insert(0, os.path.dirname(sys.argv[4]))
from bench_memory import tree_usage
spec_file, cluster_id, runs = sys.argv[1], sys.argv[2], sys.argv[3]

async def main():
    backend = RemoteBackend(ConnectOptions(cluster_id=cluster_id))
    catalog = load_catalog(spec_file)
    app = IppmonApp(backend, catalog, runs_dir=runs, job_name="big")
    marks, walls = [], []
    async with app.run_test(size=(100, 30)) as pilot:
        while app.monitor() is None:
            await pilot.pause(0.1)
        marks.append(round(tree_usage(os.getpid(), {})))
        for job in range(2):
            if job:
                app.submit(catalog.get("big"))  # from the picker, the same job again
                while app.monitor() is None:
                    await pilot.pause(0.1)
            start = time.perf_counter()
            def done():
                snap = app.monitor().snapshot
                return snap is not None and snap.phase is Phase.FINISHED
            while not done():
                await pilot.pause(0.5)
            walls.append(time.perf_counter() - start)
            renewals = backend.renewals
            await pilot.press("escape")  # back to the picker: the job is closed
            while app.monitor() is not None:
                await pilot.pause(0.1)
            deadline = time.perf_counter() + 30  # a grown cluster process is replaced
            while backend.renewals == renewals and time.perf_counter() < deadline:
                await pilot.pause(0.2)
            marks.append(round(tree_usage(os.getpid(), {})))
        await pilot.press("q")
    print(json.dumps({"rss": marks, "walls": walls, "renewals": backend.renewals}))

asyncio.run(main())
"""


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def tree_usage(pid: int, cpu: dict[int, float]) -> float:
    """The resident memory of `pid` and all its descendants, in MB; each one's CPU seconds so
    far (user + system) recorded in `cpu` by pid."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            cpu[p] = (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, StopIteration):
            continue
    return total / 1024


def measured(cmd: list[str]) -> tuple[dict, float]:
    """Run `cmd`; its JSON output (or {}), with `cmd_wall` (the whole command's wall time) and
    `cpu` (the CPU seconds of its process tree) added, and the peak RSS of its process tree.
    CPU: the larger of the rusage of the command (with the processes it waited for) and the
    sum of the last sample of each process in its tree (a process that was never waited for,
    like the TUI's cluster process when the TUI exits, is in no rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    done = threading.Event()
    seen: dict[int, float] = {}

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.1):
            peak = max(peak, tree_usage(proc.pid, seen))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    cmd_wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    sampler.join()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(cpu, sum(seen.values()))
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])}...: exit {proc.returncode}: {err.strip()[-500:]}")
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    try:
        found = json.loads(last)
    except ValueError:
        found = {}
    return {**found, "cmd_wall": cmd_wall, "cpu": cpu}, peak


def controller_procs(cluster_id: str) -> list:
    """The processes of a cluster's controller (the hub and its schedulers)."""
    import ipyparallel as ipp
    import psutil

    try:
        cluster = ipp.Cluster.from_file(cluster_id=cluster_id)
    except Exception:  # not started by ipcluster / Cluster: nothing to watch
        return []
    pid = cluster.controller.pid if cluster.controller else None
    if not pid:
        return []
    hub = psutil.Process(pid)
    return [hub, *hub.children(recursive=True)]


def engine_procs(cluster_id: str) -> list:
    """The processes of a cluster's engines (as `ipcluster` started them; [] if unknown)."""
    import ipyparallel as ipp
    import psutil

    procs = []
    with contextlib.suppress(Exception):
        cluster = ipp.Cluster.from_file(cluster_id=cluster_id)
        for engine_set in cluster.engines.values():
            for launcher in getattr(engine_set, "launchers", {}).values():
                with contextlib.suppress(Exception):
                    proc = psutil.Process(launcher.pid)
                    procs += [proc, *proc.children(recursive=True)]
    return procs


def cpu_s(procs: list) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(Exception):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def wait_idle(procs: list, limit_s: float) -> tuple[float, bool]:
    """Wait until the controller uses under a tenth of a core over a second; (waited, idle)."""
    started = time.monotonic()
    while True:
        before = cpu_s(procs)
        time.sleep(1.0)
        if cpu_s(procs) - before < 0.1:
            return time.monotonic() - started, True
        if time.monotonic() - started > limit_s:
            return time.monotonic() - started, False


@contextlib.contextmanager
def cluster_for_run(given: str | None, idle_wait: float) -> Iterator[tuple[str, list, str]]:
    """(cluster id, its controller's processes, a note): `given` once its controller is idle,
    else a fresh 2-engine cluster, stopped afterwards."""
    if given:
        procs = controller_procs(given)
        waited, idle = wait_idle(procs, idle_wait)
        note = "" if waited < 2 else f"controller idle after {waited:.0f} s; "
        if not idle:
            note = f"controller still busy after {waited:.0f} s (earlier runs' output); "
        yield given, procs, note
        return
    import ipyparallel as ipp

    cluster_id = f"bench-memory-{os.getpid()}-{time.monotonic_ns()}"
    subprocess.run(
        ["ipcluster", "start", "-n", "2", f"--cluster-id={cluster_id}", "--daemonize"],
        check=True,
        capture_output=True,
    )
    try:
        client = ipp.Client(cluster_id=cluster_id, timeout=60)
        client.wait_for_engines(2, timeout=120)
        client.close()
        procs = controller_procs(cluster_id)
        wait_idle(procs, 60)  # the engines' registration
        yield cluster_id, procs, ""
    finally:
        subprocess.run(
            ["ipcluster", "stop", f"--cluster-id={cluster_id}"], check=False, capture_output=True
        )


def run_mode(
    mode: str, n: int, lines: int, spec: Path, runs: str, cluster_id: str, more: list[str]
) -> tuple[dict, float, float | None, str]:
    """One measurement: (the command's output, peak RSS, wall time, a note)."""
    py = sys.executable
    note = ""
    if mode == "bare":
        out, peak = measured([py, "-c", BARE, str(n), str(lines), cluster_id])
        wall = out.get("wall")
        note = f"whole command {out['cmd_wall']:.1f} s (with its exit)"
    elif mode == "headless":
        cmd = [py, "-m", "ippmon", "--cluster-id", cluster_id, "--jobs"]
        cmd += [str(spec), "--job", "big", "--headless", "--runs-dir", runs]
        out, peak = measured(cmd + more)
        wall = out["cmd_wall"]
        note = "whole command (ratio: against bare's whole command)"
    elif mode == "tui":
        out, peak = measured([py, "-c", TUI, str(spec), cluster_id, runs])
        wall = out.get("wall")
    elif mode == "tui-again":
        me = str(Path(__file__).resolve())
        cmd = [py, "-c", TUI_AGAIN, str(spec), cluster_id, runs, me]
        out, peak = measured(cmd)
        wall = out["walls"][0]
        start_mb, first_mb, second_mb = out["rss"]
        note = (
            f"TUI + cluster process: RSS before {start_mb} MB, after job 1 "
            f"{first_mb} MB, after job 2 {second_mb} MB "
            f"(cluster process replaced {out['renewals']} times)"
        )
    else:
        out, peak = measured([py, "-c", AGAIN, str(spec), cluster_id, runs])
        wall = out["walls"][0]
        start_mb, first_mb, second_mb = out["rss"]
        note = f"RSS before {start_mb} MB, after job 1 {first_mb} MB, after job 2 {second_mb} MB"
    return out, peak, wall, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10_000])
    parser.add_argument("--lines", type=int, nargs="+", default=[0, 10])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["bare", "headless", "again"],
        choices=["bare", "headless", "tui", "again", "tui-again"],
    )
    parser.add_argument(
        "--cluster-id", help="a running cluster (default: a fresh one of 2 engines for each run)"
    )
    parser.add_argument(
        "--idle-wait",
        type=float,
        default=900,
        help="with --cluster-id: at most this long for its controller to be idle before a run",
    )
    parser.add_argument(
        "--ippmon-args",
        type=shlex.split,
        default=[],
        help="more options for `ippmon --headless`, as one word: --ippmon-args='--send-window 0'",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the modes this many times over (paired rows)"
    )
    args = parser.parse_args()
    head = f"{'tasks':>8} {'lines':>5} {'mode':>9} {'wall s':>8} {'ratio':>6} {'CPU s':>6}"
    print(f"{head} {'peak MB':>8}  notes")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        for n in args.tasks:
            for lines in args.lines:
                spec = Path(tmp) / f"spec-{n}-{lines}.toml"
                spec.write_text(textwrap.dedent(SPEC.format(n=n, lines=lines)))
                runs = str(Path(tmp) / "runs")
                for _ in range(args.repeat):
                    bare_wall = bare_cmd = None
                    for mode in args.modes:
                        with cluster_for_run(args.cluster_id, args.idle_wait) as found:
                            cluster_id, procs, hub_note = found
                            engines = engine_procs(cluster_id)
                            hub_before, engines_before = cpu_s(procs), cpu_s(engines)
                            out, peak, wall, note = run_mode(
                                mode, n, lines, spec, runs, cluster_id, args.ippmon_args
                            )
                            hub_note += f"controller CPU {cpu_s(procs) - hub_before:.0f} s; "
                            if engines:
                                used = cpu_s(engines) - engines_before
                                hub_note += f"engines CPU {used:.0f} s; "
                        if mode == "bare":
                            bare_wall, bare_cmd = wall, out["cmd_wall"]
                        base = bare_cmd if mode == "headless" else bare_wall
                        ratio = f"{base / wall:.2f}" if base and wall else "-"
                        shown = f"{wall:.1f}" if wall else "-"
                        cpu = f"{out['cpu']:.1f}"
                        row = f"{n:>8,} {lines:>5} {mode:>9} {shown:>8} {ratio:>6} {cpu:>6}"
                        row += f" {peak:>8.0f}"
                        print(f"{row}  {hub_note}{note}", flush=True)


if __name__ == "__main__":
    main()
