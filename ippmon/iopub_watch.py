"""Every engine's busy/idle, as it happens, for every client's tasks: `IopubWatcher`.

A Client subscribes to all of the controller's iopub relay but its handler drops the messages of
other sessions' tasks (`Client._dispatch_iopub`: "ignore IOPub messages not from here"). The
watcher sees each message the client receives before that handler drops it
(`_compat.observe_iopub`, on the client's IO thread), so every message is unpacked and checked
once. Where that hook is not there (or with `own_socket=True`) it opens a SUB socket of its own
on the same address, signed with the client's session key (as ipyparallel's `iopubwatcher.py`
example does), read in a thread of its own: that costs a second unpacking of every message,
which on a busy cluster is most of what watching costs. Each message's topic names its engine
(`engine.<id>.<kind>`); ipykernel's `status` messages (`busy`, then `idle`) have the request as
parent, so they give each task's true start and end on its engine, which the controller's task
records do not hold. `stream` messages carry what each task prints (stdout, stderr) as it
prints it, and an `error` message says a task raised, before its `idle`. The relay does not
bound its send buffer, so whichever socket it is is read all the time until the watcher closes
(the client's IO thread reads its own without a high-water mark).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ippmon import _compat

if TYPE_CHECKING:
    from ipyparallel import Client

TASK_REQUESTS = ("apply_request", "execute_request")  # what a task is; the rest is control
_TOPIC = re.compile(rb"^engine\.(\d+)\.")


@dataclass(frozen=True)
class EngineActivity:
    """What an engine runs now, as its own status messages say."""

    msg_id: str | None  # the task it is busy with; None when idle
    session: str | None  # the session that sent that task
    since: float  # epoch seconds of the last busy/idle change


def own_session(session: Any) -> Any:
    """A Session that checks messages with the client's key, packer and signature scheme,
    with its own record of the signatures it has seen: a Session refuses a signature it saw
    before ("Duplicate Signature"), and the client's IO thread reads every iopub message with
    its own Session too, so sharing it lost whichever copy of a message came second."""
    from jupyter_client.session import Session

    return Session(
        key=session.key,
        signature_scheme=session.signature_scheme,
        packer=session.packer,
        unpacker=session.unpacker,
        username=session.username,
    )


class IopubWatcher(threading.Thread):
    """Reads the controller's iopub relay until `close()`; `activity()` is a copy of each
    engine's state. Called on this thread: `on_status(engine_id, msg_id, session, busy)`,
    `on_output(engine_id, msg_id, session, stream, text)` for each piece of a task's stdout or
    stderr, `on_error(engine_id, msg_id)` when a task raised."""

    def __init__(
        self,
        client: Client,
        on_status: Callable[[int, str, str, bool], None] | None = None,
        clock: Callable[[], float] = time.time,
        *,
        on_output: Callable[[int, str, str, str, str], None] | None = None,
        on_error: Callable[[int, str], None] | None = None,
        own_socket: bool = False,
    ) -> None:
        super().__init__(name="ippmon-iopub-watch", daemon=True)
        self.client = client
        self.own_socket = own_socket
        self.on_status = on_status
        self.on_output = on_output
        self.on_error = on_error
        self.clock = clock
        self._unhook: Callable[[], None] | None = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._engines: dict[int, EngineActivity] = {}
        self.messages = 0  # messages read, of every kind

    def start(self) -> None:
        """Hear the client's iopub messages; or, without that hook, open a socket and read it
        in this thread."""
        if not self.own_socket:
            self._unhook = _compat.observe_iopub(self.client, self._heard, timeout=10.0)
            if self._unhook is not None:
                return
            self.own_socket = True
        import zmq

        address = _compat.iopub_address(self.client)
        if address is None:
            raise RuntimeError("this ipyparallel Client does not say its iopub address")
        self.session = own_session(self.client.session)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"engine.")
        self._socket.connect(address)
        super().start()

    def activity(self) -> dict[int, EngineActivity]:
        with self._lock:
            return dict(self._engines)

    def close(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        import zmq

        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        try:
            while not self._stop_event.is_set():
                if not poller.poll(100):
                    continue
                while True:  # drain everything that is there
                    try:
                        parts = self._socket.recv_multipart(zmq.NOBLOCK, copy=True)
                    except zmq.Again:
                        break
                    self.messages += 1
                    self._take(parts)
        finally:
            self._socket.close(linger=0)
            self._context.term()

    def _take(self, parts: list[Any]) -> None:
        idents, frames = self.session.feed_identities(parts, copy=True)
        topic = _TOPIC.match(idents[0]) if idents else None
        if topic is None:
            return
        try:
            msg = self.session.deserialize(frames, content=True, copy=True)
        except Exception:
            return  # unsigned or damaged: ipyparallel drops these too
        self._handle(int(topic.group(1)), msg)

    def _heard(self, msg: dict[str, Any], topic: bytes) -> None:
        """A message the client received (on its IO thread)."""
        found = _TOPIC.match(topic)
        if found is None:
            return
        self.messages += 1
        self._handle(int(found.group(1)), msg)

    def _handle(self, engine: int, msg: dict[str, Any]) -> None:
        kind = msg["header"]["msg_type"]
        content = msg.get("content") or {}
        parent = msg.get("parent_header") or {}
        msg_id, session = parent.get("msg_id"), parent.get("session")
        if kind == "stream" and msg_id and self.on_output is not None:
            stream = "stderr" if content.get("name") == "stderr" else "stdout"
            self.on_output(engine, msg_id, session or "", stream, str(content.get("text") or ""))
            return
        if kind == "error" and msg_id and self.on_error is not None:
            self.on_error(engine, msg_id)
            return
        if kind != "status":
            return
        state = content.get("execution_state")
        if state not in ("busy", "idle") or parent.get("msg_type") not in TASK_REQUESTS:
            return  # an engine says busy/idle around control requests too (abort, signal)
        busy = state == "busy"
        with self._lock:
            self._engines[engine] = EngineActivity(
                msg_id if busy else None, session if busy else None, self.clock()
            )
        if self.on_status is not None and msg_id:
            self.on_status(engine, msg_id, session or "", busy)
