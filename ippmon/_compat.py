"""The private parts of ipyparallel that ippmon relies on, behind one door.

Each function names what it uses; `tests/test_compat.py` checks every one against the installed
ipyparallel, so a release that changes them fails there with a message that says which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def call_on_io_thread(client: Any, fn: Callable[[], object]) -> bool:
    """Run `fn` on the client's IO thread, after what is already queued there (`_io_loop`).
    False when the client has no such loop."""
    loop = getattr(client, "_io_loop", None)
    if loop is None:
        return False
    loop.add_callback(fn)
    return True


def ask_controller(client: Any, msg_type: str, content: dict[str, Any]) -> Any:
    """Send a query to the controller without waiting (`_send` on `_query_stream`); the future
    resolves when the IO thread reads its answer. None when the client lacks these internals."""
    try:
        return client._send(client._query_stream, msg_type, content=content)
    except Exception:
        return None
