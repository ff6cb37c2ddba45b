"""Pilot tests: the overview's computed status, the keymap step, restore's pause and skips, the demo's q."""

from __future__ import annotations

import re

from textual.widgets import Button

from keyshift.core.migrate.restore import RestoreProgress
from keyshift.core.migrate.restore_control import CONTROL_FILE
from keyshift.core.store import runs
from keyshift.core.store.workspace import Workspace
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.keymap_screen import KeymapScreen
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.resolve_queue import ResolveQueueScreen
from keyshift.screens.restore_screen import RestoreScreen, _stats
from ui_support import SIZE, make, settle, text_of


def shown(screen, selector: str) -> str:
    return text_of(screen.query_one(selector).content)


def _close_every_case(path) -> None:
    """Take every case away (as decisions making them moot would), so the keymap can be built."""
    ws = Workspace(path)
    with ws.transaction() as conn:
        conn.execute("UPDATE cases SET moot = 'test: taken away'")
    ws.close()


async def test_overview_status_names_the_open_cases_and_the_keymap_refusal_names_them_too(resolvable):
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = shown(app.screen, "#next-step")
        # Computed from the cases (not identifiers), suspicious ones included, with the key to press.
        assert re.search(r"Keymap blocked: \d+ open cases must be decided first \(c Resolve\)",
                         status.replace("\n", " ")), status
        assert re.search(r"next: Resolve: \d+ open cases of \d+: .*ambiguous.*\(c Resolve\)", status.replace("\n", " "))
        assert "suspicious" in status  # cases, suspicious ones included
        assert "blocked Restore" not in status  # the next action (the queue) unblocks it: said once
        assert "--" not in status and "keyshift " not in status  # console actions, never CLI flags

        await pilot.press("k")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, KeymapScreen)
        assert "No keymap built yet" in shown(screen, "#keymap-state")
        await pilot.press("b")
        await settle(pilot)
        refusal = shown(screen, "#keymap-state")
        assert re.search(r"not built: \d+ cases still open \(.*ambiguous", refusal), refusal
        assert "press c for the resolution queue" in refusal and "ambiguous: " in refusal
        assert "--allow-unresolved" not in refusal and "keyshift resolve" not in refusal
        assert screen.check_action("keymap_build", ()) is True  # refused, not stuck
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ResolveQueueScreen)


async def test_keymap_builds_shows_version_counts_and_what_changed(resolvable):
    _close_every_case(resolvable.path / "ws")
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "Keymap ready: nothing blocks it: build the keymap (k Keymap)" in shown(app.screen, "#next-step")
        await pilot.press("k")
        await settle(pilot)
        screen = app.screen
        await pilot.press("b")
        await settle(pilot)
        first = re.search(r"version (\w+)", shown(screen, "#keymap-state")).group(1)
        counts = shown(screen, "#keymap-counts")
        assert re.search(r"entries\s+\d+", counts) and re.search(r"unresolved\s+0", counts), counts
        assert "the first build" in shown(screen, "#keymap-change")
        assert (resolvable.path / "ws" / "keymaps" / f"{first}.json").exists()

        assert "no restore, sync or verify has run yet" in shown(screen, "#keymap-in-use")
        await pilot.press("b")  # the same plan and decisions: the same version
        await settle(pilot)
        assert "nothing: the same version" in shown(screen, "#keymap-change")

        ws = Workspace(resolvable.path / "ws")  # another console changes what a rule settled
        with ws.transaction() as conn:
            conn.execute("UPDATE identifiers SET new_id = 'Customer 999' WHERE raw = 'Customer 001'")
        ws.close()
        await pilot.press("b")
        await settle(pilot)
        change = shown(screen, "#keymap-change")
        assert re.search(rf"{first} → \w+", change)
        assert "0 entries added, 1 changed, 0 removed" in change and "changed: Customer 001" in change

        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        status = shown(app.screen, "#next-step")
        assert "Keymap done" in status and "next: Restore: write transform(dump) with keymap" in status

        newest = change.split(" → ")[1].split()[0]
        ws = Workspace(resolvable.path / "ws")  # a restore applied the newest build, a verify an older one
        with ws.transaction() as conn:
            runs.start(conn, "restore", operator="t", keymap=newest, params={})
            runs.start(conn, "verify", operator="t", keymap=first, params={})
        ws.close()
        await pilot.press("k")
        await settle(pilot)
        in_use = shown(app.screen, "#keymap-in-use")
        assert re.search(rf"restore run \d+ \(running\): {newest} ✔ the newest build", in_use), in_use
        assert re.search(rf"verify run \d+ \(running\): {first} — not the newest build", in_use), in_use


async def test_keymap_build_is_greyed_out_in_read_only_mode(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("k")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, KeymapScreen)
        assert screen.active_bindings["b"].enabled is False
        await pilot.press("b")
        await settle(pilot)
        assert "No keymap built yet" in shown(screen, "#keymap-state")


async def test_pause_only_while_a_restore_runs(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RestoreScreen)
        assert screen.active_bindings["p"].enabled is False  # no restore: nothing to pause
        await pilot.press("p")
        await settle(pilot)
        assert not (planned.path / "ws" / CONTROL_FILE).exists()
        assert screen.check_action("restore_pause", ()) is None


def test_restore_stats_break_skipped_down_by_reason():
    progress = RestoreProgress(lines=10, written=4, skipped=6, unreadable=1,
                               skip_reasons={"unreadable": 1, "unresolved": 3, "superseded": 2})
    text = text_of(_stats(progress, 10, running=False))
    assert re.search(r"skipped\s+6", text)
    lines = [line.strip() for line in text.splitlines()]
    assert "3 of open cases (decide them in the queue to write them)" in lines
    assert any(line.startswith("2 superseded") for line in lines)
    assert lines.index("3 of open cases (decide them in the queue to write them)") < \
        next(i for i, line in enumerate(lines) if line.startswith("2 superseded"))  # the biggest first


async def test_quit_asks_in_the_demo_and_cancel_says_so(planned):
    app = make(planned.context(), quit_warning="Quitting stops the demo's embedded AWS server.")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen) and "embedded AWS server" in app.screen.message
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen) and app.is_running
        assert any("cancelled" in str(n.message) for n in app._notifications)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        app.screen.query_one("#confirm-yes", Button).press()
        await pilot.pause()
        await pilot.pause()
        assert app.return_code == 0  # confirmed: the console exits
