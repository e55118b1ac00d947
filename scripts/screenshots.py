"""Render the README screenshots from the recorded fakes the snapshot tests use.

    .venv/bin/python -m scripts.screenshots [--size 100x30] [--out screenshots]

Run it from the repository's root, as a module: the fakes are imported from there as
`tests.fakes`, the package the tests use.

Writes `<out>/<name>.svg` for each key screen, and `<out>/<name>.png` when `rsvg-convert`
(Debian: librsvg2-bin, with fonts-firacode for aligned box drawing) is on the PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ippmon.model import Phase
from ippmon.ui import IppmonApp
from tests.fakes import recorded as rec
from tests.fakes import recorded_top as rt
from tests.fakes.backends import FakeBackend, FakeJob, FakeSession, FakeWatch
from tests.fakes.pilot import make_app, monitor_app, settle
from tests.fakes.recorded_stream import failures_and_lost
from tests.fakes.recorded_tasks import flaky_tasks

ROOT = Path(__file__).resolve().parent.parent


def top_app() -> IppmonApp:
    """`ippmon top` on 16 engines running three clients' jobs."""
    watch = FakeWatch(rt.top_snapshot(16), rt.top_lines(60, engines=16))
    app = make_app(FakeBackend(FakeSession(watch=watch), target=True))
    app.top_only = True
    return app


def tasks_app() -> IppmonApp:
    """The 40-task flaky job of the tasks screen's tests, watched live, its tasks opened."""
    recorded = flaky_tasks()
    states = [row.state for row in recorded.rows]
    snapshot = replace(
        rec.mid_run(),
        name="flaky",
        total=len(states),
        submitted=len(states),
        counts={state: states.count(state) for state in set(states)},
        phase=Phase.RUNNING,
    )
    return monitor_app(FakeJob(snapshot, rec.output_lines(), tasks=recorded))


SCREENS: dict[str, tuple[Callable[[], IppmonApp], tuple[str, ...]]] = {
    "picker": (lambda: make_app(FakeBackend(target=True)), ()),
    "monitor": (lambda: monitor_app(FakeJob(rec.mid_run(), rec.output_lines())), ()),
    "monitor-64-engines": (
        lambda: monitor_app(FakeJob(rec.many_engines(), rec.output_lines(engines=64))),
        (),
    ),
    "finished": (lambda: monitor_app(FakeJob(rec.finished(), rec.output_lines())), ()),
    "advice": (
        lambda: monitor_app(FakeJob(rec.finished_with_advice()), job_name="squares"),
        (),
    ),
    "tasks": (tasks_app, ("t",)),
    "stream": (lambda: monitor_app(failures_and_lost()), ("s",)),
    "stream-here": (lambda: monitor_app(failures_and_lost()), ("v",)),
    "leave": (lambda: monitor_app(FakeJob(rec.mid_run(), rec.output_lines())), ("q",)),
    "runs": (lambda: make_app(FakeBackend(target=True)), ("a",)),
    "help": (lambda: make_app(FakeBackend(target=True)), ("question_mark",)),
    "top": (top_app, ()),
}


async def render(name: str, out: Path, size: tuple[int, int]) -> Path:
    build, keys = SCREENS[name]
    app = build()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)
        return Path(app.save_screenshot(f"{name}.svg", path=str(out)))


def to_png(svg: Path) -> Path | None:
    """rsvg drops leading spaces of text runs unless told to keep them."""
    if shutil.which("rsvg-convert") is None:
        return None
    text = svg.read_text("utf-8").replace("<svg ", '<svg xml:space="preserve" ', 1)
    png = svg.with_suffix(".png")
    with tempfile.NamedTemporaryFile("w", suffix=".svg", encoding="utf-8") as tmp:
        tmp.write(text)
        tmp.flush()
        subprocess.run(["rsvg-convert", tmp.name, "-o", str(png)], check=True)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100x30", help="terminal WIDTHxHEIGHT (100x30)")
    parser.add_argument("--out", default=str(ROOT / "screenshots"), help="output folder")
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(SCREENS)} (default all)")
    args = parser.parse_args()
    unknown = set(args.names) - set(SCREENS)
    if unknown:
        parser.error(f"unknown screen(s): {', '.join(sorted(unknown))}")
    width, height = (int(n) for n in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or SCREENS:
        svg = asyncio.run(render(name, out, (width, height)))
        png = to_png(svg)
        print(svg.relative_to(ROOT) if svg.is_relative_to(ROOT) else svg, "+ png" if png else "")


if __name__ == "__main__":
    main()
