"""The pictures as keys and clicks use them: the durations histogram filters the tasks table,
the stragglers filter keeps the flagged tasks, the status line counts stragglers."""

from __future__ import annotations

from fakes import recorded as rec
from fakes import recorded_tasks as tasks_rec
from fakes.backends import FakeJob
from fakes.pilot import ScreenApp, settle, watch_app
from textual.widgets import Label

from ippmon.model import Durations, TaskRow, TaskState
from ippmon.ui.screens.tasks import FILTERS, TaskQuery, TasksScreen, TaskTable, select_tasks
from ippmon.ui.widgets.durations import BAR_WIDTH, DurationChart


def tasks_app() -> ScreenApp:
    job = tasks_rec.flaky_job()
    return ScreenApp(lambda: TasksScreen(job, refresh_interval=0, tz=rec.UTC))


def shown(app: ScreenApp) -> list[int]:
    table = app.screen.query_one(TaskTable)
    return [int(table.row_texts(y)[0]) for y in range(table.row_count)]


def durations_of(indices: list[int]) -> list[float]:
    return [tasks_rec.recorded_detail(i).duration_s or 0.0 for i in indices]


def test_a_duration_bar_keeps_the_rows_in_its_range_and_the_stragglers_filter_the_flagged() -> None:
    rows = [TaskRow(i, TaskState.OK, 0, 1, d, "") for i, d in enumerate((0.1, 0.5, 0.52, 3.0))]
    rows.append(TaskRow(4, TaskState.RUNNING, 1, 1, None, "", straggler=True))
    rows.append(TaskRow(5, TaskState.RUNNING, 1, 1, None, ""))
    durations = Durations.of([0.1, 0.5, 0.52, 3.0])
    assert durations is not None
    bar = next(b for b in durations.bars() if b.contains(0.5))
    page = select_tasks(rows, TaskQuery(duration=bar), total=6)
    assert [r.index for r in page.rows] == [1, 2]
    stragglers = next(i for i, f in enumerate(FILTERS) if f.stragglers)
    assert [r.index for r in select_tasks(rows, TaskQuery(state=stragglers), 6).rows] == [4]


async def test_h_and_big_h_step_through_the_bars_and_filter_the_table_to_each() -> None:
    app = tasks_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        chart = app.screen.query_one(DurationChart)
        bars = [b for b in chart.bars if b.count]
        await pilot.press("h")
        await settle(pilot)
        first = bars[0]
        assert shown(app) and all(first.contains(d) for d in durations_of(shown(app)))
        assert len(shown(app)) == first.count and chart.picked == first
        await pilot.press("H", "H")  # back to none, then the longest bar
        await settle(pilot)
        assert chart.picked == bars[-1] and len(shown(app)) == bars[-1].count
        await pilot.press("a")
        await settle(pilot)
        assert chart.picked is None and shown(app) == list(range(40))


async def test_a_click_on_a_bar_picks_it_and_a_second_click_lets_go() -> None:
    app = tasks_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        chart = app.screen.query_one(DurationChart)
        i = max(range(len(chart.bars)), key=lambda k: chart.bars[k].count)  # the tallest
        offset = (1 + i * (BAR_WIDTH + 1), 2)  # past the padding, on the bar's bottom row
        await pilot.click(DurationChart, offset=offset)
        await settle(pilot)
        assert chart.picked == chart.bars[i] and len(shown(app)) == chart.bars[i].count
        await pilot.click(DurationChart, offset=offset)
        await settle(pilot)
        assert chart.picked is None and len(shown(app)) == 40


async def test_the_status_line_counts_the_stragglers_and_hides_when_there_are_none() -> None:
    app = watch_app(FakeJob(rec.stragglers_running(), rec.output_lines(12, engines=2)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        label = app.screen.query_one("#stragglers", Label)
        assert label.has_class("-shown") and str(label.content) == "1 straggler"
    app = watch_app(FakeJob(rec.mid_run(), rec.output_lines()))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.screen.query_one("#stragglers", Label).has_class("-shown")
