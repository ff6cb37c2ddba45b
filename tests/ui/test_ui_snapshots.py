"""Snapshot tests: one per key screen, fixed terminal size, pinned data, no cursor blink.

Update the baselines with ``pytest tests/ui --snapshot-update`` after an intended UI change, and
look at the report before committing them.
"""

from __future__ import annotations

from textual.widgets import Input

from ui_support import SIZE, make, settle


def test_overview_snapshot(planned, snap_compare):
    assert snap_compare(make(planned.context()), terminal_size=SIZE, run_before=settle)


def test_browser_snapshot(planned, snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)

    assert snap_compare(make(planned.context()), terminal_size=SIZE, run_before=run_before)


def test_preview_snapshot(planned, snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.action_open_preview("Acme\u200b")
        await settle(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(make(planned.context()), terminal_size=SIZE, run_before=run_before)


def test_read_only_plan_dialog_snapshot(planned, snap_compare):
    async def run_before(pilot) -> None:
        await settle(pilot)
        from keyshift.screens.plan_dialog import PlanDialog

        pilot.app.push_screen(PlanDialog(pilot.app, "s3://acme-exports/customers/2024-05-01/"))
        await settle(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(make(planned.context(read_only=True)), terminal_size=SIZE, run_before=run_before)
