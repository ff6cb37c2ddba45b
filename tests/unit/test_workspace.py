"""The SQLite workspace: versioned schema, WAL sharing, audit log, read-only mode."""

import sqlite3

import pytest

from keyshift.core.errors import WorkspaceError
from keyshift.core.store.workspace import SCHEMA_VERSION, Workspace


def test_new_workspace_is_versioned_and_in_wal_mode(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert ws.schema_version() == SCHEMA_VERSION
    assert ws.connect().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_keeps_data(tmp_path):
    Workspace(tmp_path).audit("alice", "test.action", {"n": 1})
    entries = Workspace(tmp_path).audit_log()
    assert [(e.operator, e.action, e.details) for e in entries] == [("alice", "test.action", {"n": 1})]


def test_two_connections_see_each_others_writes(tmp_path):
    a, b = Workspace(tmp_path), Workspace(tmp_path)
    a.audit("alice", "one")
    assert b.audit_log()[0].action == "one"
    b.audit("bob", "two")
    assert [e.action for e in a.audit_log()] == ["two", "one"]


def test_read_only_refuses_writes_at_the_database(tmp_path):
    Workspace(tmp_path).audit("alice", "x")
    ro = Workspace(tmp_path, read_only=True)
    assert ro.audit_log()[0].action == "x"
    with pytest.raises(WorkspaceError, match="read-only"):
        ro.audit("mallory", "y")
    # Even code that bypasses the check cannot write: SQLite opened the file mode=ro.
    with pytest.raises(sqlite3.OperationalError):
        ro.connect().execute("INSERT INTO audit(ts, operator, action) VALUES ('t', 'm', 'z')")


def test_read_only_needs_an_existing_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="no workspace"):
        Workspace(tmp_path / "missing", read_only=True)


def test_newer_schema_is_refused(tmp_path):
    ws = Workspace(tmp_path)
    ws.connect().execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    ws.close()
    with pytest.raises(WorkspaceError, match="newer"):
        Workspace(tmp_path)


def test_transaction_rolls_back_on_error(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(RuntimeError):
        with ws.transaction() as conn:
            conn.execute("INSERT INTO audit(ts, operator, action) VALUES ('t', 'a', 'b')")
            raise RuntimeError("boom")
    assert ws.audit_log() == []


def test_version_1_workspace_gets_its_cases_on_upgrade(tmp_path):
    import orjson

    from keyshift.core.resolve.cases import list_cases
    from keyshift.core.plan.planner import plan_to_completion
    from keyshift.core.spec import parse_spec

    dump = tmp_path / "d.json"
    dump.write_bytes(b"\n".join(orjson.dumps({"pk": {"S": s}}) for s in ["Acme", "Acme\u200b"]))
    ws = Workspace(tmp_path / "ws")
    plan_to_completion(ws, parse_spec('[source]\ntable="a"\npartition_key="pk"\n[target]\ntable="b"\n'), str(dump))
    conn = ws.connect()
    # Make it look like a version-1 workspace: no decision/case tables.
    for table in ("decisions", "keymaps", "case_members", "cases", "runs", "checkpoints", "offenders"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    ws.close()
    upgraded = Workspace(tmp_path / "ws")
    assert upgraded.schema_version() == SCHEMA_VERSION
    assert sorted(c.kind for c in list_cases(upgraded)) == ["ambiguous", "conflict"]  # no sort key: one new key
