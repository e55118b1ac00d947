"""Demo task functions for the built-in job specs (`builtin.toml`).

Each one exercises a part of the monitor a new user should see at work: steady progress with
output (`slow_square`), transient failures worth a resubmit (`flaky`), a flood of output on both
streams (`chatty`), and a few slow tasks that hold a job up (`stragglers`). They run on the
engines, which import `ippmon.demo` by reference; every sleep is a `delay` keyword so tests can
call them instantly.
"""

from __future__ import annotations

import math
import random
import sys
import time


class TransientError(RuntimeError):
    """Raised by `flaky`: a failure that usually goes away when the task is run again."""


def square_delay(x: int) -> float:
    """Seconds `slow_square(x)` sleeps: 0.05-0.5, deterministic, 0.275 on average."""
    return 0.05 + ((x * 37) % 10) * 0.05


def slow_square(x: int, delay: float | None = None, steps: int = 3) -> int:
    """Square `x` after sleeping (default `square_delay(x)`), printing a line per step."""
    total = square_delay(x) if delay is None else delay
    for step in range(1, steps + 1):
        print(f"square {x}: step {step}/{steps}")
        time.sleep(total / steps)
    return x * x


def flaky(x: int, rate: float = 1 / 7, delay: float = 0.05) -> dict:
    """Fail with TransientError with probability `rate` (random, so a rerun usually succeeds)."""
    time.sleep(delay)
    if random.random() < rate:
        raise TransientError(f"transient failure on item {x}")
    print(f"item {x}: ok")
    return {"item": x, "sqrt": round(math.sqrt(abs(x)), 6)}


def chatty(x: int, lines: int | None = None, delay: float = 0.2) -> dict:
    """Print hundreds of lines (every 10th a warning on stderr) within `delay` seconds."""
    n = 200 + (x * 53) % 200 if lines is None else lines
    warnings = 0
    for i in range(1, n + 1):
        if i % 10 == 0:
            warnings += 1
            print(f"warning: item {x} line {i}: value drifted by {i % 7}", file=sys.stderr)
        else:
            print(f"item {x} line {i}: {'.' * (i % 40)}")
        if delay and i % 50 == 0:
            time.sleep(delay * 50 / n)
    return {"item": x, "lines": n, "warnings": warnings}


def straggler_delay(x: int, delay: float = 0.2, every: int = 13, factor: float = 10) -> float:
    """Seconds `stragglers(x)` takes: `delay`, or `factor` times that for every `every`-th item."""
    return delay * factor if every and x % every == every - 1 else delay


def stragglers(x: int, delay: float = 0.2, every: int = 13, factor: float = 10) -> int:
    """Sleep `delay` seconds, except every `every`-th item, which takes `factor` times longer."""
    seconds = straggler_delay(x, delay, every, factor)
    print(f"item {x}: start ({seconds:.1f}s expected)")
    time.sleep(seconds)
    print(f"item {x}: done")
    return x


def coloured(x: int, lines: int = 1) -> int:
    """Print `lines` lines coloured the way logging libraries colour them (SGR codes)."""
    levels = (("32", "INFO"), ("33", "WARNING"), ("31", "ERROR"))
    for i in range(lines):
        code, level = levels[(x + i) % 3]
        print(f"\x1b[{code}m{level:<7}\x1b[0m item {x}: \x1b[1mstep {i + 1}\x1b[0m of {lines}")
    return x
