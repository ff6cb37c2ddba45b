"""Primaries: which raw spelling of merged identifiers writes go back to (reverse sync).

A ``same`` decision records it (``primary``, named or defaulted); keymap build fills
``Keymap.primaries`` from decisions, and picks deterministically where reference data merged raws
with no case.
"""

import pytest

from keyshift.core.kernel.keymap import KeymapEntry, keymap_from_document
from keyshift.core.plan.planner import plan_to_completion
from keyshift.core.resolve.cases import CaseError, case_id, get_case
from keyshift.core.resolve.decisions import decide
from keyshift.core.resolve.keymap_build import _primaries, build_keymap, keymap_document
from keyshift.core.spec import parse_spec
from keyshift.core.store.workspace import Workspace

from .test_plan import SPEC, item, write_dump

ZW, NBSP = "\u200b", "\u00a0"


@pytest.fixture
def ws(tmp_path):
    dump = write_dump(tmp_path / "d.json", [
        item("Acme", "1"), item("Acme" + ZW, "2"), item("Acme" + ZW, "3"), item("Acme" + NBSP, "4"),
        item("Bolt", "5"), item("Bolt" + ZW, "6"),
    ])
    workspace = Workspace(tmp_path / "ws")
    plan_to_completion(workspace, parse_spec(SPEC), dump)
    return workspace


def test_same_defaults_to_the_member_with_most_items(ws):
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    d = decide(ws, acme, "same", new_id="ACME-1", reason="one company", operator="a")
    assert d.payload["primary"] == "Acme" + ZW  # two items against one each
    bolt = get_case(ws, case_id("ambiguous", "Bolt"))
    # A tie (one item each): the raw equal to the canonical form.
    assert decide(ws, bolt, "same", new_id="BOLT", reason="r", operator="a").payload["primary"] == "Bolt"


def test_a_named_primary_is_recorded_and_checked(ws):
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    with pytest.raises(CaseError, match="not a member"):
        decide(ws, acme, "same", new_id="ACME-1", primary="Acme!", reason="r", operator="a")
    with pytest.raises(CaseError, match="only a `same` decision"):
        decide(ws, acme, "drop", raws=["Acme"], primary="Acme", reason="r", operator="a")
    d = decide(ws, acme, "same", new_id="ACME-1", primary="Acme" + NBSP, reason="r", operator="a")
    assert d.payload["primary"] == "Acme" + NBSP
    assert get_case(ws, acme.id).decision["payload"]["primary"] == "Acme" + NBSP


def test_keymap_build_fills_primaries_and_the_artifact_carries_them(ws):
    acme = get_case(ws, case_id("ambiguous", "Acme"))
    decide(ws, acme, "same", new_id="ACME-1", primary="Acme", reason="r", operator="a")
    bolt = get_case(ws, case_id("ambiguous", "Bolt"))
    decide(ws, bolt, "split", mapping={"Bolt": "B-1", "Bolt" + ZW: "B-2"}, reason="two", operator="a")
    build = build_keymap(ws, allow_unresolved=True)
    assert dict(build.keymap.primaries) == {"ACME-1": "Acme"}  # a split merges nothing
    assert build.summary["merged_ids"] == 1
    doc = keymap_document(build, operator="a")
    assert doc["primaries"] == {"ACME-1": "Acme"}
    assert keymap_from_document(doc).primaries == {"ACME-1": "Acme"}
    # The primary is part of the version: naming another spelling is another keymap.
    decide(ws, get_case(ws, acme.id), "same", new_id="ACME-1", primary="Acme" + ZW, reason="r", operator="a")
    other = build_keymap(ws, allow_unresolved=True)
    assert other.keymap.primaries["ACME-1"] == "Acme" + ZW and other.keymap.version != build.keymap.version
    assert build_keymap(ws, allow_unresolved=True).keymap.version == other.keymap.version  # deterministic


def test_merges_without_a_case_pick_most_items_then_the_smallest_raw(ws):
    conn = ws.connect()
    entries = {"Acme": KeymapEntry("R-1", "reference"), "Acme" + ZW: KeymapEntry("R-1", "reference"),
               "Bolt": KeymapEntry("R-2", "reference"), "Bolt" + ZW: KeymapEntry("R-2", "reference"),
               "Acme" + NBSP: KeymapEntry("R-3", "reference")}
    assert _primaries(conn, entries, []) == {"R-1": "Acme" + ZW, "R-2": "Bolt"}
