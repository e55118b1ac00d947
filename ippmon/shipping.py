"""Find the callable a job spec names, and make it runnable on engines that cannot import it.

A spec names a function either as "package.module:attr" (the engines import the module, so it
ships by reference) or as "path/to/file.py:attr" (a plain file next to the spec, which the
engines usually cannot import). ipyparallel cans a function by its code object but resolves
its globals by importing `f.__module__` on the engine, so a file function would fail there with
ModuleNotFoundError. Instead we register the file's module (and the sibling modules it imported)
with cloudpickle for pickling by value, pickle the function once on the client, and hand the
caller a small trampoline whose `__module__` is "__main__": ipyparallel then ships the
trampoline's own code and never tries to import anything of ours on the engine.

Errors are `RefError`s with a one-line message; `jobspec` adds the file, job and field.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FunctionType, ModuleType

import cloudpickle

__all__ = [
    "RefError",
    "Target",
    "exception_line",
    "make_trampoline",
    "resolve",
    "ship",
    "split_ref",
]


class RefError(Exception):
    """A function reference could not be resolved or shipped. `str()` is one line."""


@dataclass(frozen=True)
class Target:
    """A resolved reference: the callable, and the modules to pickle by value (if any)."""

    ref: str
    func: Callable[..., object]
    by_value: tuple[str, ...] = ()


_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

# resolved file path -> ((mtime_ns, size), module, by-value module names)
_FILES: dict[str, tuple[tuple[int, int], ModuleType, tuple[str, ...]]] = {}
# folder -> names of sibling modules ever imported from it by a spec file
_SIBLINGS: dict[str, set[str]] = {}


def exception_line(exc: BaseException) -> str:
    """`Type: message` on one line, for messages that must never span lines."""
    text = str(exc).strip()
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return " ".join(line.split())


def split_ref(ref: str) -> tuple[str, str]:
    """Split "module:attr" / "file.py:attr" on the last colon (so "C:\\x\\f.py:g" works)."""
    where, sep, attr = ref.strip().rpartition(":")
    if not sep or not where or not attr or not all(p.isidentifier() for p in attr.split(".")):
        raise RefError(
            f'malformed reference "{ref}": expected "package.module:function" '
            'or "path/to/file.py:function"'
        )
    if not where.endswith(".py") and not _MODULE_RE.match(where):
        raise RefError(f'malformed module name "{where}" in "{ref}" (a .py path must end in .py)')
    return where, attr


def resolve(ref: str, base_dir: str | os.PathLike[str]) -> Target:
    """Import what `ref` names and return the callable. Relative .py paths are taken from
    `base_dir` (the spec file's folder). Raises RefError."""
    where, attr = split_ref(ref)
    if where.endswith(".py"):
        path = Path(os.path.expanduser(where))
        if not path.is_absolute():
            path = Path(base_dir) / path
        module, by_value = _load_file(path, where)
        owner = where
    else:
        module, by_value = _import_module(where), ()
        owner = f"module '{where}'"
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            hint = _callables_hint(module) if obj is module else ""
            raise RefError(f"{owner} has no attribute '{attr}'{hint}") from None
    if not callable(obj):
        raise RefError(f"'{attr}' in {owner} is {_a(type(obj).__name__)}, not a function")
    return Target(ref=ref, func=obj, by_value=by_value)


def ship(target: Target, kwargs: Mapping[str, object]) -> Callable[[object], object]:
    """The callable to give `map_async`: calls `func(item, **kwargs)` on the engine.

    By reference (importable module): the function itself, or a `functools.partial` carrying
    the kwargs (ipyparallel cans partials). By value (a .py file): a "__main__" trampoline.
    """
    kwargs = dict(kwargs)
    if not target.by_value:
        return functools.partial(target.func, **kwargs) if kwargs else target.func
    for name in target.by_value:
        module = sys.modules.get(name)
        if module is not None:
            cloudpickle.register_pickle_by_value(module)
    try:
        blob = cloudpickle.dumps((target.func, kwargs))
    except Exception as exc:
        raise RefError(
            f"cannot pickle {target.ref} for the engines: {exception_line(exc)}"
        ) from None
    name = getattr(target.func, "__name__", "task")
    return make_trampoline(blob, name if isinstance(name, str) else "task", target.ref)


def make_trampoline(blob: bytes, name: str, ref: str) -> Callable[[object], object]:
    """A self-contained function that unpickles `(func, kwargs)` from `blob` and calls it.

    It uses no globals (its globals on the engine are the engine's namespace), and its
    `__module__` is "__main__" so neither ipyparallel's canning nor cloudpickle try to import
    this module on the engine. Only unpickling failures are wrapped: the task's own exceptions
    pass through untouched so the monitor shows them as they are.
    """

    def run(item, _blob=blob, _ref=ref):
        import builtins
        import pickle

        # C pickle imports through the caller's globals["__builtins__"], which a bare
        # namespace (uncan without the engine's user_ns) lacks.
        globals().setdefault("__builtins__", builtins)
        try:
            func, kwargs = pickle.loads(_blob)
        except Exception as exc:
            raise RuntimeError(
                f"ippmon could not unpickle {_ref} on this engine "
                f"({type(exc).__name__}: {exc}); the engines need cloudpickle installed "
                "and every package the function imports"
            ) from exc
        # Classes of the file came by value, under a module name this engine cannot import,
        # and ipyparallel pickles a result by reference: make the names resolve here, in a
        # stand-in module, so a result that is an instance of such a class can go back.
        import sys
        import types

        for value in list(getattr(func, "__globals__", {}).values()):
            home = getattr(value, "__module__", None) if isinstance(value, type) else None
            if not home or "." in value.__qualname__:
                continue
            module = sys.modules.get(home)
            if module is None:
                module = sys.modules[home] = types.ModuleType(home)
                module.__ippmon_stand_in__ = True
            if getattr(module, "__ippmon_stand_in__", False):
                setattr(module, value.__qualname__, value)
        return func(item, **kwargs)

    run.__module__ = "__main__"
    run.__name__ = name
    run.__qualname__ = name
    run.__doc__ = f"Run {ref} (shipped by value by ippmon)."
    return run


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise RefError(f"cannot import module '{name}': {exception_line(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise RefError(f"importing module '{name}' raised {exception_line(exc)}") from None


def _load_file(path: Path, shown: str) -> tuple[ModuleType, tuple[str, ...]]:
    """Import a plain .py file under a private module name, its folder on sys.path meanwhile
    so `import helpers` of a sibling works. Cached until the file changes."""
    try:
        real = path.resolve()
        st = real.stat()
    except OSError:
        raise RefError(f"file {shown} not found (looked for {path})") from None
    if not real.is_file():
        raise RefError(f"{shown} is not a file ({path})")
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _FILES.get(str(real))
    if cached and cached[0] == stamp:
        return cached[1], cached[2]

    folder = str(real.parent)
    for stale in _SIBLINGS.get(folder, ()):  # re-import siblings too, so edits are picked up
        sys.modules.pop(stale, None)
    digest = hashlib.sha1(str(real).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", real.stem)
    name = f"_ippmon_spec_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, real)
    if spec is None or spec.loader is None:
        raise RefError(f"cannot load {shown} as a Python module")
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.modules[name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        where = _where(exc, folder)
        raise RefError(f"importing {shown} raised {exception_line(exc)}{where}") from None
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
        elif folder in sys.path:
            sys.path.remove(folder)

    siblings = _SIBLINGS.setdefault(folder, set())
    for mod_name in set(sys.modules) - before - {name}:
        if _is_sibling(sys.modules[mod_name], real.parent):
            siblings.add(mod_name)
    by_value = (name, *sorted(s for s in siblings if s in sys.modules))
    for mod_name in by_value:
        cloudpickle.register_pickle_by_value(sys.modules[mod_name])
    _FILES[str(real)] = (stamp, module, by_value)
    return module, by_value


def _is_sibling(module: object, folder: Path) -> bool:
    """A module the spec file's folder provided: a .py in it, or a package directly in it
    (never something installed in a virtualenv that happens to live under that folder)."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    try:
        rel = Path(file).resolve().relative_to(folder)
    except (OSError, ValueError):
        return False
    if any(p in ("site-packages", "dist-packages") for p in rel.parts):
        return False
    return len(rel.parts) == 1 or (folder / rel.parts[0] / "__init__.py").is_file()


def _where(exc: BaseException, folder: str) -> str:
    """' (helpers.py, line 3)' for the innermost frame in the spec's folder, if any."""
    if isinstance(exc, SyntaxError):
        return ""  # its message already names the file and line
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(folder + os.sep):
            found = f" ({os.path.basename(frame.filename)}, line {frame.lineno})"
    return found


def _callables_hint(module: ModuleType) -> str:
    names = [
        k
        for k, v in vars(module).items()
        if isinstance(v, FunctionType) and not k.startswith("_") and v.__module__ == module.__name__
    ]
    if not names:
        return ""
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f" (functions there: {shown})"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
