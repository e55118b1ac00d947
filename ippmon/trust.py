"""Trust nothing ippmon did not write itself: what may be unpickled, which names are run ids, and
how files ippmon writes are created.

Unpickling runs code. A run folder's `spec.pickle` and `inputs.pickle` are only read when the
runs dir, the run folder and the file each belong to the current user, are writable by nobody
else, and are not symlinks: anyone who could write or swap one of them could otherwise run code
as the user who attaches to the run. Everything else in a record is JSON, which readers check
line by line instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ippmon.errors import RunError

__all__ = [
    "UntrustedError",
    "check_folder",
    "check_run_id",
    "check_run_folder",
    "make_private_dirs",
    "open_trusted",
]

# A run id is a name made by `records.new_run_id` (letters, digits, - and _). These characters
# would make it a path or a glob pattern.
_PATH_CHARS = frozenset({"/", "\\", "\0"} | ({os.altsep} if os.altsep else set()))
_GLOB_CHARS = frozenset("*?[")


class UntrustedError(RunError):
    """A path ippmon refuses to read code from. `str()` is one line: the path and why."""


def _uid() -> int | None:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else None


def _why_untrusted(st: os.stat_result, kind: str) -> str | None:
    """Why a file or folder with this (l)stat is not the user's alone; None when it is."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    want = stat.S_ISDIR if kind == "folder" else stat.S_ISREG
    if not want(st.st_mode):
        return f"is not a {'folder' if kind == 'folder' else 'regular file'}"
    uid = _uid()
    if uid is not None and st.st_uid != uid:
        return f"is owned by uid {st.st_uid}, not by you (uid {uid})"
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"is writable by group or others (mode {mode:04o}; chmod go-w fixes it)"
    return None


def _refuse(path: Path, why: str) -> UntrustedError:
    return UntrustedError(f"{path}: refusing to read a run record from it: {why}")


def check_folder(path: Path) -> None:
    """Raise UntrustedError unless `path` is a folder of the user's own that nobody else can
    write to (and not a symlink)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise RunError(f"{path}: cannot read: {exc.strerror or exc}") from None
    why = _why_untrusted(st, "folder")
    if why:
        raise _refuse(path, why)


def check_run_folder(folder: Path, names: tuple[str, ...] = ()) -> None:
    """Check the runs dir (the folder's parent), the run folder and each file in `names` that
    exists: all must be the user's alone. For a refusal before anything is connected to or
    read; `open_trusted` checks again when a file is opened."""
    folder = Path(folder)
    check_folder(folder.parent)
    check_folder(folder)
    for name in names:
        path = folder / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # a missing file is the reader's error to report
        except OSError as exc:
            raise RunError(f"{path}: cannot read: {exc.strerror or exc}") from None
        why = _why_untrusted(st, "file")
        if why:
            raise _refuse(path, why)


def open_trusted(path: Path) -> BinaryIO:
    """Open a run folder's file for reading, only if it, its folder and the runs dir above are
    the user's alone. The file is opened without following a symlink and checked by the open
    descriptor, so it cannot be swapped between the check and the read."""
    path = Path(path)
    check_folder(path.parent.parent)
    check_folder(path.parent)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise _refuse(path, "is a symlink") from None
        raise RunError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        why = _why_untrusted(os.fstat(fd), "file")
        if why:
            raise _refuse(path, why)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_run_id(run_id: str) -> None:
    """Raise RunError unless `run_id` is a plain name (or prefix of one): never a path, never a
    glob pattern."""
    if run_id in ("", ".", ".."):
        raise RunError(f"RUN_ID {run_id!r} is not a run id (`ippmon runs` lists them)")
    if any(c in _PATH_CHARS for c in run_id) or os.path.isabs(run_id):
        raise RunError(
            f"RUN_ID {run_id!r} is a path; give a run's name or a prefix of it "
            "(`ippmon runs` lists them)"
        )
    if any(c in _GLOB_CHARS for c in run_id):
        raise RunError(
            f"RUN_ID {run_id!r} holds a pattern character (* ? [); give a run's name or a "
            "prefix of it (`ippmon runs` lists them)"
        )


def make_private_dirs(path: Path) -> None:
    """`mkdir -p` where every folder it creates is 0700 (`Path.mkdir(parents=True)` gives the
    intermediate ones the umask's default). Existing folders are left as they are."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
