"""The action table is the one source of the overview's keys and links, the palette and the help."""

from __future__ import annotations

from rich.style import Style
from textual.widgets import Static

from keyshift.console.app import KeyshiftApp
from keyshift.console.commands import KeyshiftCommands
from keyshift.screens.actions import ACTIONS, MUTATING_ACTIONS, STEPS
from keyshift.screens.help_screen import HelpScreen
from keyshift.screens.host import ConsoleHost
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.restore_screen import RestoreScreen
from keyshift.screens.stream_sync_screen import StreamSyncScreen
from ui_support import SIZE, make, settle, text_of


async def _palette_titles(app) -> dict[str, str]:
    provider = KeyshiftCommands(app.screen)
    return {str(hit.display): hit.help or "" async for hit in provider.discover()}


def _links() -> dict[str, str]:
    """Step name -> the action a click on it runs, read from the overview's rendered steps."""
    links: dict[str, str] = {}
    for table in OverviewScreen._steps(None, None, None, None).renderables:
        for text in table.columns[1]._cells:  # the step names' column
            for span in text.spans:
                style = span.style if isinstance(span.style, Style) else Style.parse(span.style)
                if "@click" in style.meta:
                    links[text.plain] = style.meta["@click"]
    return links


async def test_the_app_is_a_console_host(planned):
    assert isinstance(make(planned.context()), ConsoleHost)
    assert KeyshiftApp.MUTATING_ACTIONS == MUTATING_ACTIONS


async def test_overview_palette_and_help_list_the_table(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        overview = app.screen
        assert isinstance(overview, OverviewScreen)

        # The overview's keys: the table's overview actions, in its order, plus its own refresh.
        table_keys = [(a.key, f"app.{a.action}", a.footer_label) for a in ACTIONS if a.scope == "overview" and a.key]
        bound = [(b.key, b.action, b.description) for b in OverviewScreen.BINDINGS if b.action.startswith("app.")]
        assert bound == table_keys
        assert {b.action for b in OverviewScreen.BINDINGS} - {a for _, a, _ in table_keys} == {"reload"}
        app_keys = {(b.key, b.action) for b in KeyshiftApp.BINDINGS}
        assert app_keys == {(a.key, a.action) for a in ACTIONS if a.scope == "app"}

        # The step links: each step whose action changes nothing links to it.
        assert [s.name for s in STEPS] == ["Plan", "Resolve", "Restore", "Stream-sync", "Verify", "Cut over"]
        links = {f"{s.number} {s.name}": s.link for s in STEPS if s.link}
        assert _links() == links
        assert set(links.values()) == {"app.open_queue", "app.open_restore", "app.open_stream_sync",
                                       "app.open_verify", "app.open_cutover"}  # planning changes the workspace: a key, no link

        # The palette: every table entry offered there, stream sync included, with the table's help.
        palette = await _palette_titles(app)
        assert palette == {a.title: a.description for a in ACTIONS if a.in_palette}
        assert "Stream sync" in palette

        # The help: the overview's own keys, then every action of the table.
        await pilot.press("f1")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        assert help_screen.help_title == "Overview"
        assert [r.action for r in help_screen.screen_help] == [b.action for b in OverviewScreen.BINDINGS]
        assert [r.action for r in help_screen.console_help] == [f"app.{a.action}" for a in ACTIONS]
        shown = text_of(help_screen.query_one("#help-console", Static).content, width=110)
        for action in ACTIONS:
            assert action.title in shown, action.title
        assert "Refresh" in text_of(help_screen.query_one("#help-screen", Static).content, width=110)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is overview


async def test_help_opens_with_question_mark_and_lists_the_screen_it_covers(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        restore = app.screen
        assert isinstance(restore, RestoreScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen) and help_screen.help_title == "Restore"
        rows = {r.action: r for r in help_screen.screen_help}
        assert set(rows) == {b.action for b in RestoreScreen.BINDINGS}
        assert rows["restore_start"].enabled is False  # read-only: shown, greyed out
        assert rows["back_or_cancel"].enabled is True
        console = {r.action: r for r in help_screen.console_help}
        assert console["app.plan"].enabled is False and console["app.open_verify"].enabled is True
        await pilot.press("f1")  # already open: no second help on top
        await pilot.pause()
        assert app.screen is help_screen and len(app.screen_stack) == 3
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is restore


async def test_palette_opens_stream_sync_and_shows_planning_disabled_in_read_only_mode(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        palette = await _palette_titles(app)
        assert "Plan a dump" not in palette and "Stream sync" in palette  # shown disabled instead:
        assert palette["Plan a dump (disabled: read-only)"].startswith("read-only: plan a dump is disabled")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Stream sync")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, StreamSyncScreen)
