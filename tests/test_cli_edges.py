"""The command line's edges: each bad argument, spec or record is one line on stderr with exit
2, never a traceback, and never something else run instead. No cluster needed."""

from __future__ import annotations

import pickle
import signal
from pathlib import Path

import pytest
from test_cli import fresh_ipython_env, run
from test_trust import RUN_ID, make_finished_run

from ippmon import cli
from ippmon.jobspec import load_catalog


def one_line(proc) -> str:  # noqa: ANN001
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_broken_jobs_file_never_falls_back_to_the_builtin_of_that_name(tmp_path: Path) -> None:
    spec = tmp_path / "mine.toml"
    spec.write_text("[jobs.squares\nfunction = 1\n")
    runs = tmp_path / "runs"
    proc = run(
        ["--jobs", str(spec), "--job", "squares", "--headless", "--runs-dir", str(runs)],
        env=fresh_ipython_env(tmp_path),
    )
    assert proc.returncode == 2
    assert "mine.toml" in one_line(proc) and "TOML syntax error" in proc.stderr
    assert not runs.exists()


@pytest.mark.parametrize(
    ("value", "shown"),
    [("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("-1", "-1"), ("0", "0"), ("1e9", "1e+09")],
)
def test_timeout_must_be_a_sane_number_of_seconds(value: str, shown: str) -> None:
    proc = run([f"--timeout={value}", "--job", "squares", "--headless"])
    assert proc.returncode == 2
    line = one_line(proc)
    assert "--timeout" in line and line.endswith(f"got {shown}")


@pytest.mark.parametrize("command", [[], ["attach"], ["resume", "x"]])
def test_timeout_nan_is_refused_by_the_subcommands_too(command: list[str]) -> None:
    proc = run([*command, "--timeout", "nan"])
    assert proc.returncode == 2 and "--timeout" in one_line(proc)


def test_local_engine_count_is_capped(tmp_path: Path) -> None:
    proc = run(["--local", "100000", "--job", "squares", "--headless"])
    assert proc.returncode == 2
    line = one_line(proc)
    assert "--local 100000" in line and f"at most {cli.max_local_engines()}" in line
    assert cli.max_local_engines() >= 64


def test_a_bad_argument_is_one_line_too() -> None:
    proc = run(["--local", "many"])
    assert proc.returncode == 2
    assert "--local" in one_line(proc) and "'many'" in proc.stderr


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_spec_is_a_spec_error_naming_the_file(tmp_path: Path, depth: int) -> None:
    spec = tmp_path / "deep.toml"
    spec.write_text(
        f'[jobs.x]\nfunction = "ippmon.demo:slow_square"\ninputs = {"[" * depth}1{"]" * depth}\n'
    )
    proc = run(["--jobs", str(spec), "--job", "x", "--headless"], env=fresh_ipython_env(tmp_path))
    assert proc.returncode == 2
    line = one_line(proc)
    assert "deep.toml" in line and "nested" in line and "RecursionError" not in line


def test_deeply_nested_kwargs_name_the_field(tmp_path: Path) -> None:
    spec = tmp_path / "deep.toml"
    spec.write_text(
        '[jobs.x]\nfunction = "ippmon.demo:slow_square"\ninputs = [1]\n'
        f"kwargs = {'{ a = ' * 120}1{' }' * 120}\n"
    )
    err = load_catalog(spec).errors["x"]
    assert err.field == "kwargs" and "nested more than" in str(err)


CALL_SPEC = '[jobs.c]\nfunction = "ippmon.demo:slow_square"\ninputs = { call = "gen.py:make" }\n'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("def make():\n    raise ValueError('no data today')\n", "no data today"),
        ("def make():\n    return 42\n", "must return an iterable"),
        ("def make():\n    return []\n", "no inputs"),
        ("def make():\n    raise SystemExit(3)\n", "SystemExit"),
    ],
)
def test_inputs_call_is_checked_before_connecting(tmp_path: Path, body: str, why: str) -> None:
    (tmp_path / "gen.py").write_text(body)
    (tmp_path / "jobs.toml").write_text(CALL_SPEC)
    proc = run(
        ["--jobs", str(tmp_path / "jobs.toml"), "--job", "c", "--headless", "--timeout", "2"],
        env=fresh_ipython_env(tmp_path),  # no cluster: a later check would end in exit 3
    )
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc)
    assert "jobs.toml" in line and "'c'" in line and "'inputs'" in line and why in line


def test_a_good_inputs_call_goes_on_to_connect(tmp_path: Path) -> None:
    (tmp_path / "gen.py").write_text("def make():\n    return [1, 2]\n")
    (tmp_path / "jobs.toml").write_text(CALL_SPEC)
    proc = run(
        ["--jobs", str(tmp_path / "jobs.toml"), "--job", "c", "--headless", "--timeout", "2"],
        env=fresh_ipython_env(tmp_path),
    )
    assert proc.returncode == 3, proc.stderr  # checked, then no cluster to connect to


def test_a_slow_inputs_call_does_not_hold_up_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gen.py").write_text(
        "import time\n\ndef make():\n    time.sleep(2)\n    return [1]\n"
    )
    (tmp_path / "jobs.toml").write_text(CALL_SPEC)
    monkeypatch.setattr(cli, "INPUTS_CHECK_S", 0.2)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "empty-ipython"))  # no cluster there
    handlers = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM)}
    try:
        code = cli.main(
            ["--jobs", str(tmp_path / "jobs.toml"), "--job", "c", "--headless", "--timeout", "1"]
            + ["--runs-dir", str(tmp_path / "runs")]
        )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    err = capsys.readouterr().err
    assert "still loading" in err and "call gen.py:make" in err
    assert code == 3  # connected (tried to) while the call was still running


def test_preloaded_inputs_are_used_without_a_second_call_and_not_pickled(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    (tmp_path / "gen.py").write_text(
        f"def make():\n    with open({str(calls)!r}, 'a') as f:\n        f.write('x')\n"
        "    return [1, 2, 3]\n"
    )
    (tmp_path / "jobs.toml").write_text(CALL_SPEC)
    spec = load_catalog(tmp_path / "jobs.toml").get("c")
    assert not calls.exists()  # loading a catalog never calls
    ready = spec.preload_inputs()
    assert calls.read_text() == "x" and ready == spec
    assert pickle.loads(pickle.dumps(ready)).preloaded is None  # not in spec.pickle
    assert ready.load_inputs() == [1, 2, 3] and calls.read_text() == "x"  # the items checked
    assert spec.load_inputs() == [1, 2, 3] and calls.read_text() == "xx"  # the spec: afresh


# --- record and file errors: exit 2 ----------------------------------------------------------


def test_export_of_an_unreadable_results_file_is_exit_2(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    folder = make_finished_run(runs)
    (folder / "results.jsonl").unlink()
    (folder / "results.jsonl").mkdir()
    proc = run(["export", RUN_ID, "--runs-dir", str(runs)])
    assert proc.returncode == 2
    assert "results.jsonl" in one_line(proc)


@pytest.mark.parametrize("command", ["attach", "resume"])
def test_damaged_run_json_is_exit_2_before_connecting(tmp_path: Path, command: str) -> None:
    runs = tmp_path / "runs"
    folder = make_finished_run(runs)
    (folder / "run.json").write_text("{not json")
    proc = run(
        [command, RUN_ID, "--headless", "--runs-dir", str(runs), "--timeout", "2"],
        env=fresh_ipython_env(tmp_path),
    )
    assert proc.returncode == 2
    assert RUN_ID in one_line(proc)


@pytest.mark.parametrize("command", ["attach", "resume"])
def test_unreadable_results_is_exit_2_before_connecting(tmp_path: Path, command: str) -> None:
    runs = tmp_path / "runs"
    folder = make_finished_run(runs)
    (folder / "results.jsonl").unlink()
    (folder / "results.jsonl").mkdir()
    proc = run(
        [command, RUN_ID, "--headless", "--runs-dir", str(runs), "--timeout", "2"],
        env=fresh_ipython_env(tmp_path),
    )
    assert proc.returncode == 2
    assert RUN_ID in one_line(proc)


def test_attach_with_no_runs_is_exit_2(tmp_path: Path) -> None:
    proc = run(["attach", "--headless", "--runs-dir", str(tmp_path / "none")])
    assert proc.returncode == 2 and "no runs" in one_line(proc)
