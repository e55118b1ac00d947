"""Job specs: every way a spec can be wrong is one readable line, good specs load and run,
and functions from plain .py files run where those files cannot be imported."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

from ippmon import demo, shipping
from ippmon.jobspec import Catalog, JobSpec, SpecError, builtin_specs, load_catalog

SPEC = "ippmon.toml"


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))


def load(tmp_path: Path, spec: str, files: dict[str, str] | None = None) -> Catalog:
    write_tree(tmp_path, {SPEC: textwrap.dedent(spec), **(files or {})})
    return load_catalog(tmp_path / SPEC)


GOOD_INPUTS = "inputs = [1, 2]\n"
FUNC = 'function = "ippmon.demo:slow_square"\n'


def a(*lines: str, function: str = FUNC, inputs: str = GOOD_INPUTS) -> str:
    """Spec text for one job 'a' that is good apart from `lines` (or the parts replaced)."""
    return "[jobs.a]\n" + function + inputs + "".join(line + "\n" for line in lines)


def fn(ref: str) -> str:
    return f'function = "{ref}"\n'


def inp(value: str) -> str:
    return f"inputs = {value}\n"


def case(name: str, spec: str, job: str | None, field: str | None, words: str, files=None):
    """A broken spec, and the job, field and words its one-line error must name."""
    return pytest.param(spec, files or {}, job, field, words, id=name)


T_PY = {"t.py": "def work(x):\n    return x\n\nVALUE = 3\n"}
BROKEN = [
    # whole-file problems: file_error
    case("syntax", "[jobs.a]\nfunction = \n", None, None, "TOML syntax error: Invalid value"),
    case("unknown-top-key", "title = 'x'\n" + a(), None, "title", "valid: jobs"),
    case("top-level-job-table", a().replace("jobs.", ""), None, "a", "did you mean [jobs.a]?"),
    case("no-jobs-table", "", None, None, "no [jobs] table"),
    case("jobs-not-table", "jobs = [1]\n", None, "jobs", "got an array"),
    case("jobs-array-of-tables", "[[jobs]]\nname = 'x'\n", None, "jobs", "got an array"),
    case("empty-jobs", "[jobs]\n", None, None, "holds no jobs"),
    # one job's problems: errors[job]
    case("job-not-table", "[jobs]\na = 3\n", "a", None, "must be a table ([jobs.a]), got an int"),
    case("unknown-job-key", a("chunk_size = 2"), "a", "chunk_size", "did you mean 'chunksize'?"),
    case("empty-job", "[jobs.a]\n", "a", "function", "missing"),
    case("missing-function", a(function=""), "a", "function", "missing"),
    case("function-not-string", a(function="function = 3\n"), "a", "function", "got 3"),
    case("function-no-colon", a(function=fn("ippmon.demo")), "a", "function", "malformed"),
    case("function-no-attr", a(function=fn("ippmon.demo:")), "a", "function", "malformed"),
    case("function-bad-module", a(function=fn("a b:f")), "a", "function", "malformed module"),
    case(
        "unimportable-module",
        a(function=fn("no_such_mod_xq:f")),
        "a",
        "function",
        "cannot import module 'no_such_mod_xq': ModuleNotFoundError: No module named",
    ),
    case(
        "missing-attr",
        a(function=fn("ippmon.demo:nope")),
        "a",
        "function",
        "module 'ippmon.demo' has no attribute 'nope'",
    ),
    case("not-callable", a(function=fn("math:pi")), "a", "function", "is a float, not a function"),
    case("not-callable-file", a(function=fn("t.py:VALUE")), "a", "function", "an int", T_PY),
    case("missing-attr-file", a(function=fn("t.py:nope")), "a", "function", "there: work", T_PY),
    case("missing-py-file", a(function=fn("gone.py:f")), "a", "function", "file gone.py not found"),
    case(
        "py-raises-on-import",
        a(function=fn("t.py:f")),
        "a",
        "function",
        "importing t.py raised ValueError: bad config (t.py, line 4)",
        {"t.py": "def f(x):\n    return x\n\nraise ValueError('bad\\nconfig')\n"},
    ),
    case(
        "py-syntax-error",
        a(function=fn("t.py:f")),
        "a",
        "function",
        "SyntaxError",
        {"t.py": "def f(x) return x\n"},
    ),
    case(
        "py-sibling-missing",
        a(function=fn("t.py:f")),
        "a",
        "function",
        "No module named 'no_such_sibling_xq' (t.py, line 1)",
        {"t.py": "import no_such_sibling_xq\n"},
    ),
    case("missing-inputs", a(inputs=""), "a", "inputs", "missing"),
    case("inputs-string", a(inputs=inp("'abc'")), "a", "inputs", 'got "abc"'),
    case("inputs-empty-list", a(inputs=inp("[]")), "a", "inputs", "empty"),
    case(
        "inputs-two-forms", a(inputs=inp("{ range = [0, 2], file = 'x' }")), "a", "inputs", "one of"
    ),
    case("inputs-other-form", a(inputs=inp("{ values = [1] }")), "a", "inputs", "keys: values"),
    case("range-one-number", a(inputs=inp("{ range = [5] }")), "a", "inputs", "[start, stop]"),
    case("range-floats", a(inputs=inp("{ range = [0, 1.5] }")), "a", "inputs", "integers"),
    case("range-bool", a(inputs=inp("{ range = [0, true] }")), "a", "inputs", "integers"),
    case("range-zero-step", a(inputs=inp("{ range = [0, 5, 0] }")), "a", "inputs", "step must"),
    case("range-empty", a(inputs=inp("{ range = [5, 5] }")), "a", "inputs", "range(5, 5) is empty"),
    case("file-not-string", a(inputs=inp("{ file = 3 }")), "a", "inputs", "non-empty string"),
    case("file-missing", a(inputs=inp("{ file = 'in.jsonl' }")), "a", "inputs", "not found"),
    case(
        "file-bad-line",
        a(inputs=inp("{ file = 'in.jsonl' }")),
        "a",
        "inputs",
        "inputs file in.jsonl, line 4: not valid JSON",
        {"in.jsonl": '1\n\n{"a": 2}\n{bad\n'},
    ),
    case(
        "file-empty",
        a(inputs=inp("{ file = 'in.jsonl' }")),
        "a",
        "inputs",
        "is empty",
        {"in.jsonl": "\n  \n"},
    ),
    case("call-malformed", a(inputs=inp("{ call = 'nocolon' }")), "a", "inputs", "malformed"),
    case(
        "call-unimportable",
        a(inputs=inp("{ call = 'no_such_mod_xq:f' }")),
        "a",
        "inputs",
        "cannot import module 'no_such_mod_xq'",
    ),
    case("call-missing-attr", a(inputs=inp("{ call = 'math:nope' }")), "a", "inputs", "'nope'"),
    case("kwargs-not-table", a("kwargs = [1]"), "a", "kwargs", "must be a table"),
    case("chunksize-negative", a("chunksize = -1"), "a", "chunksize", "positive integer, got -1"),
    case("chunksize-zero", a("chunksize = 0"), "a", "chunksize", "got 0"),
    case("chunksize-bool", a("chunksize = true"), "a", "chunksize", "got true"),
    case("chunksize-float", a("chunksize = 2.0"), "a", "chunksize", "got 2.0"),
    case("retries-negative", a("retries = -2"), "a", "retries", ">= 0, got -2"),
    case("retries-bool", a("retries = false"), "a", "retries", "got false"),
    case("timeout-zero", a("timeout = 0"), "a", "timeout", "> 0, got 0"),
    case("timeout-string", a("timeout = '5s'"), "a", "timeout", 'got "5s"'),
    case("timeout-inf", a("timeout = inf"), "a", "timeout", "got inf"),
    case("ordered-not-bool", a("ordered = 1"), "a", "ordered", "true or false, got 1"),
    case("description-not-string", a("description = 5"), "a", "description", "must be a string"),
]


@pytest.mark.parametrize(("spec", "files", "job", "field", "words"), BROKEN)
def test_broken_spec_is_one_line_naming_file_job_and_field(
    tmp_path, spec, files, job, field, words
):
    write_tree(tmp_path, {SPEC: spec, **files})
    path = str(tmp_path / SPEC)

    catalog = load_catalog(path)  # must not raise

    err = catalog.errors.get(job) if job else catalog.file_error
    assert isinstance(err, SpecError), (catalog.errors, catalog.file_error)
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    assert text.startswith(path + ": ")
    assert words in text
    assert (err.path, err.job, err.field) == (path, job, field)
    if job:
        assert f"job '{job}'" in text
        assert job not in catalog.specs
    if field:
        assert f"field '{field}'" in text
    with pytest.raises(SpecError) as raised:
        catalog.get(job or "a")
    assert raised.value is err


def test_broken_file_keeps_builtins_usable(tmp_path):
    catalog = load(tmp_path, "[jobs.a\n")
    assert catalog.file_error is not None
    assert "TOML syntax error" in str(catalog.file_error)
    assert catalog.get("squares").origin == "built-in"


def test_one_broken_job_does_not_hide_the_others(tmp_path):
    catalog = load(tmp_path, "[jobs.bad]\n" + FUNC + "[jobs.good]\n" + FUNC + GOOD_INPUTS)
    assert list(catalog.errors) == ["bad"]
    assert catalog.get("good").n_inputs == 2


def test_explicit_file_that_does_not_exist_is_a_file_error(tmp_path):
    catalog = load_catalog(tmp_path / "nope.toml")
    assert str(catalog.file_error) == f"{tmp_path / 'nope.toml'}: job-spec file not found"
    assert list(catalog.specs) == ["squares", "flaky", "chatty", "stragglers"]


def test_directory_given_as_spec_file_is_a_file_error(tmp_path):
    assert "is a directory" in str(load_catalog(tmp_path).file_error)


def test_default_file_is_optional(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    catalog = load_catalog()
    assert (catalog.path, catalog.file_error, catalog.errors) == (None, None, {})
    assert set(catalog.specs) == {"squares", "flaky", "chatty", "stragglers"}


def test_default_file_is_used_when_present(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / SPEC).write_text("[jobs.mine]\n" + FUNC + GOOD_INPUTS)
    catalog = load_catalog()
    assert catalog.path == SPEC
    assert catalog.get("mine").origin == SPEC


def test_unknown_job_lists_the_available_ones(tmp_path):
    catalog = load(tmp_path, "[jobs.mine]\n" + FUNC + GOOD_INPUTS)
    with pytest.raises(SpecError, match=r"job 'nah': no such job \(available: squares, .*mine\)"):
        catalog.get("nah")


def test_file_job_replaces_builtin_of_the_same_name_in_place(tmp_path):
    catalog = load(
        tmp_path, "[jobs.extra]\n" + FUNC + GOOD_INPUTS + "[jobs.flaky]\n" + FUNC + GOOD_INPUTS
    )
    assert list(catalog.specs) == ["squares", "flaky", "chatty", "stragglers", "extra"]
    assert catalog.get("flaky").origin == str(tmp_path / SPEC)


def test_broken_override_of_a_builtin_reports_the_error(tmp_path):
    catalog = load(tmp_path, "[jobs.squares]\n" + FUNC)
    assert "squares" not in catalog.specs
    with pytest.raises(SpecError, match="field 'inputs': missing"):
        catalog.get("squares")


def test_spec_error_survives_pickling_and_collapses_newlines():
    err = SpecError("first\n  second", path="f.toml", job="j", field="x")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "f.toml: job 'j', field 'x': first second"


# ---- good specs ---------------------------------------------------------------------------


def test_each_inputs_form_loads(tmp_path):
    catalog = load(
        tmp_path,
        """
        [jobs.listed]
        function = "ippmon.demo:slow_square"
        inputs = [3, "a", { k = 1 }]
        [jobs.ranged]
        function = "ippmon.demo:slow_square"
        inputs = { range = [10, 0, -3] }
        [jobs.filed]
        function = "ippmon.demo:slow_square"
        inputs = { file = "data/in.jsonl" }
        [jobs.called]
        function = "ippmon.demo:slow_square"
        inputs = { call = "gen.py:make" }
        [jobs.called_module]
        function = "ippmon.demo:slow_square"
        inputs = { call = "gen.py:number" }
        """,
        {
            "data/in.jsonl": '{"x": 1}\n\n  \n[2, 3]\n"s"\n',
            "gen.py": """
                def make():
                    return (i * 2 for i in range(4))

                def number():
                    return 0.5
                """,
        },
    )
    got = {
        n: (s.inputs_desc, s.n_inputs, s.load_inputs())
        for n, s in catalog.specs.items()
        if s.origin != "built-in" and n != "called_module"
    }
    assert got == {
        "listed": ("list of 3", 3, [3, "a", {"k": 1}]),
        "ranged": ("range(10, 0, -3)", 4, [10, 7, 4, 1]),
        "filed": ("file data/in.jsonl (3 lines)", 3, [{"x": 1}, [2, 3], "s"]),
        "called": ("call gen.py:make", None, [0, 2, 4, 6]),
    }
    with pytest.raises(
        SpecError, match="gen.py:number must return an iterable of inputs, got a float"
    ):
        catalog.get("called_module").load_inputs()


def test_call_inputs_run_only_when_loaded(tmp_path):
    catalog = load(
        tmp_path,
        '[jobs.a]\nfunction = "ippmon.demo:slow_square"\ninputs = { call = "gen.py:make" }\n',
        {"gen.py": "def make():\n    raise OSError('database\\ndown')\n"},
    )
    spec = catalog.get("a")
    with pytest.raises(SpecError) as raised:
        spec.load_inputs()
    assert str(raised.value) == (
        f"{tmp_path / SPEC}: job 'a', field 'inputs': calling gen.py:make raised "
        "OSError: database down"
    )


def test_inputs_file_is_read_again_at_submit(tmp_path):
    catalog = load(
        tmp_path,
        FUNC.join(["[jobs.a]\n", "inputs = { file = 'in.jsonl' }\n"]),
        {"in.jsonl": "1\n2\n"},
    )
    (tmp_path / "in.jsonl").write_text("1\nnope\n")
    with pytest.raises(SpecError, match="line 2: not valid JSON"):
        catalog.get("a").load_inputs()


def test_flags_holds_only_what_was_set(tmp_path):
    catalog = load(
        tmp_path,
        "[jobs.a]\n" + FUNC + GOOD_INPUTS + "chunksize = 5\nretries = 0\n"
        "[jobs.b]\n" + FUNC + GOOD_INPUTS + "ordered = false\ntimeout = 3\n"
        "description = 'b job'\n",
    )
    a, b = catalog.get("a"), catalog.get("b")
    assert a.flags() == {"chunksize": 5, "retries": 0}
    assert b.flags() == {"ordered": False, "timeout": 3.0}
    assert isinstance(b.timeout, float)
    assert (a.description, b.description) == ("", "b job")


def test_module_function_gets_kwargs_and_ships_by_reference(tmp_path):
    catalog = load(
        tmp_path, "[jobs.a]\n" + FUNC + GOOD_INPUTS + "kwargs = { delay = 0, steps = 1 }\n"
    )
    spec = catalog.get("a")
    assert spec.kwargs == {"delay": 0, "steps": 1}
    f = spec.task_function()
    assert [f(x) for x in spec.load_inputs()] == [1, 4]
    assert b"ippmon.demo" in pickle.dumps(f)  # by reference: stdlib pickle can do it


SIBLING_TREE = {
    "tasks.py": """
        import helpers
        from helpers import offset

        def work(x, scale=1):
            print("working on", x)
            return helpers.double(x) * scale + offset()

        NOT_A_FUNCTION = 1
        """,
    "helpers.py": """
        def double(x):
            return 2 * x

        def offset():
            return 1000
        """,
}


def test_file_function_can_import_a_sibling_module(tmp_path):
    write_tree(tmp_path, SIBLING_TREE)
    write_tree(
        tmp_path,
        {
            SPEC: """
        [jobs.a]
        function = "tasks.py:work"
        inputs = [1, 2]
        kwargs = { scale = 10 }
        """
        },
    )
    spec = load_catalog(tmp_path / SPEC).get("a")
    f = spec.task_function()
    assert [f(x) for x in spec.load_inputs()] == [1020, 1040]
    assert f.__name__ == "work" and f.__module__ == "__main__"
    assert str(tmp_path) not in sys.path


def test_handmade_spec_resolves_relative_to_its_origin(tmp_path):
    write_tree(tmp_path, SIBLING_TREE)
    spec = JobSpec(
        name="h",
        description="",
        function="tasks.py:work",
        origin=str(tmp_path / "x.toml"),
        inputs_desc="list of 1",
        n_inputs=1,
        kwargs={},
        inputs=[5],
    )
    assert spec.task_function()(5) == 1010
    assert spec.load_inputs() == [5]
    with pytest.raises(SpecError, match="job 'h', field 'inputs': missing"):
        JobSpec("h", "", "ippmon.demo:flaky", "built-in", "?", None, {}).load_inputs()


# ---- shipping to engines that cannot import the file ------------------------------------

ENGINE = """
import pickle, sys
sys.modules["ippmon"] = None  # the trampoline must not need ippmon on the engine, only cloudpickle
from ipyparallel.serialize import unpack_apply_message
assert not any("{folder}" in p for p in sys.path), sys.path
try:
    import helpers
except ImportError:
    pass
else:
    raise SystemExit("helpers importable: the test proves nothing")
with open(sys.argv[1], "rb") as fh:
    canned, clouded = pickle.load(fh)
namespace = {{}}  # an engine's user namespace
f, args, kwargs = unpack_apply_message(canned, namespace)
print(f(*args, **kwargs))
print(pickle.loads(clouded)(4))
"""


def test_file_function_runs_where_the_file_cannot_be_imported(tmp_path):
    from ipyparallel.serialize import pack_apply_message

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_tree(project, SIBLING_TREE)
    write_tree(
        project,
        {
            SPEC: """
        [jobs.a]
        function = "tasks.py:work"
        inputs = [3]
        kwargs = { scale = 3 }
        """
        },
    )
    elsewhere.mkdir()
    f = load_catalog(project / SPEC).get("a").task_function()
    canned = [bytes(b) for b in pack_apply_message(f, (3,), {})]  # what ipyparallel sends
    blob = tmp_path / "blob.pkl"
    blob.write_bytes(pickle.dumps((canned, cloudpickle.dumps(f))))  # ... or with use_cloudpickle

    script = ENGINE.format(folder=project)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(blob)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["working on 3", "1018", "working on 4", "1024"]


def test_trampoline_says_why_it_cannot_unpickle():
    run = shipping.make_trampoline(b"not a pickle", "work", "tasks.py:work")
    with pytest.raises(RuntimeError, match="could not unpickle tasks.py:work on this engine"):
        run(1)


def test_task_errors_pass_through_the_trampoline_unchanged(tmp_path):
    spec = load(
        tmp_path,
        "[jobs.a]\nfunction = 't.py:f'\n" + GOOD_INPUTS,
        {"t.py": "def f(x):\n    raise KeyError(x)\n"},
    ).get("a")
    with pytest.raises(KeyError):
        spec.task_function()(1)


def test_edited_file_is_reloaded(tmp_path):
    spec_text = "[jobs.a]\nfunction = 't.py:f'\n" + GOOD_INPUTS
    assert (
        load(tmp_path, spec_text, {"t.py": "def f(x):\n    return 1\n"}).get("a").task_function()(0)
        == 1
    )
    spec = load(tmp_path, spec_text, {"t.py": "def f(x):\n    return 22\n"}).get("a")
    assert spec.task_function()(0) == 22


# ---- built-in demo jobs -------------------------------------------------------------------


def test_builtins_load_with_their_documented_sizes():
    specs = builtin_specs()
    assert {n: s.n_inputs for n, s in specs.items()} == {
        "squares": 100,
        "flaky": 50,
        "chatty": 40,
        "stragglers": 40,
    }
    assert all(s.origin == "built-in" and s.description for s in specs.values())
    assert all(callable(s.task_function()) for s in specs.values())


def test_squares_takes_about_14_seconds_on_two_engines():
    delays = [demo.square_delay(x) for x in range(100)]
    assert min(delays) >= 0.05 and max(delays) <= 0.5
    assert 12 < sum(delays) / 2 < 16


def test_slow_square_prints_steps(capsys):
    assert demo.slow_square(7, delay=0) == 49
    assert capsys.readouterr().out.splitlines() == [f"square 7: step {i}/3" for i in (1, 2, 3)]


def test_flaky_fails_transiently_at_its_rate():
    with pytest.raises(demo.TransientError, match="transient failure on item 12"):
        demo.flaky(12, rate=1.0, delay=0)
    assert demo.flaky(16, rate=0.0, delay=0) == {"item": 16, "sqrt": 4.0}


def test_chatty_writes_to_both_streams(capsys):
    assert demo.chatty(2, lines=300, delay=0) == {"item": 2, "lines": 300, "warnings": 30}
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 270
    assert err.splitlines()[0].startswith("warning: item 2 line 10")
    assert 200 <= demo.chatty(5, delay=0)["lines"] < 400


def test_every_13th_item_straggles(capsys):
    slow = [x for x in range(40) if demo.straggler_delay(x) > 0.2]
    assert slow == [12, 25, 38]
    assert demo.stragglers(12, delay=0) == 12
    assert capsys.readouterr().out.splitlines() == [
        "item 12: start (0.0s expected)",
        "item 12: done",
    ]
