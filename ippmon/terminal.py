"""Task output as a terminal would show it, with nothing in it that can reach the user's terminal.

Tasks print what programs print: colours (SGR escape codes), progress counters rewritten with
`\\r`, backspaces, tabs, and sometimes sequences that drive a terminal (OSC window titles and
clipboard writes, cursor movement, bells). On screen a line keeps its text and its SGR colours
and styles; `\\r` and backspace move the cursor back so what follows overwrites, as in a
terminal; tabs become spaces; every other escape sequence and control character is dropped.
The run record keeps what the task printed, unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.text import Text

MAX_LINE = 20_000  # characters of one line kept for the screen (the record keeps them all)
TAB = 8

# One token at a time: an escape sequence (CSI, OSC, string commands, two-byte ESC), one
# control character, or a run of ordinary text.
_TOKEN = re.compile(
    r"(?P<csi>\x1b\[[0-?]*[ -/]*[@-~])"
    r"|(?P<osc>\x1b[\]PX^_].*?(?:\x07|\x1b\\|$))"
    r"|(?P<esc>\x1b[ -/]*[0-~]?)"
    r"|(?P<c1csi>\x9b[0-?]*[ -/]*[@-~])"
    r"|(?P<c1str>[\x90\x98\x9d\x9e\x9f].*?(?:\x07|\x9c|\x1b\\|$))"
    r"|(?P<ctl>[\x00-\x1f\x7f-\x9f])"
    r"|(?P<text>[^\x00-\x1f\x7f-\x9f]+)",
    re.DOTALL,
)
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_EL = re.compile(r"\x1b\[[012]?K")
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but \t and \n


def needs_work(line: str) -> bool:
    """False for the common line: nothing but printable text."""
    return bool(_UNSAFE.search(line)) or "\t" in line or len(line) > MAX_LINE


@lru_cache(maxsize=4096)
def emulate(line: str) -> str:
    """One line (no newline in it) as a terminal leaves it: `\\r` returns to the start and
    backspace one column back (what follows overwrites), erase-in-line (`ESC [ K`) erases,
    tabs stop every 8 columns; SGR colour codes are kept, everything else that is not printable
    text is dropped."""
    if not needs_work(line):
        return line
    unread = max(0, len(line) - MAX_LINE * 2)
    line = line[: MAX_LINE * 2]
    cells: list[str] = []  # one character each, or "" where an SGR code sits before it
    styles: list[str] = []  # the SGR codes in effect for each cell
    sgr = ""
    col = 0

    def put(text: str) -> None:  # write at the cursor, overwriting what is there
        nonlocal col
        for ch in text:
            if col < len(cells):
                cells[col], styles[col] = ch, sgr
            else:
                cells.append(ch)
                styles.append(sgr)
            col += 1

    for match in _TOKEN.finditer(line):
        kind, value = match.lastgroup, match.group()
        if kind == "text":
            put(value)
        elif kind == "csi" and value.endswith("m") and _SGR.fullmatch(value):
            sgr = "" if value in ("\x1b[m", "\x1b[0m") else sgr + value
        elif kind == "csi" and value.endswith("K") and _EL.fullmatch(value):  # erase in line
            how = value[2:-1] or "0"
            if how == "0":  # to the end
                del cells[col:], styles[col:]
            elif how == "1":  # from the start
                for i in range(min(col + 1, len(cells))):
                    cells[i], styles[i] = " ", ""
            else:  # the whole line
                cells[:] = [" "] * min(col, len(cells))
                styles[:] = [""] * len(cells)
        elif value == "\r":
            col = 0
        elif value == "\b":
            col = max(0, col - 1)
        elif value == "\t":
            put(" " * (TAB - col % TAB))
        # everything else (OSC, cursor movement, bells, other controls) is dropped
    if len(cells) > MAX_LINE:
        cut = len(cells) - MAX_LINE + unread
        cells = [*cells[:MAX_LINE], *f" … {cut:,} characters cut"]
        styles = [*styles[:MAX_LINE], *[""] * (len(cells) - MAX_LINE)]
    out: list[str] = []
    current = ""
    for ch, style in zip(cells, styles):
        if style != current:
            out.append("\x1b[0m" + style if current else style)
            current = style
        out.append(ch)
    if current:
        out.append("\x1b[0m")
    return "".join(out)


def plain(text: str) -> str:
    """`text` (any number of lines) with no escape code or control character but newlines."""
    if not needs_work(text) and "\x1b" not in text:
        return text
    return "\n".join(_SGR.sub("", emulate(line)) for line in text.split("\n"))


def styled(text: str) -> Text:
    """`text` (any number of lines) as Rich text: SGR codes become styles, nothing else of the
    task's escape codes remains."""
    if "\x1b" not in text and not needs_work(text):
        return Text(text)
    return Text("\n").join(
        Text.from_ansi(emulate(line), no_wrap=True, end="") for line in text.split("\n")
    )
