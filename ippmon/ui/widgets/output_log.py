"""The streamed stdout/stderr of every task, following the end unless paused.

`Log`, not `RichLog`: task output is shown as text and can never inject markup, and one
`write_lines` batch per update keeps tens of thousands of lines cheap (no layout per batch).
Each line carries its origin in a prefix, and stderr is marked with a `!` right after it:

    [e1 #17] an ordinary line           (stdout of task 17 on engine 1)
    [e1 #17]! Traceback (most recent…   (stderr)

The lines arrive as `ippmon.terminal` leaves them: printable text and SGR colour codes, nothing
else. The log holds their plain text; the colours of a coloured line are kept beside it and laid
on by the log's highlighter when the line is drawn (only visible lines are drawn).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.text import Span, Text
from textual.binding import Binding
from textual.events import Resize
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Log

from ippmon import _compat
from ippmon.terminal import styled

MAX_LINES = 5000


class _Colours(Highlighter):
    """The SGR colours of the coloured lines, by their plain text (bounded: the newest kept)."""

    def __init__(self, limit: int) -> None:
        self.spans: OrderedDict[str, list[Span]] = OrderedDict()
        self.limit = limit

    def add(self, line: str) -> str:
        """The plain text of `line` to put in the log; its colours kept here."""
        if "\x1b" not in line:
            return line
        text = styled(line)
        self.spans[text.plain] = text.spans
        self.spans.move_to_end(text.plain)
        while len(self.spans) > self.limit:
            self.spans.popitem(last=False)
        return text.plain

    def highlight(self, text: Text) -> None:
        spans = self.spans.get(text.plain)
        if spans:
            text.spans.extend(spans)


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

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]
        """The widest of a batch's new lines, for the horizontal scrollbar, told to the Log
        through `_compat.widen_log`. In place of Log's own, which starts a thread worker per
        batch and measures every line through Rich's cached `cell_len` (a sixth of the TUI's
        CPU during a job printing a million lines). The lines here are already plain text
        (`ippmon.terminal`, `_Colours`): a printable ASCII line is as wide as it is long, and
        only others are measured."""
        if lines:
            width = max(
                len(line) if line.isascii() and line.isprintable() else cell_len(line)
                for line in lines
            )
            _compat.widen_log(self, updates, width)

    def __init__(self, *, max_lines: int = MAX_LINES, **kwargs) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=True, highlight=True, **kwargs)
        self.highlighter = self._colours = _Colours(max_lines)
        self.border_title = "output"
        self._count = 0
        self._show_follow()

    def write_texts(self, lines: Sequence[str], dropped: int = 0, whose: str = "the") -> None:
        """Append lines already prefixed with their origin, in a single batch; `dropped`
        lines were lost from `whose` output buffer before they were read."""
        texts = []
        if dropped:
            texts.append(f"[ippmon] … {dropped:,} lines dropped: {whose} output buffer was full")
        texts.extend(self._colours.add(line) for line in lines)
        if texts:
            self._count += len(lines)
            # Log only auto-scrolls when it was at the end, which a batch that first overflows
            # the view defeats; following means going to the end after every batch. The new
            # virtual size is known at once (no layout pass, see `virtual_size`), so the scroll
            # happens now, drawn in the same frame as the lines.
            self.write_lines(texts, scroll_end=False)
            self._to_end()
            self._show_follow()

    def restart(self) -> None:
        """Empty the log (to show other lines, e.g. another job's); follow mode is kept."""
        self.clear()
        self._count = 0
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
