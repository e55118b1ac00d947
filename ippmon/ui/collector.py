"""The garbage collector kept out of the way of a screen that watches a cluster.

Drawing a frame makes thousands of short-lived objects (Textual's strips and their caches, which
refer to themselves and so wait for the collector). At the default threshold (a collection every
700 new objects) the collector ran in the middle of frames, promoted what the frame still held,
and every few seconds a full collection walked ~25,000 of them: 17-44 ms with the UI loop stopped
(a job on 64 engines, `bench/bench_ui_stall.py --explain`). With the youngest generation
collected every `YOUNG` objects instead, most of them are gone before it runs: no older
collection at all in 20 s of the same job, the young ones 4-7 ms. And what the app holds before
the screen starts is frozen, out of the collector's sight, until the screen goes.
"""

from __future__ import annotations

import gc

YOUNG = 10_000

_watching = 0
_thresholds: tuple[int, ...] = ()


def start_watching() -> None:
    """When the screen mounts (what exists then is long-lived)."""
    global _watching, _thresholds
    if _watching == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(max(YOUNG, _thresholds[0]), *_thresholds[1:])
    _watching += 1
    gc.freeze()


def stop_watching() -> None:
    """When the screen goes: the collector as it was, the frozen objects back in its sight."""
    global _watching
    if _watching == 0:
        return
    _watching -= 1
    if _watching == 0:
        gc.set_threshold(*_thresholds)
        gc.unfreeze()
