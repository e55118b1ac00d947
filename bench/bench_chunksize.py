"""Does the diagnosis pay for itself? A job of N near-instant tasks (one per chunk), then the
same inputs again with the chunksize the diagnosis suggests; end-to-end times of both, and the
ratio, measured in the same run on the same cluster. Prints; asserts nothing.

    python bench/bench_chunksize.py                   # 20,000 tasks, private 2-engine cluster
    python bench/bench_chunksize.py -n 5000 --cluster-id ID   # on a cluster you started
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import textwrap
import time
from pathlib import Path

from ippmon.connect import ClusterBackend, ConnectOptions, start_local
from ippmon.jobspec import load_catalog

SPEC = """
[jobs.tiny]
function = "ippmon.demo:slow_square"
inputs = {{ range = [0, {n}] }}
kwargs = {{ delay = 0.0, steps = 0 }}
"""


def timed(session, spec, runs_dir: str):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    job = session.submit(spec, runs_dir=runs_dir)
    assert job.wait(timeout=3600), "the job did not finish"
    took = time.perf_counter() - start
    snap = job.poll()
    job.close()
    return took, snap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--cluster-id", help="a running cluster (default: start 2 engines)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec_file = Path(tmp) / "ippmon.toml"
        spec_file.write_text(textwrap.dedent(SPEC.format(n=args.n)))
        spec = load_catalog(spec_file).get("tiny")
        if args.cluster_id:
            session = ClusterBackend(ConnectOptions(cluster_id=args.cluster_id)).connect()
        else:
            session = start_local(2, timeout=60)
        try:
            before, snap = timed(session, spec, str(Path(tmp) / "runs"))
            advice = [f for f in snap.findings if f.chunksize]
            print(f"chunksize 1: {args.n:,} tasks in {before:.1f} s")
            for f in snap.findings:
                print(f"  advice: {f.text}")
            if not advice:
                print("no chunksize advice: nothing to compare")
                return
            size = advice[0].chunksize
            after, _ = timed(session, dataclasses.replace(spec, chunksize=size), str(Path(tmp)))
            print(f"chunksize {size}: {args.n:,} tasks in {after:.1f} s")
            print(f"ratio (before / after): {before / after:.1f}x")
        finally:
            session.close()


if __name__ == "__main__":
    main()
