"""Job specs: what a user can submit, read from a TOML file and checked before anything runs.

Every check happens at load time so the picker can show a broken job next to its error before
anyone submits it, and a spec that is wrong in any way is reported as one line naming the file,
the job and the field -- never a traceback. Built-in demo specs
(`builtin.toml`) are always available so a new user has something to run.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypedDict

from ippmon import shipping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Catalog", "JobSpec", "SpecError", "builtin_specs", "load_catalog"]

DEFAULT_FILE = "ippmon.toml"
BUILTIN = "built-in"
FLAG_KEYS = ("chunksize", "ordered", "retries", "timeout")
JOB_KEYS = ("description", "function", "inputs", "kwargs", *FLAG_KEYS)
# Deeper data is no job's inputs, and pickling or writing it as JSON would recurse too deeply.
MAX_NESTING = 100
INPUT_FORMS = (
    "a list [1, 2, 3], { range = [start, stop] } or [start, stop, step], "
    '{ file = "inputs.jsonl" }, or { call = "module:function" }'
)


class SpecError(Exception):
    """A job spec is wrong. `str()` is one line: "file: job 'x', field 'y': what is wrong"."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        job: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = " ".join(str(message).split())
        self.path = path
        self.job = job
        self.field = field
        super().__init__(self.message)

    def __str__(self) -> str:
        where = [f"job {self.job!r}"] if self.job is not None else []
        if self.field is not None:
            where.append(f"field {self.field!r}")
        head = ", ".join(where)
        text = f"{head}: {self.message}" if head else self.message
        return f"{self.path}: {text}" if self.path else text

    def __reduce__(self):  # keep path/job/field across pickling (e.g. to a worker process)
        return (_rebuild_error, (self.message, self.path, self.job, self.field))


def _rebuild_error(message: str, path: str | None, job: str | None, fld: str | None) -> SpecError:
    return SpecError(message, path=path, job=job, field=fld)


@dataclass(frozen=True)
class JobSpec:
    """One submittable job, already validated. Plain data, so other modules and tests can build
    one directly; `inputs` (as written in TOML) and `base_dir` (the spec file's folder) are what
    `load_inputs` and `task_function` resolve against."""

    name: str
    description: str
    function: str
    origin: str
    inputs_desc: str
    n_inputs: int | None
    kwargs: Mapping[str, object]
    chunksize: int | None = None
    ordered: bool | None = None
    retries: int | None = None
    timeout: float | None = None
    inputs: object = field(default=None, repr=False)
    base_dir: str | None = field(default=None, repr=False)
    # the items `preload_inputs` loaded (the command line checks them before it connects);
    # never pickled: a run keeps its inputs in inputs.pickle
    preloaded: tuple | None = field(default=None, repr=False, compare=False)

    def flags(self) -> dict[str, object]:
        """Only the flags the spec set, so ipyparallel's own defaults apply to the rest.
        chunksize/ordered are `map_async` arguments; retries/timeout are view flags."""
        values = {k: getattr(self, k) for k in FLAG_KEYS}
        return {k: v for k, v in values.items() if v is not None}

    def load_inputs(self) -> list:
        """The input items, one per call. Reads the inputs file or calls the `call` function now
        (it may be slow or change between load and submit), unless this is a copy made by
        `preload_inputs`. Raises SpecError."""
        if self.preloaded is not None:
            return list(self.preloaded)
        try:
            items = _read_inputs(self.inputs, self._dir())
        except (_InputsError, shipping.RefError) as exc:
            raise self._error(str(exc), "inputs") from None
        if not items:
            raise self._error("produced no inputs; a job needs at least one", "inputs")
        return items

    def preload_inputs(self) -> JobSpec:
        """Load the inputs now (call the `call` function, read the file) and return a copy of
        this spec whose next `load_inputs` returns these very items: the command line checks a
        job's inputs completely before it connects, and submits what it checked without calling
        the function twice. Raises SpecError."""
        return dataclasses.replace(self, preloaded=tuple(self.load_inputs()))

    def __getstate__(self) -> dict[str, object]:
        """Pickled (in a run's spec.pickle, to a worker process) without preloaded items."""
        return {**self.__dict__, "preloaded": None}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update({"preloaded": None, **state})  # records from before the field

    def task_function(self) -> Callable[[object], object]:
        """What to pass to a load-balanced view's `map_async`: calls `function(item, **kwargs)`
        on the engine. Functions from a .py file ship by value (see `ippmon.shipping`)."""
        try:
            return shipping.ship(shipping.resolve(self.function, self._dir()), self.kwargs)
        except shipping.RefError as exc:
            raise self._error(str(exc), "function") from None

    def _dir(self) -> str:
        if self.base_dir is not None:
            return self.base_dir
        if self.origin != BUILTIN:
            return os.path.dirname(os.path.abspath(self.origin))
        return os.getcwd()

    def _error(self, message: str, fld: str | None) -> SpecError:
        return SpecError(message, path=self.origin, job=self.name, field=fld)


@dataclass
class Catalog:
    """Every job the user can pick: built-ins, then the spec file's jobs, plus what is broken."""

    specs: dict[str, JobSpec]
    errors: dict[str, SpecError] = field(default_factory=dict)
    file_error: SpecError | None = None
    path: str | None = None

    def get(self, name: str) -> JobSpec:
        """The job called `name`, or a SpecError that says why it cannot be run."""
        if name in self.errors:
            raise self.errors[name]
        if name in self.specs:
            return self.specs[name]
        if self.file_error is not None:
            raise self.file_error
        available = ", ".join(self.specs) or "none"
        raise SpecError(f"no such job (available: {available})", path=self.path, job=name)


def builtin_specs() -> dict[str, JobSpec]:
    """The demo jobs shipped in `ippmon/builtin.toml`. A fresh dict each call."""
    return dict(_builtins())


@lru_cache(maxsize=1)
def _builtins() -> tuple[tuple[str, JobSpec], ...]:
    text = importlib.resources.files("ippmon").joinpath("builtin.toml").read_text("utf-8")
    base = os.path.dirname(os.path.abspath(__file__))
    jobs, errors = _parse(tomllib.loads(text), BUILTIN, base)
    if errors:  # a bug in ippmon itself: fail loudly in tests
        raise next(iter(errors.values()))
    return tuple(jobs.items())


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """Built-ins plus the jobs of `path` (default ./ippmon.toml when it exists). Never raises
    for a bad file: problems land in `file_error` (whole file) or `errors` (one job)."""
    specs = builtin_specs()
    if path is None:
        if not os.path.lexists(DEFAULT_FILE):
            return Catalog(specs)
        path = DEFAULT_FILE
    label = os.fspath(path)
    try:
        data = _read_toml(label)
        jobs, errors = _parse(data, label, os.path.dirname(os.path.abspath(label)))
    except SpecError as exc:
        return Catalog(specs, file_error=exc, path=label)
    specs.update(jobs)  # a file job named like a built-in replaces it in place
    for name in errors:
        specs.pop(name, None)  # a broken override hides the built-in: the user meant theirs
    return Catalog(specs, errors=errors, path=label)


def _read_toml(label: str) -> dict:
    if os.path.isdir(label):
        raise SpecError("is a directory, not a TOML job-spec file", path=label)
    try:
        with open(label, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SpecError("job-spec file not found", path=label) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", path=label) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=label) from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"TOML syntax error: {exc}", path=label) from None
    except RecursionError:  # the TOML parser recurses once per level of nesting
        raise SpecError(
            f"arrays or tables nested too deeply to read (ippmon takes up to {MAX_NESTING} levels)",
            path=label,
        ) from None


def _parse(data: dict, label: str, base: str) -> tuple[dict[str, JobSpec], dict[str, SpecError]]:
    """Check the file's shape (errors there are file errors), then each job on its own."""
    for key, value in data.items():
        if key != "jobs":
            hint = f"; did you mean [jobs.{key}]?" if isinstance(value, dict) else ""
            raise SpecError(f"unknown top-level key (valid: jobs){hint}", path=label, field=key)
    if "jobs" not in data:
        raise SpecError("no [jobs] table; define each job as [jobs.NAME]", path=label)
    jobs = data["jobs"]
    if not isinstance(jobs, dict):
        got = _kind(jobs)
        raise SpecError(
            f"must be a table of jobs ([jobs.NAME]), got {got}", path=label, field="jobs"
        )
    if not jobs:
        raise SpecError("[jobs] holds no jobs; define each job as [jobs.NAME]", path=label)
    specs: dict[str, JobSpec] = {}
    errors: dict[str, SpecError] = {}
    for name, table in jobs.items():
        try:
            specs[name] = _build(name, table, label, base)
        except SpecError as exc:
            errors[name] = exc
        except Exception as exc:  # never let one odd job take the picker down
            msg = f"unexpected {shipping.exception_line(exc)}"
            errors[name] = SpecError(msg, path=label, job=name)
    return specs, errors


def _build(name: str, table: object, label: str, base: str) -> JobSpec:
    """Validate one job, cheap checks first so a typo never triggers an import."""

    def fail(message: str, fld: str | None = None) -> SpecError:
        return SpecError(message, path=label, job=name, field=fld)

    if not name.strip():
        raise fail("a job name must not be empty")
    if not isinstance(table, dict):
        raise fail(f"must be a table ([jobs.{name}]), got {_kind(table)}")
    for key in table:
        if key not in JOB_KEYS:
            close = difflib.get_close_matches(key, JOB_KEYS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise fail(f"unknown key; {hint}valid keys: {', '.join(JOB_KEYS)}", key)
    description = table.get("description", "")
    if not isinstance(description, str):
        raise fail(f"must be a string, got {_show(description)}", "description")
    if "function" not in table:
        raise fail(
            'missing; set function = "package.module:function" or "file.py:function"', "function"
        )
    function = table["function"]
    if not isinstance(function, str):
        raise fail(
            f'must be a string like "package.module:function", got {_show(function)}', "function"
        )
    if "inputs" not in table:
        raise fail(f"missing; give inputs as {INPUT_FORMS}", "inputs")
    inputs = table["inputs"]
    kwargs = table.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise fail(f"must be a table like {{ delay = 0.2 }}, got {_show(kwargs)}", "kwargs")
    for key in ("inputs", "kwargs"):
        if _too_deep(table.get(key)):
            raise fail(f"arrays or tables nested more than {MAX_NESTING} levels deep", key)
    flags = _Flags()
    if "chunksize" in table:
        chunksize = table["chunksize"]
        flags["chunksize"] = _count(chunksize, 1, "must be a positive integer", "chunksize", fail)
    if "ordered" in table:
        if not isinstance(ordered := table["ordered"], bool):
            raise fail(f"must be true or false, got {_show(ordered)}", "ordered")
        flags["ordered"] = ordered
    if "retries" in table:
        flags["retries"] = _count(table["retries"], 0, "must be an integer >= 0", "retries", fail)
    if "timeout" in table:
        flags["timeout"] = _seconds(table["timeout"], fail)
    try:
        shipping.split_ref(function)
    except shipping.RefError as exc:
        raise fail(str(exc), "function") from None
    try:
        desc, count = _describe_inputs(inputs, base)
    except (_InputsError, shipping.RefError) as exc:
        raise fail(str(exc), "inputs") from None
    try:
        shipping.resolve(function, base)
    except shipping.RefError as exc:
        raise fail(str(exc), "function") from None
    return JobSpec(
        name=name,
        description=description,
        function=function,
        origin=label,
        inputs_desc=desc,
        n_inputs=count,
        kwargs=dict(kwargs),
        inputs=inputs,
        base_dir=base,
        **flags,
    )


def _too_deep(value: object, limit: int | None = None) -> bool:
    """Whether arrays/tables nest deeper than `limit` (without recursing: that is the point)."""
    limit = MAX_NESTING if limit is None else limit
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _Flags(TypedDict, total=False):
    """The optional keys of a job table, checked (`FLAG_KEYS`)."""

    chunksize: int
    ordered: bool
    retries: int
    timeout: float


def _count(value: object, least: int, rule: str, key: str, fail: Callable[..., SpecError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise fail(f"{rule}, got {_show(value)}", key)
    return value


def _seconds(value: object, fail: Callable[..., SpecError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"must be a number of seconds > 0, got {_show(value)}", "timeout")
    if not (math.isfinite(value) and value > 0):
        raise fail(f"must be a number of seconds > 0, got {_show(value)}", "timeout")
    return float(value)


class _InputsError(Exception):
    """Something about `inputs` is wrong; the caller adds file/job/field."""


def _form(inputs: object) -> tuple[str, Any]:
    """Which of the four input forms this is: ("list", [..]), ("range", (start, stop[, step])),
    ("file", name) or ("call", ref)."""
    if isinstance(inputs, list):
        return "list", inputs
    if inputs is None:
        raise _InputsError("missing; this spec names no inputs")
    if not isinstance(inputs, dict):
        raise _InputsError(f"must be {INPUT_FORMS}; got {_show(inputs)}")
    if len(inputs) != 1 or next(iter(inputs)) not in ("range", "file", "call"):
        keys = ", ".join(inputs) or "none"
        raise _InputsError(f"must be exactly one of {INPUT_FORMS}; got a table with keys: {keys}")
    kind, value = next(iter(inputs.items()))
    if kind == "range":
        return kind, _range_args(value)
    if not isinstance(value, str) or not value.strip():
        raise _InputsError(f"{kind} must be a non-empty string, got {_show(value)}")
    return kind, value


def _describe_inputs(inputs: object, base: str) -> tuple[str, int | None]:
    """Check `inputs` at load time (read the file, resolve the call without calling it);
    return the text people see and the count when it is known."""
    kind, value = _form(inputs)
    if kind == "call":
        shipping.resolve(value, base)
        return f"call {value}", None
    if kind == "list":
        n = len(value)
        desc = f"list of {n}"
    elif kind == "range":
        n = len(range(*value))
        desc = f"range({', '.join(map(str, value))})"
    else:
        n = len(_read_jsonl(value, base))
        desc = f"file {value} ({n} line{'s' if n != 1 else ''})"
    if n == 0:
        raise _InputsError(f"{desc} is empty; a job needs at least one input")
    return desc, n


def _read_inputs(inputs: object, base: str) -> list:
    """The items themselves; a `call` function is called here and only here."""
    kind, value = _form(inputs)
    if kind == "list":
        return list(value)
    if kind == "range":
        return list(range(*value))
    if kind == "file":
        return _read_jsonl(value, base)
    func = shipping.resolve(value, base).func
    try:
        result = func()
    except Exception as exc:
        raise _InputsError(f"calling {value} raised {shipping.exception_line(exc)}") from None
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        raise _InputsError(f"{value} must return an iterable of inputs, got {_kind(result)}")
    try:
        return list(result)
    except Exception as exc:
        line = shipping.exception_line(exc)
        raise _InputsError(f"iterating what {value} returned raised {line}") from None


def _range_args(value: Any) -> tuple[int, ...]:
    ok = isinstance(value, list) and len(value) in (2, 3)
    if not (ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise _InputsError(
            f"range must be [start, stop] or [start, stop, step] integers, got {_show(value)}"
        )
    if len(value) == 3 and value[2] == 0:
        raise _InputsError("range step must not be 0")
    return tuple(value)


def _read_jsonl(name: str, base: str) -> list:
    """One JSON value per non-blank line; a bad line is named by its number."""
    path = os.path.join(base, os.path.expanduser(name))
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except FileNotFoundError:
        raise _InputsError(f"inputs file {name} not found (looked for {path})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _InputsError(
            f"cannot read inputs file {name}: {shipping.exception_line(exc)}"
        ) from None
    items = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                why = f"not valid JSON ({exc.msg}, column {exc.colno})"
                raise _InputsError(f"inputs file {name}, line {number}: {why}") from None
    return items


def _kind(value: object) -> str:
    """TOML's name for a value's type, with an article."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names.update({list: "an array", dict: "a table"})
    return names.get(type(value), f"a {type(value).__name__}")


def _show(value: object) -> str:
    """A value as it was written in TOML, short: true, "x", -1, [1, 2]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value, default=str) if isinstance(value, (str, list)) else repr(value)
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= 40 else text[:37] + "..."
