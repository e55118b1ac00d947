"""`IopubWatcher` hears every engine start and end each task, whichever client sent it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cluster_helpers import until

from ippmon.connect import ClientSession
from ippmon.iopub_watch import IopubWatcher

SUBMITTER = Path(__file__).with_name("status_submitter.py")


@pytest.mark.cluster
@pytest.mark.parametrize("own_socket", [False, True], ids=["client-hook", "own-socket"])
def test_another_clients_tasks_start_and_end_on_each_engine(
    tmp_path: Path,
    cluster: ClientSession,
    client,  # noqa: ANN001
    own_socket: bool,
) -> None:
    heard: list[tuple[int, str, str, bool]] = []
    watcher = IopubWatcher(
        client, on_status=lambda *event: heard.append(event), own_socket=own_socket
    )
    watcher.start()
    # hooked on the client, no second socket (nor thread) unpacks every message again
    assert watcher.is_alive() is own_socket
    flag = tmp_path / "go"
    submitter = subprocess.Popen(
        [sys.executable, str(SUBMITTER), cluster.info.cluster_id, str(flag), "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert submitter.stdout is not None
        sent = json.loads(submitter.stdout.readline())
        mine = set(sent["msg_ids"])

        def both_busy_with_its_tasks() -> bool:
            now = watcher.activity()
            return all(now.get(e) and now[e].msg_id in mine for e in client.ids)

        assert until(both_busy_with_its_tasks, timeout=30), watcher.activity()
        assert {a.session for a in watcher.activity().values()} == {sent["session"]}
        flag.touch()
        submitter.communicate(timeout=60)
        assert until(lambda: {e[1] for e in heard if not e[3]} >= mine, timeout=15), heard
        assert {e[1] for e in heard if e[3]} >= mine  # each started, then ended
        assert until(lambda: all(a.msg_id is None for a in watcher.activity().values()), 5)
        # the client's own iopub still works beside the watcher: its output arrives
        ar = client[:].apply_async(print, "mine too")
        ar.get(timeout=30)
        ar.wait_for_output(timeout=30)
        assert ar.stdout == ["mine too\n"] * len(client.ids)
    finally:
        flag.touch()
        if submitter.poll() is None:
            submitter.kill()
            submitter.wait()
        watcher.close()
    assert not watcher.is_alive()
