"""The paired console's first screen (``console --ask-operator``, what each browser of ``--serve``
runs): it asks who is operating, refuses unusable names in place, and the name it takes is what the
decisions made in that console record, not the server's login name."""

from __future__ import annotations


from textual.widgets import Input, Static

from keyshift.core.store.workspace import Workspace
from keyshift.screens.operator_prompt import OperatorPrompt, clean_operator_name
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.resolve_queue import ResolveQueueScreen
from keyshift.screens.decision_dialog import DecisionDialog
from ui_support import OPERATOR, SIZE, make, settle


def test_clean_operator_name():
    assert clean_operator_name("  Ada   Lovelace ") == ("Ada Lovelace", "")
    assert clean_operator_name("Cafe\u0301")[0] == "Caf\u00e9"  # NFC: the same name records the same
    assert clean_operator_name("   ")[1].startswith("type your name")
    assert clean_operator_name("a\u200bda")[1] == "no control or invisible characters"
    assert clean_operator_name("x" * 65)[1] == "at most 64 characters"


async def test_the_browser_operator_is_asked_and_recorded(resolvable):
    app = make(resolvable.context(), ask_operator=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, OperatorPrompt)
        field = prompt.query_one("#operator-name", Input)
        assert app.focused is field
        await pilot.press("enter")  # nothing typed: refused, the dialog stays, focus too
        await pilot.pause()
        assert app.screen is prompt and app.focused is field
        assert "type your name" in str(prompt.query_one("#operator-refusal", Static).render())
        await pilot.press("escape", "c")  # no way around it: Escape does not close it; "c" is typed
        await pilot.pause()
        assert app.screen is prompt and field.value == "c"
        field.value = ""
        await pilot.press(*"Ada", "enter")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert app.context.operator == "Ada" and app.sub_title.endswith("· Ada")

        # A decision made in this console names Ada, not the login the server runs as.
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ResolveQueueScreen)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, DecisionDialog)
        await pilot.press("enter", *"paired", "enter")
        await settle(pilot)
    ws = Workspace(resolvable.path / "ws")
    try:
        rows = ws.connect().execute("SELECT operator, reason FROM decisions").fetchall()
    finally:
        ws.close()
    assert [tuple(r) for r in rows] == [("Ada", "paired")] and OPERATOR != "Ada"


async def test_a_terminal_console_asks_nothing(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen) and app.context.operator == OPERATOR
