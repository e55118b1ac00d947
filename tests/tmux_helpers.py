"""Drive a program in a detached tmux session as a user would: send keys, read the screen.

Every session gets its own tmux server (`tmux -L <name>`, no user config), so the tests never
touch the user's tmux, and `kill()` removes the server with the session. The pane runs
`sh -c '"$@"; echo $? > STATUS' ...`: the program is the shell's only child (it gets the
terminal's SIGHUP like any program run from a shell), and its exit status lands in a file.
(tmux 3.3a's own `#{pane_dead_status}` proved unreliable here: now and then the server never
reaped the exited program and the status stayed empty.) The pane stays after the program exits
(`remain-on-exit`), so its last screen can still be read.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

TMUX = shutil.which("tmux")
# Importing readline (IPython does) puts COLUMNS=80 LINES=24 into this process's C environment,
# unseen by os.environ but inherited by children: a program in the pane would then believe it
# has an 80x24 terminal whatever the pane's size (shutil.get_terminal_size reads them first).
SIZE_VARIABLES = ("COLUMNS", "LINES")


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SIZE_VARIABLES}


class TmuxError(AssertionError):
    pass


Expected = str | re.Pattern[str] | Callable[[str], object]


class Tmux:
    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        width: int = 100,
        height: int = 30,
        cwd: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
    ) -> None:
        """`workdir`: where the exit status file goes (default: a new temporary folder)."""
        self.name = f"ippmon-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.command = list(command)
        self.env = dict(env or {})
        self.width = width
        self.height = height
        self.cwd = cwd
        folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="ippmon-tmux-"))
        self.status_file = folder / f"{self.name}.status"
        self.last_screen = ""
        self._program: psutil.Process | None = None
        self._socket = ""

    # -- tmux itself --------------------------------------------------------------------------

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert TMUX is not None, "tmux is not installed"
        proc = subprocess.run(
            [TMUX, "-L", self.name, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
            env=clean_environment(),
        )
        if check and proc.returncode != 0:
            raise TmuxError(f"tmux {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def start(self) -> Tmux:
        unset = [arg for name in SIZE_VARIABLES for arg in ("-u", name)]
        assigns = [f"{key}={value}" for key, value in self.env.items()]
        program = ["env", *unset, *assigns, *self.command]
        wrapper = '"$@"; echo $? > "$0"'
        shell_command = shlex.join(["exec", "sh", "-c", wrapper, str(self.status_file), *program])
        args = ["new-session", "-d", "-s", self.name, "-x", str(self.width), "-y", str(self.height)]
        if self.cwd:
            args += ["-c", self.cwd]
        self.tmux(*args, shell_command, ";", "set-option", "-g", "remain-on-exit", "on")
        self._socket = self.pane("#{socket_path}")
        return self

    def hang_up(self) -> None:
        """Kill the session (its terminal goes away: SIGHUP) and the server; quiet when they are
        gone already."""
        self.tmux("kill-session", "-t", self.name, check=False)
        self.tmux("kill-server", check=False)
        if self._socket:  # tmux leaves its socket file behind
            Path(self._socket).unlink(missing_ok=True)

    def kill(self) -> None:
        """`hang_up`, then make sure the program is gone too (after 10 s to react to it)."""
        self.hang_up()
        program = self._program
        if program is not None:
            try:
                program.wait(timeout=10)
            except psutil.TimeoutExpired:
                program.kill()
            except psutil.Error:
                pass

    def __enter__(self) -> Tmux:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    # -- what a user does -----------------------------------------------------------------------

    def send(self, *keys: str) -> None:
        """tmux key names: "Enter", "End", "Escape", "c", ..."""
        self.tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        self.last_screen = self.tmux("capture-pane", "-p", "-t", self.name).stdout
        return self.last_screen

    def pane(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.name, fmt).stdout.strip()

    def program(self, timeout: float = 10.0) -> psutil.Process:
        """The program's process: the pane shell's child."""
        if self._program is None:
            shell = psutil.Process(int(self.pane("#{pane_pid}")))
            deadline = time.monotonic() + timeout
            pause = threading.Event()
            while not (children := shell.children()):
                if time.monotonic() > deadline:
                    raise TmuxError("the program did not start")
                pause.wait(0.02)
            self._program = children[0]
        return self._program

    def exit_status(self) -> int | None:
        """The program's exit status once it has exited, else None."""
        try:
            text = self.status_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text else None

    def wait_for(
        self, expected: Expected, *, timeout: float = 20.0, step: float = 0.1, what: str = ""
    ) -> str:
        """Capture the pane until it shows `expected` (a substring, a regex, or a predicate of
        the screen's text); returns that screen, or fails with the last one."""
        if isinstance(expected, str):
            text = expected

            def check(screen: str) -> object:
                return text in screen
        elif isinstance(expected, re.Pattern):
            pattern = expected

            def check(screen: str) -> object:
                return pattern.search(screen)
        else:
            check = expected
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                label = what or getattr(expected, "pattern", expected)
                raise TmuxError(
                    f"not on screen within {timeout:g} s: {label!r}\n--- last screen ---\n{screen}"
                )
            pause.wait(step)

    def wait_exit(self, timeout: float = 20.0) -> int:
        """The program's exit status, waiting up to `timeout` for it to exit."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while (status := self.exit_status()) is None:
            if time.monotonic() > deadline:
                raise TmuxError(
                    f"the program did not exit within {timeout:g} s\n"
                    f"--- last screen ---\n{self.screen()}"
                )
            pause.wait(0.1)
        return status


def python_stacks(pid: int, timeout: float = 60.0) -> str:
    """Every thread's Python stack of a running (stuck) process, through gdb's CPython
    extension; "" when gdb is not installed or cannot attach."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return ""
    try:
        proc = subprocess.run(
            [gdb, "-iex", "set auto-load safe-path /", "-p", str(pid), "-batch"]
            + ["-ex", "thread apply all py-bt"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout
