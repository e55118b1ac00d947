"""Updating a widget's text without making the whole screen lay out again.

`Static.update` asks for a layout pass by default, and a layout pass re-arranges and re-renders
every widget on the screen: with the monitor's dozen labels updated four times a second, that
was most of the UI loop's time during a busy job. `set_content` skips unchanged text and asks
for layout only when the widget's size follows its text and the new text changes that size (a
one-line label whose height is auto lays nothing out when only its width changes).
"""

from __future__ import annotations

import weakref

from rich.cells import cell_len
from rich.style import Style
from textual.content import Content
from textual.widget import Widget
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


def _needs_layout(widget: Static, old: object, new: object) -> bool:
    """Whether the widget's size follows its text and the new text changes that size: its
    width when the width is auto; its height when the height is auto and the line count
    changed, or a wrapping text changed width and does not fit on its lines."""
    styles = widget.styles
    width_auto, height_auto = _auto(styles.width), _auto(styles.height)
    if not (width_auto or height_auto):
        return False  # (most labels: no need to measure the texts)
    (old_width, old_lines), (new_width, new_lines) = _extent(old), _extent(new)
    if width_auto and old_width != new_width:
        return True
    if not height_auto:
        return False
    if old_lines != new_lines:
        return True
    wraps = styles.text_wrap != "nowrap"
    return wraps and old_width != new_width and max(old_width, new_width) > widget.size.width


def _auto(scalar: object) -> bool:
    return scalar is not None and getattr(scalar, "is_auto", False)


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
    widget.update(content, layout=_needs_layout(widget, old, content))
    return True


def set_progress(bar: ProgressBar, progress: float, total: int) -> None:
    """`bar.update` only when a number changed (each change redraws the bar and its label)."""
    total = max(total, 1)
    if bar.total != total or bar.progress != progress:
        bar.update(total=total, progress=progress)


def text_style(widget: Widget, component: str) -> Style:
    """A component class's colour and text style, without its background: for Rich Text in
    cells and lines that sit on backgrounds of their own (zebra stripes, the cursor row).
    (A partial style would lose the blending of translucent colours like $text-muted.)"""
    full = widget.get_component_rich_style(component)
    return Style(
        color=full.color, bold=full.bold, dim=full.dim, italic=full.italic, strike=full.strike
    )
