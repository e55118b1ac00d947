"""A stand-in for a user's notebook: its own ipyparallel Client on the test cluster submits a
load-balanced map of printing tasks (every third one fails), each blocked until a flag file
exists. Prints its session and msg_ids once sent, then its AsyncResult's counts at the end.

With `--direct DIRECT_FLAG`, once the map's first tasks run on every engine, it also sends a
DirectView apply to every engine, without a label (as `rc[:].apply(setup)` in a notebook
would): one task per engine, printing `direct task waiting` and blocked until DIRECT_FLAG
exists. Each waits on its engine behind the map task running there (an engine takes a direct
request and a load-balanced task in no set order when both wait: hence sending it only once
the map's tasks run). Its msg_ids and counts are reported under "direct", and every task
that failed by its error's name under "errors".

    python status_submitter.py CLUSTER_ID FLAG N [LABEL] [--direct DIRECT_FLAG]
"""

import argparse
import json
import time
from collections import Counter

import ipyparallel as ipp


def task(x, flag):
    import os
    import time

    print(f"task {x} waiting", flush=True)
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.01)
    if x % 3 == 0:
        raise ValueError(f"item {x} fails")
    return x


def direct(flag):
    import os
    import time

    print("direct task waiting", flush=True)
    deadline = time.time() + 60
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.01)
    return "set up"


def counts(results, n):
    failed = [r for r in results if isinstance(r, Exception)]
    return {"tasks": n, "done": n - len(failed), "failed": len(failed)}, [
        getattr(r, "ename", type(r).__name__) for r in failed
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cluster_id")
    parser.add_argument("flag")
    parser.add_argument("n", type=int)
    parser.add_argument("label", nargs="?")
    parser.add_argument("--direct", metavar="DIRECT_FLAG")
    args = parser.parse_args()
    rc = ipp.Client(cluster_id=args.cluster_id, timeout=30)
    view = rc.load_balanced_view()
    n = args.n
    ar = view.map_async(task, range(n), [args.flag] * n, return_exceptions=True, label=args.label)
    dar = None
    if args.direct:
        running_on_each = min(n, len(rc.ids))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # engine_id: from each task's first iopub message
            if sum(md["engine_id"] is not None for md in ar._metadata) >= running_on_each:
                break
            time.sleep(0.01)
        dar = rc[:].apply_async(direct, args.direct)
    sent = {"session": rc.session.session, "user": rc.session.username, "msg_ids": ar.msg_ids}
    if dar is not None:
        sent["direct_msg_ids"] = dar.msg_ids
    print(json.dumps(sent), flush=True)
    final, errors = counts(ar.get(timeout=90), len(ar.msg_ids))
    if dar is not None:
        final["direct"], more = counts(
            dar.get(timeout=90, return_exceptions=True), len(dar.msg_ids)
        )
        errors += more
        final["errors"] = dict(Counter(errors))
    print(json.dumps(final), flush=True)
    rc.close()


if __name__ == "__main__":
    main()
