"""Cases derived from a plan, and decisions on them: validation, supersession, undo, collisions."""

import pytest

from keyshift.core.resolve.cases import CaseError, case_id, get_case, list_cases
from keyshift.core.resolve.decisions import decide, effective_overrides, undo
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

from .test_plan import SPEC, item, write_dump

LOOKALIKE = "\u0440\u0430\u0443\u0440\u0430l"


@pytest.fixture
def ws(tmp_path):
    dump = write_dump(tmp_path / "d.json", [
        item("Acme", "1"), item("Acme\u200b", "1"), item("Acme\u00a0", "2"),
        item("Bolt", "3"), item("Bolt\u200b", "4"),
        item("Carol", "5"), item("\u200b", "6"), item(LOOKALIKE, "7"),
    ])
    workspace = Workspace(tmp_path / "ws")
    plan_to_completion(workspace, parse_spec(SPEC), dump)
    return workspace


def test_cases_of_every_kind_with_stable_ids(ws):
    cases = list_cases(ws)
    kinds = sorted(c.kind for c in cases)
    assert kinds == ["ambiguous", "ambiguous", "conflict", "invalid", "suspicious"]
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    assert {m.raw for m in acme.members} == {"Acme", "Acme\u200b", "Acme\u00a0"}
    assert acme.candidates == ["Acme"] and acme.status == "open"
    assert [c.kind for c in list_cases(ws, kind="conflict")] == ["conflict"]


def test_same_decision_records_who_and_why_and_closes_the_case(ws):
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    d = decide(ws, acme, "same", new_id="ACME-1", reason="one company", operator="alice")
    again = get_case(ws, acme.id)
    assert again.status == "decided"
    assert (again.decision["operator"], again.decision["reason"]) == ("alice", "one company")
    assert effective_overrides(ws).by_raw == {"Acme": "ACME-1", "Acme\u200b": "ACME-1", "Acme\u00a0": "ACME-1"}
    assert ws.audit_log(1)[0].action == "resolve.same"
    assert d.id == again.decision["decision_id"]
    assert [c.id for c in list_cases(ws, open_only=True)].count(acme.id) == 0


def test_later_decision_supersedes_and_undo_reopens(ws):
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    decide(ws, acme, "same", new_id="A-1", reason="first", operator="a")
    decide(ws, get_case(ws, acme.id), "drop", raws=["Acme\u00a0"], reason="junk", operator="b")
    case = get_case(ws, acme.id)
    assert case.decision["action"] == "drop" and len(case.history) == 2
    undo(ws, case, reason="wrong", operator="c")
    case = get_case(ws, acme.id)
    assert case.status == "open" and [h["action"] for h in case.history] == ["same", "drop", "undo"]
    with pytest.raises(CaseError, match="open already"):
        undo(ws, case, reason="again", operator="c")


def test_split_needs_every_member_and_distinct_ids(ws):
    bolt = get_case(ws, case_id("ambiguous", "Bolt"))
    with pytest.raises(CaseError, match="missing"):
        decide(ws, bolt, "split", mapping={"Bolt": "B-1"}, reason="r", operator="o")
    with pytest.raises(CaseError, match="same new id"):
        decide(ws, bolt, "split", mapping={"Bolt": "B-1", "Bolt\u200b": "B-1"}, reason="r", operator="o")
    decide(ws, bolt, "split", mapping={"Bolt": "B-1", "Bolt\u200b": "B-2"}, reason="r", operator="o")


def test_collisions_are_refused_with_the_reason(ws):
    bolt = get_case(ws, case_id("ambiguous", "Bolt"))
    with pytest.raises(CaseError, match="collision.*Carol"):
        decide(ws, bolt, "same", new_id="Carol", reason="typo", operator="o")
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    decide(ws, acme, "same", new_id="X-1", reason="r", operator="o")
    with pytest.raises(CaseError, match="collision.*Acme"):
        decide(ws, bolt, "same", new_id="X-1", reason="r", operator="o")


def test_refusals(ws):
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    with pytest.raises(CaseError, match="reason"):
        decide(ws, acme, "same", new_id="A", reason=" ", operator="o")
    with pytest.raises(CaseError, match="takes same, split, drop"):
        decide(ws, acme, "accept", reason="r", operator="o")
    with pytest.raises(CaseError, match="no case"):
        get_case(ws, "amb-000000000000")
    invalid = list_cases(ws, kind="invalid")[0]
    decide(ws, invalid, "map", new_id="ZW-1", reason="placeholder customer", operator="o")
    suspicious = list_cases(ws, kind="suspicious")[0]
    decide(ws, suspicious, "accept", reason="really Cyrillic", operator="o")
    conflict = list_cases(ws, kind="conflict")[0]
    with pytest.raises(CaseError, match="survives"):
        decide(ws, conflict, "keep", reason="r", operator="o")
    decide(ws, conflict, "keep", raws=["Acme"], reason="older order", operator="o")
    assert list_cases(ws, open_only=True) == [c for c in list_cases(ws) if c.status == "open"]


def test_keymap_refuses_open_cases_then_builds_with_decisions(ws):
    from keyshift.core.resolve.keymap_build import UnresolvedError, build_keymap, keymap_document, load_keymap_document
    from keyshift.core.kernel.transform import KeyNames, Put, Skip, transform

    with pytest.raises(UnresolvedError, match="still open"):
        build_keymap(ws)
    partial = build_keymap(ws, allow_unresolved=True)
    assert "Acme\u200b" in partial.keymap.unresolved and partial.keymap.lookup("Carol").new_id == "Carol"
    decide(ws, get_case(ws, case_id("ambiguous", "Acme")), "drop", raws=["Acme\u00a0"], reason="junk", operator="o")
    decide(ws, get_case(ws, case_id("ambiguous", "Bolt")), "same", new_id="BOLT", reason="one", operator="o")
    decide(ws, list_cases(ws, kind="invalid")[0], "drop", reason="empty key", operator="o")
    decide(ws, list_cases(ws, kind="suspicious")[0], "accept", reason="ok", operator="o")
    built = build_keymap(ws, allow_unresolved=True)  # Acme vs Acme\u200b still ambiguous after the drop
    assert built.keymap.unresolved["Acme"].startswith("still ambiguous")
    assert built.keymap.lookup("Acme\u00a0").new_id is None
    assert built.keymap.lookup("Bolt\u200b").new_id == "BOLT"
    again = build_keymap(ws, allow_unresolved=True)
    assert again.keymap.version == built.keymap.version  # same inputs, same version
    doc = keymap_document(built, operator="o")
    assert load_keymap_document(doc).version == built.keymap.version
    names = KeyNames.from_spec(parse_spec(SPEC))
    assert isinstance(transform(item("Bolt\u200b", "4"), built.keymap, names), Put)
    assert isinstance(transform(item("Acme\u00a0", "2"), built.keymap, names), Skip)


def test_bulk_preview_then_apply_one_decision_per_case(tmp_path):
    from keyshift.core.resolve.bulk import apply_bulk, preview_bulk

    lines = []
    for i in range(30):  # thirty Acme-style pairs: clean and with a zero-width space
        lines += [item(f"Shop {i}", f"{i}a"), item(f"Shop {i}\u200b", f"{i}b")]
    lines += [item("Dup", "x"), item("Dup\u200b", "y"), item("DUP\u00a0", "z")]
    dump = write_dump(tmp_path / "d.json", lines)
    ws = Workspace(tmp_path / "ws")
    plan_to_completion(ws, parse_spec(SPEC), dump)
    preview = preview_bulk(ws, kind="ambiguous", condition="single-candidate", action="same")
    assert preview.count == 31 and len(preview.sample(5)) == 5
    with pytest.raises(CaseError, match="bulk"):
        preview_bulk(ws, kind="ambiguous", condition="any", action="split")
    result = apply_bulk(ws, preview, reason="zero-width duplicates are one shop", operator="alice")
    assert result.applied == 31 and not result.refused
    assert list_cases(ws, kind="ambiguous", open_only=True) == []
    reasons = {c.decision["reason"] for c in list_cases(ws, kind="ambiguous")}
    assert reasons == {"zero-width duplicates are one shop"}
    assert ws.audit_log(1)[0].action == "resolve.bulk"
    assert apply_bulk(ws, preview, reason="again", operator="bob").refused[0][1] == "decided meanwhile"
