"""Held stream records and the ``unmapped`` case kind: the store, the cases, the rule, keymap changes."""

from datetime import datetime, timezone

import pytest

from keyshift.core.kernel.keymap import Keymap, KeymapEntry
from keyshift.core.migrate.stream import held
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.resolve.cases import CaseError, case_id, get_case, list_cases, materialize_cases
from keyshift.core.resolve.decisions import decide, effective_overrides, undo
from keyshift.core.resolve.keymap_build import build_keymap
from keyshift.core.resolve.unmapped import derive_unmapped, rule_decision
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

from .test_plan import SPEC, item, write_dump

WHEN = datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)


def record(event, seq, customer, order, total=None):
    body = {"Keys": {"customer": {"S": customer}, "order_id": {"S": order}}, "SequenceNumber": str(seq),
            "ApproximateCreationDateTime": WHEN}
    if event != "REMOVE":
        body["NewImage"] = {**body["Keys"], "total": {"N": str(total)}, "blob": {"B": b"\x01\x02"}}
    return {"eventName": event, "dynamodb": body}


@pytest.fixture
def ws(tmp_path):
    dump = write_dump(tmp_path / "d.json", [
        item("ACME Corp", "1"), item("ACME Corp", "2"), item("Bolt", "3"), item("Bolt\u200b", "4"),
    ])
    workspace = Workspace(tmp_path / "ws")
    plan_to_completion(workspace, parse_spec(SPEC), dump)
    return workspace


def hold(ws, records, shard="shard-1"):
    with ws.transaction() as conn:
        n = held.hold(conn, [(held.record_raw(r, "customer"), r) for r in records], direction="forward",
                      source_arn="arn:stream", shard=shard, origin="test")
        derive_unmapped(conn)
    return n


def test_holding_is_idempotent_and_keeps_the_record_in_wire_format(ws):
    records = [record("INSERT", 10, "ACME\u200b Corp", "9", 1), record("MODIFY", 9_000_000_000_000_000_011,
                                                                         "ACME\u200b Corp", "9", 2)]
    assert hold(ws, records) == 2
    assert hold(ws, records) == 0  # a replayed page holds nothing twice
    assert hold(ws, records[:1], shard="") == 0  # nor does the Lambda's copy of the same record
    rows = held.held_records(ws.connect())
    assert [r.seq for r in rows] == [held.pad_seq("10"), held.pad_seq("9000000000000000011")]
    assert rows[0].seq < rows[1].seq and len(rows[0].seq) == held.SEQ_DIGITS  # text order = number order
    first = rows[0].stream_record()
    assert first["dynamodb"]["NewImage"]["blob"] == {"B": "AQI="}  # binary as base64 text, as in dumps
    assert rows[0].created_at == WHEN.timestamp()
    assert held.counts(ws) == {"held": 2, "applied": 0, "dropped": 0}
    with ws.transaction() as conn:
        held.settle(conn, [rows[0].id], "applied")
        held.settle(conn, [rows[0].id], "dropped")  # settled once: it stays applied
    assert held.counts(ws) == {"held": 1, "applied": 1, "dropped": 0}


def test_an_unmapped_case_shows_the_canonical_form_and_what_it_collides_with(ws):
    hold(ws, [record("INSERT", 1, "ACME\u200b Corp", "9", 1), record("INSERT", 2, "Initech", "1", 1),
              record("INSERT", 3, "Bolt\u00a0", "5", 1)])
    cases = {c.members[0].raw: c for c in list_cases(ws, kind="unmapped")}
    assert set(cases) == {"ACME\u200b Corp", "Initech", "Bolt\u00a0"}
    acme = cases["ACME\u200b Corp"].to_dict()
    assert acme["id"] == case_id("unmapped", "ACME\u200b Corp") and acme["status"] == "open"
    assert acme["canonical"] == "ACME Corp" and acme["candidates"] == ["ACME Corp"]
    assert [(c["raw"], c["new_id"]) for c in acme["collisions"]] == [("ACME Corp", "ACME Corp")]
    assert acme["members"][0]["changes"] == ["U+200B ZERO WIDTH SPACE removed at 4"]
    assert acme["held"] == {"held": 1, "applied": 0, "dropped": 0} and acme["members"][0]["items"] == 1
    # Bolt's form belongs to an open ambiguous case: it collides with both, with no new id yet.
    bolt = cases["Bolt\u00a0"].to_dict()
    assert {(c["raw"], c["new_id"], c["status"]) for c in bolt["collisions"]} == {
        ("Bolt", None, "ambiguous"), ("Bolt\u200b", None, "ambiguous")}
    assert cases["Initech"].to_dict()["collisions"] == [] and cases["Initech"].candidates == []
    # A re-plan derives every case again: the unmapped ones come back, with their decisions.
    decide(ws, cases["Initech"], "map", new_id="Initech", reason="new", operator="o")
    with ws.transaction() as conn:
        materialize_cases(conn)
    again = get_case(ws, case_id("unmapped", "Initech"))
    assert again.status == "decided" and again.decision["payload"] == {"id": "Initech"}


def test_unmapped_decisions_are_validated_like_every_new_id(ws):
    hold(ws, [record("INSERT", 1, "ACME\u200b Corp", "9", 1), record("INSERT", 2, "Initech", "1", 1)])
    acme = get_case(ws, case_id("unmapped", "ACME\u200b Corp"))
    with pytest.raises(CaseError, match="collision"):
        decide(ws, acme, "map", new_id="ACME Corp", reason="r", operator="o")  # that is `same`
    with pytest.raises(CaseError, match="not clean"):
        decide(ws, acme, "map", new_id="ACME\u200b Corp", reason="r", operator="o")
    with pytest.raises(CaseError, match="that is `map`"):
        decide(ws, acme, "same", new_id="Nobody", reason="r", operator="o")
    with pytest.raises(CaseError, match="not an identifier"):
        decide(ws, acme, "same", raws=["Nobody"], reason="r", operator="o")
    with pytest.raises(CaseError, match="takes map, same, drop"):
        decide(ws, acme, "keep", reason="r", operator="o")
    d = decide(ws, acme, "same", raws=["ACME Corp"], reason="one customer", operator="o")
    assert d.payload == {"id": "ACME Corp", "raw": "ACME Corp"}
    assert effective_overrides(ws).by_raw == {"ACME\u200b Corp": "ACME Corp"}
    km = build_keymap(ws, allow_unresolved=True).keymap  # (Bolt is open) Initech: unresolved
    assert km.entries["ACME\u200b Corp"].new_id == "ACME Corp" and "Initech" in km.unresolved
    undo(ws, get_case(ws, acme.id), reason="wrong", operator="o")
    assert "ACME\u200b Corp" in build_keymap(ws, allow_unresolved=True).keymap.unresolved


def test_the_rule_decides_one_existing_id_without_conflict_and_holds_otherwise(ws):
    hold(ws, [record("INSERT", 1, "ACME\u200b Corp", "9", 1),   # ACME Corp has no order 9: decided
              record("INSERT", 2, "ACME\u00a0Corp", "1", 1),    # ACME Corp's own order 1: a conflict
              record("INSERT", 3, "Initech", "1", 1),           # no existing new id
              record("INSERT", 4, "Bolt\u00a0", "5", 1)])       # its form is still ambiguous
    conn = ws.connect()
    new_id, reason = rule_decision(conn, "ACME\u200b Corp", "order_id")
    assert new_id == "ACME Corp" and "exactly one existing new id 'ACME Corp' (of \"ACME Corp\")" in reason
    assert rule_decision(conn, "ACME\u00a0Corp", "order_id") == (
        None, "an item of \"ACME Corp\" is already on new id 'ACME Corp' / sort key {\"S\":\"1\"}: a conflict"
        " for a person")
    assert rule_decision(conn, "Initech", "order_id")[1] == "canonical form 'Initech' leads to no existing new id"
    assert "undecided \"Bolt\"" in rule_decision(conn, "Bolt\u00a0", "order_id")[1]


def test_a_keymap_that_only_adds_stream_identifiers_can_continue_a_replay(ws):
    base = Keymap("v1", {"ACME Corp": KeymapEntry("ACME Corp", "rule"), "Gone": KeymapEntry(None, "decision:1")})
    with ws.transaction() as conn:
        held.remember_keymap(conn, base)
    conn = ws.connect()

    def km(entries, winners=None):
        return Keymap("v2", {**base.entries, **entries}, winners=winners or {})

    assert held.keymap_change_problem(conn, "v1", {}, km({"Initech": KeymapEntry("Initech", "decision:2")})) is None
    assert "was applied as 'ACME Corp', now 'OTHER'" in held.keymap_change_problem(
        conn, "v1", {}, km({"ACME Corp": KeymapEntry("OTHER", "decision:3")}))
    assert "was applied as dropped" in held.keymap_change_problem(
        conn, "v1", {}, km({"Gone": KeymapEntry("Back", "decision:3")}))
    assert "conflict winners differ" in held.keymap_change_problem(
        conn, "v1", {}, km({}, winners={("ACME Corp", None): "ACME Corp"}))
    # What rule mode added in memory counts as applied too (an undo of it must restore again).
    assert "\"X\" was applied as 'ACME Corp', now no entry" in held.keymap_change_problem(
        conn, "v1", {"X": "ACME Corp"}, km({}))
    # A planned identifier (its dump items were skipped by the restore) needs a restore.
    assert "has items in the dump" in held.keymap_change_problem(conn, "v1", {}, km({"Bolt": KeymapEntry("B", "d")}))
    assert "not recorded" in held.keymap_change_problem(conn, "v0", {}, km({}))


def test_collect_held_refuses_nothing_when_no_hold_table_is_configured(ws):
    assert held.collect_held(ws, parse_spec(SPEC), ddb=None) == {
        "table": None, "collected": 0, "new": 0, "deleted": 0, "unreadable": 0}
