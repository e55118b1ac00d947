"""Engines that register mid-job, on a real cluster: the monitor's title and panels follow them,
and the final efficiency counts each engine from its arrival, checked against the tasks' own
timestamps in the run record."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from cluster_helpers import write_spec

from ippmon.connect import start_local
from ippmon.jobspec import load_catalog
from ippmon.model import Phase
from ippmon.records import epoch, read_results
from ippmon.ui import IppmonApp
from ippmon.ui.widgets.engine_panel import EnginePanel

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await pilot.pause(0.1)


async def test_engines_that_join_mid_job_are_counted_from_their_arrival(
    tmp_path: Path, runs_dir: str
) -> None:
    spec = write_spec(
        tmp_path / "spec",
        """
        [jobs.squares]
        function = "ippmon.demo:slow_square"
        inputs = { range = [0, 60] }
        kwargs = { delay = 0.25, steps = 1 }
        """,
    )
    own = start_local(1, timeout=60)
    try:
        job = own.submit(load_catalog(spec).get("squares"), runs_dir=runs_dir)
        app = IppmonApp.for_job(job, poll_interval=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            monitor = None

            def ok_at_least(n: int) -> bool:
                nonlocal monitor
                monitor = app.monitor()
                snap = monitor.snapshot if monitor else None
                return snap is not None and snap.done >= n

            await wait_for(pilot, lambda: ok_at_least(8))
            assert monitor is not None and "(1 engine," in monitor.sub_title
            asked = time.time()
            await asyncio.to_thread(own.cluster.start_engines_sync, 2)
            await wait_for(pilot, lambda: "(3 engines," in monitor.sub_title)
            await wait_for(pilot, lambda: len(monitor.query(EnginePanel)) == 3)
            await wait_for(pilot, lambda: monitor.phase is Phase.FINISHED)
            snap = monitor.snapshot
        assert snap is not None and snap.n_engines == 3

        lines = read_results(job.record.folder)
        serial = sum(line["duration_s"] for line in lines)
        start = min(epoch(line["submitted"]) for line in lines)
        end = max(epoch(line["completed"]) for line in lines)
        first = {
            e: min(epoch(line["started"]) for line in lines if line["engine"] == e) for e in (1, 2)
        }
        # Engines 1 and 2 arrived after we asked for them and before their first task started:
        # their time on the job lies between (end - first start) and (end - asked).
        assert snap.serial_s == pytest.approx(serial, rel=0.01)
        assert snap.elapsed_s == pytest.approx(end - start, abs=0.5)
        most = snap.elapsed_s + sum(end - first[e] for e in (1, 2))
        least = snap.elapsed_s + 2 * (end - asked)
        assert serial / least - 0.02 <= snap.efficiency <= serial / most + 0.02
        # counted as if all three had been there from the start, it would read far lower
        assert snap.efficiency > serial / (3 * snap.elapsed_s) + 0.1
        for engine in snap.engines:
            if engine.id in (1, 2):
                assert engine.job_s <= end - first[engine.id] + 1.0
                assert engine.busy_pct > 50
    finally:
        own.close()
