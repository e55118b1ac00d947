"""The monitor's polling thread and its messages: a newer update replaces a queued older one and
takes over its output lines; the poll loop stops at the job's end and survives a failing poll."""

from __future__ import annotations

import threading

from fakes import recorded as rec
from fakes.backends import FakeJob

from ippmon.model import OutputBatch, OutputLine, Phase, format_line
from ippmon.ui.messages import JobUpdate, PollFailed
from ippmon.ui.poller import poll_job


def lines(first: int, last: int, dropped: int = 0) -> OutputBatch:
    made = [OutputLine(seq, seq, 1, "stdout", f"line {seq}") for seq in range(first, last + 1)]
    return OutputBatch.of(made, dropped, first - 1 - dropped)


def test_a_replaced_update_hands_its_lines_to_the_newer_one() -> None:
    older = JobUpdate(rec.mid_run(), lines(3, 5, dropped=2))
    newer = JobUpdate(rec.mid_run(), lines(6, 7))
    assert older.can_replace(newer)
    said = [
        "[e1 #3] line 3",
        "[e1 #4] line 4",
        "[e1 #5] line 5",
        "[e1 #6] line 6",
        "[e1 #7] line 7",
    ]
    assert newer.output == OutputBatch(said, 3, 7, 2)
    assert older.can_replace(newer)  # asking again changes nothing
    assert newer.output == OutputBatch(said, 3, 7, 2)


def test_lines_a_newer_update_holds_too_are_not_doubled() -> None:
    older = JobUpdate(rec.mid_run(), lines(1, 5))
    newer = JobUpdate(rec.mid_run(), lines(4, 6))  # a poller started again from seq 3
    assert newer.can_replace(older)
    assert [text.split()[-1] for text in newer.output.texts] == ["1", "2", "3", "4", "5", "6"]
    assert (newer.output.first, newer.output.last) == (1, 6)


def test_an_update_without_lines_keeps_the_lines_of_the_one_it_replaces() -> None:
    older = JobUpdate(rec.mid_run(), lines(1, 2))
    newer = JobUpdate(rec.mid_run(), OutputBatch.of([], 0, 2))
    assert older.can_replace(newer)
    assert newer.output == OutputBatch(["[e1 #1] line 1", "[e1 #2] line 2"], 1, 2, 0)


def test_merging_works_whichever_message_is_asked() -> None:
    a, b, c = (JobUpdate(rec.mid_run(), lines(i * 10, i * 10 + 1)) for i in (1, 2, 3))
    assert b.can_replace(a) and c.can_replace(b)
    assert [text.split()[-1] for text in c.output.texts] == ["10", "11", "20", "21", "30", "31"]


def test_an_update_does_not_replace_other_messages() -> None:
    assert not JobUpdate(rec.mid_run()).can_replace(PollFailed("x"))


def test_poller_stops_when_the_job_finishes_and_keeps_every_line() -> None:
    job = FakeJob(rec.mid_run(), rec.output_lines(5), script=[rec.mid_run(), rec.finished()])
    posted: list[object] = []
    last = poll_job(job, posted.append, threading.Event(), interval=0)
    assert job.polls == 2
    assert isinstance(posted[-1], JobUpdate) and posted[-1].snapshot.phase is Phase.FINISHED
    assert [text for m in posted for text in m.output.texts] == [
        format_line(line) for line in rec.output_lines(5)
    ]
    assert last == 5


def test_poller_reports_a_failing_poll_and_goes_on() -> None:
    class Broken(FakeJob):
        def poll(self):  # noqa: ANN202
            self.polls += 1
            if self.polls == 1:
                raise OSError("controller unreachable\nmore detail")
            return rec.finished()

    posted: list[object] = []
    poll_job(Broken(rec.mid_run()), posted.append, threading.Event(), interval=0)
    assert [type(m).__name__ for m in posted] == ["PollFailed", "JobUpdate"]
    assert posted[0].error == "OSError: controller unreachable"
