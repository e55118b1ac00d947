"""The diagnosis (`ippmon.diagnosis`) on timelines recorded from real runs on a 2-engine cluster
(`python -m scripts.record_timelines`), and on variations of them."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import pytest

from ippmon.diagnosis import MIN_CHUNKS, Ran, diagnose
from ippmon.headless import summary_lines
from ippmon.model import Finding, JobSnapshot, Phase, TaskState

TIMELINES = Path(__file__).parent / "data" / "timelines"


def recorded(name: str) -> tuple[list[Ran], dict]:
    data = json.loads((TIMELINES / f"{name}.json").read_text())
    return [Ran(**r) for r in data["timeline"]], data


def judge(runs: list[Ran], data: dict, **overrides: int) -> list[Finding]:
    args = {"engines": data["engines"], "total_items": data["total_items"]}
    args["chunksize"] = data["chunksize"]
    args.update(overrides)
    return diagnose(runs, **args)


def test_near_instant_tasks_are_too_small_and_a_chunksize_is_worked_out() -> None:
    runs, data = recorded("tiny")  # 2,000 tasks of ~0.3 ms, one per chunk
    (finding,) = judge(runs, data)
    assert finding.kind == "too-small"
    # chunks of ~1 s of work: 1 s / ~0.3 ms per item, capped at 2,000 / (4 chunks x 2 engines)
    assert finding.chunksize == 250 and finding.change == "chunksize = 250"
    assert "costs ~" in finding.text and "would cut the job from" in finding.text


def test_a_healthy_job_gets_no_advice() -> None:
    runs, data = recorded("squares")  # 100 tasks of 0.05-0.5 s
    assert judge(runs, data) == []


def test_stragglers_are_named() -> None:
    runs, data = recorded("stragglers")  # 40 tasks of 0.2 s, every 13th 2 s
    (finding,) = judge(runs, data)
    assert finding.kind == "stragglers"
    for index in (12, 25, 38):
        assert f"#{index} (2.0s)" in finding.text
    assert "held the end up" in finding.text


def test_no_advice_to_save_a_fraction_of_a_second() -> None:
    runs, data = recorded("tiny")  # its first 150 chunks ran in well under a second
    first = runs[:150]
    assert max(r.completed for r in first) - min(r.submitted for r in first) < 1.0
    assert judge(first, data, total_items=150) == []


def test_no_advice_from_a_handful_of_tasks() -> None:
    runs, data = recorded("tiny")
    assert judge(runs[: MIN_CHUNKS - 1], data) == []


def test_one_slow_engine_is_named() -> None:
    runs, data = recorded("squares")
    slowed = [
        dataclasses.replace(r, completed=r.started + 2.5 * r.run_s) if r.engine == 1 else r
        for r in runs
    ]
    kinds = {f.kind: f for f in judge(slowed, data)}
    per_engine = [statistics.median(r.run_s for r in slowed if r.engine == e) for e in (0, 1)]
    ratio = per_engine[1] / per_engine[0]  # ~2.5 x the random mix engine 1 got vs engine 0's
    assert ratio > 1.5
    assert f"engine 1 is slow: its tasks take {ratio:.1f}× as long" in kinds["slow-engine"].text


def test_fewer_tasks_than_engines() -> None:
    runs = [Ran(i, 1, i, 0.0, 0.0, 10.0) for i in range(3)]
    (finding,) = diagnose(runs, engines=4, total_items=3)
    assert finding.kind == "too-few" and "3 for 4 engines" in finding.text


def test_engines_idle_while_tasks_wait_point_at_the_scheduler() -> None:
    """60 tasks of 0.2 s sent at t=0: engine 1 runs 57 back to back, engine 0 three and then
    nothing while the rest wait."""
    runs = [Ran(i, 1, 0, 0.0, 0.2 * i, 0.2 * (i + 1)) for i in range(3)]
    runs += [Ran(i, 1, 1, 0.0, 0.2 * (i - 3), 0.2 * (i - 2)) for i in range(3, 60)]
    kinds = [f.kind for f in diagnose(runs, engines=2, total_items=60)]
    assert kinds == ["idle-queued"]


def test_the_headless_summary_shows_the_advice() -> None:
    finding = Finding("too-small", "tasks too small: ...", "chunksize = 250", 250)
    snap = JobSnapshot(
        name="tiny",
        phase=Phase.FINISHED,
        total=2000,
        submitted=2000,
        counts={TaskState.OK: 2000},
        elapsed_s=4.9,
        serial_s=0.6,
        tasks_per_s=400,
        eta_s=0,
        findings=(finding,),
    )
    assert "advice: tasks too small: ... → chunksize = 250" in summary_lines(snap)


@pytest.mark.parametrize("name", ["tiny", "squares", "stragglers"])
def test_recorded_timelines_are_real_runs_of_two_engines(name: str) -> None:
    runs, data = recorded(name)
    assert {r.engine for r in runs} == {0, 1} and len(runs) == data["total_items"]
    assert all(r.submitted <= r.started <= r.completed for r in runs)


def test_the_idle_rule_measures_waiting_time_as_a_sweep_over_every_wait_does() -> None:
    import random

    from ippmon.spans import Spans

    def swept(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
        covered, reach = 0.0, lo
        for s, e in spans:
            s, e = max(s, reach), min(e, hi)
            if e > s:
                covered += e - s
                reach = e
        return covered

    rng = random.Random(7)
    for _ in range(200):
        spans = []
        for _ in range(rng.randint(0, 30)):
            s = rng.uniform(0, 100)
            spans.append((s, s + rng.choice([0.0, rng.uniform(0, 3), rng.uniform(0, 40)])))
        spans.sort()
        union = Spans()
        for span in spans:
            union.add(*span)
        for _ in range(20):
            lo, hi = sorted((rng.uniform(-10, 110), rng.uniform(-10, 110)))
            assert union.overlap(lo, hi) == pytest.approx(swept(spans, lo, hi), abs=1e-9)
    assert Spans().overlap(0, 10) == 0.0


def test_many_stragglers_are_counted_and_idle_stretches_between_them_added_up() -> None:
    """4,000 chunks sent at t=0 to 2 engines. Engine 0 runs the even ones: every fifth of its
    chunks runs 5 s, the others 0.5 s, and it pauses 1.5 s before each long one (400 x 1.5 s
    idle). Engine 1 runs the odd ones, all 0.5 s, with the same 400 pauses, and is done at
    1,600 s while engine 0 starts its last chunk at 3,399.5 s (1,799.5 s more idle, tasks
    waiting): 2,999.5 s of 2 x 3,400 s."""
    runs, free_at = [], {0: 0.0, 1: 0.0}
    for i in range(4000):
        engine = i % 2
        start = free_at[engine] + (1.5 if i % 5 == 0 else 0.0)
        runs.append(Ran(i, 1, engine, 0.0, start, start + (5.0 if i % 10 == 0 else 0.5)))
        free_at[engine] = runs[-1].completed
    stragglers, idle = diagnose(runs, engines=2, total_items=4000)
    assert stragglers.text.startswith("stragglers: #0 (5.0s), #10 (5.0s), #20 (5.0s)")
    assert "and 395 more ran over 3× the median (0.5s)" in stragglers.text
    assert idle.kind == "idle-queued"
    assert idle.text.startswith("engines sat idle for 50m00s (44% of the engine time)")


def test_a_diagnosis_that_grows_costly_is_worked_out_less_often() -> None:
    from ippmon.job import DIAGNOSE_EVERY_S, DIAGNOSE_SHARE, Budgeted

    every = Budgeted(DIAGNOSE_EVERY_S, DIAGNOSE_SHARE)
    assert every.due(0.0)
    every.ran(0.0, 0.01)  # cheap: again after DIAGNOSE_EVERY_S
    assert not every.due(DIAGNOSE_EVERY_S - 0.1) and every.due(DIAGNOSE_EVERY_S)
    every.ran(10.0, 11.0)  # a second: again only when it is DIAGNOSE_SHARE of the time
    assert not every.due(10.0 + DIAGNOSE_EVERY_S)
    assert not every.due(10.0 + 1.0 / DIAGNOSE_SHARE - 0.1)
    assert every.due(10.0 + 1.0 / DIAGNOSE_SHARE)


def back_to_back(engine: int, lengths: list[float], first_index: int) -> list[Ran]:
    """Chunks run one after another on `engine` from t=0, all sent at t=0."""
    runs, t = [], 0.0
    for i, length in enumerate(lengths):
        runs.append(Ran(first_index + i, 1, engine, 0.0, t, t + length))
        t += length
    return runs


def test_a_straggler_that_delayed_its_engines_last_chunks_held_the_end_up_by_its_extra_time() -> (
    None
):
    """Engine 0's 28th chunk ran 5 s instead of 1 s and two more followed it there: the job
    ended at 34 s, not at 30 s when engine 1 did, so it held the end up by ~4 s (the last
    chunk to end is not the straggler itself)."""
    slow = [1.0] * 30
    slow[27] = 5.0
    runs = back_to_back(0, slow, 0) + back_to_back(1, [1.0] * 30, 100)
    runs.sort(key=lambda r: r.started)
    findings = [f for f in diagnose(runs, engines=2, total_items=60) if f.kind == "stragglers"]
    assert [f.text for f in findings] == [
        "stragglers: #27 (5.0s) ran over 3× the median (1.0s) and held the end up by ~4.0s"
    ]


def test_a_late_straggler_on_an_engine_that_did_not_end_last_is_not_blamed_for_the_end() -> None:
    """Engine 1's straggler ran into the last stretch, but engine 0 ended later anyway."""
    slow = [1.0] * 30
    slow[28] = 3.5
    runs = back_to_back(0, [1.0] * 33, 0) + back_to_back(1, slow, 100)
    runs.sort(key=lambda r: r.started)
    assert [f for f in diagnose(runs, engines=2, total_items=63) if f.kind == "stragglers"] == []
