"""Telling the user a long job has ended (`ippmon.notify`): the bell and OSC 9 / OSC 777, in the
TUI when a job it watched ends, and in headless mode when stderr is a terminal."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from fakes import recorded as rec
from fakes.backends import FakeJob
from fakes.pilot import settle, until

from ippmon import _compat
from ippmon.headless import run_headless
from ippmon.model import Phase
from ippmon.notify import sequence, summary, worth_telling
from ippmon.ui import IppmonApp


def test_the_sequence_rings_and_notifies_and_nothing_in_it_can_escape() -> None:
    text = sequence("ippmon", "job\x1b]0;title\x07 done; 3\nfailed\x07")
    assert text.startswith("\a\x1b]9;ippmon: job done, 3 failed\x07")
    assert text.endswith("\x1b]777;notify;ippmon;job done, 3 failed\x07")
    assert text.count("\x1b") == 2 and text.count("\x07") == 3  # its own, nothing more


def test_only_finished_jobs_that_ran_long_enough_are_told_of() -> None:
    done = replace(rec.finished(), elapsed_s=12.0)
    assert worth_telling(done, 10.0) and not worth_telling(done, 20.0)
    assert worth_telling(replace(done, wall_s=25.0), 20.0)  # the time the user waited
    assert not worth_telling(done, None)
    assert not worth_telling(rec.mid_run(), 0.0)
    assert summary(done) == "flaky: 45 of 50 ok, 3 failed, 1 cancelled, 1 lost"
    assert summary(rec.succeeded()) == "squares: all 100 tasks ok"


@pytest.mark.parametrize(("after", "told"), [(0.0, True), (None, False), (1000.0, False)])
async def test_the_tui_tells_when_a_job_it_watched_ends(
    monkeypatch: pytest.MonkeyPatch, after: float | None, told: bool
) -> None:
    written: list[str] = []
    monkeypatch.setattr(_compat, "write_to_terminal", lambda app, text: written.append(text))
    job = FakeJob(rec.mid_run(), script=[rec.mid_run(), rec.finished()])
    app = IppmonApp.for_job(job, clock=rec.fixed_clock, poll_interval=0.01, notify_after=after)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot, lambda: app.monitor() is not None and app.monitor().phase is Phase.FINISHED
        )
        await settle(pilot)
    assert written == ([sequence("ippmon", summary(rec.finished()))] if told else [])


async def test_a_run_read_back_finished_is_not_told_again(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    monkeypatch.setattr(_compat, "write_to_terminal", lambda app, text: written.append(text))
    app = IppmonApp.for_job(
        FakeJob(rec.finished()), attached=True, clock=rec.fixed_clock, notify_after=0.0
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await until(
            pilot, lambda: app.monitor() is not None and app.monitor().phase is Phase.FINISHED
        )
        await settle(pilot)
    assert written == []


def ended(app: IppmonApp) -> bool:
    monitor = app.monitor()
    return monitor is not None and monitor.phase is Phase.FINISHED


class Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Ended:
    """What run_headless asks of a job, for one that has ended."""

    def __init__(self) -> None:
        self.snap = replace(rec.succeeded(), wall_s=14.2)
        self.run_id = self.snap.run_id
        self.controller_lost = False

    def poll(self):  # noqa: ANN201
        return self.snap

    def finished(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_headless_tells_only_a_terminal(tty: bool) -> None:
    err = Terminal(tty)
    code = run_headless(Ended(), err=err, out=io.StringIO(), notify_after=10.0)  # type: ignore[arg-type]
    assert code == 0
    told = sequence("ippmon", "squares: all 100 tasks ok")
    assert (told in err.getvalue()) is tty
