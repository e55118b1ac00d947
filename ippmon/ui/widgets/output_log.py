"""The streamed stdout/stderr of every task, as plain text, following the end unless paused.

`Log`, not `RichLog`: task output is shown exactly as written and can never inject markup, and
one `write_lines` batch per update keeps tens of thousands of lines cheap. `Log` cannot colour
single lines, so each line carries its origin in a prefix, and stderr is marked with a `!` right
after it:

    [e1 #17] an ordinary line           (stdout of task 17 on engine 1)
    [e1 #17]! Traceback (most recent…   (stderr)
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.events import Resize
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Log

from ippmon import _compat
from ippmon.model import OutputLine

MAX_LINES = 5000


def format_line(line: OutputLine) -> str:
    engine = "e?" if line.engine is None else f"e{line.engine}"
    mark = "!" if line.stream == "stderr" else ""
    return f"[{engine} #{line.index}]{mark} {line.text}"


class OutputLog(Log):
    """Task output with follow mode (auto-scroll) on by default; `toggle_follow` pauses it."""

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    OutputLog { height: 1fr; min-height: 4; overflow: auto auto; }
    """

    # Widget.virtual_size asks for a layout pass of the whole screen on every change, and a Log
    # changes it with every batch of lines: four re-arranged, re-rendered screens a second during
    # a busy job. The log's own size never follows its lines, so only its scrollbars need to
    # know (a scrollbar that appears or goes still asks for layout itself).
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def watch_virtual_size(self, size: Size) -> None:
        _compat.scroll_update(self, size)

    def __init__(self, *, max_lines: int = MAX_LINES, **kwargs) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, **kwargs)
        self.border_title = "output"
        self._count = 0
        self._show_follow()

    def write_output(self, lines: Sequence[OutputLine], dropped: int = 0) -> None:
        """Append one update's lines in a single batch."""
        texts = []
        if dropped:
            texts.append(f"[ippmon] … {dropped:,} lines dropped: the job's output buffer was full")
        texts.extend(format_line(line) for line in lines)
        if texts:
            self._count += len(lines)
            # Log only auto-scrolls when it was at the end, which a batch that first overflows
            # the view defeats; following means going to the end after every batch. The new
            # virtual size is known at once (no layout pass, see `virtual_size`), so the scroll
            # happens now, drawn in the same frame as the lines.
            self.write_lines(texts, scroll_end=False)
            self._to_end()
            self._show_follow()

    def _to_end(self) -> None:
        if self.auto_scroll:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self, event: Resize) -> None:
        # The panels above can grow after lines arrived; following means staying at the end.
        if self.auto_scroll:
            self.call_after_refresh(self._to_end)

    @property
    def follow(self) -> bool:
        return self.auto_scroll

    def toggle_follow(self) -> bool:
        self.auto_scroll = not self.auto_scroll
        if self.auto_scroll:
            self._to_end()
        self._show_follow()
        return self.auto_scroll

    def _show_follow(self) -> None:
        kept = (
            f" (last {self.max_lines:,} kept)"
            if self.max_lines and self._count > self.max_lines
            else ""
        )
        self.border_subtitle = f"{self._count:,} lines{kept} · " + (
            "following (f to pause)" if self.auto_scroll else "paused (f to follow)"
        )
