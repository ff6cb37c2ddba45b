"""A new id an operator types must be a key the rules could have produced (regressions of issue 8).

Before the fix, ``map --id 'CUST-1\\u200b'`` was accepted and the ZWSP reached the new table.
"""

import pytest

from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.resolve.cases import CaseError, case_id, get_case, list_cases
from keyshift.core.resolve.decision_files import export_decisions, import_decisions
from keyshift.core.resolve.decisions import decide
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.resolve.new_ids import new_id_problem
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

from .test_plan import SPEC, item, write_dump

LOOKALIKE = "\u0440\u0430\u0443\u0440\u0430l"  # Cyrillic р а у р а + Latin l: reads "paypal"


@pytest.fixture
def ws(tmp_path):
    dump = write_dump(tmp_path / "d.json", [
        item("Acme", "1"), item("Acme\u200b", "2"), item("Bolt", "3"), item("Bolt\u200b", "4"),
        item("\u200b", "6"), item(LOOKALIKE, "7"),
    ])
    workspace = Workspace(tmp_path / "ws")
    plan_to_completion(workspace, parse_spec(SPEC), dump)
    return workspace


@pytest.mark.parametrize("typed, named", [
    ("CUST-1\u200b", "U+200B ZERO WIDTH SPACE at position 6"),
    ("CUST\u00a01", "U+00A0 NO-BREAK SPACE at position 4"),
    ("ＣUST-1", "U+FF23 FULLWIDTH LATIN CAPITAL LETTER C at position 0"),
    (" CUST-1", "leading U+0020 SPACE at position 0"),
    ("Cafe\u0301", "position 3"),
])
def test_a_dirty_new_id_is_refused_naming_the_character_and_where(ws, typed, named):
    invalid = get_case(ws, case_id("invalid", "\u200b"))
    with pytest.raises(CaseError) as refused:
        decide(ws, invalid, "map", new_id=typed, reason="typed by hand", operator="alice")
    assert named in refused.value.message
    assert "\\u" in refused.value.message or "U+" in refused.value.message
    assert not any(ch in refused.value.message for ch in "\u200b\u00a0")  # never raw on screen
    assert get_case(ws, invalid.id).decision is None


def test_the_refusal_says_what_to_type_instead():
    problem = new_id_problem("CUST-1\u200b")
    assert "rule strip-ignorable removes it" in problem and "'CUST-1'" in problem


def test_length_limits_of_a_new_id():
    assert "empty" in new_id_problem("")
    assert "2,048-byte" in new_id_problem("é" * 1025)  # 2,050 UTF-8 bytes
    assert new_id_problem("é" * 1024) is None


def test_a_suspicious_new_id_needs_an_explicit_say_so_which_is_recorded(ws):
    invalid = get_case(ws, case_id("invalid", "\u200b"))
    with pytest.raises(CaseError, match="suspicious"):
        decide(ws, invalid, "map", new_id="\u0440aypal", reason="r", operator="alice")
    d = decide(ws, invalid, "map", new_id="\u0440aypal", reason="really", operator="alice", allow_suspicious=True)
    assert d.payload == {"id": "\u0440aypal", "allow_suspicious": True}


def test_the_canonical_form_of_a_member_may_be_suspicious_without_a_say_so(ws):
    # What the rules would have produced anyway is not something the operator typed wrong.
    flagged = get_case(ws, case_id("suspicious", LOOKALIKE))
    assert decide(ws, flagged, "map", new_id=LOOKALIKE, reason="it is their name", operator="a").payload == {
        "id": LOOKALIKE}


def test_split_and_same_check_every_id(ws):
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    with pytest.raises(CaseError, match="U\\+200B"):
        decide(ws, acme, "split", mapping={"Acme": "A-1", "Acme\u200b": "A-2\u200b"}, reason="r", operator="a")
    with pytest.raises(CaseError, match="U\\+00A0"):
        decide(ws, acme, "same", new_id="A\u00a01", reason="r", operator="a")
    assert get_case(ws, acme.id).decision is None


def test_an_imported_decision_with_a_dirty_id_is_refused_not_applied(ws, tmp_path):
    invalid = get_case(ws, case_id("invalid", "\u200b"))
    decide(ws, invalid, "map", new_id="CUST-9", reason="ok", operator="a")
    doc = export_decisions(ws)
    doc["decisions"][0]["payload"]["id"] = "CUST-9\u200b"  # a hand-edited decision file
    other = Workspace(tmp_path / "other")
    plan_to_completion(other, parse_spec(SPEC), str(tmp_path / "d.json"))
    report = import_decisions(other, doc, operator="bob")
    assert report["applied"] == 0 and "U+200B" in report["refused"][0]["reason"]
    keymap = build_keymap(other, allow_unresolved=True).keymap
    assert all("\u200b" not in (e.new_id or "") for e in keymap.entries.values())
    assert [c.id for c in list_cases(other, open_only=True, kind="invalid")] == [invalid.id]
