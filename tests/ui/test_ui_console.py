"""Pilot tests: the console's screens against a planned fixture workspace, asserting state."""

from __future__ import annotations

import asyncio
import json
import re

from textual.widgets import Button, DataTable, Input, ProgressBar, Static

from keyshift.core.plan.queries import latest_plan
from keyshift.core.store.workspace import Workspace
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.normalize_preview import NormalizePreviewScreen
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.plan_dialog import PlanDialog
from keyshift.screens.widgets import ProgressPanel
from ui_support import EXPECTED, OPERATOR, PINNED_DUMP, SIZE, make, settle, text_of


def shown(screen, selector: str) -> str:
    return text_of(screen.query_one(selector, Static).content)


async def open_browser(pilot) -> DumpBrowserScreen:
    await settle(pilot)
    await pilot.press("b")
    await settle(pilot)
    assert isinstance(pilot.app.screen, DumpBrowserScreen)
    return pilot.app.screen


# -- overview -----------------------------------------------------------------------------------
async def test_overview_shows_the_plan_and_counts(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        steps = shown(screen, "#steps")
        assert re.search(r"1 Plan\s+complete", steps)
        for name in ("2 Resolve", "3 Restore", "4 Stream-sync", "5 Verify", "6 Cut over"):
            assert re.search(rf"{name}\s+not started", steps), name
        state = shown(screen, "#plan-state")
        assert PINNED_DUMP in state and OPERATOR in state and "ddbjson" in state
        assert "350 = 344 records + 6 quarantined" in state and "reconciled" in state
        counts = shown(screen, "#plan-counts")
        for status, records in EXPECTED["records"].items():
            ids = EXPECTED["identifiers"].get(status)
            expected = rf"{status}\s+{ids if ids is not None else '—'}\s+{records}\b"
            assert re.search(expected, counts), (expected, counts)
        assert re.search(r"total\s+330\s+350\b", counts)
        findings = shown(screen, "#plan-findings")
        assert re.search(rf"conflicts\s+{EXPECTED['conflicts']}\b", findings)
        assert re.search(r"suspicious\s+1\b", findings)
        assert app.sub_title == "~/migrations/customers/.keyshift"


async def test_overview_without_a_plan_says_how_to_make_one(fresh):
    app = make(fresh.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        state = shown(app.screen, "#plan-state")
        assert "No plan yet" in state and "Press p" in state
        assert "keyshift plan" not in state  # a console action, never a command for another shell
        assert re.search(r"1 Plan\s+not started", shown(app.screen, "#steps"))


async def test_read_only_without_a_workspace_shows_the_error(tmp_path):
    from ui_support import Fixture

    app = make(Fixture(tmp_path).context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ErrorModal) and app.screen.error_title == "No workspace"
        await pilot.press("escape")
        await pilot.pause()
        assert "Cannot read the workspace: not a migration directory: no workspace at" in shown(app.screen, "#plan-state")


# -- dump browser -------------------------------------------------------------------------------
async def test_browser_pages_forward_and_back(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        table = browser.query_one("#records", DataTable)
        label = lambda: shown(browser, "#page-label")  # noqa: E731
        assert table.row_count == 100 and "records 1–100 of 344" in label()
        pages = [[r.seq for r in browser.rows]]
        for expected in ("101–200", "201–300", "301–344"):
            await pilot.press("pagedown")
            await settle(pilot)
            assert f"records {expected} of 344" in label()
            assert browser.rows[0].seq > pages[-1][-1]
            pages.append([r.seq for r in browser.rows])
        assert table.row_count == 44 and browser.at_end
        await pilot.press("pagedown")  # already on the last page: nothing moves
        await settle(pilot)
        assert "records 301–344 of 344" in label()
        for expected, page in (("201–300", pages[2]), ("101–200", pages[1]), ("1–100", pages[0])):
            await pilot.press("pageup")
            await settle(pilot)
            assert f"records {expected} of 344" in label()
            assert [r.seq for r in browser.rows] == page
        await pilot.press("ctrl+end")  # the last page is the last 100 records
        await settle(pilot)
        assert "records 245–344 of 344" in label() and browser.rows[-1].seq == pages[3][-1]
        await pilot.press("pageup")
        await settle(pilot)
        assert "records 145–244 of 344" in label()
        await pilot.press("ctrl+home")
        await settle(pilot)
        assert [r.seq for r in browser.rows] == pages[0]


async def test_browser_small_pages_queue_fast_keypresses(planned):
    app = make(planned.context(), page_size=10)
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        await pilot.press("pagedown", "pagedown", "pagedown")  # faster than the fetches
        await settle(pilot, rounds=6)
        assert "records 31–40 of 344" in shown(browser, "#page-label")


async def test_browser_status_filter(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        table = browser.query_one("#records", DataTable)
        for key, status in (("3", "ambiguous"), ("2", "fixed"), ("4", "orphaned"), ("5", "invalid"),
                            ("6", "quarantined")):
            await pilot.press(key)
            await settle(pilot)
            expected = EXPECTED["records"][status]
            assert table.row_count == expected, status
            assert {r.status for r in browser.rows} == {status}
            assert f"1–{expected} of {expected}" in shown(browser, "#page-label")
        assert all(r.raw is None or r.reason for r in browser.rows)
        await pilot.press("0")
        await settle(pilot)
        assert table.row_count == 100 and "of 344" in shown(browser, "#page-label")


async def test_browser_search_finds_acme_variants(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        await pilot.press("slash")
        await pilot.press(*"Acme")
        await settle(pilot)
        raws = {r.raw for r in browser.rows}
        assert raws == {"Acme", "Acme\u200b", "\uff21\uff43\uff4d\uff45", "\ufeffAcme"}
        assert len(browser.rows) == 11 and {r.canonical for r in browser.rows} == {"Acme"}
        # An escaped search is unescaped and normalized with the plan's rules.
        browser.query_one("#search", Input).value = "\\ufeffAc"
        await settle(pilot)
        assert {r.raw for r in browser.rows} == raws
        # Nothing on screen is a raw invisible character.
        table = browser.query_one("#records", DataTable)
        cells = [str(c) for i in range(table.row_count) for c in table.get_row_at(i)]
        assert not any(ch in cell for cell in cells for ch in "\u200b\ufeff")
        assert "Acme⟨ZWSP⟩" in cells and "⟨BOM⟩Acme" in cells or "⟨ZWNBSP⟩Acme" in cells


async def test_browser_pages_a_search_without_counting_it(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        browser.query_one("#search", Input).value = "Customer 3"  # Customer 300-320: 21 records
        await settle(pilot)
        browser.query_one("#records", DataTable).focus()
        assert len(browser.rows) == 21 and "records 1–21 · end" in shown(browser, "#page-label")
        browser.query_one("#search", Input).value = "Customer"  # 320 records
        await settle(pilot)
        assert "records 1–100 · more follow" in shown(browser, "#page-label")
        await pilot.press("ctrl+end")
        await settle(pilot)
        assert "records: 100 on this page · end" in shown(browser, "#page-label")
        assert browser.rows[-1].raw == "Customer 320"
        await pilot.press("pageup")
        await settle(pilot)
        assert "records: 100 on this page · more follow" in shown(browser, "#page-label")


async def test_enter_opens_the_preview_with_change_descriptions(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        browser = await open_browser(pilot)
        browser.query_one("#search", Input).value = "Acme"
        await settle(pilot)
        table = browser.query_one("#records", DataTable)
        table.focus()
        index = next(i for i, r in enumerate(browser.rows) if r.raw == "Acme\u200b")
        table.move_cursor(row=index)
        await pilot.press("enter")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, NormalizePreviewScreen)
        assert "U+200B ZERO WIDTH SPACE removed at 4" in shown(preview, "#changes")
        assert "Acme⟨ZWSP⟩" in shown(preview, "#raw-side") and "Acme\\u200b" in shown(preview, "#raw-side")
        plan = shown(preview, "#in-plan")
        assert "ambiguous" in plan and "shares its canonical form with 3 other" in plan
        assert re.search(r"items\s+3\b", plan) and "ACME-1" in plan
        sample = shown(preview, "#sample")
        assert '"customer"' in sample and '"Acme⟨ZWSP⟩"' in sample
        assert preview.query_one("#identifier", Input).value == "Acme\\u200b"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is browser


# -- normalization preview ----------------------------------------------------------------------
async def test_preview_standalone_with_typed_escapes(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        preview = app.screen
        assert isinstance(preview, NormalizePreviewScreen)
        assert isinstance(app.focused, Input)
        await pilot.press(*"Globex\\u00a0Corp")
        await settle(pilot)
        assert preview.raw == "Globex\u00a0Corp"
        assert "U+00A0 NO-BREAK SPACE → U+0020 SPACE at 6" in shown(preview, "#changes")
        assert "Globex Corp" in shown(preview, "#canonical-side")
        assert "Globex⟨NBSP⟩Corp" in shown(preview, "#raw-side")
        plan = shown(preview, "#in-plan")
        assert "fixed" in plan and "G-7" in plan
        # A pasted raw invisible character is turned into its escape in the field.
        field = preview.query_one("#identifier", Input)
        field.value = "\u0440\u0430\u0443\u0440\u0430l\u200b"
        await settle(pilot)
        assert field.value == "\u0440\u0430\u0443\u0440\u0430l\\u200b"
        flags = shown(preview, "#suspicious")
        assert "mixed scripts" in flags and "CYRILLIC" in flags
        assert "not in the plan" in shown(preview, "#in-plan")


# -- plan dialog --------------------------------------------------------------------------------
async def test_plan_dialog_plans_a_dump_and_the_overview_updates(fresh):
    app = make(fresh.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, PlanDialog)
        dialog.query_one("#dump-uri", Input).value = str(fresh.path / "dump.json")
        await pilot.press("enter")
        await settle(pilot, rounds=5)
        outcome = shown(dialog, "#plan-outcome")
        assert "complete: 350 lines = 344 records + 6 quarantined (reconciled)" in outcome
        panel = dialog.query_one(ProgressPanel)
        assert panel.phase == "complete" and panel.query_one(ProgressBar).percentage == 1.0
        overview = app.screen_stack[0]
        assert re.search(r"1 Plan\s+complete", shown(overview, "#steps"))
        assert re.search(r"ambiguous\s+4\s+11\b", shown(overview, "#plan-counts"))
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        # Planning again replaces a complete plan: the dialog asks first (prefilled with its dump).
        await pilot.press("p")
        await settle(pilot)
        dialog = app.screen
        assert dialog.query_one("#dump-uri", Input).value == str(fresh.path / "dump.json")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "344 records" in app.screen.message
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dialog and not dialog.running
    plan = latest_plan(Workspace(fresh.path / "ws"))
    assert plan.state == "complete" and plan.operator == OPERATOR


async def test_plan_dialog_escape_cancels_a_running_plan(fresh):
    big = fresh.path / "big.json"
    item = {"Item": {"customer": {"S": "Customer"}, "order": {"N": "1"}, "pad": {"S": "x" * 200}}}
    with big.open("w", encoding="utf-8") as out:
        for i in range(40_000):
            item["Item"]["order"]["N"] = str(i)
            out.write(json.dumps(item) + "\n")
    app = make(fresh.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#dump-uri", Input).value = str(big)
        # Not pilot.click: it waits for the screen to go idle, i.e. for the whole plan.
        dialog.query_one("#plan-start", Button).press()
        panel = dialog.query_one(ProgressPanel)
        for _ in range(1000):  # wait for the first progress report: the plan is reading
            await asyncio.sleep(0.005)
            if panel.phase == "reading":
                break
        assert dialog.running and panel.phase == "reading"
        await pilot.press("escape")
        await settle(pilot, rounds=5)
        assert isinstance(app.screen, PlanDialog)  # Escape cancelled the plan, it did not close
        assert not dialog.running and "cancelled" in shown(dialog, "#plan-outcome")
        assert re.search(r"1 Plan\s+cancelled", shown(app.screen_stack[0], "#steps"))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
    assert latest_plan(Workspace(fresh.path / "ws")).state == "cancelled"


async def test_plan_errors_reach_the_error_modal(fresh):
    app = make(fresh.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#dump-uri", Input).value = str(fresh.path / "no-such-dump")
        await pilot.click("#plan-start")
        await settle(pilot)
        assert isinstance(app.screen, ErrorModal)
        assert app.screen.error_title == "Unusable dump"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is dialog and not dialog.running and "failed" in shown(dialog, "#plan-outcome")


# -- read-only mode and commands ----------------------------------------------------------------
async def test_read_only_disables_planning(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.sub_title.endswith("READ-ONLY")
        assert app.check_action("plan", ()) is None
        bindings = app.screen.active_bindings
        assert bindings["p"].enabled is False and bindings["b"].enabled is True
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        # Reading still works: the browser pages records.
        await pilot.press("b")
        await settle(pilot)
        assert app.screen.query_one("#records", DataTable).row_count == 100


async def test_every_binding_has_an_id_and_a_tooltip():
    from keyshift.console.app import KeyshiftApp
    from keyshift.screens.help_screen import HelpScreen
    from keyshift.screens.restore_screen import RestoreScreen
    from keyshift.screens.stream_sync_screen import StreamSyncScreen
    from keyshift.screens.verify_screen import VerifyScreen

    for owner in (KeyshiftApp, OverviewScreen, DumpBrowserScreen, NormalizePreviewScreen, PlanDialog,
                  ErrorModal, ConfirmScreen, HelpScreen, RestoreScreen, StreamSyncScreen, VerifyScreen):
        for binding in owner.BINDINGS:
            assert binding.id and binding.tooltip, (owner.__name__, binding.key)


async def test_command_palette_opens_screens(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Dump browser")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DumpBrowserScreen)


async def test_confirm_requires_the_typed_name(planned):
    app = make(planned.context())
    results: list[bool] = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(ConfirmScreen("Flip the flag", "Switch every service to Customers-v2?",
                                      type_to_confirm="Customers-v2"), results.append)
        await pilot.pause()
        assert app.screen.query_one("#confirm-yes", Button).disabled
        await pilot.press(*"Customers-v2")
        await pilot.pause()
        assert not app.screen.query_one("#confirm-yes", Button).disabled
        await pilot.press("enter")
        await pilot.pause()
        app.push_screen(ConfirmScreen("Drop", "Drop it?"), results.append)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert results == [True, False]
