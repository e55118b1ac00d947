"""Text for people from whatever the cluster and Python hand us: one line of an error, and text
without terminal escape codes."""

from __future__ import annotations

import re

# Terminal escape sequences: CSI (colours, cursor moves: ESC [ ... final byte) and OSC (window
# titles, hyperlinks, clipboard: ESC ] ... BEL or ESC \). IPython colours tracebacks with them.
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def first_line(text: str) -> str:
    """The first line of `text` ("" for none)."""
    return (text.strip().splitlines() or [""])[0]


def one_line(error: BaseException | None, *, with_type: bool = False) -> str:
    """An exception as one line for people: the first line of its message, or its type's name
    when it has none; `with_type` puts the type's name first anyway."""
    name = type(error).__name__
    text = first_line(str(error))
    if with_type:
        return f"{name}: {text}" if text else name
    return text or name
