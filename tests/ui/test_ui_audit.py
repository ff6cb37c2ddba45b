"""The audit screen: lazily paged entries, operator and action filters, the chain's status checked
in a worker (never blocking), read-only mode."""

from __future__ import annotations

import sqlite3
import threading

from textual.widgets import DataTable, Select, Static

from keyshift.core.store.workspace import DB_NAME, Workspace
from keyshift.screens import audit_screen
from keyshift.screens.audit_screen import AuditScreen, action_options
from keyshift.screens.overview import OverviewScreen
from ui_support import SIZE, make, settle, text_of

ACTIONS = ("restore.start", "restore.complete", "verify.start", "verify", "resolve.same")


def _log(fixture, n: int = 230) -> int:
    """Append ``n`` entries by two operators over a few actions; returns the newest id."""
    ws = Workspace(fixture.path / "ws")
    last = 0
    for i in range(n):
        last = ws.audit("bob" if i % 3 == 0 else "carol", ACTIONS[i % len(ACTIONS)], {"i": i, "who": "Acme\u200b"})
    ws.close()
    return last


def _table(app) -> DataTable:
    return app.screen.query_one("#entries", DataTable)


def _status(app) -> str:
    return text_of(app.screen.query_one("#chain-status", Static).render())


async def _open(app, pilot) -> AuditScreen:
    await settle(pilot)
    assert isinstance(app.screen, OverviewScreen)
    await pilot.press("a")
    await settle(pilot)
    assert isinstance(app.screen, AuditScreen)
    return app.screen


async def test_entries_page_in_as_the_cursor_nears_the_end(resolvable):
    newest = _log(resolvable)
    app = make(resolvable.context(), page_size=50)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot)
        table = _table(app)
        assert table.row_count == 50
        assert [e.id for e in screen.entries[:3]] == [newest, newest - 1, newest - 2]
        assert "chain: whole" in _status(app) and f"{newest:,} entries verified" in _status(app)
        table.move_cursor(row=45)
        await settle(pilot)
        assert table.row_count == 100
        assert [e.id for e in screen.entries] == list(range(newest, newest - 100, -1))  # no gap, no repeat
        for _ in range(10):  # scroll to the very end: every entry, then no more fetches
            table.move_cursor(row=table.row_count - 1)
            await settle(pilot)
        assert table.row_count == newest and screen.more is False
        assert screen.entries[-1].id == 1
        label = text_of(screen.query_one("#audit-label", Static).render())
        assert "the oldest is shown" in label
        detail = text_of(screen.query_one("#entry-detail", Static).render())
        assert "(genesis)" in detail and "plan.start" in detail  # entry 1: the fixture's plan


async def test_filters_by_operator_and_by_action_group(resolvable):
    _log(resolvable, 60)
    app = make(resolvable.context(), page_size=25)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot)
        operator = screen.query_one("#operator-filter", Select)
        operator.value = "bob"
        await settle(pilot)
        assert screen.entries and {e.operator for e in screen.entries} == {"bob"}
        assert len(screen.entries) == 20  # every third of 60
        action = screen.query_one("#action-filter", Select)
        action.value = "restore"  # the group restore.*
        await settle(pilot)
        assert {e.action for e in screen.entries} <= {"restore.start", "restore.complete"}
        assert {e.action for e in screen.entries} == {"restore.start", "restore.complete"}
        assert all(e.operator == "bob" for e in screen.entries)
        operator.value = audit_screen._ALL
        action.value = "verify"  # the group verify.* holds verify and verify.start
        await settle(pilot)
        assert {e.action for e in screen.entries} == {"verify", "verify.start"}
        action.value = "plan.complete"
        await settle(pilot)
        assert [e.action for e in screen.entries] == ["plan.complete"]


def test_action_options_group_dotted_actions():
    options = action_options(["plan.complete", "plan.start", "restore.control", "verify", "verify.start"])
    assert options == [("plan.*", "plan"), ("plan.complete", "plan.complete"), ("plan.start", "plan.start"),
                       ("restore.control", "restore.control"), ("verify", "verify"), ("verify.start", "verify.start")]


async def test_the_chain_is_checked_in_a_worker_and_a_break_is_named(resolvable, monkeypatch):
    _log(resolvable, 30)
    release = threading.Event()
    real = audit_screen.verify_chain

    def slow(conn):
        release.wait(10)
        return real(conn)

    monkeypatch.setattr(audit_screen, "verify_chain", slow)
    app = make(resolvable.context(read_only=True), page_size=20)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a")
        for _ in range(50):  # entries arrive while the chain is still being checked
            await pilot.pause(0.02)
            if isinstance(app.screen, AuditScreen) and _table(app).row_count:
                break
        assert _table(app).row_count == 20
        assert "verifying" in _status(app)
        release.set()
        await settle(pilot)
        assert "chain: whole" in _status(app)

        edited = app.screen.entries[10].id
        raw = sqlite3.connect(resolvable.path / "ws" / DB_NAME, isolation_level=None)
        raw.execute("UPDATE audit SET operator = 'mallory' WHERE id = ?", (edited,))
        raw.close()
        await pilot.press("v")
        await settle(pilot)
        status = " ".join(_status(app).split())
        assert f"BROKEN at entry {edited}" in status and "edited" in status
        table = _table(app)
        table.move_cursor(row=5)  # a newer entry: after the break, so not verified
        await settle(pilot)
        detail = text_of(app.screen.query_one("#entry-detail", Static).render())
        assert f"the chain breaks at entry {edited}" in detail
        table.move_cursor(row=15)  # an older one: verified
        await settle(pilot)
        assert "chain breaks" not in text_of(app.screen.query_one("#entry-detail", Static).render())
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
