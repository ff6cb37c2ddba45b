"""Column widths that fit a DataTable to the terminal: the wide columns give way first.

A DataTable's columns have fixed widths; at 80 columns the case list's members and decision
columns fell off the right edge. :func:`fit_widths` shrinks the columns that have slack (their
width above their minimum) in proportion to it, so every column stays on screen and the
cells' own ellipsis shows what was cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import DataTable

__all__ = ["fit_table", "fit_widths"]

#: DataTable pads every cell by one column on each side.
CELL_PADDING = 2


def fit_widths(columns: Sequence[tuple[int, int]], available: int) -> list[int]:
    """Widths for ``columns`` of (preferred, minimum) that fit ``available`` cells of screen.

    Preferred widths when they fit; otherwise the excess is taken from each column's slack in
    proportion to it, never below the minimum (when even the minimums do not fit, the minimums).
    """
    widths = [preferred for preferred, _ in columns]
    excess = sum(w + CELL_PADDING for w in widths) - available
    slack = [preferred - minimum for preferred, minimum in columns]
    total_slack = sum(slack)
    if excess <= 0 or total_slack <= 0:
        return widths
    take = min(excess, total_slack)
    cut = [take * s // total_slack for s in slack]
    # Integer division leaves a remainder: take it from the columns with the most slack left.
    for i in sorted(range(len(columns)), key=lambda i: slack[i] - cut[i], reverse=True)[: take - sum(cut)]:
        cut[i] += 1
    return [w - c for w, c in zip(widths, cut)]


def fit_table(table: DataTable[Any], columns: Sequence[tuple[str, int, int]], available: int) -> None:
    """Set the widths of ``table``'s columns (key, preferred, minimum) to fit ``available``."""
    widths = fit_widths([(preferred, minimum) for _, preferred, minimum in columns], available)
    changed = False
    for (key, _, _), width in zip(columns, widths):
        column = table.columns.get(key)  # type: ignore[call-overload]
        if column is not None and column.width != width:
            column.width, changed = width, True
    if changed:
        # No public API re-measures fixed-width columns: flag the dimensions and drop the row
        # caches (keyed by the update count) as DataTable's own column edits do.
        table._require_update_dimensions = True
        table._update_count += 1
        table.refresh(layout=True)
