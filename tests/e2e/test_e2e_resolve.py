"""End to end: resolving cases through the real command line against the moto server fixture."""

import json

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def planned(world):
    world.run("plan", "--dump", world.export_uri, "--json").json()
    return world


def _cases(world, *args):
    return world.run("resolve", "list", "--json", *args).json()


def test_list_decide_export_import_round_trip(planned, tmp_path):
    cases = _cases(planned)
    kinds = {c["kind"] for c in cases}
    assert {"ambiguous", "orphaned", "invalid", "conflict", "suspicious"} <= kinds
    assert all(c["status"] == "open" and c["id"] for c in cases)
    amb = next(c for c in cases if c["kind"] == "ambiguous" and len(c["members"]) >= 2)
    assert all("raw_escaped" in m for m in amb["members"])
    # RAW values go in escaped and come out escaped.
    escaped = [m["raw_escaped"] for m in amb["members"]]
    maps = [f"--map={e}=NEW-{i}" for i, e in enumerate(escaped)]
    r = planned.run("resolve", "decide", amb["id"], "split", *maps, "--reason", "different shops", "--json")
    assert r.json()["payload"]["map"] == {m["raw"]: f"NEW-{i}" for i, m in enumerate(amb["members"])}
    orphan = next(c for c in cases if c["kind"] == "orphaned")
    assert planned.run("resolve", "decide", orphan["id"], "keep", "--reason", "new customer").returncode == 0
    decided = {c["id"]: c for c in _cases(planned)}
    assert decided[amb["id"]]["status"] == "decided"
    assert decided[amb["id"]]["decision"]["reason"] == "different shops"
    assert _cases(planned, "--open", "--kind", "orphaned") == [
        c for c in _cases(planned, "--kind", "orphaned") if c["status"] == "open"
    ]
    export = tmp_path / "decisions.json"
    assert planned.run("resolve", "export", str(export)).returncode == 0
    doc = json.loads(export.read_text())
    assert doc["format"] == "keyshift-decisions/1" and len(doc["decisions"]) == 2
    # Into a second workspace planned from the same dump: applied once, then idempotent.
    other = tmp_path / "other"
    planned.run("plan", "--dump", planned.export_uri, "--json", workspace=other).json()
    first = planned.run("resolve", "import", str(export), "--json", workspace=other).json()
    assert first["applied"] == 2 and not first["conflicts"]
    second = planned.run("resolve", "import", str(export), "--json", workspace=other).json()
    assert second["applied"] == 0 and second["already"] == 2
    # A different decision on one case there is a reported conflict, not an overwrite.
    planned.run("resolve", "undo", orphan["id"], "--reason", "rethink", workspace=other)
    planned.run("resolve", "decide", orphan["id"], "drop", "--reason", "test data", workspace=other)
    third = planned.run("resolve", "import", str(export), "--json", workspace=other).json()
    assert [c["case_id"] for c in third["conflicts"]] == [orphan["id"]]


def test_undo_and_history(planned):
    orphan = next(c for c in _cases(planned) if c["kind"] == "orphaned")
    planned.run("resolve", "decide", orphan["id"], "map", "--id", "CUST-NEW", "--reason", "looked it up", "--json").json()
    planned.run("resolve", "undo", orphan["id"], "--reason", "wrong customer", "--json").json()
    again = next(c for c in _cases(planned) if c["id"] == orphan["id"])
    assert again["status"] == "open"
    actions = [e["action"] for e in planned.run("audit", "--json").json()]
    assert actions[:2] == ["resolve.undo", "resolve.map"]


def test_refusals_exit_2_with_a_clear_message(planned):
    cases = _cases(planned)
    amb = next(c for c in cases if c["kind"] == "ambiguous")
    unknown = planned.run("resolve", "decide", "amb-000000000000", "same", "--id", "X", "--reason", "r")
    assert unknown.returncode == 2 and "no case" in unknown.message
    missing = planned.run("resolve", "decide", amb["id"], "same", "--id", "X")
    assert missing.returncode == 2 and "--reason" in missing.message
    fixed_id = next(m for c in cases if c["kind"] == "orphaned" for m in c["members"])["canonical"]
    taken = planned.run("records", "--status", "fixed", "--limit", "1", "--json").json()[0]["new_id"]
    collision = planned.run("resolve", "decide", amb["id"], "same", "--id", taken, "--reason", "typo")
    assert collision.returncode == 2 and "collision" in collision.message
    assert fixed_id  # orphan members carry their canonical form for `keep`
    ro = planned.run("resolve", "decide", amb["id"], "same", "--id", "Q", "--reason", "r",
                     global_args=("--read-only",))
    assert ro.returncode == 2 and "read-only" in ro.message


def test_keymap_build_refuses_then_allows_unresolved(planned, tmp_path):
    refused = planned.run("keymap", "build", "--json")
    assert refused.returncode == 2 and "open" in refused.message
    out = tmp_path / "keymap.json"
    doc = planned.run("keymap", "build", "--allow-unresolved", "--out", str(out), "--json").json()
    assert doc["unresolved"] > 0 and doc["skipped_cases"] and len(doc["version"]) == 16
    artifact = json.loads(out.read_text())
    assert artifact["version"] == doc["version"] and artifact["format"] == "keyshift-keymap/1"


def test_bulk_preview_then_apply(planned):
    preview = planned.run("resolve", "bulk", "--kind", "ambiguous", "--action", "same", "--json").json()
    assert preview["count"] > 0 and preview["applied"] == 0 and preview["sample"]
    missing = planned.run("resolve", "bulk", "--kind", "ambiguous", "--action", "same", "--apply")
    assert missing.returncode == 2 and "--reason" in missing.message
    done = planned.run("resolve", "bulk", "--kind", "ambiguous", "--action", "same", "--apply",
                       "--reason", "same shop, pasted twice", "--json").json()
    assert done["applied"] + len(done["refused"]) == preview["count"]
    assert done["applied"] > 0
    again = planned.run("resolve", "bulk", "--kind", "ambiguous", "--action", "same", "--json").json()
    assert again["count"] == len(done["refused"])


def test_every_decision_kind_through_the_cli(planned):
    cases = _cases(planned)

    def first(kind, pred=lambda c: True):
        return next(c for c in cases if c["kind"] == kind and pred(c))

    def decide(case, *args):
        doc = planned.run("resolve", "decide", case["id"], *args, "--json").json()
        assert doc["case_id"] == case["id"]
        return doc

    amb = [c for c in cases if c["kind"] == "ambiguous" and len(c["members"]) >= 2]
    assert decide(amb[0], "same", "--id", "E2E-SAME", "--reason", "one entity")["action"] == "same"
    dropped = amb[1]["members"][0]["raw_escaped"]
    assert decide(amb[1], "drop", "--raw", dropped, "--reason", "junk")["payload"]["raws"]
    assert decide(first("orphaned"), "drop", "--reason", "test customer")["action"] == "drop"
    invalid = [c for c in cases if c["kind"] == "invalid"]
    decide(invalid[0], "map", "--id", "E2E-INVALID", "--reason", "placeholder")
    decide(invalid[1], "drop", "--reason", "empty key")
    conflict = first("conflict")
    survivor = conflict["members"][0]["raw_escaped"]
    assert decide(conflict, "keep", "--raw", survivor, "--reason", "newest order")["payload"]["raw"]
    suspicious = [c for c in cases if c["kind"] == "suspicious"]
    decide(suspicious[0], "accept", "--reason", "really Cyrillic")
    decide(suspicious[1], "map", "--id", "E2E-LOOKALIKE", "--reason", "was a phishing copy")
    wrong = planned.run("resolve", "decide", first("orphaned", lambda c: c["status"] == "open")["id"],
                        "same", "--id", "X", "--reason", "r")
    assert wrong.returncode == 2 and "takes map, keep, drop" in wrong.message
    decided = [c for c in _cases(planned) if c["status"] == "decided"]
    assert len(decided) == 8
    assert all(c["decision"]["operator"] for c in decided)


def test_keymap_artifact_goes_to_s3(planned):
    planned.s3.create_bucket(Bucket="keymaps")
    doc = planned.run("keymap", "build", "--allow-unresolved", "--out", "s3://keymaps/orders/keymap.json",
                      "--json").json()
    body = planned.s3.get_object(Bucket="keymaps", Key="orders/keymap.json")["Body"].read()
    artifact = json.loads(body)
    assert artifact["version"] == doc["version"]
    assert artifact["unresolved"] and all(v.startswith("open ") for v in artifact["unresolved"].values())


def test_a_new_id_with_an_invisible_character_is_refused_by_the_cli(planned):
    """Regression: `map --id 'CUST-1\\u200b'` was accepted and the ZWSP reached the new table."""
    invalid = next(c for c in _cases(planned) if c["kind"] == "invalid")
    for typed in ("CUST-1\\u200b", "CUST-1\u200b"):  # escaped on the command line, or pasted raw
        r = planned.run("resolve", "decide", invalid["id"], "map", "--id", typed, "--reason", "pasted")
        assert r.returncode == 2, r.stdout
        assert "U+200B ZERO WIDTH SPACE at position 6" in r.message and "Traceback" not in r.stderr
    suspicious = planned.run("resolve", "decide", invalid["id"], "map", "--id", "\u0440aypal", "--reason", "r")
    assert suspicious.returncode == 2 and "--allow-suspicious" in suspicious.message
    allowed = planned.run("resolve", "decide", invalid["id"], "map", "--id", "\u0440aypal", "--reason", "r",
                          "--allow-suspicious", "--json").json()
    assert allowed["payload"] == {"id": "\u0440aypal", "allow_suspicious": True}
    built = planned.run("keymap", "build", "--allow-unresolved", "--out", str(planned.tmp / "km.json"), "--json")
    doc = json.loads((planned.tmp / "km.json").read_text())
    assert built.returncode == 0
    assert not any("\u200b" in (e["new_id"] or "") for e in doc["entries"].values())


def test_a_split_makes_the_conflict_between_its_members_moot(planned):
    """Regression: after `split`, the conflict between the members' items still said "2 records on
    one new key", stayed open and blocked restore."""
    cases = _cases(planned)
    conflict = next(c for c in cases if c["kind"] == "conflict" and len(c["members"]) >= 2)
    raws = {m["raw"] for m in conflict["members"]}
    group = next(c for c in cases if c["kind"] == "ambiguous" and raws <= {m["raw"] for m in c["members"]})
    maps = [f"--map={m['raw_escaped']}=SHOP-{i}" for i, m in enumerate(group["members"])]
    planned.run("resolve", "decide", group["id"], "split", *maps, "--reason", "different shops", "--json").json()
    after = {c["id"]: c for c in _cases(planned)}
    assert after[conflict["id"]]["status"] == "moot" and "different new keys" in after[conflict["id"]]["moot"]
    assert conflict["id"] not in {c["id"] for c in _cases(planned, "--open")}
    listed = planned.run("resolve", "list", "--kind", "conflict")
    assert "moot" in listed.stdout
