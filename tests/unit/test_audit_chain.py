"""The audit log's hash chain: appends chain, tampering in the SQLite file is named, old workspaces
get chained by the migration, two processes appending at once keep one chain."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from keyshift.core.store.audit import GENESIS, HEAD_KEY, canonical_json, read_entry, verify_chain
from keyshift.core.store.workspace import DB_NAME, SCHEMA_VERSION, Workspace


def _filled(tmp_path, n=6) -> Workspace:
    ws = Workspace(tmp_path)
    for i in range(1, n + 1):
        if i % 2:
            ws.audit("alice", f"step.{i}", {"i": i, "text": "Acme\u200b", "nested": {"b": 1, "a": [i, None]}})
        else:
            with ws.transaction() as conn:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('touched', ?)", (str(i),))
                ws.audit("bob", f"step.{i}", {"i": i})
    return ws


def _raw(tmp_path) -> sqlite3.Connection:
    """The SQLite file opened directly, as someone tampering with it would."""
    return sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)


def test_each_hash_is_sha256_of_the_previous_hash_and_the_canonical_json(tmp_path):
    ws = _filled(tmp_path)
    rows = _raw(tmp_path).execute("SELECT id, ts, operator, action, details, prev_hash, hash FROM audit ORDER BY id")
    prev = ""
    for entry_id, ts, operator, action, details, prev_hash, digest in rows:
        canonical = json.dumps({"id": entry_id, "ts": ts, "operator": operator, "action": action,
                                "details": json.loads(details)}, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=True)
        assert prev_hash == prev
        assert digest == hashlib.sha256((prev + canonical).encode()).hexdigest()
        prev = digest
    report = ws.verify_audit()
    assert (report.entries, report.chain_ok, report.first_broken) == (6, True, None)
    assert report.head_id == 6 and report.head_hash == prev
    entry = read_entry(ws.connect(), 3)
    assert entry is not None and entry.hash is not None and entry.details["text"] == "Acme\u200b"
    assert read_entry(ws.connect(), 99) is None
    assert ws.audit_log(1)[0].prev_hash == read_entry(ws.connect(), 5).hash


def test_canonical_json_sorts_keys_and_escapes_non_ascii():
    text = canonical_json(1, "t", "\u00e9", "a", {"z": 1, "a": "\u200b"})
    assert text == '{"action":"a","details":{"a":"\\u200b","z":1},"id":1,"operator":"\\u00e9","ts":"t"}'


def test_a_rolled_back_action_leaves_no_entry_and_the_chain_whole(tmp_path):
    ws = _filled(tmp_path, 3)
    with pytest.raises(RuntimeError):
        with ws.transaction():
            ws.audit("alice", "doomed")
            raise RuntimeError("boom")
    ws.audit("alice", "after")
    report = ws.verify_audit()
    assert report.chain_ok and report.entries == 4
    assert [e.action for e in ws.audit_log(2)] == ["after", "step.3"]


@pytest.mark.parametrize("tamper, first_broken, words", [
    ("UPDATE audit SET details = '{\"i\": 30}' WHERE id = 3", 3, "edited"),
    ("UPDATE audit SET operator = 'mallory' WHERE id = 1", 1, "edited"),
    ("UPDATE audit SET ts = '2001-01-01T00:00:00+00:00' WHERE id = 6", 6, "edited"),
    ("UPDATE audit SET details = 'not json' WHERE id = 4", 4, "not JSON"),
    ("DELETE FROM audit WHERE id = 3", 3, "missing"),
    ("DELETE FROM audit WHERE id = 1", 1, "missing"),
    ("DELETE FROM audit WHERE id = 6", 6, "missing"),  # the newest: the head says 6 were written
    ("DELETE FROM audit WHERE id >= 5", 5, "missing"),
    # reorder: entries 2 and 3 swap places (every column but the id moves)
    ("UPDATE audit SET id = -id WHERE id IN (2, 3); UPDATE audit SET id = 3 WHERE id = -2;"
     " UPDATE audit SET id = 2 WHERE id = -3", 2, "prev_hash"),
    # reorder with the stored hashes left where they were
    ("UPDATE audit SET action = CASE id WHEN 4 THEN 'step.5' ELSE 'step.4' END WHERE id IN (4, 5)", 4, "edited"),
    ("INSERT INTO audit(id, ts, operator, action, details, prev_hash, hash)"
     " SELECT 7, ts, operator, 'forged', details, hash, 'x' FROM audit WHERE id = 6", 7, "edited"),
    (f"DELETE FROM meta WHERE key = '{HEAD_KEY}'", 6, "head"),
])
def test_tampering_in_the_sqlite_file_names_the_first_broken_entry(tmp_path, tamper, first_broken, words):
    ws = _filled(tmp_path)
    assert ws.verify_audit().chain_ok
    raw = _raw(tmp_path)
    for statement in tamper.split(";"):
        raw.execute(statement)
    raw.close()
    report = verify_chain(Workspace(tmp_path, read_only=True).connect())
    assert not report.chain_ok
    assert report.first_broken == first_broken
    assert words in report.reason


def test_a_forged_entry_with_a_recomputed_hash_still_breaks_at_the_head(tmp_path):
    """Appending a well-formed entry by hand passes the chain but not the recorded head."""
    ws = _filled(tmp_path, 2)
    last = read_entry(ws.connect(), 2)
    from keyshift.core.store.audit import entry_hash

    ts = last.ts
    digest = entry_hash(last.hash, canonical_json(3, ts, "mallory", "forged", {}))
    raw = _raw(tmp_path)
    raw.execute("INSERT INTO audit(id, ts, operator, action, details, prev_hash, hash) VALUES (3, ?, 'mallory',"
                " 'forged', '{}', ?, ?)", (ts, last.hash, digest))
    report = verify_chain(raw)
    assert not report.chain_ok and report.first_broken == 3 and "head" in report.reason


def test_the_migration_chains_an_old_workspaces_log(tmp_path):
    ws = _filled(tmp_path, 5)
    ws.close()
    # Make it a version-7 workspace: no chain columns, no head, audit rows as the old code wrote them.
    raw = _raw(tmp_path)
    for index in ("audit_operator", "audit_action"):
        raw.execute(f"DROP INDEX {index}")
    raw.execute("ALTER TABLE audit DROP COLUMN prev_hash")
    raw.execute("ALTER TABLE audit DROP COLUMN hash")
    raw.execute(f"DELETE FROM meta WHERE key = '{HEAD_KEY}'")
    raw.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    raw.execute("INSERT INTO audit(ts, operator, action, details) VALUES ('2020-01-01T00:00:00+00:00', 'old',"
                " 'legacy', '{\"z\": 1, \"a\": \"\\u00e9\"}')")
    raw.close()
    upgraded = Workspace(tmp_path)
    assert upgraded.schema_version() == SCHEMA_VERSION
    report = upgraded.verify_audit()
    assert (report.entries, report.chain_ok, report.first_broken) == (6, True, None)
    prev = GENESIS
    for e in reversed(upgraded.audit_log(100)):  # oldest first
        assert e.prev_hash == prev
        assert e.hash == hashlib.sha256((prev + canonical_json(e.id, e.ts, e.operator, e.action, e.details))
                                        .encode()).hexdigest()
        prev = e.hash
    upgraded.audit("carol", "new.after.upgrade")
    assert upgraded.verify_audit().entries == 7 and upgraded.verify_audit().chain_ok
    assert upgraded.connect().execute("SELECT 1 FROM meta WHERE key = 'audit_chain_backfill'").fetchone() is None


_APPENDER = textwrap.dedent("""
    import sys
    from keyshift.core.store.workspace import Workspace
    ws = Workspace(sys.argv[1])
    who, n = sys.argv[2], int(sys.argv[3])
    for i in range(n):
        if i % 2:
            ws.audit(who, "concurrent", {"i": i})
        else:
            with ws.transaction() as conn:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (who, str(i)))
                ws.audit(who, "concurrent.tx", {"i": i})
""")


def test_two_processes_appending_at_once_keep_one_chain(tmp_path):
    Workspace(tmp_path).audit("setup", "start")
    n = 150
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, str(tmp_path), who, str(n)])
             for who in ("p1", "p2")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    ws = Workspace(tmp_path)
    report = ws.verify_audit()
    assert (report.entries, report.chain_ok, report.first_broken) == (1 + 2 * n, True, None)
    entries = ws.audit_log(1000)
    by = {who: sorted(e.details["i"] for e in entries if e.operator == who) for who in ("p1", "p2")}
    assert by == {"p1": list(range(n)), "p2": list(range(n))}
    # They did interleave (otherwise this test proves nothing about concurrency).
    order = [e.operator for e in reversed(entries) if e.operator != "setup"]
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches >= 1
    hashes = [e.prev_hash for e in entries]
    assert len(set(hashes)) == len(hashes)  # no two entries built on the same predecessor


def test_filters_and_keyset_paging(tmp_path):
    ws = _filled(tmp_path, 6)
    ws.audit("alice", "restore.start")
    ws.audit("alice", "restorex")
    ws.audit("carol", "restore.complete")
    assert [e.id for e in ws.audit_log(3)] == [9, 8, 7]
    assert [e.id for e in ws.audit_log(3, before_id=7)] == [6, 5, 4]
    assert [e.action for e in ws.audit_log(10, action="restore")] == ["restore.complete", "restore.start"]
    assert [e.id for e in ws.audit_log(10, operator="bob")] == [6, 4, 2]
    assert [e.id for e in ws.audit_log(10, operator="alice", action="restore")] == [7]
    assert ws.audit_log(10, action="step_%") == []  # LIKE wildcards are literal


def _planned(tmp_path) -> tuple[Workspace, object, str]:
    import orjson

    from keyshift.core.spec import parse_spec

    dump = tmp_path / "d.json"
    dump.write_bytes(b"\n".join(orjson.dumps({"pk": {"S": s}}) for s in ["Acme", "Beta"]))
    spec = parse_spec('[source]\ntable="a"\npartition_key="pk"\n[target]\ntable="b"\n')
    return Workspace(tmp_path / "ws"), spec, str(dump)


def test_a_plan_and_its_audit_entries_commit_together(tmp_path, monkeypatch):
    """plan.start and plan.complete are written in the transactions that start and finish the plan:
    when the audit write fails, the plan's row does not change either."""
    from keyshift.core.plan import planner
    from keyshift.core.store import workspace as workspace_module

    ws, spec, dump = _planned(tmp_path)
    planner.plan_to_completion(ws, spec, dump)
    assert [e.action for e in ws.audit_log(2)] == ["plan.complete", "plan.start"]
    plans_before = ws.connect().execute("SELECT count(*) FROM plans").fetchone()[0]
    real = workspace_module.append_audit

    def refuse(conn, operator, action, details=None):
        if action == "plan.start":
            raise RuntimeError("audit write failed")
        return real(conn, operator, action, details)

    monkeypatch.setattr(workspace_module, "append_audit", refuse)
    with pytest.raises(RuntimeError, match="audit write failed"):
        planner.plan_to_completion(ws, spec, dump)
    assert ws.connect().execute("SELECT count(*) FROM plans").fetchone()[0] == plans_before
    assert ws.verify_audit().chain_ok


def test_a_keymap_build_and_its_audit_entry_commit_together(tmp_path, monkeypatch):
    from keyshift.core.plan.planner import plan_to_completion
    from keyshift.core.resolve.keymap_build import build_keymap, record_build
    from keyshift.core.store import workspace as workspace_module

    ws, spec, dump = _planned(tmp_path)
    plan_to_completion(ws, spec, dump)
    build = build_keymap(ws, allow_unresolved=True)
    monkeypatch.setattr(workspace_module, "append_audit",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("audit write failed")))
    with pytest.raises(RuntimeError):
        record_build(ws, build, operator="alice", location=None)
    assert ws.connect().execute("SELECT count(*) FROM keymaps").fetchone()[0] == 0
    monkeypatch.undo()
    record_build(ws, build, operator="alice", location=None)
    assert ws.connect().execute("SELECT count(*) FROM keymaps").fetchone()[0] == 1
    entry = ws.audit_log(1)[0]
    assert entry.action == "keymap.build" and entry.details["mapped"] == build.summary["mapped"]
