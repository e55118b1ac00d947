"""The colour of each task state, defined once.

Everything that colours a task state or a job's outcome builds its rules from `STATE_COLOURS`:
the tasks table, the task view, the runs list (a run's counts, a finished run with failures),
the monitor's progress counts, its phase badge and the summary's border. Changing a state's
colour is one line here. Colours that describe other things (an engine's border, a dialog, a
warning) stay where they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from ippmon.model import TaskState

STATE_COLOURS: dict[TaskState, str] = {
    TaskState.QUEUED: "muted",
    TaskState.RUNNING: "primary",
    TaskState.OK: "success",
    TaskState.ERROR: "error",
    TaskState.CANCELLED: "warning",
    TaskState.LOST: "error",
}
"""The theme colour of each state: its text is `$text-<colour>`, a badge sits on
`$<colour>-muted`, a border is `$<colour>` (queued, muted, is only ever text)."""

STATE_CLASSES = {state: state.value for state in TaskState}
"""TaskState -> the suffix of its component class (tasks--error, task--ok, runs--lost, ...)."""


def text_colour(state: TaskState) -> str:
    """`$text-error`: the colour of text (a label, a count, a title) in `state`'s colour."""
    return f"$text-{STATE_COLOURS[state]}"


def colour(state: TaskState) -> str:
    """`$error`: `state`'s colour for a border or a bar (not for queued)."""
    return f"${STATE_COLOURS[state]}"


def badge(state: TaskState) -> str:
    """The declarations of a badge in `state`'s colour: its text on a muted background."""
    return f"background: ${STATE_COLOURS[state]}-muted; color: {text_colour(state)};"


def state_rules(
    selector: str,
    *,
    bold: Iterable[TaskState] = (),
    states: Iterable[TaskState] = tuple(TaskState),
) -> str:
    """A CSS rule per state: `selector` with `{}` where the state's class suffix goes."""
    bold = set(bold)
    return "\n".join(
        f"{selector.format(STATE_CLASSES[state])} {{ color: {text_colour(state)};"
        + (" text-style: bold;" if state in bold else "")
        + " }"
        for state in states
    )
