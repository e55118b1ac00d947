"""Task output as a terminal shows it (`ippmon.terminal`), and as the tracker publishes it: nothing
but printable text and SGR colours ever leaves, `\\r` and backspace overwrite, tabs expand."""

from __future__ import annotations

import pytest

from ippmon.model import TaskState
from ippmon.terminal import MAX_LINE, emulate, plain, styled
from ippmon.tracker import Event, Tracker

NASTY = [
    "\x1b]0;owned title\x07",  # OSC window title (BEL)
    "\x1b]52;c;SGVsbG8=\x1b\\",  # OSC 52: write the clipboard (ST)
    "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",  # hyperlink
    "\x1b[2J\x1b[H",  # clear screen, cursor home
    "\x1b[10;10H",  # cursor move
    "\x1bP1$r\x1b\\",  # DCS
    "\x1b7\x1b8",  # save/restore cursor
    "\x07\x00\x0e\x0f\x7f",  # bell, NUL, shift out/in, DEL
    "\x9b31m\x9d0;t\x9c",  # C1 CSI and OSC
]


@pytest.mark.parametrize("sequence", NASTY)
def test_no_control_sequence_survives_only_the_text_around_it(sequence: str) -> None:
    line = f"before{sequence}after"
    shown = emulate(line)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in shown.replace("\x1b[", ""))
    assert plain(line) in ("beforeafter", "beforelinkafter")
    assert "\x1b" not in styled(line).plain


def test_colours_become_styles_and_the_text_stays() -> None:
    text = styled("ansi 1: \x1b[31mred\x1b[0m plain \x1b[1;4mbold\x1b[m end")
    assert text.plain == "ansi 1: red plain bold end"
    (red, bold) = text.spans
    assert (red.start, red.end) == (8, 11) and red.style.color.number == 1  # type: ignore[union-attr]
    assert text.plain[bold.start : bold.end] == "bold"
    assert bold.style.bold and bold.style.underline  # type: ignore[union-attr]
    assert plain("text\x1b") == "text" == plain("text\x1b[")  # unfinished at the end


def test_carriage_return_and_backspace_overwrite_as_a_terminal_does() -> None:
    assert plain("\rprog 1: 1/5\rprog 1: 2/5\rprog 1: 5/5") == "prog 1: 5/5"
    assert plain("abcdef\rXY") == "XYcdef"
    assert plain("spin |\b/\b-\b\\") == "spin \\"
    assert plain("\x1b[32m50%\x1b[0m\r\x1b[32m100%\x1b[0m") == "100%"
    assert plain("careful\r\x1b[2Kstill") == "still"  # erase the line, then write
    assert plain("abcdef\r\x1b[1CX\x1b[K") == "X"  # cursor moves are dropped; erase to end
    assert plain("abcdef\b\b\x1b[1K!") == "    !f"  # erase from the start
    assert styled("\x1b[32m50%\x1b[0m\r\x1b[32m100%\x1b[0m").spans  # still green


def test_tabs_wide_characters_and_long_lines() -> None:
    assert plain("a\tb\tc") == "a       b       c"
    assert plain("漢字 emoji 🚀 e\u0301") == "漢字 emoji 🚀 e\u0301"
    long = "x" * 100_000
    shown = plain(long)
    assert len(shown) < MAX_LINE + 40 and shown.endswith("80,000 characters cut")


def test_ordinary_lines_are_passed_through_as_they_are() -> None:
    line = "item 7 line 3: ........ done"
    assert emulate(line) is line and plain(line) is line


# -- the tracker ---------------------------------------------------------------------------------


def running(md: dict) -> Tracker:
    tracker = Tracker("t", 1)
    tracker.set_engines([0])
    tracker.add_chunks([([0], md)], attempt=1)
    md.update(engine_id=0, started="2026-01-01T00:00:00+00:00")
    return tracker


def feed(tracker: Tracker, md: dict, stdout: str) -> list[str]:
    md["stdout"] = stdout
    tracker.notify(0, Event.ACTIVITY)
    tracker.poll()
    return [line.text for line in tracker.output_since(0)[0]]


def test_a_progress_line_shows_its_latest_value_live_and_its_final_value_once() -> None:
    """ipyparallel collapses a `\\r`-rewritten line in the metadata text to its latest state, so
    the text can shrink: the lines shown are cut after the last newline only."""
    md: dict = {}
    tracker = running(md)
    assert feed(tracker, md, "start\nprog 1/5") == ["start"]
    assert tracker.snapshot().engines[0].last_line == "prog 1/5"
    # as ipyparallel leaves it after "\rprog 2/5" arrived: the same length, other text
    assert feed(tracker, md, "start\nprog 2/5") == ["start"]
    assert tracker.snapshot().engines[0].last_line == "prog 2/5"
    assert feed(tracker, md, "start\nprog 5/5\ndone\n") == ["start", "prog 5/5", "done"]
    assert tracker.snapshot().engines[0].last_line == "done"
    tracker.notify(0, Event.DONE, [1])
    tracker.notify(0, Event.OUTPUT_DONE)
    tracker.poll()
    assert tracker.states() == [TaskState.OK]
    assert [line.text for line in tracker.output_since(0)[0]] == ["start", "prog 5/5", "done"]


def test_what_the_tracker_publishes_has_no_control_sequences() -> None:
    md: dict = {}
    tracker = running(md)
    lines = feed(tracker, md, "\x1b]0;title\x07\x1b[31mred\x1b[0m\x1b[2J\n\x1b]52;c;eA==\x07tail")
    assert lines == ["\x1b[31mred\x1b[0m"]  # SGR kept for the screen to colour
    assert tracker.snapshot().engines[0].last_line == "tail"
    tracker.notify(0, Event.DONE, RuntimeError("bad \x1b]0;t\x07value"))
    tracker.notify(0, Event.OUTPUT_DONE)
    tracker.poll()
    (failure,) = tracker.snapshot().failures
    assert failure.line == "RuntimeError: bad value"
    assert tracker.task_rows()[0].line == "RuntimeError: bad value"


def test_no_screen_picture_holds_a_control_character() -> None:
    """Every snapshot (some fed with output that drives terminals) is what reached the screen:
    not one of them may carry an escape or other control character."""
    from pathlib import Path

    pictures = sorted((Path(__file__).parent / "__snapshots__").rglob("*.svg"))
    assert len(pictures) > 60
    for picture in pictures:
        text = picture.read_text(encoding="utf-8")
        bad = {c for c in text if (ord(c) < 32 and c not in "\n\t\r") or 0x7F <= ord(c) <= 0x9F}
        assert not bad, f"{picture.name}: {sorted(map(hex, map(ord, bad)))}"
