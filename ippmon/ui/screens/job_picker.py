"""The catalog of job specs: pick one and press Enter to submit it to the cluster.

Broken specs are listed too, with their one-line error, but cannot be selected; an unreadable spec
file is reported at the top. The screen only asks (`JobPickerScreen.Submit`, `OpenRuns` for `a`,
attach to a recorded run, `OpenTop` for `t`, every client's tasks); the app opens the monitor,
the runs list or the top screen. It posts rather than
dismisses because it is the app's base screen, never dismissed (the rule is in `app.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ListItem, ListView, Static

from ippmon.model import ClusterInfo
from ippmon.ui.widgets.list_keys import LIST_KEYS

if TYPE_CHECKING:
    from ippmon.jobspec import Catalog, JobSpec, SpecError


def flags_text(spec: JobSpec) -> str:
    """`chunksize=4 ordered retries=2`: only the flags the spec set."""
    parts = []
    for key, value in spec.flags().items():
        if isinstance(value, bool):
            parts.append(f"{key}={str(value).lower()}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def inputs_text(spec: JobSpec) -> str:
    return "? inputs" if spec.n_inputs is None else f"{spec.n_inputs:,} inputs"


def error_text(error: SpecError, catalog_path: str | None) -> str:
    """The error's one line, without the file name when the list already shows it."""
    text = str(error)
    prefix = f"{catalog_path}: "
    return text[len(prefix) :] if catalog_path and text.startswith(prefix) else text


class JobItem(ListItem):
    """Two lines: name, inputs and description; then function and flags (or the error)."""

    def __init__(self, name: str, spec: JobSpec | None, error: str = "") -> None:
        super().__init__(disabled=spec is None, classes="-broken" if spec is None else "")
        self.spec = spec
        self.job_name = name
        self.error = error

    def compose(self) -> ComposeResult:
        spec = self.spec
        with Horizontal(classes="job-head"):
            yield Label(self.job_name, classes="job-name", markup=False)
            if spec is None:
                yield Label("cannot be run", classes="job-inputs")
            else:
                yield Label(inputs_text(spec), classes="job-inputs")
                yield Label(spec.description, classes="job-description", markup=False)
        if spec is None:
            yield Static(self.error, classes="job-error", markup=False)
        else:
            flags = flags_text(spec)
            yield Label(
                spec.function + (f"  ·  {flags}" if flags else ""),
                classes="job-function",
                markup=False,
            )


class JobList(ListView):
    """The specs, broken ones included (disabled): the list keys skip those."""

    BINDINGS = [
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        *LIST_KEYS,
    ]

    def action_first(self) -> None:
        self._edge(last=False)

    def action_last(self) -> None:
        self._edge(last=True)

    def _edge(self, *, last: bool) -> None:
        selectable = [i for i, item in enumerate(self.children) if not item.disabled]
        if selectable:
            self.index = selectable[-1] if last else selectable[0]


class SpecDetail(Static):
    """Everything about the highlighted spec."""

    def show(self, spec: JobSpec | None) -> None:
        if spec is None:
            self.border_title = "job"
            self.update("")
            return
        self.border_title = spec.name
        kwargs = ", ".join(f"{k}={v!r}" for k, v in spec.kwargs.items()) or "none"
        n = "unknown until submit" if spec.n_inputs is None else f"{spec.n_inputs:,} items"
        self.update(
            Content.from_markup(
                "$description\n[dim]function[/dim] $function\n"
                "[dim]inputs[/dim] $inputs [dim]($n)[/dim] [dim]· kwargs[/dim] $kwargs\n"
                "[dim]flags[/dim] $flags [dim]· from[/dim] $origin",
                description=spec.description or "(no description)",
                function=spec.function,
                inputs=spec.inputs_desc,
                n=n,
                kwargs=kwargs,
                flags=flags_text(spec) or "ipyparallel defaults",
                origin=spec.origin,
            )
        )


class JobPickerScreen(Screen[None]):
    """Lists the catalog's specs; Enter posts `Submit` for the highlighted one."""

    BINDINGS = [
        Binding("enter", "submit", "Submit", id="submit", priority=True),
        Binding("a", "runs", "Attach to a run", id="attach"),
        Binding(
            "t",
            "top",
            "Top",
            id="picker-top",
            tooltip="Every client's tasks on this cluster, live (top)",
        ),
    ]

    @dataclass
    class Submit(Message):
        spec: JobSpec

    class OpenRuns(Message):
        """List the recorded runs, to attach to one."""

    class OpenTop(Message):
        """Watch every client's tasks on the cluster (`ippmon top`)."""

    def __init__(self, catalog: Catalog, cluster: ClusterInfo) -> None:
        super().__init__()
        self.catalog = catalog
        self.cluster = cluster

    def compose(self) -> ComposeResult:
        catalog = self.catalog
        yield Header()
        if catalog.file_error is not None:
            yield Static(f"✗ {catalog.file_error}", id="file-error", markup=False)
        yield Label(
            Content.from_markup(
                "cluster [b]$cluster[/b]  [dim]·[/dim]  $n jobs$broken from $source",
                cluster=self.cluster.label,
                n=str(len(catalog.specs)),
                broken=f" ({len(catalog.errors)} broken)" if catalog.errors else "",
                source=catalog.path if catalog.path and not catalog.file_error else "built-ins",
            ),
            id="picker-intro",
        )
        with Horizontal(id="picker-body"):
            items = [JobItem(name, spec) for name, spec in catalog.specs.items()]
            items += [
                JobItem(name, None, error_text(error, catalog.path))
                for name, error in catalog.errors.items()
            ]
            jobs = JobList(*items, id="jobs", initial_index=0)
            jobs.border_title = "jobs"
            yield jobs
            with Vertical(id="detail-box"):
                yield SpecDetail(id="spec-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#jobs", ListView).focus()
        self._show_highlighted()

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        self._show_highlighted()

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        self.action_submit()

    def _show_highlighted(self) -> None:
        item = self.query_one("#jobs", ListView).highlighted_child
        spec = item.spec if isinstance(item, JobItem) else None
        self.query_one(SpecDetail).show(spec)

    def highlighted_spec(self) -> JobSpec | None:
        item = self.query_one("#jobs", ListView).highlighted_child
        return item.spec if isinstance(item, JobItem) and not item.disabled else None

    def action_submit(self) -> None:
        spec = self.highlighted_spec()
        if spec is not None:
            self.post_message(self.Submit(spec))

    def action_runs(self) -> None:
        self.post_message(self.OpenRuns())

    def action_top(self) -> None:
        self.post_message(self.OpenTop())
