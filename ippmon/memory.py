"""Giving memory back to the system when a job is over.

Python frees a finished job's objects, but the C allocator keeps the freed pages for reuse, so
the process stays as big as the job made it. glibc's `malloc_trim(0)` returns what it can
(measured: a 3,000-task job, 158 MB resident after it was closed and collected, 119 MB after
the trim). Elsewhere (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.cache
def _trim() -> object:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def give_back() -> None:
    """Collect what a finished job left in reference cycles (ipyparallel's futures form some),
    then return the allocator's free memory to the system, where the C library can."""
    gc.collect()
    trim = _trim()
    if callable(trim):
        trim(0)
