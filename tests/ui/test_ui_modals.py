"""Operator habits in the dialogs: cancelling says so, a refusal never moves focus, the quarantine
view shows what was read, runs say how they ended."""

from __future__ import annotations

from typing import Any

from textual.widgets import Button, Input, Static

from keyshift.core.store.workspace import Workspace
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.decision_dialog import BulkDialog, DecisionDialog
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.restore_screen import NumberDialog
from ui_support import BAD_LINES, SIZE, make, settle, text_of, wait_until


def notes(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


def decisions(fixture: Any) -> list[Any]:
    ws = Workspace(fixture.path / "ws")
    try:
        return ws.connect().execute("SELECT case_id, action FROM decisions").fetchall()
    finally:
        ws.close()


async def open_queue_on(pilot: Any, filter_key: str) -> Any:
    await settle(pilot)
    await pilot.press("c")
    await settle(pilot)
    await pilot.press(filter_key)
    await settle(pilot)
    return pilot.app.screen


async def test_cancelling_any_dialog_says_cancelled(resolvable):
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue_on(pilot, "2")  # orphaned
        # A decision dialog, by Escape and by its Cancel button.
        for how in ("escape", "button"):
            await pilot.press("m")
            await wait_until(pilot, lambda: isinstance(app.screen, DecisionDialog))
            before = len(notes(app))
            if how == "escape":
                await pilot.press("escape")
            else:
                await pilot.click("#decision-cancel")
            await wait_until(pilot, lambda: app.screen is queue)
            assert notes(app)[before:] == ["cancelled: nothing decided"], how
        # A drop's confirmation: the decision dialog and the confirmation both close, once said.
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DecisionDialog))
        await pilot.press("tab", *"why", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        before = len(notes(app))
        await pilot.click("#confirm-no")
        await wait_until(pilot, lambda: app.screen is queue)
        assert notes(app)[before:] == ["cancelled: nothing dropped"]
        # The bulk dialog closed without applying anything.
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BulkDialog))
        before = len(notes(app))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue)
        assert notes(app)[before:] == ["cancelled: nothing applied"]
        assert decisions(resolvable) == []


async def test_the_number_and_plan_dialogs_say_cancelled(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        dialog = NumberDialog("Rate", "items per second", 10, minimum=1, maximum=100)
        await app.push_screen(dialog)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not dialog)
        assert notes(app)[-1] == "cancelled: nothing changed"
        await pilot.press("p")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PlanDialog")
        await pilot.click("#plan-close")
        await wait_until(pilot, lambda: type(app.screen).__name__ != "PlanDialog")
        assert notes(app)[-1] == "cancelled: nothing planned"


async def test_a_refused_id_keeps_the_cursor_in_its_field(resolvable):
    """Regression: Enter on a refused id moved focus to Reason, so the next keys landed there and
    the decision recorded had a half-typed reason and the wrong id."""
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        await open_queue_on(pilot, "2")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, DecisionDialog))
        dialog = app.screen
        field = dialog.query_one("#new-id", Input)
        field.value = ""
        await pilot.press(*"CUST-1\\u200b", "enter")  # a ZWSP in the new id: refused
        await pilot.pause()
        assert app.focused is field
        await pilot.press(*"-7", "enter")  # the operator keeps typing
        await pilot.pause()
        assert app.focused is field and field.value == "CUST-1\\u200b-7"
        assert dialog.query_one("#reason", Input).value == ""
        assert "ZERO WIDTH SPACE" in text_of(dialog.query_one("#decision-problem", Static).content)
        assert dialog.query_one("#decision-ok", Button).disabled and app.screen is dialog
        # A valid id moves on to the reason as before, and then it is recorded.
        field.value = "CUST-7"
        await pilot.press("enter")
        await pilot.pause()
        assert app.focused is dialog.query_one("#reason", Input)
        await pilot.press(*"renamed", "enter")
        await settle(pilot)
        assert [d[1] for d in decisions(resolvable)] == ["map"]


async def test_the_quarantine_view_shows_each_lines_excerpt(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        browser = app.screen
        assert isinstance(browser, DumpBrowserScreen)
        browser.action_status("quarantined")
        await wait_until(pilot, lambda: browser.rows and browser.rows[0].status == "quarantined")
        await settle(pilot)
        detail = text_of(browser.query_one("#record-detail", Static).content)
        row = browser.rows[browser.query_one("#records").cursor_row]
        assert row.excerpt and any(row.excerpt in line or line.startswith(row.excerpt) for line in BAD_LINES)
        assert f"dump.json:{row.line}" in detail and "quarantined: " in detail
        assert "excerpt" in detail and row.excerpt[:20] in detail
