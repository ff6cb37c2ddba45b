"""The resolution queue: deciding cases by keyboard, refusals, read-only mode, two consoles, bulk."""

from __future__ import annotations

import json
from typing import Any

from textual.widgets import Button, Checkbox, DataTable, Input, OptionList, RadioButton, RadioSet, SelectionList, Static

from keyshift.core.resolve.cases import Case, list_cases
from keyshift.core.resolve.decisions import decide
from keyshift.core.store.workspace import Workspace
from keyshift.core.text.escape import escape
from keyshift.screens.confirm import ConfirmScreen
from keyshift.screens.decision_dialog import BulkDialog, DecisionDialog
from keyshift.screens.error_modal import ErrorModal
from keyshift.screens.overview import OverviewScreen
from keyshift.screens.resolve_queue import ResolveQueueScreen
from keyshift.screens.widgets import ProgressPanel
from ui_support import OPERATOR, SIZE, make, pin_decision_times, settle, text_of, wait_until

DECISION_KEYS = ("s", "x", "d", "m", "k", "a", "u")


def shown(screen: Any, selector: str) -> str:
    return text_of(screen.query_one(selector, Static).content)


def cases_of(fixture: Any, kind: str | None = None) -> list[Case]:
    ws = Workspace(fixture.path / "ws")
    try:
        return list_cases(ws, kind=kind)
    finally:
        ws.close()


def case_with(fixture: Any, kind: str, raw: str) -> Case:
    return next(c for c in cases_of(fixture, kind) if any(m.raw == raw for m in c.members))


def decisions(fixture: Any) -> list[tuple[str, str, dict[str, Any], str, str]]:
    ws = Workspace(fixture.path / "ws")
    try:
        rows = ws.connect().execute(
            "SELECT case_id, action, payload, reason, operator FROM decisions ORDER BY id").fetchall()
    finally:
        ws.close()
    return [(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]


def enabled(screen: Any) -> dict[str, bool]:
    bindings = screen.active_bindings
    return {key: bindings[key].enabled for key in (*DECISION_KEYS, "b")}


async def open_queue(pilot: Any) -> ResolveQueueScreen:
    await settle(pilot)
    await pilot.press("c")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ResolveQueueScreen)
    return pilot.app.screen


async def open_dialog(pilot: Any, key: str) -> DecisionDialog:
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(pilot.app.screen, DecisionDialog), pilot.app.screen
    return pilot.app.screen


# -- reading the queue --------------------------------------------------------------------------
async def test_queue_shows_open_cases_and_the_selected_case(planned):
    total = len(cases_of(planned))
    orphans = len(cases_of(planned, "orphaned"))
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        assert f"0 of {total} decided" in shown(queue, "#queue-progress")
        assert queue.query_one("#cases", DataTable).row_count == total
        assert [c.kind for c in queue.shown[:2]] == ["ambiguous", "orphaned"]
        acme = queue.current
        assert acme is not None and acme.kind == "ambiguous"
        head, members = shown(queue, "#case-head"), shown(queue, "#case-members")
        assert "ACME-1" in head and "s same · x split · d drop" in head
        for marked in ("Acme⟨ZWSP⟩", "⟨BOM⟩Acme", "Acme\\u200b", "U+200B ZERO WIDTH SPACE removed at 4",
                       '"customer"'):
            assert marked in members, marked
        assert not any(ch in members for ch in "\u200b\ufeff")  # never a raw invisible character
        assert "open: no decision yet" in shown(queue, "#case-decision")
        keys = enabled(queue)
        assert keys == {"s": True, "x": True, "d": True, "m": False, "k": False, "a": False, "u": False,
                        "b": True}
        await pilot.press("2")  # orphaned cases only
        await settle(pilot)
        assert {c.kind for c in queue.shown} == {"orphaned"} and len(queue.shown) == orphans
        assert f"orphaned: 0 of {orphans} decided" in shown(queue, "#queue-progress")
        keys = enabled(queue)
        assert keys["m"] and keys["k"] and keys["d"] and not keys["s"] and not keys["a"]
        queue.row_limit = 5  # a huge queue shows its first rows only, and says so
        await pilot.press("0")
        await settle(pilot)
        assert len(queue.shown) == 5 and queue.matching == total
        assert f"showing the first 5 of {total}" in shown(queue, "#queue-progress")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert f"0 of {total} decided" in shown(app.screen, "#steps")


# -- deciding by keyboard -----------------------------------------------------------------------
async def test_same_with_a_typed_id(resolvable):
    total = len(cases_of(resolvable))
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        acme = queue.current
        dialog = await open_dialog(pilot, "s")
        field = dialog.query_one("#new-id", Input)
        assert app.focused is field and field.value == "ACME-1"  # the candidate, offered
        assert dialog.query_one("#candidates", OptionList).option_count == 1
        field.value = ""
        await pilot.press(*"ACME\\u00e9", "enter")  # escapes accepted; Enter moves on to the reason
        assert app.focused is dialog.query_one("#reason", Input)
        assert dialog.query_one("#decision-ok", Button).disabled  # no reason yet
        assert "a reason is required" in shown(dialog, "#decision-problem")
        await pilot.press(*"dup", "enter")
        await settle(pilot)
        assert app.screen is queue
        from keyshift.core.resolve.decisions import default_primary

        assert decisions(resolvable) == [(acme.id, "same", {"id": "ACME\u00e9", "primary": default_primary(acme)},
                                          "dup", OPERATOR)]
        assert f"1 of {total} decided" in shown(queue, "#queue-progress")
        assert queue.current.id != acme.id and queue.current.decision is None  # on to the next case
        assert queue.select_case(acme.id)
        detail = shown(queue, "#case-decision")
        assert "same → ACMEé" in detail and OPERATOR in detail and "dup" in detail
        await pilot.press("escape")
        await settle(pilot)
        assert f"1 of {total} decided" in shown(app.screen, "#steps")


async def test_drop_asks_for_confirmation(resolvable):
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        await pilot.press("2")
        await settle(pilot)
        orphan = queue.current
        assert orphan.members[0].raw == "Customer 301"
        dialog = await open_dialog(pilot, "d")
        assert dialog.query_one("#drop-raws", SelectionList).selected == [0]  # a single member: ticked
        await pilot.press("tab", *"test", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Customer 301" in app.screen.message and "1 item(s)" in app.screen.message
        await pilot.press("escape")  # not confirmed: nothing recorded
        await settle(pilot)
        assert app.screen is queue and decisions(resolvable) == []
        await open_dialog(pilot, "d")
        await pilot.press("tab", *"test", "enter")
        await pilot.pause()
        await pilot.click("#confirm-yes")
        await settle(pilot)
        assert decisions(resolvable) == [(orphan.id, "drop", {"raws": ["Customer 301"]}, "test",
                                          OPERATOR)]
        # An ambiguous group: the operator ticks which raw identifiers to drop.
        await pilot.press("1")
        await settle(pilot)
        acme = queue.current
        dialog = await open_dialog(pilot, "d")
        assert dialog.query_one("#decision-ok", Button).disabled  # nothing ticked yet
        index = [m.raw for m in acme.members].index("Acme\u200b")
        await pilot.press(*["down"] * index, "space")
        assert dialog.query_one("#drop-raws", SelectionList).selected == [index]
        await pilot.press("tab", *"zwsp", "enter")
        await pilot.pause()
        assert "Acme\\u200b  (3 items)" in app.screen.message
        await pilot.click("#confirm-yes")
        await settle(pilot)
        assert decisions(resolvable)[-1][1:3] == ("drop", {"raws": ["Acme\u200b"]})


async def test_undo_reopens_a_case(resolvable):
    orphan = case_with(resolvable, "orphaned", "Customer 302")
    ws = Workspace(resolvable.path / "ws")
    decide(ws, orphan, "map", reason="renamed in the CRM", operator="bob", new_id="CUST-302")
    ws.close()
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        assert queue.shown[-1].id == orphan.id  # decided cases come last
        assert queue.select_case(orphan.id)
        await pilot.pause()
        detail = shown(queue, "#case-decision")
        assert "map → CUST-302" in detail and "bob" in detail and "renamed in the CRM" in detail
        assert enabled(queue)["u"]
        dialog = await open_dialog(pilot, "u")
        assert app.focused is dialog.query_one("#reason", Input)
        await pilot.press(*"oops", "enter")
        await settle(pilot)
        assert [d[1] for d in decisions(resolvable)] == ["map", "undo"]
        assert decisions(resolvable)[-1][3:] == ("oops", OPERATOR)
        assert queue.select_case(orphan.id)
        await pilot.pause()
        assert queue.current.decision is None and len(queue.current.history) == 2
        assert "open: no decision yet" in shown(queue, "#case-decision")
        assert not enabled(queue)["u"]  # nothing to undo on an open case


async def test_a_refused_decision_keeps_the_dialog_open(resolvable):
    """The store's refusal is shown in the dialog: the reason typed stays, nothing is recorded."""
    orphan = case_with(resolvable, "orphaned", "Customer 302")
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        assert queue.select_case(orphan.id)
        dialog = await open_dialog(pilot, "m")
        dialog.query_one("#new-id", Input).value = "Customer 001"  # already another customer's id
        await pilot.press("enter", *"same", "enter")
        await wait_until(pilot, lambda: "refused" in shown(dialog, "#decision-problem"))
        assert app.screen is dialog and not isinstance(app.screen, ErrorModal)
        problem = shown(dialog, "#decision-problem")
        assert "Cannot decide" in problem and "collision" in problem and "Customer 001" in problem
        assert dialog.query_one("#reason", Input).value == "same"  # nothing typed is lost
        assert app.focused is dialog.query_one("#reason", Input)
        assert not dialog.query_one("#decision-ok", Button).disabled  # the operator may fix and retry
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is queue and decisions(resolvable) == []
        assert queue.current.id == orphan.id and queue.current.decision is None


async def test_a_dirty_or_suspicious_new_id_is_refused_in_the_dialog(resolvable):
    """Regression: the dialog accepted `CUST-1\u200b` and the ZWSP reached the new table."""
    orphan = case_with(resolvable, "orphaned", "Customer 302")
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        assert queue.select_case(orphan.id)
        dialog = await open_dialog(pilot, "m")
        dialog.query_one("#new-id", Input).value = "CUST-1\\u200b"
        dialog.query_one("#reason", Input).value = "pasted"
        await pilot.pause()
        problem = shown(dialog, "#decision-problem")
        assert "U+200B ZERO WIDTH SPACE at position 6" in problem and "\u200b" not in problem
        assert dialog.query_one("#decision-ok", Button).disabled
        dialog.query_one("#new-id", Input).value = "\u0440aypal"  # Cyrillic ER: suspicious
        await pilot.pause()
        assert "suspicious" in shown(dialog, "#decision-problem")
        assert dialog.query_one("#decision-ok", Button).disabled
        dialog.query_one("#allow-suspicious", Checkbox).value = True
        await pilot.pause()
        assert not dialog.query_one("#decision-ok", Button).disabled
        await pilot.click("#decision-ok")
        await settle(pilot)
        assert app.screen is queue
        assert decisions(resolvable) == [(orphan.id, "map", {"id": "\u0440aypal", "allow_suspicious": True},
                                          "pasted", OPERATOR)]


async def test_keep_on_a_conflict_and_split(resolvable):
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        await pilot.press("4")
        await settle(pilot)
        conflict = queue.current
        assert conflict.kind == "conflict" and enabled(queue)["k"] and not enabled(queue)["m"]
        dialog = await open_dialog(pilot, "k")
        await pilot.press("tab", *"ok")
        assert dialog.query_one("#decision-ok", Button).disabled  # nobody chosen to survive yet
        assert "choose whose item survives" in shown(dialog, "#decision-problem")
        await pilot.press("shift+tab", "enter", "tab", "enter")  # the first member's item survives
        # Keeping one record drops the others: confirmed like every drop, naming the records.
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        message = app.screen.message
        keeps, drops = message.split("\ndrops\n")
        assert "2 record(s) land on the new key" in message
        first, other = (escape(m.raw) for m in conflict.members)
        assert f"Keep 1 of {first};" in message and "items)" not in message  # records, not item counts
        assert f"  {first}  dump.json:" in keeps and "order={" in keeps and "total={" in keeps
        assert f"  {other}  dump.json:" in drops
        assert decisions(resolvable) == []
        await pilot.click("#confirm-yes")
        await settle(pilot)
        assert decisions(resolvable)[-1][:3] == (conflict.id, "keep", {"raw": conflict.members[0].raw})
        await pilot.press("1")
        await settle(pilot)
        acme = queue.current
        dialog = await open_dialog(pilot, "x")
        assert len(dialog.query(".split-id")) == len(acme.members)  # one new id per member
        await pilot.press(*"ACME-1", "enter")  # Enter moves on to the next member's id
        for number, field in enumerate(dialog.query(".split-id").results(Input), 1):
            field.value = f"ACME-{number}"
        dialog.query_one("#reason", Input).focus()
        await pilot.press(*"four", "enter")
        await settle(pilot)
        assert decisions(resolvable)[-1][:3] == (
            acme.id, "split", {"map": {m.raw: f"ACME-{i}" for i, m in enumerate(acme.members, 1)}})


async def test_read_only_greys_out_every_decision(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.click("#steps", offset=(4, 1))  # the Resolve step is a link to the queue
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, ResolveQueueScreen)
        assert not any(enabled(queue).values())
        assert {"decide", "undo_decision", "bulk_resolve"} <= app.MUTATING_ACTIONS
        for key in (*DECISION_KEYS, "b"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is queue, key
        assert queue.current is not None and "Acme⟨ZWSP⟩" in shown(queue, "#case-members")  # reading works


# -- two consoles -------------------------------------------------------------------------------
async def test_two_consoles_see_each_others_decisions(resolvable):
    alice, bob = resolvable.context(), resolvable.context()
    bob.operator = "bob"
    total = len(cases_of(resolvable))
    app_a, app_b = make(alice), make(bob)
    async with app_a.run_test(size=SIZE) as pilot_a, app_b.run_test(size=SIZE) as pilot_b:
        queue_a, queue_b = await open_queue(pilot_a), await open_queue(pilot_b)
        acme = queue_a.current
        await open_dialog(pilot_a, "s")
        await pilot_a.press("enter", *"dup", "enter")  # the offered candidate, ACME-1
        await settle(pilot_a)
        assert decisions(resolvable)[-1][:2] == (acme.id, "same")
        took = await wait_until(pilot_b, lambda: f"1 of {total} decided" in shown(queue_b, "#queue-progress"),
                                timeout=2.0)
        assert took <= 2.0
        assert next(c for c in queue_b.cases if c.id == acme.id).decision["operator"] == OPERATOR
        # And back: bob undoes it, alice sees the case open again.
        assert queue_b.select_case(acme.id)
        await open_dialog(pilot_b, "u")
        await pilot_b.press(*"two", "enter")
        await settle(pilot_b)
        await wait_until(pilot_a, lambda: f"0 of {total} decided" in shown(queue_a, "#queue-progress"),
                         timeout=2.0)
        _, action, _, reason, operator = decisions(resolvable)[-1]
        assert (action, reason, operator) == ("undo", "two", "bob")


# -- bulk ---------------------------------------------------------------------------------------
async def test_bulk_previews_then_applies(resolvable):
    orphans = cases_of(resolvable, "orphaned")
    total = len(cases_of(resolvable))
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        await pilot.press("2", "b")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, BulkDialog) and dialog.choice() == ("orphaned", "single-candidate", "keep")
        preview = shown(dialog, "#bulk-preview")
        assert f"{len(orphans)} open orphaned case(s) match; the first 5:" in preview
        assert "Customer 301" in preview and "Customer 306" not in preview
        apply = dialog.query_one("#bulk-apply", Button)
        assert apply.disabled  # no reason yet
        dialog.query_one("#bulk-reason", Input).focus()
        await pilot.press(*"real")
        assert not apply.disabled and str(apply.label) == f"Apply to {len(orphans)}"
        assert decisions(resolvable) == []  # previewed, nothing applied
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and f"on {len(orphans)} open orphaned" in app.screen.message
        await pilot.click("#confirm-yes")
        await settle(pilot, rounds=5)
        assert app.screen is dialog
        assert f"applied {len(orphans)}, refused 0" in shown(dialog, "#bulk-outcome")
        assert dialog.query_one(ProgressPanel).phase == "complete"
        assert "0 open orphaned case(s) match" in shown(dialog, "#bulk-preview")
        recorded = decisions(resolvable)
        assert len(recorded) == len(orphans)
        assert {(d[1], d[3], d[4]) for d in recorded} == {("keep", "real", OPERATOR)}
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is queue
        assert f"{len(orphans)} of {total} decided" in shown(queue, "#queue-progress")


# -- bindings, palette --------------------------------------------------------------------------
async def test_new_bindings_have_an_id_and_a_tooltip():
    for owner in (ResolveQueueScreen, DecisionDialog, BulkDialog, OverviewScreen):
        for binding in owner.BINDINGS:
            assert binding.id and binding.tooltip, (owner.__name__, binding.key)


async def test_command_palette_opens_the_queue(planned):
    app = make(planned.context(read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"queue")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ResolveQueueScreen)


# -- snapshot -----------------------------------------------------------------------------------
def test_queue_snapshot(resolvable, snap_compare):
    conflict = case_with(resolvable, "conflict", "Acme\u200b")
    ws = Workspace(resolvable.path / "ws")
    decide(ws, conflict, "keep", reason="Acme is the CRM spelling", operator=OPERATOR, raws=["Acme"])
    ws.close()
    pin_decision_times(resolvable.path / "ws")

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        pilot.app.screen.select_case(conflict.id)
        await pilot.pause()

    assert snap_compare(make(resolvable.context()), terminal_size=SIZE, run_before=run_before)


async def test_same_names_the_primary_spelling(resolvable):
    app = make(resolvable.context())
    async with app.run_test(size=SIZE) as pilot:
        queue = await open_queue(pilot)
        acme = queue.current
        dialog = await open_dialog(pilot, "s")
        choice = dialog.query_one("#primary", RadioSet)
        from keyshift.core.resolve.decisions import default_primary

        assert acme.members[choice.pressed_index].raw == default_primary(acme)  # preselected
        other = next(i for i, m in enumerate(acme.members) if m.raw != default_primary(acme))
        choice.query(RadioButton)[other].value = True
        await pilot.pause()
        dialog.query_one("#reason", Input).focus()
        await pilot.press(*"dup", "enter")
        await settle(pilot)
        assert decisions(resolvable)[-1][2]["primary"] == acme.members[other].raw
