"""A union of time spans: the tracker's busy time, the diagnosis's waiting time."""

from __future__ import annotations

import bisect


class Spans:
    """A union of time spans, kept merged and sorted. Spans added in order of their start cost
    O(log n) each; `overlap` costs O(log n) plus the spans it meets."""

    def __init__(self) -> None:
        self.spans: list[list[float]] = []

    def add(self, start: float, end: float) -> None:
        if end < start:
            start, end = end, start
        spans = self.spans
        i = bisect.bisect_left(spans, [start, start])
        if i and spans[i - 1][1] >= start:
            i -= 1
        j = i
        while j < len(spans) and spans[j][0] <= end:
            start, end = min(start, spans[j][0]), max(end, spans[j][1])
            j += 1
        spans[i:j] = [[start, end]]

    def length(self, extra: tuple[float, float] | None = None) -> float:
        """Seconds covered, with `extra` (an open span) counted in too."""
        spans = self.spans
        if extra is not None:
            merged = Spans()
            merged.spans = [list(x) for x in spans]
            merged.add(*extra)
            spans = merged.spans
        return sum(e - s for s, e in spans)

    def overlap(self, start: float, end: float, extra: tuple[float, float] | None = None) -> float:
        """Seconds of [start, end] these spans (and `extra`) cover."""
        covered = self._within(start, end)
        if extra is not None:
            lo, hi = max(min(extra), start), min(max(extra), end)
            if hi > lo:  # the part of `extra` the spans leave uncovered
                covered += (hi - lo) - self._within(lo, hi)
        return covered

    def _within(self, start: float, end: float) -> float:
        spans = self.spans
        i = bisect.bisect_left(spans, [start, start])
        if i and spans[i - 1][1] > start:
            i -= 1
        covered = 0.0
        while i < len(spans) and spans[i][0] < end:
            s, e = spans[i]
            covered += max(0.0, min(e, end) - max(s, start))
            i += 1
        return covered
