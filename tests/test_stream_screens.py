"""The task stream as a person sees it, pinned at 80×24 and 160×48: full screen (2 engines mid
job, 64 engines, failures and a lost engine, a finished run read back from its record) and
compact in the monitor; and the keys behind it (zoom, scroll, toggle)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fakes import recorded_stream as streams
from fakes.pilot import ScreenApp, settle, watch_app
from textual.app import App
from textual.pilot import Pilot

from ippmon.protocols import JobHandle
from ippmon.ui.screens.stream import StreamScreen

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


def stream_app(job: JobHandle) -> ScreenApp:
    return ScreenApp(lambda: StreamScreen(job, interval=0))


def pressing(*keys: str) -> Callable[[Pilot], object]:
    async def before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return before


STATES: dict[str, tuple[Callable[[], App], tuple[str, ...]]] = {
    "two_engines_mid_job": (lambda: stream_app(streams.two_engines_mid_job()), ()),
    "two_engines_ten_minutes": (lambda: stream_app(streams.two_engines_mid_job()), ("z",)),
    "64_engines": (lambda: stream_app(streams.many_engines_stream()), ()),
    "64_engines_scrolled": (
        lambda: stream_app(streams.many_engines_stream()),
        ("pagedown", "pagedown"),
    ),
    "failures_and_lost_engine": (lambda: stream_app(streams.failures_and_lost()), ()),
    "monitor_compact_two_engines": (lambda: watch_app(streams.two_engines_mid_job()), ("v",)),
    "monitor_compact_64_engines": (lambda: watch_app(streams.many_engines_stream()), ("v",)),
    "monitor_compact_failures": (lambda: watch_app(streams.failures_and_lost()), ("v",)),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", STATES)
def test_stream(snap_compare, name: str, size: str) -> None:
    build, keys = STATES[name]
    assert snap_compare(build(), terminal_size=SIZES[size], run_before=pressing(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_stream_of_a_finished_run_from_its_record(snap_compare, tmp_path: Path, size: str) -> None:
    job = streams.finished_from_record(tmp_path / "runs")
    try:
        assert snap_compare(stream_app(job), terminal_size=SIZES[size], run_before=pressing())
    finally:
        job.close()
