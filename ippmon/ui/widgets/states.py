"""The colour of each task state, defined once.

Tables, lines and counts that colour a task state (the tasks table, the task view, the runs
list's counts) build their component-class rules with `state_rules`, so changing a state's colour
is one line of `STATE_COLOURS`. (The monitor's progress counts and the phase badge keep their
own rules in app.tcss: they colour lost like cancelled and leave queued uncoloured.)
"""

from __future__ import annotations

from collections.abc import Iterable

from ippmon.model import TaskState

STATE_COLOURS: dict[TaskState, str] = {
    TaskState.QUEUED: "$text-muted",
    TaskState.RUNNING: "$text-primary",
    TaskState.OK: "$text-success",
    TaskState.ERROR: "$text-error",
    TaskState.CANCELLED: "$text-warning",
    TaskState.LOST: "$text-error",
}

STATE_CLASSES = {state: state.value for state in TaskState}
"""TaskState -> the suffix of its component class (tasks--error, task--ok, runs--lost, ...)."""


def state_rules(selector: str, *, bold: Iterable[TaskState] = ()) -> str:
    """A CSS rule per state: `selector` with `{}` where the state's class suffix goes."""
    bold = set(bold)
    return "\n".join(
        f"{selector.format(STATE_CLASSES[state])} {{ color: {colour};"
        + (" text-style: bold;" if state in bold else "")
        + " }"
        for state, colour in STATE_COLOURS.items()
    )
