"""Fakes for the UI's tests and the README screenshots, by kind:

- `recorded`: fixed data (a catalog, moments of a job, runs, clusters), no behaviour;
- `recorded_tasks`: the recorded tasks of the tasks and task screens;
- `backends`: FakeBackend, FakeSession and FakeJob, the cluster's stand-ins (`ippmon.protocols`);
- `pilot`: apps on that state (`make_app`, `watch_app`, `ScreenApp`) and `settle` / `until`.

Tests import it as `fakes` (pytest puts `tests/` on the path); `scripts/screenshots.py`, run
from the repository's root with `python -m scripts.screenshots`, as `tests.fakes`.
"""
