"""A recorded moment of `ippmon top`: a cluster shared by three clients, each with a job.

- `squares`, sent by an ippmon (its tasks carry the label `ippmon:squares`);
- `fit`, sent from a notebook with `view.map_async(..., label="fit")`;
- an unlabelled map from another notebook, named by its session.
"""

from __future__ import annotations

from ippmon.clusterview import LIMIT_DICTDB, LIMIT_HWM, LIMIT_START
from ippmon.topmodel import TopEngine, TopJob, TopLine, TopSnapshot

from .recorded import NOW

IPPMON_SESSION = "5b1e0c2a-9d41-4c0e-8f5e-0a6c1d2e3f40"
FIT_SESSION = "c3d9a7e1-2b44-4a6f-9c10-77e8f1a2b3c4"
NOTEBOOK_SESSION = "f0a1b2c3-d4e5-4f60-8a7b-9c8d7e6f5a4b"

SQUARES = f"{IPPMON_SESSION}/ippmon:squares"
FIT = f"{FIT_SESSION}/fit"
NOTEBOOK = NOTEBOOK_SESSION
SESSIONS = {SQUARES: IPPMON_SESSION, FIT: FIT_SESSION, NOTEBOOK: NOTEBOOK_SESSION}
JOB_IDS = (SQUARES, FIT, NOTEBOOK)

JOBS = (
    TopJob(SQUARES, IPPMON_SESSION, "alice", "ippmon:squares", NOW - 305, 120, 4, 160, 3, 2.4, 52),
    TopJob(FIT, FIT_SESSION, "alice", "fit", NOW - 190, 8, 2, 30, 0, 0.5, 20.0),
    TopJob(NOTEBOOK, NOTEBOOK_SESSION, "bob", None, NOW - 62, 0, 0, 14, 6, 0.0, None),
)


def msg_id(job: str, n: int) -> str:
    return f"{SESSIONS[job]}_4242_{n}"


def engines(n: int, *, gone: int = 1) -> tuple[TopEngine, ...]:
    """`n` engines: most busy with one of the jobs, every fifth idle, the last `gone` gone."""
    out = []
    for eid in range(n):
        if eid >= n - gone and n > 2:
            out.append(TopEngine(eid, "gone", done=3 + eid % 4, failed=eid % 2, busy_pct=61.0))
        elif eid % 5 == 4:
            out.append(TopEngine(eid, "idle", done=7 + eid % 9, busy_pct=38.0 + eid % 7))
        else:
            job = JOB_IDS[eid % 3 if eid % 3 != 2 else 0] if eid % 7 else FIT
            out.append(
                TopEngine(
                    eid,
                    "busy",
                    msg_id(job, 100 + eid),
                    job,
                    running_for_s=0.4 + (eid * 1.7) % 19,
                    done=10 + (eid * 7) % 23,
                    failed=int(eid % 4 == 1),
                    busy_pct=72.0 + (eid * 3) % 28,
                    last_line=f"step {eid * 3 % 17}/20 loss={0.5 / (1 + eid % 9):.4f}",
                )
            )
    return tuple(out)


def top_snapshot(n_engines: int = 4, *, limits: tuple[str, ...] | None = None) -> TopSnapshot:
    engs = engines(n_engines)
    return TopSnapshot(
        taken=NOW,
        watching_s=65.0,
        engines=engs,
        jobs=JOBS,
        unassigned=128,
        done=173,
        failed=5,
        tasks_per_s=2.9,
        db="DictDB",
        limits=(LIMIT_DICTDB, LIMIT_START, LIMIT_HWM) if limits is None else limits,
    )


def top_lines(n: int = 30, *, engines: int = 4) -> list[TopLine]:
    """Output of the three jobs, interleaved; every seventh line is the notebook's stderr."""
    lines = []
    for seq in range(1, n + 1):
        job = JOB_IDS[seq % 3]
        stderr = job == NOTEBOOK and seq % 7 == 0
        text = (
            f"UserWarning: item {seq} has no weights"
            if stderr
            else f"{'fit' if job == FIT else 'item'} {seq}: {seq * seq}"
        )
        lines.append(
            TopLine(
                seq, seq % engines, job, msg_id(job, seq), "stderr" if stderr else "stdout", text
            )
        )
    return lines
