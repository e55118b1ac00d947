"""The private parts of ipyparallel (and a few of Textual) that ippmon relies on, behind one door.

Each function names what it uses; `tests/test_compat.py` checks every one against the installed
versions, so a release that changes them fails there with a message that says which. Nothing
here imports Textual: the widget is passed in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any


def call_on_io_thread(client: Any, fn: Callable[[], object]) -> bool:
    """Run `fn` on the client's IO thread, after what is already queued there (`_io_loop`).
    False when the client has no such loop."""
    loop = getattr(client, "_io_loop", None)
    if loop is None:
        return False
    loop.add_callback(fn)
    return True


def map_children(ar: Any) -> list[Any]:
    """The futures of a map's AsyncResult, one per chunk in chunk order (`_children`): each has
    `msg_id`, `iopub_callbacks`, `add_done_callback` and an `output` future with `metadata`."""
    children = getattr(ar, "_children", None)
    if children is None:
        raise RuntimeError(
            f"ippmon cannot follow this ipyparallel's tasks: {type(ar).__name__} has no _children"
        )
    return list(children)


@contextlib.contextmanager
def before_each_request(client: Any, hook: Callable[[str], None]) -> Iterator[None]:
    """Within the block, call `hook(msg_id)` for each task request (`apply_request`) this
    thread makes through `client`, after its msg_id is chosen and before it is sent: ipyparallel
    builds each message with `client.session.msg` on the calling thread, and only then hands it
    to its IO thread to send. If `hook` raises, that request is not sent (and the exception
    reaches the caller, e.g. `map_async`)."""
    session = client.session
    hooks: dict[int, Callable[[str], None]] | None = getattr(session, "_ippmon_hooks", None)
    if hooks is None:
        hooks = {}
        build = session.msg

        def msg(msg_type: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            message = build(msg_type, *args, **kwargs)
            hook = hooks.get(threading.get_ident()) if msg_type == "apply_request" else None
            if hook is not None:
                hook(message["header"]["msg_id"])
            return message

        session.msg = msg
        session._ippmon_hooks = hooks
    me = threading.get_ident()
    hooks[me] = hook
    try:
        yield
    finally:
        hooks.pop(me, None)


def forget_sent(client: Any, msg_ids: Collection[str]) -> None:
    """Drop these msg_ids from `client.history`: every msg_id the client sent, kept for its
    life (~100 bytes a task), and read only for a reply to a task no longer outstanding. Call
    it from the thread that sends (ipyparallel appends to the list there)."""
    history = getattr(client, "history", None)
    if not msg_ids or not isinstance(history, list):
        return
    gone = set(msg_ids)
    history[:] = [msg_id for msg_id in history if msg_id not in gone]


def engines_by_uuid(client: Any) -> dict[str, int]:
    """Engine ids by the uuid the controller's task records name (`_engines` maps the ids of
    the engines registered now to their uuids; an engine gone since is not there)."""
    engines = getattr(client, "_engines", None) or {}
    return {uuid: eid for eid, uuid in engines.items()}


def ask_controller(client: Any, msg_type: str, content: dict[str, Any]) -> Any:
    """Send a query to the controller without waiting (`_send` on `_query_stream`); the future
    resolves when the IO thread reads its answer. None when the client lacks these internals."""
    try:
        return client._send(client._query_stream, msg_type, content=content)
    except Exception:
        return None


def queue_status_at(client: Any) -> tuple[dict[Any, Any], Any]:
    """`Client.queue_status()` and the controller's clock when it answered: the reply's header
    `date`, stamped by the hub's session, an ISO 8601 string that the client leaves unparsed
    (`Client._send` on `_query_stream`, `_unwrap_exception`, `ipyparallel.util.int_keys` and
    `extract_dates`). The time (an aware datetime) is None when the client lacks these."""
    future = ask_controller(client, "queue_request", {"targets": None, "verbose": False})
    if future is None:
        return client.queue_status(), None
    from ipyparallel import util

    future.wait()
    reply = future.result()
    content = dict(reply["content"])
    if content.pop("status", "ok") != "ok":
        raise client._unwrap_exception(content)
    date = util.extract_dates(reply.get("header", {}).get("date"))
    return util.int_keys(content), date if isinstance(date, dt.datetime) else None


def observe_iopub(
    client: Any, observer: Callable[[dict[str, Any], bytes], None], timeout: float
) -> Callable[[], None] | None:
    """Hand every iopub message the client receives to `observer(msg, topic)` (on its IO
    thread), then to ipyparallel's own handler: every engine's output and status, whoever sent
    the task. Returns what stops it (None if the client lacks these internals or its IO thread
    did not take the hook within `timeout`).

    A Client subscribes to all of iopub but its handler (`_dispatch_iopub`) drops the messages
    of other clients' tasks; this replaces the iopub stream's callback (`_iopub_stream.on_recv`)
    with one that unpacks each message once (as `_dispatch_iopub`'s decorator does), shows it
    to each observer, and passes it to the undecorated handler (`__wrapped__`). The topic is
    the message's first identity frame (`engine.<id>.<msg_type>`)."""
    stream = getattr(client, "_iopub_stream", None)
    inner = getattr(getattr(type(client), "_dispatch_iopub", None), "__wrapped__", None)
    if stream is None or inner is None:
        return None
    observers: list[Callable[[dict[str, Any], bytes], None]] | None = getattr(
        client, "_ippmon_iopub_observers", None
    )
    if observers is None:
        observers = []
        session = client.session

        def dispatch(parts: list[Any]) -> None:
            idents, frames = session.feed_identities(parts, copy=False)
            try:
                msg = session.deserialize(frames, content=True, copy=False)
            except Exception:
                return  # ipyparallel logs and drops these too
            topic = bytes(idents[0]) if idents else b""  # bytes, or a zmq Frame
            try:
                for each in list(observers):
                    each(msg, topic)
            finally:
                inner(client, msg)

        hooked = threading.Event()

        def install() -> None:
            stream.on_recv(dispatch, copy=False)
            hooked.set()

        if not (call_on_io_thread(client, install) and hooked.wait(timeout)):
            return None
        client._ippmon_iopub_observers = observers
    observers.append(observer)

    def stop() -> None:
        with contextlib.suppress(ValueError):
            observers.remove(observer)

    return stop


def write_to_terminal(app: Any, text: str) -> None:
    """Write escape codes of ippmon's own (a notification) to a Textual app's terminal, as
    `App.bell` writes the bell (`App._driver.write`); nothing for a headless app."""
    driver = getattr(app, "_driver", None)
    if driver is not None and not app.is_headless:
        driver.write(text)


def scroll_update(widget: Any, virtual_size: Any) -> None:
    """Tell a Textual widget's scrollbars its new virtual size (`Widget._scroll_update`): what
    setting `virtual_size` does, without asking for a layout pass of the whole screen."""
    widget._scroll_update(virtual_size)


def widen_log(log: Any, updates: int, width: int) -> None:
    """Tell a Textual `Log` that lines `width` cells wide were added in its update `updates`
    (`Log._update_maximum_width`): what its `_update_size(updates, lines)`, which `write_lines`
    calls with each batch, does once it has measured them. `OutputLog` measures them itself."""
    log._update_maximum_width(updates, width)


def iopub_address(client: Any) -> str | None:
    """The controller's iopub relay address this client connected to (`_config['iopub']`, a
    local address when ippmon tunnels through ssh); None when the client lacks it."""
    config = getattr(client, "_config", None) or {}
    address = config.get("iopub")
    return address if isinstance(address, str) else None


def label_view(view: Any, label: str) -> bool:
    """Send the view's tasks with `label` (the `label` trait of ipyparallel >= 9.1 views: the
    hub keeps it in each task's record, so other clients can tell the tasks apart). False, and
    nothing changed, where views have no such trait."""
    traits = getattr(view, "trait_names", None)
    if traits is None or "label" not in traits():
        return False
    view.label = label
    return True
