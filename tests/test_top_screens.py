"""`ippmon top` as a person sees it, pinned: 2, 16 and 256 engines at 80×24 and 160×48, three
clients' jobs (one from ippmon, one labelled, one plain notebook session), and one job picked.

The app runs on a `FakeWatch` (one recorded moment, no polling thread). Accept a deliberate
change with `pytest tests/test_top_screens.py --snapshot-update`, after looking at the pictures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fakes import recorded_top as rt
from fakes.backends import FakeBackend, FakeSession, FakeWatch
from fakes.pilot import RecordedApp, make_app, settle
from textual.pilot import Pilot

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


def top_app(engines: int) -> RecordedApp:
    """`ippmon top` on a cluster of `engines` engines."""
    watch = FakeWatch(rt.top_snapshot(engines), rt.top_lines(60, engines=engines))
    app = make_app(FakeBackend(FakeSession(watch=watch), target=True))
    app.top_only = True
    return app


def picking(*keys: str) -> Callable[[Pilot], Awaitable[None]]:
    async def before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("engines", [2, 16, 256])
def test_top(snap_compare, engines: int, size: str) -> None:
    assert snap_compare(top_app(engines), terminal_size=SIZES[size], run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_top_one_job_picked(snap_compare, size: str) -> None:
    """Enter on `fit`: only the engines running its tasks, only its output."""
    app = top_app(16)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=picking("down", "enter"))


def test_top_every_limit_of_a_nodb_controller(snap_compare) -> None:
    """A NoDB controller: no jobs, and the header says why."""
    from ippmon.clusterview import LIMIT_NODB
    from ippmon.topmodel import TopSnapshot

    snap = rt.top_snapshot(4, limits=(LIMIT_NODB,))
    nodb = TopSnapshot(**{**snap.__dict__, "jobs": (), "db": "NoDB"})
    watch = FakeWatch(nodb, rt.top_lines(20, engines=4))
    app = make_app(FakeBackend(FakeSession(watch=watch), target=True))
    app.top_only = True
    assert snap_compare(app, terminal_size=(80, 24), run_before=picking("i"))
