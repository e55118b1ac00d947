"""The errors of run records, shared by the modules that read, write and guard them."""

from __future__ import annotations


class RunError(Exception):
    """A run record that cannot be used. `str()` is one line naming the folder or file."""


class RecordError(Exception):
    """The record could not be written (a full disk, ...). `str()` is one line naming the file."""
