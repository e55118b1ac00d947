"""A stand-in for a user's notebook: its own ipyparallel Client on the test cluster submits a
load-balanced map of printing tasks (every third one fails), each blocked until a flag file
exists. Prints its session and msg_ids once sent, then its AsyncResult's counts at the end.

    python status_submitter.py CLUSTER_ID FLAG N [LABEL]
"""

import json
import sys

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


def main() -> None:
    cluster_id, flag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    label = sys.argv[4] if len(sys.argv) > 4 else None
    rc = ipp.Client(cluster_id=cluster_id, timeout=30)
    view = rc.load_balanced_view()
    ar = view.map_async(task, range(n), [flag] * n, return_exceptions=True, label=label)
    sent = {"session": rc.session.session, "user": rc.session.username, "msg_ids": ar.msg_ids}
    print(json.dumps(sent), flush=True)
    results = ar.get(timeout=90)
    failed = sum(isinstance(r, Exception) for r in results)
    print(json.dumps({"tasks": len(ar.msg_ids), "done": n - failed, "failed": failed}), flush=True)
    rc.close()


if __name__ == "__main__":
    main()
