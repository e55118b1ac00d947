"""Helpers shared by the tests that drive a real cluster."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path


def until(predicate, timeout: float = 30.0, step: float = 0.05) -> bool:  # noqa: ANN001
    """Wait for a condition the cluster will make true (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if predicate():
            return True
        pause.wait(step)
    return predicate()


def write_spec(folder: Path, toml: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(textwrap.dedent(text))
    path = folder / "ippmon.toml"
    path.write_text(textwrap.dedent(toml))
    return path


BLOCKING_TASKS = """
    import os, time

    def wait_for_flag(x, flag):
        print(f"task {x} waiting", flush=True)
        deadline = time.time() + 60
        while not os.path.exists(flag) and time.time() < deadline:
            time.sleep(0.01)
        return x + 100
"""


FAIL_ONCE = """
    import os

    def fail_once(x, folder, every=3, first=0, scale=10):
        # fails the first time for x % every == first (a marker file per x), then succeeds
        path = os.path.join(folder, str(x))
        if x % every == first and not os.path.exists(path):
            open(path, "w").close()
            raise RuntimeError(f"transient failure on item {x}")
        print(f"item {x} ok")
        return x * scale
"""


POINTS = """
    class Point:
        def __init__(self, x):
            self.x = x

        def __repr__(self):
            return f"Point(x={self.x})"

    def point(x):
        return Point(x)
"""
