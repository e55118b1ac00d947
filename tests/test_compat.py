"""Every private part of ipyparallel and Textual that `ippmon._compat` uses, checked against the
installed versions: a release that changes one fails here, naming it."""

from __future__ import annotations

import datetime as dt
import inspect
import threading

import ipyparallel as ipp
import pytest
from cluster_helpers import until
from textual.geometry import Size
from textual.widget import Widget

from ippmon import _compat


def test_textual_widgets_still_have_scroll_update_taking_the_virtual_size() -> None:
    method = getattr(Widget, "_scroll_update", None)
    assert method is not None, "Textual's Widget lost _scroll_update (used by OutputLog)"
    params = list(inspect.signature(method).parameters)
    assert params == ["self", "virtual_size"], f"Widget._scroll_update now takes {params}"

    seen: list[Size] = []

    class Recorder:
        def _scroll_update(self, virtual_size: Size) -> None:
            seen.append(virtual_size)

    _compat.scroll_update(Recorder(), Size(3, 4))
    assert seen == [Size(3, 4)]


@pytest.mark.cluster
def test_a_map_has_one_child_future_per_chunk_with_what_the_job_follows(client) -> None:  # noqa: ANN001
    ar = client.load_balanced_view().map_async(abs, range(-5, 5), chunksize=3)
    children = _compat.map_children(ar)
    assert len(children) == 4, "AsyncMapResult._children is no longer one future per chunk"
    for child in children:
        assert isinstance(child.msg_id, str) and isinstance(child.iopub_callbacks, list)
        assert isinstance(child.output.metadata, dict) and callable(child.add_done_callback)
    ar.get(timeout=30)
    assert [c.result() for c in children] == [[5, 4, 3], [2, 1, 0], [1, 2], [3, 4]]


def test_a_result_without_children_is_refused_in_one_line() -> None:
    with pytest.raises(RuntimeError, match="has no _children"):
        _compat.map_children(object())


@pytest.mark.cluster
def test_a_function_runs_on_the_clients_io_thread(client) -> None:  # noqa: ANN001
    ran_on: list[str] = []
    assert _compat.call_on_io_thread(client, lambda: ran_on.append(threading.current_thread().name))
    assert until(lambda: bool(ran_on), timeout=10), "Client._io_loop did not run the callback"
    assert ran_on[0] != threading.current_thread().name


@pytest.mark.cluster
def test_a_query_to_the_controller_comes_back_as_a_future(client) -> None:  # noqa: ANN001
    future = _compat.ask_controller(
        client, "queue_request", {"targets": list(client.ids), "verbose": False}
    )
    assert future is not None, "Client._send or Client._query_stream changed"
    reply = future.result(timeout=10)
    assert reply["content"]["status"] == "ok"
    assert {str(i) for i in client.ids} <= set(reply["content"])


@pytest.mark.cluster
def test_the_queue_counts_come_with_the_controllers_clock(client) -> None:  # noqa: ANN001
    before = dt.datetime.now(dt.timezone.utc)
    counts, hub_now = _compat.queue_status_at(client)
    after = dt.datetime.now(dt.timezone.utc)
    assert hub_now is not None, "the queue reply's header lost its date, or Client._send changed"
    assert before <= hub_now <= after  # one machine: the hub's clock is this one
    assert set(counts) == set(client.queue_status())


@pytest.mark.cluster
def test_engine_ids_are_found_by_the_uuid_in_the_controllers_task_records(client) -> None:  # noqa: ANN001
    by_uuid = _compat.engines_by_uuid(client)
    assert sorted(by_uuid.values()) == sorted(client.ids), "Client._engines changed"
    ar = client.load_balanced_view().apply_async(abs, -1)
    ar.get(timeout=30)

    def engine_uuid() -> str | None:
        (record,) = client.db_query({"msg_id": ar.msg_id}, keys=["engine_uuid"])
        return record["engine_uuid"]

    # The controller records the engine a task went to as the scheduler tells it, which on a
    # loaded machine can come after the client has the result (seen: None right after get).
    assert until(lambda: engine_uuid() is not None, timeout=30), "the task's engine never recorded"
    assert by_uuid[engine_uuid()] == ar.engine_id


def test_the_iopub_hook_is_refused_without_error_on_a_stand_in_for_a_client() -> None:
    class Wrapper:  # what a proxy around a Client looks like: no `_dispatch_iopub` of its own
        _iopub_stream = object()

    assert _compat.observe_iopub(Wrapper(), lambda msg, topic: None, timeout=1) is None


@pytest.mark.cluster
def test_the_iopub_hook_hears_the_output_of_another_clients_tasks(
    cluster,  # noqa: ANN001
    client,  # noqa: ANN001
) -> None:
    watcher = ipp.Client(cluster_id=cluster.info.cluster_id, timeout=30)
    try:
        heard: list[tuple[dict, bytes]] = []
        stop = _compat.observe_iopub(watcher, lambda m, topic: heard.append((m, topic)), 10)
        assert stop is not None, (
            "Client._iopub_stream or Client._dispatch_iopub.__wrapped__ changed"
        )

        def heard_of(msg_id: str) -> bool:
            return any(m["parent_header"].get("msg_id") == msg_id for m, _topic in list(heard))

        # A new client's SUB socket hears the relay only once its subscription has reached it
        # (ZMQ's slow joiner; a loaded machine once took longer than one task): probe first.
        for _ in range(20):
            probe = client.load_balanced_view().apply_async(print, "probe")
            probe.get(timeout=30)
            if until(lambda probe_id=probe.msg_id: heard_of(probe_id), timeout=1):
                break
        else:
            pytest.fail("the watching client heard none of 20 probe tasks")
        ar = client.load_balanced_view().apply_async(print, "hello from the other client")
        ar.get(timeout=30)

        def streamed() -> list[str]:
            return [
                m["content"]["text"]
                for m, _topic in list(heard)
                if m["header"]["msg_type"] == "stream" and m["parent_header"]["msg_id"] == ar.msg_id
            ]

        assert until(lambda: "hello from the other client\n" in "".join(streamed()), timeout=10)
        assert ar.msg_id not in watcher.metadata  # ipyparallel's own handler still ran, unchanged
        topics = {t for m, t in heard if m["parent_header"].get("msg_id") == ar.msg_id}
        assert f"engine.{ar.engine_id}.stdout".encode() in topics  # its engine, by topic
        stop()  # heard no more; another observer of the same client still is
        count = len(heard)
        other: list[str] = []
        _compat.observe_iopub(
            watcher, lambda m, t: other.append(str(m["content"].get("text", ""))), 10
        )
        client.load_balanced_view().apply_async(print, "only the other hears").get(timeout=30)
        assert until(lambda: "only the other hears\n" in other, timeout=10)
        assert len(heard) == count
    finally:
        watcher.close()


def test_textual_apps_still_write_to_their_terminal_through_their_driver() -> None:
    import inspect as _inspect

    from textual.app import App
    from textual.driver import Driver

    assert "_driver.write" in _inspect.getsource(App.bell), "App.bell no longer uses _driver.write"
    assert callable(Driver.write), "Textual's Driver lost write"
    written: list[str] = []

    class Recorder:
        is_headless = False
        _driver = type("D", (), {"write": staticmethod(written.append)})()

    _compat.write_to_terminal(Recorder(), "\a")
    assert written == ["\a"]
    Recorder.is_headless = True
    _compat.write_to_terminal(Recorder(), "x")
    assert written == ["\a"]  # a headless app has no terminal to tell


@pytest.mark.cluster
def test_the_client_says_its_iopub_address(client) -> None:  # noqa: ANN001
    address = _compat.iopub_address(client)
    assert address is not None and address.startswith("tcp://"), "Client._config changed"


def test_textual_logs_still_measure_each_batch_through_update_size() -> None:
    """`OutputLog` measures its lines itself: Log.write_lines must still hand each batch to
    `_update_size(updates, lines)`, and `_update_maximum_width(updates, size)` must still widen."""
    from textual.widgets import Log

    assert list(inspect.signature(Log._update_maximum_width).parameters) == [
        "self",
        "updates",
        "size",
    ], "Log._update_maximum_width changed"
    assert "self._update_size(self._updates, new_lines)" in inspect.getsource(Log.write_lines), (
        "Log.write_lines no longer hands its lines to _update_size(updates, lines)"
    )
    widened: list[tuple[int, int]] = []

    class Recorder:
        def _update_maximum_width(self, updates: int, size: int) -> None:
            widened.append((updates, size))

    _compat.widen_log(Recorder(), 3, 80)
    assert widened == [(3, 80)]
