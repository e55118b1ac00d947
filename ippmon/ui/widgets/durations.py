"""How long tasks ran, as a picture: a one-line histogram with p50 / p95 / max (the finished
panel) and a taller one whose bars can be picked to filter the tasks table (the tasks view).

The counting and the percentiles are `model.Durations`'; these only draw them.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from ippmon.model import DurationBar, Durations, short_duration
from ippmon.ui.widgets.text import set_content

BLOCKS = " ▁▂▃▄▅▆▇█"
LINE_BARS = 24  # bars in the one-line histogram at most
CHART_BARS = 24  # bars in the tasks view's histogram at most (3 columns each: 72 at 80×24)
CHART_ROWS = 3
BAR_WIDTH = 2  # columns of a bar in the tasks view, and one of space after it


def level(count: int, most: int, rows: int = 1) -> int:
    """How many eighths of `rows` rows a bar of `count` fills (at least one when not 0)."""
    if count <= 0 or most <= 0:
        return 0
    return max(1, round(count / most * 8 * rows))


def stats_text(durations: Durations) -> str:
    p50, p95, most = (short_duration(s) for s in (durations.p50, durations.p95, durations.max_s))
    return f"p50 {p50} · p95 {p95} · max {most}"


def durations_content(durations: Durations | None) -> Content:
    """`durations 0.1s ▂▅█▃ ▁ 5.6s  p50 2.8s · p95 5.2s · max 5.6s`, one line."""
    if durations is None:
        return Content("")
    bars = durations.bars(LINE_BARS)
    most = max(b.count for b in bars)
    spark = "".join(BLOCKS[level(b.count, most)] for b in bars)
    return Content.from_markup(
        "[dim]durations[/dim] $lo [$primary]$spark[/] $hi  $stats [dim]($n)[/dim]",
        lo=short_duration(bars[0].low_s),
        spark=spark,
        hi=short_duration(bars[-1].high_s),
        stats=stats_text(durations),
        n=f"{durations.n:,} finished",
    )


class DurationLine(Static):
    """The finished panel's histogram line (hidden while no task has a duration)."""

    DEFAULT_CSS = "DurationLine { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }"

    def apply(self, durations: Durations | None) -> None:
        self.display = durations is not None
        set_content(self, durations_content(durations))


class DurationChart(Static):
    """The tasks view's histogram: `CHART_ROWS` rows of bars, the picked one highlighted, and a
    line that says the range and the percentiles. A click on a bar picks it (`Picked`)."""

    DEFAULT_CSS = f"""
    DurationChart {{ height: {CHART_ROWS + 1}; padding: 0 1; text-wrap: nowrap; }}
    """

    @dataclass
    class Picked(Message):
        bar: DurationBar | None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.durations: Durations | None = None
        self.picked: DurationBar | None = None

    @property
    def bars(self) -> list[DurationBar]:
        return self.durations.bars(CHART_BARS) if self.durations is not None else []

    def apply(self, durations: Durations | None, picked: DurationBar | None) -> None:
        self.durations, self.picked = durations, picked
        set_content(self, self._content())

    def _content(self) -> Content:
        durations = self.durations
        if durations is None:
            return Content("no task finished yet: no durations to show")
        bars = self.bars
        most = max(b.count for b in bars)
        rows = []
        for row in reversed(range(CHART_ROWS)):
            parts = []
            for bar in bars:
                eighths = level(bar.count, most, CHART_ROWS) - row * 8
                block = BLOCKS[max(0, min(8, eighths))] * BAR_WIDTH
                markup = "[$warning]$b[/] " if bar == self.picked else "[$primary]$b[/] "
                parts.append(Content.from_markup(markup, b=block))
            rows.append(Content("").join(parts))
        picked = ""
        if self.picked is not None:
            bar = self.picked
            picked = f" · showing {bar.label} ({bar.count:,})"
        info = Content.from_markup(
            "$lo … $hi  $stats[b]$picked[/b]",
            lo=short_duration(bars[0].low_s),
            hi=short_duration(bars[-1].high_s),
            stats=stats_text(durations),
            picked=picked,
        )
        return Content("\n").join([*rows, info])

    def on_click(self, event: events.Click) -> None:
        bars = self.bars
        column = event.x - self.styles.padding.left
        i = column // (BAR_WIDTH + 1)
        if bars and event.y < CHART_ROWS and 0 <= i < len(bars) and bars[i].count:
            self.post_message(self.Picked(None if bars[i] == self.picked else bars[i]))
