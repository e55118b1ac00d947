"""One set of list keys, as in less and vim: j/k move down/up, g/G jump to the first/last row.

Every list widget takes them (`BINDINGS = [*LIST_KEYS, ...]`) next to the arrows, Home and End
it binds itself; its `cursor_down`, `cursor_up`, `first` and `last` actions do the moving.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

LIST_KEYS: list[BindingType] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "first", "First", show=False),
    Binding("G", "last", "Last", show=False),
]
