"""Read-only (audit) mode: a banner on every screen, mutating keys greyed out and refused aloud,
the palette showing them disabled, and ``keyshift audit --console`` opening on the audit screen."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from keyshift.console.app import READ_ONLY_BANNER
from keyshift.screens.audit_screen import AuditScreen
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.resolve_queue import ResolveQueueScreen
from ui_support import SIZE, make, settle, wait_until


def _recording(app: Any) -> list[str]:
    """Record every notification's text (and still show it)."""
    seen: list[str] = []
    notify = app.notify

    def noted(message: str, **options: Any) -> None:
        seen.append(str(message))
        notify(message, **options)

    app.notify = noted  # type: ignore[method-assign]
    return seen


def _banner(screen: Any) -> str | None:
    found = screen.query("#read-only-banner")
    return str(found.first(Static).render()) if found else None


async def test_every_full_screen_shows_the_banner(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        await wait_until(pilot, lambda: _banner(app.screen) is not None)
        assert _banner(app.screen) == READ_ONLY_BANNER
        for key, kind in (("b", DumpBrowserScreen), ("escape", OverviewScreen), ("c", ResolveQueueScreen),
                          ("escape", OverviewScreen), ("a", AuditScreen)):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, kind)
            await wait_until(pilot, lambda: _banner(app.screen) is not None)
        assert len(app.screen.query("#read-only-banner")) == 1  # shown again: still one banner


async def test_no_banner_when_writable(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ResolveQueueScreen)
        assert _banner(app.screen) is None and _banner(app.screen_stack[0]) is None


async def test_a_mutating_key_is_shown_disabled_and_refused_aloud(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        seen = _recording(app)
        await settle(pilot)
        assert app.screen.active_bindings["p"].enabled is False
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)  # no plan dialog
        assert seen == ["read-only: plan a dump is disabled (this console only reads; reopen it without --read-only)"]
        await pilot.press("c")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, ResolveQueueScreen)
        assert queue.active_bindings["k"].enabled is False
        await pilot.press("k")
        await pilot.pause()
        assert app.screen is queue  # no decision dialog
        assert seen[-1].startswith("read-only: deciding a case is disabled")
        await pilot.press("b")  # bulk resolve
        await pilot.pause()
        assert app.screen is queue and seen[-1].startswith("read-only: bulk resolve is disabled")


async def test_writable_keys_are_not_refused(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        seen = _recording(app)
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("b")
        await pilot.pause()
        assert not any(s.startswith("read-only") for s in seen)
        assert not isinstance(app.screen, ResolveQueueScreen)  # the bulk dialog opened over it


async def test_the_palette_shows_mutating_commands_disabled(planned):
    from keyshift.console.commands import KeyshiftCommands

    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        seen = _recording(app)
        await settle(pilot)
        provider = KeyshiftCommands(app.screen)
        hits = {str(h.display): h async for h in provider.discover()}
        plan = hits["Plan a dump (disabled: read-only)"]
        assert plan.help.startswith("read-only: plan a dump is disabled")
        await plan.command()
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen) and seen[-1].startswith("read-only: plan a dump")
        assert "Stream sync" in hits  # reading commands as they are


async def test_audit_console_opens_on_the_audit_screen_read_only(planned):
    app = make(planned.context(read_only=True), start_on="audit")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        await wait_until(pilot, lambda: _banner(app.screen) is not None)
        await pilot.press("escape")  # the overview stays under it: every screen is reachable
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
