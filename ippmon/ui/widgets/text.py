"""Updating a widget's text without making the whole screen lay out again.

`Static.update` asks for a layout pass by default, and a layout pass re-arranges and re-renders
every widget on the screen: with the monitor's dozen labels updated four times a second, that
was most of the UI loop's time during a busy job. `set_content` skips unchanged text and asks
for layout only when the widget's size follows its text and the text's extent changed.
"""

from __future__ import annotations

import weakref

from rich.cells import cell_len
from textual.content import Content
from textual.widgets import ProgressBar, Static


def _key(content: object) -> object:
    # Content compares by plain text only; a change of style must still redraw.
    if isinstance(content, Content):
        return (content.plain, tuple(content.spans))
    return content


def _extent(content: object) -> tuple[int, int]:
    text = content.plain if isinstance(content, Content) else str(content)
    lines = text.split("\n")
    return max(cell_len(line) for line in lines), len(lines)


def _sized_by_content(widget: Static) -> bool:
    styles = widget.styles
    return any(scalar is not None and scalar.is_auto for scalar in (styles.width, styles.height))


_WIDEST: weakref.WeakKeyDictionary[Static, int] = weakref.WeakKeyDictionary()  # see set_content


def set_content(widget: Static, content: str | Content, *, grow_only: bool = False) -> bool:
    """Show `content` in `widget` if it is not shown already; returns whether it changed.
    `grow_only`: for a one-line label sized by its text whose width jitters (rates, ETAs): pad
    it to the widest text it has shown, so it lays the screen out only when it grows."""
    if grow_only:
        widest = max(_WIDEST.get(widget, 0), _extent(content)[0])
        _WIDEST[widget] = widest
        short = widest - _extent(content)[0]
        if short > 0:
            content = Content(content) if isinstance(content, str) else content
            content = content + Content(" " * short)
    old = widget.content
    if type(old) is type(content) and _key(old) == _key(content):
        return False
    layout = _sized_by_content(widget) and _extent(old) != _extent(content)
    widget.update(content, layout=layout)
    return True


def set_progress(bar: ProgressBar, progress: float, total: int) -> None:
    """`bar.update` only when a number changed (each change redraws the bar and its label)."""
    total = max(total, 1)
    if bar.total != total or bar.progress != progress:
        bar.update(total=total, progress=progress)
