"""Record job timelines from real runs, for the diagnosis tests (tests/data/timelines/*.json).

    python -m scripts.record_timelines

Starts a private local cluster of 2 engines, runs a few jobs through ippmon's Job and writes
each job's timeline (every chunk: engine, submitted, started, completed) as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import textwrap
from pathlib import Path

from ippmon.connect import start_local
from ippmon.jobspec import load_catalog

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "timelines"

JOBS = """
[jobs.tiny]
description = "2,000 near-instant tasks, one per chunk"
function = "ippmon.demo:slow_square"
inputs = { range = [0, 2000] }
kwargs = { delay = 0.0, steps = 0 }

[jobs.squares]
function = "ippmon.demo:slow_square"
inputs = { range = [0, 100] }

[jobs.stragglers]
function = "ippmon.demo:stragglers"
inputs = { range = [0, 40] }
kwargs = { delay = 0.2 }
"""


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "ippmon.toml"
        spec_file.write_text(textwrap.dedent(JOBS))
        catalog = load_catalog(spec_file)
        session = start_local(2, timeout=60)
        try:
            for name in ("tiny", "squares", "stragglers"):
                job = session.submit(catalog.get(name), runs_dir=str(Path(tmp) / "runs"))
                assert job.wait(timeout=600)
                data = {
                    "job": name,
                    "engines": 2,
                    "total_items": len(job.inputs),
                    "chunksize": job.spec.chunksize or 1,
                    "elapsed_s": job.poll().elapsed_s,
                    "timeline": [dataclasses.asdict(r) for r in job.tracker.timeline()],
                }
                (OUT / f"{name}.json").write_text(json.dumps(data, indent=0) + "\n")
                print(name, len(data["timeline"]), f"{data['elapsed_s']:.1f} s")
                job.close()
        finally:
            session.close()


if __name__ == "__main__":
    main()
