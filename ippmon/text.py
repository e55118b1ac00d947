"""Text for people from whatever the cluster and Python hand us: one line of an error.
(Text without terminal escape codes: `ippmon.terminal`.)"""

from __future__ import annotations


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
