"""Render the README screenshots from the recorded fakes the snapshot tests use.

    .venv/bin/python scripts/screenshots.py [--size 100x30] [--out screenshots]

Writes `<out>/<name>.svg` for each key screen, and `<out>/<name>.png` when `rsvg-convert`
(Debian: librsvg2-bin, with fonts-firacode for aligned box drawing) is on the PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import control_fakes as cf  # noqa: E402
import ui_fakes as fx  # noqa: E402

from ippmon.model import Phase  # noqa: E402
from ippmon.ui import IppmonApp  # noqa: E402


def tasks_app() -> IppmonApp:
    """The 40-task flaky job of the tasks screen's tests, watched live, its tasks opened."""
    recorded = cf.flaky_job()
    states = [row.state for row in recorded.rows]
    snapshot = replace(
        fx.mid_run(),
        name="flaky",
        total=len(states),
        submitted=len(states),
        counts={state: states.count(state) for state in set(states)},
        phase=Phase.RUNNING,
    )
    return fx.monitor_app(fx.FakeJob(snapshot, fx.output_lines(), tasks=recorded))


SCREENS: dict[str, tuple[Callable[[], IppmonApp], tuple[str, ...]]] = {
    "picker": (lambda: fx.make_app(fx.FakeBackend(target=True)), ()),
    "monitor": (lambda: fx.monitor_app(fx.FakeJob(fx.mid_run(), fx.output_lines())), ()),
    "monitor-64-engines": (
        lambda: fx.monitor_app(fx.FakeJob(fx.many_engines(), fx.output_lines(engines=64))),
        (),
    ),
    "finished": (lambda: fx.monitor_app(fx.FakeJob(fx.finished(), fx.output_lines())), ()),
    "tasks": (tasks_app, ("t",)),
    "leave": (lambda: fx.monitor_app(fx.FakeJob(fx.mid_run(), fx.output_lines())), ("q",)),
    "runs": (lambda: fx.make_app(fx.FakeBackend(target=True)), ("a",)),
    "help": (lambda: fx.make_app(fx.FakeBackend(target=True)), ("question_mark",)),
}


async def render(name: str, out: Path, size: tuple[int, int]) -> Path:
    build, keys = SCREENS[name]
    app = build()
    async with app.run_test(size=size) as pilot:
        await fx.settle(pilot)
        if keys:
            await pilot.press(*keys)
            await fx.settle(pilot)
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
