"""Column widths fitted to the terminal (screens/fit_columns), and the case list at 80 columns."""

from __future__ import annotations

from textual.widgets import DataTable

from keyshift.screens.fit_columns import CELL_PADDING, fit_widths
from keyshift.screens.resolve_queue import COLUMNS, MIN_WIDTHS
from ui_support import make, settle


def test_preferred_widths_when_they_fit():
    assert fit_widths([(10, 5), (20, 5)], 100) == [10, 20]


def test_the_excess_comes_from_the_slack_in_proportion_and_never_below_the_minimum():
    widths = fit_widths([(10, 10), (40, 16), (26, 12)], 60)
    assert sum(widths) + 3 * CELL_PADDING == 60
    assert widths[0] == 10 and widths[1] >= 16 and widths[2] >= 12
    assert fit_widths([(10, 8), (10, 8)], 5) == [8, 8]  # even the minimums do not fit: the minimums


async def test_every_case_column_is_on_screen_at_80_columns(planned):
    app = make(planned.context())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        table = app.screen.query_one("#cases", DataTable)
        widths = [table.columns[key].width for key, _, _ in COLUMNS]  # type: ignore[index]
        assert all(w >= MIN_WIDTHS[key] for w, (key, _, _) in zip(widths, COLUMNS))
        assert sum(widths) + len(widths) * CELL_PADDING <= 80 - table.styles.scrollbar_size_vertical
