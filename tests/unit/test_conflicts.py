"""Item conflicts follow the decisions in force (regressions of issue 8).

Before the fix, a conflict between two raw forms stayed open ("2 records on one new key") after a
``split`` gave them different ids, and blocked restore; and a ``same`` over canonical forms that
share a reference id merged records onto one key without any conflict being opened.
"""

import json

import pytest

from keyshift.core.kernel.keymap import sort_key_json
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.resolve.cases import case_id, get_case, list_cases, progress
from keyshift.core.resolve.decisions import decide, undo
from keyshift.core.resolve.keymap_build import UnresolvedError, build_keymap
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

from .test_plan import SPEC, item, write_dump

ZW, NBSP = "\u200b", "\u00a0"
K1 = sort_key_json({"S": "1"})


@pytest.fixture
def ws(tmp_path):
    dump = write_dump(tmp_path / "d.json", [item("Acme", "1"), item("Acme" + ZW, "1"), item("Acme" + NBSP, "2")])
    workspace = Workspace(tmp_path / "ws")
    plan_to_completion(workspace, parse_spec(SPEC), dump)
    workspace.dump = dump  # type: ignore[attr-defined]
    return workspace


def conflict(ws):
    return get_case(ws, case_id("conflict", "Acme", K1))


def ambiguous(ws):
    return get_case(ws, case_id("ambiguous", "Acme"))


def test_a_split_makes_the_conflict_moot_and_it_no_longer_blocks(ws):
    assert conflict(ws).status == "open" and conflict(ws).new_key == "Acme"
    decide(ws, ambiguous(ws), "split", mapping={"Acme": "A-1", "Acme" + ZW: "A-2", "Acme" + NBSP: "A-3"},
           reason="three shops", operator="alice")
    moot = conflict(ws)
    assert moot.status == "moot" and "different new keys" in moot.moot
    assert list_cases(ws, open_only=True) == []
    assert progress(ws) == (2, 2)
    build = build_keymap(ws)  # nothing open: no --allow-unresolved needed
    assert build.keymap.winners == {}
    with pytest.raises(Exception, match="moot"):
        decide(ws, moot, "keep", raws=["Acme"], reason="r", operator="a")
    entry = ws.audit_log(1)[0]
    assert entry.action == "resolve.split" and entry.details["conflicts"]["moot"] == 1


def test_undo_brings_the_conflict_back_open(ws):
    split = decide(ws, ambiguous(ws), "split", mapping={"Acme": "A-1", "Acme" + ZW: "A-2", "Acme" + NBSP: "A-3"},
                   reason="three shops", operator="alice")
    assert conflict(ws).status == "moot"
    undo(ws, ambiguous(ws), reason="no, one shop", operator="bob")
    back = conflict(ws)
    assert back.status == "open" and back.new_key == "Acme" and split.id
    with pytest.raises(UnresolvedError):
        build_keymap(ws)


def test_same_keeps_the_conflict_open_on_the_new_key_and_keep_settles_it(ws):
    decide(ws, ambiguous(ws), "same", new_id="ACME-1", reason="one company", operator="alice")
    live = conflict(ws)
    assert live.status == "open" and live.new_key == "ACME-1"  # the same records, the same case
    assert {m.raw for m in live.members} == {"Acme", "Acme" + ZW}
    decide(ws, live, "keep", raws=["Acme" + ZW], reason="the newer order", operator="alice")
    assert conflict(ws).status == "decided"
    assert build_keymap(ws).keymap.winners == {("ACME-1", K1): "Acme" + ZW}


def test_a_drop_that_leaves_one_record_makes_the_conflict_moot(ws):
    decide(ws, ambiguous(ws), "drop", raws=["Acme" + ZW], reason="test data", operator="alice")
    assert conflict(ws).status == "moot"


def test_a_keep_whose_survivor_left_the_conflict_needs_deciding_again(tmp_path):
    dump = write_dump(tmp_path / "d.json", [item("Acme", "1"), item("Acme" + ZW, "1"), item("Acme" + NBSP, "1")])
    ws = Workspace(tmp_path / "ws")
    plan_to_completion(ws, parse_spec(SPEC), dump)
    decide(ws, ambiguous(ws), "same", new_id="ACME-1", reason="one company", operator="a")
    decide(ws, conflict(ws), "keep", raws=["Acme"], reason="older", operator="a")
    assert conflict(ws).status == "decided"
    decide(ws, ambiguous(ws), "drop", raws=["Acme"], reason="actually junk", operator="a")  # the survivor
    again = conflict(ws)  # the two others still share key 1, and the decision names a dropped raw
    assert again.status == "open" and {m.raw for m in again.members} == {"Acme" + ZW, "Acme" + NBSP}
    assert [h["action"] for h in again.history] == ["keep"]  # kept in the history, not in force


def test_moot_survives_a_re_plan(ws):
    decide(ws, ambiguous(ws), "split", mapping={"Acme": "A-1", "Acme" + ZW: "A-2", "Acme" + NBSP: "A-3"},
           reason="three shops", operator="alice")
    plan_to_completion(ws, parse_spec(SPEC), ws.dump)  # decisions outlive a re-plan; so does their effect
    assert conflict(ws).status == "moot"
    assert list_cases(ws, open_only=True) == []


def test_a_same_that_merges_records_of_two_canonical_forms_opens_a_conflict(tmp_path):
    ref = tmp_path / "ref.jsonl"
    ref.write_text('{"name": "Acme Corp", "id": "C-1"}\n{"name": "ACME Corporation", "id": "C-1"}\n')
    dump = write_dump(tmp_path / "d.json", [item("Acme Corp", "1"), item("ACME Corporation", "1"),
                                            item("ACME Corporation", "2")])
    ws = Workspace(tmp_path / "ws")
    plan_to_completion(ws, parse_spec(SPEC + f'[reference]\nuri = "{ref}"\n'), dump)
    assert list_cases(ws, kind="conflict") == []  # two canonical forms: no shared key in the plan
    (amb,) = list_cases(ws, kind="ambiguous")
    decide(ws, amb, "same", new_id="C-1", reason="one company", operator="alice")
    (opened,) = list_cases(ws, kind="conflict")
    assert opened.status == "open" and opened.new_key == "C-1" and opened.sort_key == K1
    assert {m.raw for m in opened.members} == {"Acme Corp", "ACME Corporation"}
    assert opened.title == "2 records on one new key"
    with pytest.raises(UnresolvedError):
        build_keymap(ws)
    decide(ws, opened, "keep", raws=["Acme Corp"], reason="the original", operator="alice")
    assert build_keymap(ws).keymap.winners == {("C-1", K1): "Acme Corp"}
    undo(ws, get_case(ws, amb.id), reason="not one company", operator="bob")
    assert get_case(ws, opened.id).status == "moot"
    doc = [c.to_dict() for c in list_cases(ws, kind="conflict")]
    assert json.dumps(doc) and doc[0]["status"] == "moot" and doc[0]["moot"]
