"""The garbage collector while a screen watches (`ippmon.ui.collector`): young objects collected
every `YOUNG` instead of every 700, what the app held frozen, and both undone when it goes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fakes import recorded as rec
from fakes.backends import FakeJob
from fakes.pilot import until

from ippmon.ui import IppmonApp, collector


@pytest.fixture()
def default_collector() -> Iterator[tuple[int, ...]]:
    gc.unfreeze()
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_watching_raises_the_young_threshold_freezes_and_undoes_both_when_the_last_one_goes(
    default_collector: tuple[int, ...],
) -> None:
    collector.start_watching()
    assert gc.get_threshold() == (collector.YOUNG, 10, 10)
    assert gc.get_freeze_count() > 0
    collector.start_watching()  # a second watching screen
    collector.stop_watching()
    assert gc.get_threshold()[0] == collector.YOUNG and gc.get_freeze_count() > 0
    collector.stop_watching()
    assert gc.get_threshold() == default_collector
    assert gc.get_freeze_count() == 0
    collector.stop_watching()  # once more is harmless
    assert gc.get_threshold() == default_collector


async def test_the_monitor_watches_with_the_collector_tuned_and_leaves_it_as_it_was(
    default_collector: tuple[int, ...],
) -> None:
    app = IppmonApp.for_job(FakeJob(rec.mid_run()), clock=rec.fixed_clock, poll_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.monitor() is not None)
        assert gc.get_threshold()[0] == collector.YOUNG
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == default_collector
    assert gc.get_freeze_count() == 0
