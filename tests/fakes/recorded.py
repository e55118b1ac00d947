"""Recorded state for the UI's tests and the README screenshots: a catalog of job specs, moments
of a job (snapshots and output lines), the clusters discovery finds and the recorded runs.

Everything is fixed data, so a picture taken of it is the same on every machine.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

from ippmon.jobspec import Catalog, JobSpec, SpecError
from ippmon.model import (
    ClusterInfo,
    Durations,
    EngineView,
    Failure,
    Finding,
    JobSnapshot,
    OutputLine,
    Phase,
    TaskState,
)
from ippmon.protocols import ClusterChoice, ConnectError
from ippmon.runs import RunSummary

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the fixed clock of every recorded app
UTC = dt.timezone.utc  # the time zone of every recorded time shown
CLUSTER = ClusterInfo(profile="default", cluster_id="", engines=4, location="local")
RUN_ID = "20260101-000000-a1b2"
RUNS_DIR = "/tmp/ippmon-test-runs"


def fixed_clock() -> float:
    return NOW


# -- the catalog ------------------------------------------------------------------------------


def spec(
    name: str,
    description: str,
    function: str,
    n: int | None,
    *,
    inputs_desc: str | None = None,
    kwargs: dict | None = None,
    origin: str = "ippmon.toml",
    **flags: object,
) -> JobSpec:
    return JobSpec(
        name=name,
        description=description,
        function=function,
        origin=origin,
        inputs_desc=inputs_desc or f"range(0, {n})",
        n_inputs=n,
        kwargs=kwargs or {},
        **flags,
    )


def catalog(*, file_error: bool = False) -> Catalog:
    """Four good specs (two built-in, two from a file) and a broken one; or, with `file_error`,
    what is left when the spec file cannot be read."""
    specs = {
        "squares": spec(
            "squares",
            "Square 100 numbers, 0.05-0.5 s each, a few output lines per task (~14 s)",
            "ippmon.demo:slow_square",
            100,
            origin="built-in",
        ),
        "flaky": spec(
            "flaky",
            "50 short tasks; about one in seven fails with TransientError",
            "ippmon.demo:flaky",
            50,
            kwargs={"delay": 0.1},
            origin="built-in",
        ),
        "render-frames": spec(
            "render-frames",
            "Render the 20,000 frames of the [intro] sequence",
            "render.py:render_frame",
            20_000,
            inputs_desc="file frames.jsonl",
            kwargs={"quality": "high"},
            chunksize=8,
            ordered=False,
            retries=2,
        ),
        "sweep": spec(
            "sweep",
            "Parameter sweep, inputs computed at submit time",
            "sweep:run_point",
            None,
            inputs_desc="call sweep:points",
            timeout=30.0,
        ),
    }
    errors = {
        "broken": SpecError(
            "cannot import module 'numpyy' (did you mean 'numpy'?)",
            path="ippmon.toml",
            job="broken",
            field="function",
        )
    }
    if file_error:  # as load_catalog reports an unreadable file: the built-ins only
        error = SpecError("TOML syntax error: Expected '=' (line 12, column 7)", path="ippmon.toml")
        builtins = {k: v for k, v in specs.items() if v.origin == "built-in"}
        return Catalog(builtins, file_error=error, path="ippmon.toml")
    return Catalog(specs, errors, path="ippmon.toml")


# -- recorded job states ----------------------------------------------------------------------


def counts(**by_state: int) -> dict[TaskState, int]:
    return {TaskState("error" if k == "failed" else k): v for k, v in by_state.items()}


def output_lines(n: int = 40, *, engines: int = 4, start_task: int = 30) -> list[OutputLine]:
    """Task output as a chatty job writes it: progress on stdout, warnings on stderr."""
    lines = []
    for seq in range(1, n + 1):
        task = start_task + seq // 3
        engine = task % engines
        if seq % 7 == 0:
            text = f"WARNING: slow read of input {task} [retry 2/3]"  # [..] is not markup
            stream = "stderr"
        elif seq % 3 == 0:
            text = f"task {task}: squared {task} -> {task * task}"
            stream = "stdout"
        else:
            text = f"task {task}: step {seq % 3 + 1}/3 reading input {task}"
            stream = "stdout"
        lines.append(OutputLine(seq, task, engine, stream, text))
    return lines


def rates(n: int, mean: float, *, start: float | None = None) -> tuple[float, ...]:
    """Tasks/s over `n` slices of a job, wobbling around `mean` as a real one does (a slower
    first slice while the engines get their first tasks)."""
    out = [round(mean * (1 + 0.3 * math.sin(k * 1.7) * math.cos(k * 0.45)), 1) for k in range(n)]
    if out:
        out[0] = round(mean / 2, 1) if start is None else start
    return tuple(out)


def failures() -> tuple[Failure, ...]:
    return (
        Failure(7, TaskState.ERROR, 3, "TransientError", "flaky failure on input 7"),
        Failure(21, TaskState.ERROR, 1, "ValueError", "math domain error\nsecond line hidden"),
        Failure(28, TaskState.ERROR, 0, "ZeroDivisionError", "division by zero"),
        Failure(35, TaskState.LOST, None, "", ""),
    )


def mid_run() -> JobSnapshot:
    """squares on 4 engines: three running, one gone; some done, some failed."""
    return JobSnapshot(
        name="squares",
        phase=Phase.RUNNING,
        total=100,
        submitted=100,
        counts=counts(queued=39, running=3, ok=55, failed=3),
        elapsed_s=21.4,
        serial_s=58.9,
        tasks_per_s=2.7,
        eta_s=15.2,
        throughput=rates(21, 2.7),
        engines=(
            EngineView(0, True, 41, 0.4, 15, 19.8, 92.5, "task 41: step 2/3 reading input 41"),
            EngineView(1, True, 42, 3.2, 14, 18.1, 84.6, "task 42: step 1/3 reading input 42"),
            EngineView(2, True, 43, 1.1, 16, 19.0, 88.8, "task 40: squared 40 -> 1600"),
            EngineView(3, False, None, 0.0, 13, 2.0, 9.3, "WARNING: slow input 28, retrying"),
        ),
        failures=failures()[:3],
        n_failures=3,
        output_seq=40,
        cluster=CLUSTER.label,
        run_id=RUN_ID,
    )


def submitting() -> JobSnapshot:
    return JobSnapshot(
        name="render-frames",
        phase=Phase.SUBMITTING,
        total=20_000,
        submitted=1_200,
        counts=counts(queued=19_988, running=4, ok=8),
        elapsed_s=2.1,
        serial_s=1.6,
        tasks_per_s=3.8,
        eta_s=None,
        throughput=(3.0, 4.5),
        engines=tuple(
            EngineView(i, True, 8 + i, 0.2 * i, 2, 1.4, 66.0, f"frame {8 + i}: rendering")
            for i in range(4)
        ),
        output_seq=12,
        cluster=CLUSTER.label,
        run_id=RUN_ID,
    )


def many_engines(n: int = 64) -> JobSnapshot:
    engines = []
    for i in range(n):
        if i % 17 == 16:
            engines.append(EngineView(i, False, None, 0.0, 3, 4.0, 6.1, "worker exited"))
        elif i % 5 == 4:
            engines.append(EngineView(i, True, None, 0.0, 11, 49.0, 74.8, f"task {900 + i} done"))
        else:
            straggler = i in (7, 38)  # running 3 min where frames take ~40 s
            engines.append(
                EngineView(
                    i,
                    True,
                    1000 + i,
                    184.0 if straggler else 0.1 * (i % 30),
                    12,
                    60.2,
                    91.9,
                    f"frame {1000 + i}: pass 2",
                    straggler=straggler,
                )
            )
    return JobSnapshot(
        name="render-frames",
        phase=Phase.RUNNING,
        total=20_000,
        submitted=20_000,
        counts=counts(queued=12_301, running=48, ok=7_640, failed=11),
        elapsed_s=65.5,
        serial_s=3_902.0,
        tasks_per_s=116.8,
        eta_s=105.7,
        throughput=rates(32, 116.8),
        engines=tuple(engines),
        failures=failures()[:2],
        n_failures=11,
        output_seq=40,
        cluster="default (64 engines, local)",
        run_id=RUN_ID,
    )


def finished() -> JobSnapshot:
    return JobSnapshot(
        name="flaky",
        phase=Phase.FINISHED,
        total=50,
        submitted=50,
        counts=counts(ok=45, failed=3, cancelled=1, lost=1),
        elapsed_s=3.9,
        serial_s=13.2,
        tasks_per_s=12.8,
        eta_s=0.0,
        throughput=(11.0, 14.0, 13.0, 12.5),
        durations=Durations.of([0.1 + (i * 37 % 23) / 70 for i in range(48)]),
        engines=tuple(EngineView(i, True, None, 0.0, 12, 3.3, 84.0, "") for i in range(4)),
        failures=failures(),
        n_failures=5,
        output_seq=40,
        cluster=CLUSTER.label,
        run_id=RUN_ID,
    )


def succeeded() -> JobSnapshot:
    return JobSnapshot(
        name="squares",
        phase=Phase.FINISHED,
        total=100,
        submitted=100,
        counts=counts(ok=100),
        elapsed_s=14.2,
        serial_s=27.5,
        tasks_per_s=7.0,
        eta_s=0.0,
        throughput=rates(15, 7.0),
        durations=Durations.of([0.05 + (i * 37 % 100) * 0.0045 for i in range(100)]),
        engines=tuple(EngineView(i, True, None, 0.0, 50, 13.7, 96.5, "") for i in range(2)),
        cluster=CLUSTER.label,
        run_id=RUN_ID,
    )


def engine_gone() -> JobSnapshot:
    """squares on 4 engines: engine 2 died while it ran task 43, which is lost."""
    return JobSnapshot(
        name="squares",
        phase=Phase.RUNNING,
        total=100,
        submitted=100,
        counts=counts(queued=33, running=3, ok=62, failed=1, lost=1),
        elapsed_s=24.9,
        serial_s=66.4,
        tasks_per_s=2.6,
        eta_s=13.9,
        throughput=rates(24, 2.6),
        engines=(
            EngineView(0, True, 63, 0.3, 17, 22.0, 88.4, "task 63: step 1/3 reading input 63"),
            EngineView(1, True, 64, 2.1, 16, 20.7, 83.1, "task 64: step 2/3 reading input 64"),
            EngineView(2, False, None, 0.0, 12, 14.8, 59.4, "task 43: step 2/3 reading input 43"),
            EngineView(3, True, 65, 0.9, 17, 21.5, 86.3, "task 62: squared 62 -> 3844"),
        ),
        failures=(
            Failure(21, TaskState.ERROR, 1, "ValueError", "math domain error"),
            Failure(43, TaskState.LOST, 2, "EngineError", "Engine 2 died while running task"),
        ),
        n_failures=2,
        output_seq=40,
        cluster=CLUSTER.label,
        run_id=RUN_ID,
    )


def engine_gone_lines() -> list[OutputLine]:
    """What engines 0, 1 and 3 printed after engine 2 died."""
    return [
        replace(line, engine=3) if line.engine == 2 else line
        for line in output_lines(start_task=50)
    ]


CONTROLLER_GONE = (
    "controller unreachable (no answer since 00:00:12); finished results are saved in "
    f"/home/ada/.local/state/ippmon/runs/{RUN_ID}"
)


def controller_gone() -> JobSnapshot:
    """squares, when the controller stopped answering: the job's message says so (the engines
    look as they did at the last answer)."""
    running = mid_run()
    engines = (
        *running.engines[:3],
        EngineView(3, True, 44, 2.4, 13, 17.5, 81.8, "task 44: step 1/3"),
    )
    return replace(
        running,
        counts=counts(queued=38, running=4, ok=55, failed=3),
        engines=engines,
        message=CONTROLLER_GONE,
    )


def resubmitted() -> JobSnapshot:
    """flaky after `R`: all 50 tasks sent again as attempt 2, the first ones running."""
    return JobSnapshot(
        name="flaky",
        phase=Phase.RUNNING,
        total=50,
        submitted=50,
        counts=counts(queued=38, running=4, ok=8),
        elapsed_s=6.3,
        serial_s=14.1,
        tasks_per_s=3.1,
        eta_s=13.5,
        throughput=rates(6, 3.1),
        engines=tuple(
            EngineView(i, True, 8 + i, 0.1 * (i + 1), 14, 4.4, 70.2, f"task {8 + i}: step 1/3")
            for i in range(4)
        ),
        attempt=2,
        output_seq=40,
        cluster=CLUSTER.label,
        run_id=RUN_ID,
    )


ATTACHED_RUN_ID = "20251231-180000-77de"


def detached_run() -> JobSnapshot:
    """squares as `ippmon attach` finds it: sent by an earlier ippmon that left it running."""
    running = controller_gone()
    return replace(
        running,
        counts=counts(queued=34, running=4, ok=59, failed=3),
        elapsed_s=31.0,
        serial_s=64.8,
        tasks_per_s=2.9,
        eta_s=13.1,
        run_id=ATTACHED_RUN_ID,
        message="",
    )


# -- runs and clusters ---------------------------------------------------------------------------


def recorded_runs() -> list[RunSummary]:
    """Five runs in the test runs folder (`RUNS_DIR`), newest first, as the app's runs list
    reads them."""

    def run(run_id: str, job: str, state: str, total: int, ago: float | None, **done: int):
        by_state = {s.value: 0 for s in TaskState} | done
        by_state["queued"] = total - sum(done.values())
        created = None if ago is None else NOW - ago
        return RunSummary(
            run_id, Path(RUNS_DIR) / run_id, job, state, total, by_state, created, "default"
        )

    return [
        run(RUN_ID, "flaky", "finished", 50, 185, ok=45, error=3, cancelled=1, lost=1),
        run("20251231-231500-9f3c", "render-frames", "detached", 20_000, 2_700, ok=7_680),
        run(ATTACHED_RUN_ID, "squares", "detached", 100, 6 * 3600 + 120, ok=55, error=3),
        run("20251230-120000-0b1d", "sweep", "finished", 12, 36 * 3600, ok=12),
        run("20251229-090000-c0de", "nightly-regression-suite", "finished", 4, None, ok=4),
    ]


def listed_runs() -> list[RunSummary]:
    """Five runs in a user's runs folder, newest first, as the runs screen gets them."""

    def run(run_id: str, job: str, state: str, total: int, ago: float | None, **counts: int):
        done = sum(counts.values())
        counts.setdefault("running", 0)
        counts["queued"] = total - done
        return RunSummary(
            run_id,
            Path("/home/ada/.local/share/ippmon/runs") / run_id,
            job,
            state,
            total,
            counts,
            None if ago is None else NOW - ago,
            "default",
        )

    return [
        run(RUN_ID, "flaky", "finished", 50, 185, ok=45, error=3, cancelled=1, lost=1),
        run("20251231-231500-9f3c", "render-frames", "running", 20_000, 2_700, ok=7_640, error=11),
        run("20251231-180000-77de", "squares", "detached", 100, 6 * 3600 + 120, ok=55, error=3),
        run("20251230-120000-0b1d", "sweep", "finished", 12, 36 * 3600, ok=12),
        run("20251229-090000-c0de", "nightly-regression-suite", "finished", 4, None, ok=4),
    ]


CHOICES = [
    ClusterChoice("default", "", 4, "tcp://127.0.0.1:50123"),
    ClusterChoice("default", "1767225000-x7k2", 16, "tcp://10.0.4.17:41000"),
    ClusterChoice("gpu", "", None, "tcp://gpu-node-3.example.org:40111"),
]
CONNECT_ERROR = ConnectError(
    "no controller answered at tcp://10.0.4.17:41000 within 10 s "
    "(profile 'default'); is the cluster running? Start one with: ipcluster start -n 4"
)


# -- engines that come and go (elapsed, efficiency and busy % over each engine's own time) -------


def engines_joined() -> JobSnapshot:
    """200 tasks started on 1 engine; 2 more registered 12 s before this moment (t = 30 s)."""
    three = replace(CLUSTER, engines=3)
    return JobSnapshot(
        name="squares",
        phase=Phase.RUNNING,
        total=200,
        submitted=200,
        counts=counts(queued=118, running=3, ok=79),
        elapsed_s=30.0,
        wall_s=30.0,
        serial_s=52.6,
        engine_s=54.0,  # 30 + 12 + 12
        tasks_per_s=4.1,
        eta_s=29.0,
        throughput=rates(18, 1.4) + rates(12, 4.1, start=2.9),
        engines=(
            EngineView(0, True, 80, 0.2, 53, 29.1, 97.0, "task 80: step 1/3", job_s=30.0),
            EngineView(1, True, 81, 0.1, 13, 11.8, 98.3, "task 81: step 2/3", job_s=12.0),
            EngineView(2, True, 82, 0.3, 13, 11.7, 97.5, "task 79: squared 79", job_s=12.0),
        ),
        output_seq=40,
        cluster=three.label,
        run_id=RUN_ID,
    )


def engine_left() -> JobSnapshot:
    """The same job later: engine 2's allocation ended while it was idle (nothing lost)."""
    two = replace(CLUSTER, engines=2)
    joined = engines_joined()
    return replace(
        joined,
        counts=counts(queued=61, running=2, ok=137),
        elapsed_s=45.0,
        wall_s=45.0,
        serial_s=84.9,
        engine_s=45.0 + 27.0 + 15.0,
        throughput=joined.throughput + rates(15, 3.0, start=4.0),
        engines=(
            EngineView(0, True, 138, 0.4, 83, 43.8, 97.3, "task 138: step 1/3", job_s=45.0),
            EngineView(1, True, 139, 0.2, 39, 26.4, 97.8, "task 139: step 2/3", job_s=27.0),
            EngineView(
                2, False, None, 0.0, 15, 14.6, 97.3, "task 98: squared 98", job_s=15.0, left=True
            ),
        ),
        cluster=two.label,
    )


def finished_with_advice() -> JobSnapshot:
    """20,000 near-instant tasks, one per chunk: the diagnosis says they are too small."""
    return JobSnapshot(
        name="tiny",
        phase=Phase.FINISHED,
        total=20_000,
        submitted=20_000,
        counts=counts(ok=20_000),
        elapsed_s=53.5,
        wall_s=53.5,
        serial_s=5.8,
        engine_s=107.0,
        tasks_per_s=374.0,
        eta_s=0.0,
        throughput=rates(54, 374.0),
        durations=Durations.of(
            [0.004 if i % 500 == 0 else 0.00025 + (i * 7919 % 1000) * 1e-7 for i in range(20_000)]
        ),
        engines=tuple(EngineView(i, True, None, 0.0, 10_000, 2.9, 5.4, "") for i in range(2)),
        findings=(
            Finding(
                "too-small",
                "tasks too small: each runs 288 µs but costs ~2 ms to schedule; chunksize = 2500 "
                "would cut the job from ~53.5s to ~2.9s",
                change="chunksize = 2500",
                chunksize=2500,
            ),
        ),
        cluster=replace(CLUSTER, engines=2).label,
        run_id=RUN_ID,
    )


# -- output that drives terminals: shown as a terminal would, never passed on --------------------

NASTY = [
    "ansi 1: \x1b[31mred\x1b[0m plain \x1b[1;32mbold green\x1b[0m",
    "title: \x1b]0;pwned window title\x07 (an OSC title sequence)",
    "clipboard: \x1b]52;c;cm0gLXJmIH4=\x1b\\ (an OSC 52 clipboard write)",
    "cursor: \x1b[2J\x1b[H\x1b[10;40Hmoved\x1b[6n (clear, home, move, report)",
    "\rprog 1: 1/5\rprog 1: 2/5\rprog 1: 5/5",
    "spinner |\b/\b-\b\\\b| done",
    "tabs:\tone\ttwo\tthree",
    "wide: 漢字 emoji 🚀 e\u0301 combining",
    "bell\x07 and NUL\x00 and DEL\x7f and C1 \x9b31mcsi",
    "long: " + "0123456789" * 3000,
]


def nasty_output_lines() -> list[OutputLine]:
    """NASTY as the tracker publishes it (`ippmon.terminal.emulate`), on two engines."""
    from ippmon.terminal import emulate

    return [
        OutputLine(seq, 40 + seq % 4, seq % 2, "stderr" if seq % 5 == 0 else "stdout", emulate(raw))
        for seq, raw in enumerate(NASTY * 2, 1)
    ]


def nasty_mid_run() -> JobSnapshot:
    from ippmon.terminal import plain

    return replace(
        mid_run(),
        name="chatty",
        engines=(
            EngineView(0, True, 41, 0.4, 15, 19.8, 92.5, plain(NASTY[0])),
            EngineView(1, True, 42, 3.2, 14, 18.1, 84.6, plain(NASTY[4])),
            EngineView(2, True, 43, 1.1, 16, 19.0, 88.8, plain(NASTY[7])),
            EngineView(3, True, 44, 0.9, 13, 2.0, 9.3, plain(NASTY[1])),
        ),
        failures=(),
        n_failures=0,
    )


def stragglers_running() -> JobSnapshot:
    """The built-in `stragglers` job on 2 engines, 5.4 s in: 25 tasks of 0.2 s finished (and #12,
    of 2 s), #25 has run 1.6 s: a straggler."""
    return JobSnapshot(
        name="stragglers",
        phase=Phase.RUNNING,
        total=40,
        submitted=40,
        counts=counts(queued=13, running=2, ok=25),
        elapsed_s=5.4,
        serial_s=6.8,
        tasks_per_s=4.4,
        eta_s=3.4,
        engines=(
            EngineView(0, True, 25, 1.6, 12, 5.1, 94.4, "task 25: sleeping 2.0 s", straggler=True),
            EngineView(1, True, 27, 0.1, 13, 5.2, 96.3, "task 26: done"),
        ),
        output_seq=12,
        cluster=replace(CLUSTER, engines=2).label,
        run_id=RUN_ID,
        throughput=(9.0, 7.0, 5.0, 8.0, 6.0),
        durations=Durations.of([0.2] * 24 + [2.0]),
    )


def runs_with_a_damaged_one() -> list[RunSummary]:
    """The runs list with a run whose results file was damaged (listed, not hidden)."""
    from ippmon.runs import UNREADABLE

    damaged = RunSummary(
        run_id="20251231-221500-chatty-9f3e",
        folder=Path(RUNS_DIR) / "20251231-221500-chatty-9f3e",
        job="?",
        state=UNREADABLE,
        total=0,
        counts={},
        created=NOW - 6300.0,
        cluster="?",
        problem=f"{RUNS_DIR}/20251231-221500-chatty-9f3e/results.jsonl:412: 'status' must be "
        "one of ok, error, cancelled, lost, got 'running'",
    )
    runs = listed_runs()
    return [runs[0], damaged, *runs[1:]]
