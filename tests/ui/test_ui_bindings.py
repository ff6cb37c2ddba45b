"""Every key binding of every screen, pressed, with its effect checked (one table, read-only console).

The console runs read-only on the shared planned workspace, so no key writes anything: a
mutating key must be *refused* with the read-only notification, every other key must do what it
says (open a screen, go back, move focus, redraw the list, run its action). The modal dialogs have
a table of their own (:data:`MODALS`), pressed on a writable copy of the workspace since most of
them only open where a decision can be made; their keys close them (saying "cancelled" where
the dialog promises to), and none of them writes. A binding added to a screen or a dialog
without a row here fails ``test_every_binding_is_in_the_table``.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input, Select

from keyshift.core.store.workspace import Workspace
from keyshift.screens.actions import app_bindings
from keyshift.screens.audit_screen import AuditScreen
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.cutover_screen import CutoverScreen, FlipDialog
from keyshift.screens.decision_dialog import BulkDialog, DecisionDialog
from keyshift.screens.dump_browser import DumpBrowserScreen
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.help_screen import HelpScreen
from keyshift.screens.keymap_screen import KeymapScreen
from keyshift.screens.normalize_preview import NormalizePreviewScreen
from keyshift.screens.operator_prompt import OperatorPrompt
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.plan_dialog import PlanDialog
from keyshift.screens.resolve_queue import ResolveQueueScreen
from keyshift.screens.restore_screen import NumberDialog, RestoreScreen
from keyshift.screens.stream_sync_screen import StreamSyncScreen
from keyshift.screens.verify_screen import VerifyScreen
from ui_support import make, settle, wait_until

SIZE = (120, 40)
#: The key that opens each screen from the overview (None: it is the overview).
OPEN = {OverviewScreen: None, DumpBrowserScreen: "b", NormalizePreviewScreen: "n", ResolveQueueScreen: "c",
        KeymapScreen: "k", RestoreScreen: "3", StreamSyncScreen: "4", VerifyScreen: "5", CutoverScreen: "6",
        AuditScreen: "a"}

# Effects: ("push", Screen class) a screen opened; ("back",) the screen closed; ("refused",) the
# read-only notification; ("focus", widget type); ("redraw",) what the screen shows changed;
# ("calls", action) the key ran that action of the screen (refreshes, whose picture is the same).
PUSH, BACK, REFUSED, FOCUS, REDRAW, CALLS = "push", "back", "refused", "focus", "redraw", "calls"

#: screen → [(binding id, key, effect)], in the order they are pressed (filters and pages so that
#: each press changes what is shown; closing keys last).
TABLE: dict[type, list[tuple[str, str, tuple[Any, ...]]]] = {
    OverviewScreen: [
        ("overview.browse", "b", (PUSH, DumpBrowserScreen)),
        ("overview.preview", "n", (PUSH, NormalizePreviewScreen)),
        ("overview.resolve", "c", (PUSH, ResolveQueueScreen)),
        ("overview.plan", "p", (REFUSED,)),
        ("overview.keymap", "k", (PUSH, KeymapScreen)),
        ("overview.restore", "3", (PUSH, RestoreScreen)),
        ("overview.stream_sync", "4", (PUSH, StreamSyncScreen)),
        ("overview.verify", "5", (PUSH, VerifyScreen)),
        ("overview.cutover", "6", (PUSH, CutoverScreen)),
        ("overview.audit", "a", (PUSH, AuditScreen)),
        ("overview.refresh", "r", (CALLS, "reload")),
        ("app.help", "f1", (PUSH, "HelpScreen")),
        ("app.help", "question_mark", (PUSH, "HelpScreen")),
        ("app.cancel", "escape", (CALLS, "app.cancel_work")),
        ("app.quit", "q", ("exit",)),
    ],
    DumpBrowserScreen: [
        ("browser.next-page", "pagedown", (REDRAW,)),
        ("browser.prev-page", "pageup", (REDRAW,)),
        ("browser.last-page", "ctrl+end", (REDRAW,)),
        ("browser.first-page", "ctrl+home", (REDRAW,)),
        *((f"browser.status-{s}", k, (REDRAW,)) for k, s in
          (("1", "unchanged"), ("2", "fixed"), ("3", "ambiguous"), ("4", "orphaned"), ("5", "invalid"),
           ("6", "quarantined"), ("7", "remapped"), ("0", "all"))),
        ("browser.preview", "enter", (PUSH, NormalizePreviewScreen)),
        ("browser.search", "slash", (FOCUS, Input)),  # after Enter: in the search field Enter searches
        ("browser.back", "escape", (BACK,)),
    ],
    NormalizePreviewScreen: [
        ("preview.edit", "slash", (FOCUS, Input)),
        ("preview.back", "escape", (BACK,)),
    ],
    ResolveQueueScreen: [
        *((f"queue.{a}", k, (REFUSED,)) for a, k in
          (("same", "s"), ("split", "x"), ("drop", "d"), ("map", "m"), ("keep", "k"), ("accept", "a"))),
        ("queue.undo", "u", (REFUSED,)),
        ("queue.bulk", "b", (REFUSED,)),
        *((f"queue.kind-{kind}", k, (REDRAW,)) for k, kind in
          (("1", "ambiguous"), ("2", "orphaned"), ("3", "invalid"), ("4", "conflict"), ("5", "suspicious"),
           ("6", "unmapped"), ("0", "all"))),
        ("queue.back", "escape", (BACK,)),
    ],
    KeymapScreen: [
        ("keymap.build", "b", (REFUSED,)),
        ("keymap.resolve", "c", (PUSH, ResolveQueueScreen)),
        ("keymap.back", "escape", (BACK,)),
    ],
    RestoreScreen: [
        *((f"restore.{i}", k, (REFUSED,)) for i, k in
          (("start", "s"), ("resume", "r"), ("pause", "p"), ("rate-up", "plus"), ("rate-down", "minus"),
           ("rate", "l"), ("workers", "w"))),
        ("restore.cancel", "escape", (BACK,)),
    ],
    StreamSyncScreen: [
        ("sync.once", "s", (REFUSED,)),
        ("sync.follow", "f", (REFUSED,)),
        ("sync.direction", "r", (REDRAW,)),
        ("sync.stop", "escape", (BACK,)),
        ("sync.leave", "b", (BACK,)),
    ],
    VerifyScreen: [
        ("verify.resume", "r", (REFUSED,)),
        ("verify.cancel", "escape", (BACK,)),
        # Read-only verify runs without recording (last: Escape would then cancel it, not go back).
        ("verify.start", "s", (CALLS, "verify_start")),
    ],
    CutoverScreen: [
        ("cutover.flip", "f", (REFUSED,)),
        ("cutover.approve", "a", (REFUSED,)),
        ("cutover.init", "i", (REFUSED,)),
        ("cutover.refresh", "g", (CALLS, "refresh")),
        ("cutover.back", "escape", (BACK,)),
    ],
    AuditScreen: [
        ("audit.verify", "v", (CALLS, "verify_chain")),
        ("audit.refresh", "r", (CALLS, "reload")),
        ("audit.operator", "o", (FOCUS, Select)),
        ("audit.action", "f", (FOCUS, Select)),
        ("audit.back", "escape", (BACK,)),
    ],
}


# Modal effects: ("cancelled", what) the dialog closed and the notification "cancelled: what" was
# shown; ("closed",) the dialog closed and nothing said "cancelled" (nothing was offered to cancel);
# ("stays",) the dialog is still on top (the operator prompt has no way out but a usable name).
CANCELLED, CLOSED, STAYS = "cancelled", "closed", "stays"


async def _keys(pilot: Any, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


async def _push(pilot: Any, dialog: Any) -> None:
    pilot.app.push_screen(dialog)
    await settle(pilot)


#: dialog → (how it is opened from the overview, [(binding id, key, effect)]). Rows whose id is an
#: App binding's (``app.…``) are keys the dialog does not bind itself but must still answer.
MODALS: dict[type, tuple[Any, list[tuple[str, str, tuple[Any, ...]]]]] = {
    DecisionDialog: (lambda pilot: _keys(pilot, "c", "s"),
                     [("decision.cancel", "escape", (CANCELLED, "nothing decided"))]),
    BulkDialog: (lambda pilot: _keys(pilot, "c", "b"),
                 [("bulk.close", "escape", (CANCELLED, "nothing applied"))]),
    FlipDialog: (lambda pilot: _push(pilot, FlipDialog("cutover", "old", "Customers", "Customers-v2", "new")),
                 [("flip.cancel", "escape", (CANCELLED, "the flag was not flipped"))]),
    NumberDialog: (lambda pilot: _push(pilot, NumberDialog("Rate", "items per second", 10, minimum=1, maximum=100,
                                                           blank_means="no limit")),
                   [("number.cancel", "escape", (CANCELLED, "nothing changed"))]),
    ConfirmScreen: (lambda pilot: _push(pilot, ConfirmScreen("Drop 3 items?", "Dropping removes 3 items.",
                                                             confirm_label="Drop", cancelled="nothing dropped")),
                    [("confirm.cancel", "escape", (CANCELLED, "nothing dropped"))]),
    ErrorModal: (lambda pilot: _push(pilot, ErrorModal("Restore failed", "Customers-v2 does not exist.")),
                 [("error.close", "escape", (CLOSED,))]),
    HelpScreen: (lambda pilot: _keys(pilot, "f1"), [("help.close", "escape", (CLOSED,))]),
    PlanDialog: (lambda pilot: _push(pilot, PlanDialog(pilot.app, "s3://acme-exports/customers/2024-05-01/")),
                 [("plan.cancel", "escape", (CANCELLED, "nothing planned"))]),
    OperatorPrompt: (lambda pilot: _push(pilot, OperatorPrompt("alice")), [("app.cancel", "escape", (STAYS,))]),
}


def _ids(bindings: list[Any]) -> set[str]:
    return {b.id for b in bindings if getattr(b, "id", None)}


def test_every_binding_is_in_the_table():
    """A binding nobody added here (or a row for a binding that is gone) fails this test."""
    for screen, rows in TABLE.items():
        declared = _ids(screen.BINDINGS) | (_ids(app_bindings()) if screen is OverviewScreen else set())
        assert declared == {binding_id for binding_id, _, _ in rows}, screen.__name__
    app_ids = _ids(app_bindings())
    for dialog, (_, rows) in MODALS.items():
        assert _ids(dialog.BINDINGS) == {binding_id for binding_id, _, _ in rows} - app_ids, dialog.__name__


def test_every_modal_dialog_is_in_the_table():
    """A new modal screen in ``keyshift.screens`` without an entry in :data:`MODALS` fails here."""
    import importlib
    import inspect
    import pkgutil

    from textual.screen import ModalScreen

    import keyshift.screens as package

    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found |= {obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, ModalScreen) and obj.__module__ == module.__name__}
    assert found == set(MODALS), sorted(c.__name__ for c in found ^ set(MODALS))


def _picture(app: Any) -> str:
    return "\n".join("".join(seg.text for seg in strip) for strip in app.screen._compositor.render_strips())


def _refusals(app: Any) -> int:
    return sum("read-only" in n.message for n in app._notifications)


async def _back_to(pilot: Any, screen: type) -> None:
    """Close what the last key opened, until ``screen`` is on top again."""
    while not isinstance(pilot.app.screen, screen):
        if len(pilot.app.screen_stack) <= 1 and OPEN[screen]:
            await pilot.press(OPEN[screen])  # a BACK key left it: open it again for the next row
        else:
            pilot.app.pop_screen()
        await settle(pilot)


@pytest.mark.parametrize("screen", TABLE, ids=lambda s: s.__name__)
async def test_every_key_does_what_it_says(planned, screen: type):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        if OPEN[screen]:
            await pilot.press(OPEN[screen])
            await settle(pilot)
        for binding_id, key, (effect, *arg) in TABLE[screen]:
            await _back_to(pilot, screen)
            here, before, refused = app.screen, _picture(app), _refusals(app)
            called: list[str] = []
            if effect == CALLS:
                owner, name = (app, arg[0][4:]) if arg[0].startswith("app.") else (here, arg[0])
                original = getattr(owner, f"action_{name}")
                setattr(owner, f"action_{name}", lambda *a, _o=original, **k: (called.append(name), _o(*a, **k))[1])
            if effect == BACK:
                app.screen.set_focus(None)  # Escape in a text field leaves the field, not the screen
            await pilot.press(key)
            await settle(pilot)
            what = f"{screen.__name__} {key} ({binding_id})"
            if effect == PUSH:
                want = arg[0] if isinstance(arg[0], str) else arg[0].__name__
                assert type(app.screen).__name__ == want, what
            elif effect == BACK:
                assert app.screen is not here and here not in app.screen_stack, what
            elif effect == REFUSED:
                assert _refusals(app) > refused and app.screen is here, what
            elif effect == FOCUS:
                assert isinstance(app.focused, arg[0]) or isinstance(app.focused.parent, arg[0]), what
            elif effect == REDRAW:
                await wait_until(pilot, lambda: _picture(app) != before)
            elif effect == CALLS:
                assert arg[0].removeprefix("app.") in called, what
            elif effect == "exit":
                await wait_until(pilot, lambda: app.return_code is not None or not app.is_running)


def _cancel_notes(app: Any) -> list[str]:
    return [n.message for n in app._notifications if n.message.startswith("cancelled")]


@pytest.mark.parametrize("dialog", MODALS, ids=lambda d: d.__name__)
async def test_every_modal_key_does_what_it_says(resolvable, dialog: type):
    """Each dialog's keys, pressed as the dialog opens (focus where it puts it): nothing is written."""
    opener, rows = MODALS[dialog]
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for binding_id, key, (effect, *arg) in rows:
            await opener(pilot)
            await wait_until(pilot, lambda: isinstance(app.screen, dialog))
            here, said = app.screen, len(_cancel_notes(app))
            await pilot.press(key)
            await settle(pilot)
            what = f"{dialog.__name__} {key} ({binding_id})"
            if effect == STAYS:
                assert app.screen is here, what
                assert len(_cancel_notes(app)) == said, what
                continue
            await wait_until(pilot, lambda: here not in app.screen_stack)
            news = _cancel_notes(app)[said:]
            if effect == CANCELLED:
                assert news == [f"cancelled: {arg[0]}"], what
            else:
                assert news == [], what
    ws = Workspace(resolvable.path / "ws")
    try:
        assert ws.connect().execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0
    finally:
        ws.close()
