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


async def test_at_80_columns_the_job_and_user_columns_give_way_before_the_last_column_is_cut() -> (
    None
):
    from textual.app import App, ComposeResult

    from ippmon.ui.widgets.line_table import PAD, LineTable
    from ippmon.ui.widgets.top_panels import job_columns

    class OneTable(App):
        CSS = "LineTable { width: 76; }"  # inside the jobs panel's border and padding at 80

        def compose(self) -> ComposeResult:
            yield LineTable(job_columns(wide=False))

    rows = [  # seen in tmux at 80x24: the ETA column fell off the edge
        ("old-fill", "username", "2m36s", "", "8,000/8,000", "0", "0", "0", "--", "--"),
        ("nb-now", "username", "41.4s", "", "60/60", "0", "0", "0", "0.8", "--"),
        ("nb-now", "username", "18.6s", "", "16/60", "42", "2", "0", "1.0", "43.2s"),
    ]
    app = OneTable()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(LineTable)
        table.set_rows(rows)
        await pilot.pause()
        width = table.scrollable_content_region.width
        widths = dict(zip((c.key for c in table.columns), table.widths(width), strict=True))
        assert sum(widths.values()) + 2 * PAD * len(widths) <= width, widths
        assert widths["eta"] == len("43.2s") and widths["done"] == len("8,000/8,000")
        assert 4 <= widths["user"] < len("username") and widths["job"] == len("old-fill")
        assert widths["bar"] == 4  # the least the bar keeps
        header = table.render_line(0).text
        assert header.rstrip().endswith("ETA"), header
