"""Operator habits in the dialogs: cancelling says so, a refusal never moves focus, the quarantine
view shows what was read, runs say how they ended."""

from __future__ import annotations

import threading
from typing import Any

from textual.widgets import Button, Input, Static

from keyshift.core.errors import KeyshiftError
from keyshift.core.store.workspace import Workspace
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.decision_dialog import BulkDialog, DecisionDialog
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.restore_screen import NumberDialog
from keyshift.screens.run_kinds import RUN_KINDS, RunKind
from keyshift.screens.run_notes import finished_note
from keyshift.screens.runs import Launch, RunRequest
from keyshift.screens.stream_sync_screen import StreamSyncScreen
from keyshift.screens.verify_screen import VerifyScreen
from ui_support import BAD_LINES, SIZE, make, settle, text_of, wait_until


def record_notes(app: Any) -> list[str]:
    """Every notification ``app`` posts from now on (its own list drops them as they expire)."""
    heard: list[str] = []
    notify = app.notify

    def noting(message: str, **options: Any) -> None:
        heard.append(str(message))
        notify(message, **options)

    app.notify = noting
    app.heard = heard
    return heard


def notes(app: Any) -> list[str]:
    return app.heard


async def noted_since(pilot: Any, before: int, *expected: str) -> None:
    """Wait until the notifications after the first ``before`` are ``expected``."""
    await wait_until(pilot, lambda: len(notes(pilot.app)) >= before + len(expected))
    await pilot.pause()
    assert notes(pilot.app)[before:] == list(expected)


async def noted(pilot: Any, text: str) -> None:
    await wait_until(pilot, lambda: text in notes(pilot.app))


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
        record_notes(app)
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
            await noted_since(pilot, before, "cancelled: nothing decided")
        # A drop's confirmation: the decision dialog and the confirmation both close, once said.
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DecisionDialog))
        await pilot.press("tab", *"why", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        before = len(notes(app))
        await pilot.click("#confirm-no")
        await wait_until(pilot, lambda: app.screen is queue)
        await noted_since(pilot, before, "cancelled: nothing dropped")
        # The bulk dialog closed without applying anything.
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, BulkDialog))
        before = len(notes(app))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue)
        await noted_since(pilot, before, "cancelled: nothing applied")
        assert decisions(resolvable) == []


async def test_the_number_and_plan_dialogs_say_cancelled(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        record_notes(app)
        await settle(pilot)
        dialog = NumberDialog("Rate", "items per second", 10, minimum=1, maximum=100)
        await app.push_screen(dialog)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not dialog)
        await noted(pilot, "cancelled: nothing changed")
        await pilot.press("p")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PlanDialog")
        await pilot.click("#plan-close")
        await wait_until(pilot, lambda: type(app.screen).__name__ != "PlanDialog")
        await noted(pilot, "cancelled: nothing planned")


async def test_a_refused_id_keeps_the_cursor_in_its_field(resolvable):
    """Regression: Enter on a refused id moved focus to Reason, so the next keys landed there and
    the decision recorded had a half-typed reason and the wrong id."""
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        record_notes(app)
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
        record_notes(app)
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


# -- runs say how they ended ----------------------------------------------------------------------
def _finishing(summary: dict[str, Any]) -> Any:
    def prepare(request: RunRequest) -> Launch:
        def gen() -> Any:
            yield 1
            return summary
        return Launch(gen(), details={"scripted": True}, result=lambda value: ("complete", value))
    return prepare


def _failing(request: RunRequest) -> Launch:
    def gen() -> Any:
        yield 1
        raise KeyshiftError("the new table vanished", title="Verify failed")
    return Launch(gen())


async def test_every_finished_run_notifies_its_counts_and_a_failed_one_opens_the_error(planned):
    kinds = {**RUN_KINDS,
             "restore": RunKind("restore", "scripted restore", _finishing(
                 {"written": 2000, "skipped": 12, "dropped_by_decision": 1, "unreadable": 0})),
             "stream-sync": RunKind("stream-sync", "scripted sync", _finishing(
                 {"puts": 1, "deletes": 2, "skipped": {"echo": 3}, "held": 0})),
             "verify": RunKind("verify", "scripted verify", _failing)}
    app = make(planned.context(), run_kinds=kinds)
    async with app.run_test(size=SIZE) as pilot:
        record_notes(app)
        await settle(pilot)
        app.start_run("restore")
        await wait_until(pilot, lambda: app.slot("restore").outcome == "complete")
        await noted(pilot, "restore finished: 2,000 written, 12 skipped, 1 dropped by decision")
        app.start_run("stream-sync")
        await wait_until(pilot, lambda: app.slot("stream-sync").outcome == "complete")
        await noted(pilot, "stream sync finished: 1 put, 2 deletes, 3 skipped")
        app.start_run("verify")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-ok")))
        await settle(pilot)
        assert app.slot("verify").outcome == "failed" and app.screen.error_title == "Verify failed"
        assert not any(n.startswith("verify") for n in notes(app))  # the modal says it, once


def test_finished_notes_name_counts_in_words():
    assert finished_note("verify", "complete", {"equal": True, "compared": 344, "recorded": False}) == \
        "verify finished: equal, 344 compared, not recorded: read-only"
    assert finished_note("verify", "complete", {"missing": 1, "compared": 3}) == \
        "verify finished: 1 difference, 3 compared"
    assert finished_note("plan", "complete", {"records": 1, "quarantined": 6}) == \
        "plan finished: 1 record, 6 quarantined"
    assert finished_note("restore", "cancelled", None).startswith("restore cancelled: its checkpoint is kept")
    assert finished_note("stream-sync", "stopped", {"puts": 0, "deletes": 0}) == \
        "stream sync stopped: 0 puts, 0 deletes, 0 skipped"
    assert finished_note("restore", "failed", None) is None


# -- a run's controls exist only while it runs ----------------------------------------------------
def _held(release: threading.Event) -> Any:
    """A run that stays running until ``release`` is set, or stops when cancelled."""
    def prepare(request: RunRequest) -> Launch:
        def gen() -> Any:
            while not release.wait(0.05):
                if request.cancel.is_set():
                    raise Stopped()
                yield None
            return {"equal": True, "compared": 0}
        return Launch(gen(), details={"scripted": True}, result=lambda value: ("complete", value))
    return prepare


class Stopped(Exception):
    """The held run saw its cancel event."""


async def test_run_controls_exist_only_while_their_run_does(planned):
    release = threading.Event()
    kinds = {**RUN_KINDS, "verify": RunKind("verify", "held verify", _held(release), (Stopped,)),
             "stream-sync": RunKind("stream-sync", "held sync", _held(release), (Stopped,))}
    app = make(planned.context(), run_kinds=kinds)
    async with app.run_test(size=SIZE) as pilot:
        record_notes(app)
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        verify = app.screen
        assert isinstance(verify, VerifyScreen)
        assert verify.active_bindings["s"].enabled and not verify.active_bindings["r"].enabled
        app.start_run("verify")
        await wait_until(pilot, lambda: app.slot("verify").started)
        await pilot.pause()
        assert not verify.active_bindings["s"].enabled and not verify.active_bindings["r"].enabled
        await pilot.press("escape")  # while it runs, Escape stops it (and stays on the screen)
        await wait_until(pilot, lambda: app.slot("verify").outcome == "cancelled")
        assert app.screen is verify
        await noted(pilot, "verify cancelled: its checkpoint is kept, resume it from its screen")
        await pilot.pause()
        assert verify.active_bindings["s"].enabled
        await pilot.press("escape")  # nothing runs: back
        await wait_until(pilot, lambda: app.screen is not verify)
        # The sync screen's start and direction keys, only while no replay runs.
        sync = StreamSyncScreen(app)
        app.start_run("stream-sync")
        await wait_until(pilot, lambda: app.slot("stream-sync").started)
        assert {a: sync.check_action(a, ()) for a in ("sync_once", "sync_follow", "switch_direction")} == \
            dict.fromkeys(("sync_once", "sync_follow", "switch_direction"))
        release.set()
        await wait_until(pilot, lambda: app.slot("stream-sync").outcome == "complete")
        assert all(sync.check_action(a, ()) for a in ("sync_once", "sync_follow", "switch_direction"))
