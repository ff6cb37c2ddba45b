"""Look-alikes told apart wherever an operator chooses between identifiers: the queue, the decision
dialogs (split included), the dump browser and ``keyshift resolve list`` (text and ``--json``)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from textual.widgets import DataTable, Label, OptionList, Static

from keyshift.console.cli import cli
from keyshift.core.resolve.cases import Case, Member
from keyshift.core.text.escape import escape
from keyshift.screens.decision_dialog import DecisionDialog
from keyshift.screens.dump_browser import COLUMNS, DumpBrowserScreen
from keyshift.screens.resolve_queue import ResolveQueueScreen
from ui_support import SIZE, make, settle, text_of, wait_until

NFC, NFD = "Caf\u00e9", "Cafe\u0301"


def plain(shown: Any) -> str:
    """What a cell, an option or a label reads as, leading badge spaces kept."""
    return shown.plain if hasattr(shown, "plain") else text_of(shown).rstrip()


def _member(raw: str, items: int = 1) -> Member:
    return Member(raw=raw, escaped=escape(raw), canonical=NFC, items=items, changes=[], suspicious=[], ref_ids=[])


def _twins() -> Case:
    """An ambiguous case whose two members a terminal draws alike (NFC and NFD)."""
    return Case(id="amb-000000000000", kind="ambiguous", title="two spellings of Café",
                members=[_member(NFC, 2), _member(NFD, 3)], candidates=[NFC, NFD])


async def test_the_queue_badges_each_member(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        queue = app.screen
        assert isinstance(queue, ResolveQueueScreen)
        acme = queue.current  # Acme, Acme + ZWSP, BOM + Acme, fullwidth Ａｃｍｅ
        assert acme is not None and acme.kind == "ambiguous"
        table = queue.query_one("#cases", DataTable)
        row = plain(table.get_row_at(0)[3])
        assert " NFKC  Ａｃｍｅ" in row  # fullwidth: a badge
        assert "Acme⟨ZWSP⟩" in row and " ZWSP " not in row  # drawn inline already: no second badge
        members = text_of(queue.query_one("#case-members", Static).content)
        assert "look-alike" in members and "U+200B ZERO WIDTH SPACE" in members
        assert "compatibility forms" in members
        await pilot.press("5")  # suspicious: раураl, Cyrillic letters in a Latin name
        await settle(pilot)
        assert " Cyrl " in plain(table.get_row_at(0)[3])
        assert "Cyrillic letters in a Latin name" in text_of(queue.query_one("#case-members", Static).content)


async def test_the_dialogs_tell_nfc_from_nfd(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(DecisionDialog(_twins(), "same"))
        await pilot.pause()
        options = app.screen.query_one("#candidates", OptionList)
        shown = [plain(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert shown[0] == NFC and shown[1] == f" NFD  {NFD}"  # the same glyphs, one badge apart
        await pilot.press("escape")
        await pilot.pause()
        app.push_screen(DecisionDialog(_twins(), "split"))
        await pilot.pause()
        labels = [plain(label.content) for label in app.screen.query(".split-label").results(Label)]
        assert labels[0].startswith(f"{NFC}  · 2 items") and labels[1].startswith(f" NFD  {NFD}  · 3 items")
        placeholder = app.screen.query_one("#split-0").placeholder
        assert f"candidates: {NFC}, {NFD} ([NFD])" in placeholder


async def test_the_browser_badges_the_raw_column_and_explains_it(planned):
    app = make(planned.context())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        browser = app.screen
        assert isinstance(browser, DumpBrowserScreen)
        table = browser.query_one("#records", DataTable)
        index = next(i for i, r in enumerate(browser.rows) if r.raw == NFD)
        raw_column = [key for key, _, _ in COLUMNS].index("raw")
        assert plain(table.get_row_at(index)[raw_column]) == f" NFD  {NFD}"
        ordinary = next(i for i, r in enumerate(browser.rows) if r.raw and r.raw.isascii() and r.raw.isalnum())
        assert plain(table.get_row_at(ordinary)[raw_column]) == browser.rows[ordinary].raw
        table.move_cursor(row=index)
        await pilot.pause()
        detail = browser.query_one("#record-detail", Static)
        await wait_until(pilot, lambda: "NFD" in text_of(detail.content))
        assert "not in NFC" in text_of(detail.content) and "escaped Cafe\u0301" in text_of(detail.content)


def _resolve_list(planned: Any, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--spec", str(planned.path / "keyshift.toml"), "--workspace",
                                      str(planned.path / "ws"), "--read-only", "resolve", "list", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_resolve_list_marks_look_alikes(planned):
    text = _resolve_list(planned, "--kind", "ambiguous")
    assert "[ZWSP]" in text and "[BOM]" in text and "[NFKC]" in text
    doc = json.loads(_resolve_list(planned, "--json"))
    acme = next(c for c in doc if c["kind"] == "ambiguous")
    by_raw = {m["raw"]: [mark["label"] for mark in m["marks"]] for m in acme["members"]}
    assert by_raw == {"Acme": [], "Acme\u200b": ["ZWSP"], "\ufeffAcme": ["BOM"], "\uff21\uff43\uff4d\uff45": ["NFKC"]}
    assert acme["candidate_marks"] == [[]]
    paypal = next(c for c in doc if c["kind"] == "suspicious")
    assert paypal["members"][0]["marks"][0]["code"] == "script"


def test_audit_console_opens_read_only_on_the_audit_screen(planned, monkeypatch):
    from keyshift.console.app import KeyshiftApp

    started: list[KeyshiftApp] = []
    monkeypatch.setattr(KeyshiftApp, "run", lambda self, *a, **k: started.append(self))
    result = CliRunner().invoke(cli, ["--spec", str(planned.path / "keyshift.toml"), "--workspace",
                                      str(planned.path / "ws"), "audit", "--console"])
    assert result.exit_code == 0, result.output
    (app,) = started
    assert app.read_only and app.context.aws.read_only and app._start_on == "audit"
    refused = CliRunner().invoke(cli, ["--workspace", str(planned.path / "ws"), "audit", "--console", "--json"])
    assert refused.exit_code == 2 and "neither --verify nor --json" in refused.output
