"""The local workspace: a directory holding one SQLite database shared by consoles and CLIs.

WAL mode lets two consoles and a CLI read while one of them writes (pairing operators, a script
beside the console). The schema is versioned in ``meta.schema_version``; opening a workspace
written by a newer keyshift is refused rather than guessed at. Each thread gets its own
connection because sqlite3 connections must not cross threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..errors import WorkspaceError, WorkspaceMissing

__all__ = ["Workspace", "AuditEntry", "SCHEMA_VERSION", "DB_NAME", "utcnow"]

DB_NAME = "keyshift.db"
SCHEMA_VERSION = 4

# Version 1: plans, their files, records, quarantined lines, identifiers, reference data,
# conflicts and the audit log. Version 2: operators' decisions and cases. Version 3: runs
# (restore, verify, import) with checkpoints and offenders. Version 4: derived cases know the new key
# of a conflict and whether decisions made them moot. Later versions append to _MIGRATIONS; never
# edit an old step. A step is SQL only: the store imports no domain code, so a step that needs
# derived rows computed again sets ``meta.derive_cases`` and the domain derives them on next use
# (keyshift.core.resolve.cases).
_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE plans (
        id INTEGER PRIMARY KEY,
        dump_uri TEXT NOT NULL,
        format TEXT,
        rules TEXT NOT NULL,             -- JSON list of rule names
        spec TEXT NOT NULL,              -- JSON of the spec used
        operator TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        state TEXT NOT NULL,             -- running | complete | cancelled | failed
        summary TEXT                     -- JSON: the `plan --json` document
    );
    CREATE TABLE files (id INTEGER PRIMARY KEY, uri TEXT NOT NULL UNIQUE);
    CREATE TABLE records (
        seq INTEGER PRIMARY KEY,         -- order read, stable across re-plans of one dump
        file_id INTEGER NOT NULL,
        line INTEGER NOT NULL,
        ident INTEGER NOT NULL,          -- identifiers.id: the raw identifier, stored once
        sort_key TEXT,                   -- JSON of the sort key's wire value, NULL when none
        size INTEGER NOT NULL            -- item size in bytes (DynamoDB's rules), or line size
    );
    CREATE TABLE quarantine (
        seq INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL,
        line INTEGER NOT NULL,
        reason TEXT NOT NULL,
        excerpt TEXT NOT NULL DEFAULT '',
        raw TEXT                         -- the identifier, when the item got that far
    );
    CREATE TABLE identifiers (
        id INTEGER PRIMARY KEY,
        raw TEXT NOT NULL UNIQUE,        -- the identifier as stored in the source table
        escaped TEXT NOT NULL,
        canonical TEXT NOT NULL,
        new_id TEXT,                     -- NULL until decided when ambiguous/orphaned/invalid
        status TEXT NOT NULL,            -- unchanged | fixed | ambiguous | orphaned | invalid
        reason TEXT NOT NULL DEFAULT '',
        items INTEGER NOT NULL,
        changes TEXT NOT NULL DEFAULT '[]',     -- JSON list of Change.to_dict()
        suspicious TEXT NOT NULL DEFAULT '[]',  -- JSON list of flags
        ref_ids TEXT NOT NULL DEFAULT '[]'      -- JSON list of reference ids matched
    );
    CREATE TABLE samples (              -- one item per identifier: its first in dump order
        ident INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        item TEXT NOT NULL
    );
    CREATE TABLE reference (canonical TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE conflicts (
        canonical TEXT NOT NULL,
        sort_key TEXT,
        records INTEGER NOT NULL,
        raws TEXT NOT NULL               -- JSON list of the raw identifiers involved
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
    );
    """,
    2: """
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,          -- append-only: the newest row of a case is in force
        case_id TEXT NOT NULL,
        kind TEXT NOT NULL,              -- ambiguous | orphaned | invalid | conflict | suspicious
        action TEXT NOT NULL,            -- same | split | drop | map | keep | accept | undo
        payload TEXT NOT NULL DEFAULT '{}',  -- JSON: {"id": ...} / {"map": {raw: id}} / {"raws": [...]}
        reason TEXT NOT NULL,
        operator TEXT NOT NULL,
        ts TEXT NOT NULL
    );
    CREATE INDEX decisions_case ON decisions(case_id, id);
    CREATE TABLE cases (                 -- derived from the plan when it completes
        id TEXT PRIMARY KEY,             -- stable: a hash of what defines the case
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        candidates TEXT NOT NULL,        -- JSON list of candidate new ids
        sort_key TEXT,                   -- conflicts: the shared sort key
        ord INTEGER NOT NULL             -- display order within the plan
    );
    CREATE INDEX cases_kind ON cases(kind, ord);
    CREATE TABLE case_members (case_id TEXT NOT NULL, ident INTEGER NOT NULL, PRIMARY KEY (case_id, ident));
    CREATE INDEX case_members_ident ON case_members(ident);
    CREATE TABLE keymaps (
        version TEXT PRIMARY KEY,        -- content hash of the entries
        built_at TEXT NOT NULL,
        operator TEXT NOT NULL,
        location TEXT,                   -- where the artifact was written, if anywhere
        summary TEXT NOT NULL            -- JSON counts
    );
    """,
    3: """
    CREATE TABLE runs (                  -- restore, verify and import runs, resumable
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,              -- restore | verify | import
        state TEXT NOT NULL,             -- running | paused | complete | failed | cancelled
        operator TEXT NOT NULL,
        keymap TEXT,                     -- keymap version used
        params TEXT NOT NULL DEFAULT '{}',
        summary TEXT,                    -- JSON: the command's --json document
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX runs_kind ON runs(kind, id);
    CREATE TABLE checkpoints (           -- how far one unit of a run got (a file, a scan segment)
        run_id INTEGER NOT NULL,
        unit TEXT NOT NULL,
        position TEXT NOT NULL DEFAULT 'null',  -- JSON: lines done, LastEvaluatedKey…
        done INTEGER NOT NULL DEFAULT 0,
        counters TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run_id, unit)
    );
    CREATE TABLE offenders (             -- verify: the keys of the first differences found
        run_id INTEGER NOT NULL,
        kind TEXT NOT NULL,              -- missing | extra | different
        key TEXT NOT NULL,               -- JSON wire-format key
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX offenders_run ON offenders(run_id, kind);
    """,
    4: """
    ALTER TABLE cases ADD COLUMN new_key TEXT;   -- conflicts: the new id their records land on now
    ALTER TABLE cases ADD COLUMN moot TEXT;      -- why a derived case no longer applies (NULL: it does)
    CREATE INDEX cases_new_key ON cases(new_key);
    INSERT OR REPLACE INTO meta(key, value) SELECT 'derive_cases', '1' WHERE EXISTS (SELECT 1 FROM cases);
    """,
}

#: Indexes dropped while a plan bulk-loads records and rebuilt after (far faster than maintaining them).
RECORD_INDEXES = {
    "records_ident": "CREATE INDEX IF NOT EXISTS records_ident ON records(ident, sort_key)",
}
IDENTIFIER_INDEXES = {
    "identifiers_canonical": "CREATE INDEX IF NOT EXISTS identifiers_canonical ON identifiers(canonical)",
    "identifiers_status": "CREATE INDEX IF NOT EXISTS identifiers_status ON identifiers(status)",
    "identifiers_new_id": "CREATE INDEX IF NOT EXISTS identifiers_new_id ON identifiers(new_id)",
    "reference_canonical": "CREATE INDEX IF NOT EXISTS reference_canonical ON reference(canonical)",
}


def utcnow() -> str:
    """Now, UTC, ISO 8601 with seconds: the one timestamp format in the workspace."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: who did what, when, with which details."""

    id: int
    ts: str
    operator: str
    action: str
    details: dict[str, Any]


class Workspace:
    """A workspace directory and its database.

    ``read_only`` opens the database with SQLite's ``mode=ro`` so nothing can change it, whatever
    code runs: the audit mode's guarantee does not rest on every caller remembering to check.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, create: bool = True) -> None:
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.read_only = read_only
        self._local = threading.local()
        if not self.db_path.exists():
            if read_only or not create:
                raise WorkspaceMissing(
                    f"no workspace at {self.path} (run `keyshift plan` or `keyshift demo` first)"
                )
            self.path.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -- connections -------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        if self.read_only:
            uri = f"{self.db_path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        else:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; only an OS crash can
            # lose the last transactions, which a re-plan recomputes.
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.row_factory = sqlite3.Row
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on error) on this thread's connection."""
        self._check_writable()
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _check_writable(self) -> None:
        if self.read_only:
            raise WorkspaceError("the workspace is open read-only (audit mode): nothing can be changed")

    # -- schema ------------------------------------------------------------------------------
    def _migrate(self) -> None:
        conn = self.connect()
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"workspace {self.path} has schema version {version}, newer than this keyshift "
                f"understands ({SCHEMA_VERSION}); upgrade keyshift"
            )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise WorkspaceError(f"workspace {self.path} needs a schema upgrade; open it once without --read-only")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-check inside the write lock: another process may have migrated meanwhile.
                if self.schema_version() >= step:
                    conn.execute("ROLLBACK")
                    continue
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if step == 2 and conn.execute("SELECT 1 FROM plans WHERE state = 'complete'").fetchone():
                    # A plan made before cases were stored: the domain derives its cases on next use.
                    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('derive_cases', '1')")
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(step),)
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        for sql in (*RECORD_INDEXES.values(), *IDENTIFIER_INDEXES.values()):
            conn.execute(sql)

    def schema_version(self) -> int:
        """The schema version stored in the database (0 for a new one)."""
        conn = self.connect()
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    # -- audit log ---------------------------------------------------------------------------
    def audit(self, operator: str, action: str, details: dict[str, Any] | None = None) -> int:
        """Append an audit entry; returns its id. Refused in read-only mode."""
        self._check_writable()
        conn = self.connect()
        cur = conn.execute(
            "INSERT INTO audit(ts, operator, action, details) VALUES (?, ?, ?, ?)",
            (utcnow(), operator, action, json.dumps(details or {}, ensure_ascii=True, default=str)),
        )
        return int(cur.lastrowid)

    def audit_log(self, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        """The newest audit entries first."""
        sql = "SELECT id, ts, operator, action, details FROM audit"
        args: tuple = ()
        if action:
            sql += " WHERE action = ?"
            args = (action,)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self.connect().execute(sql, (*args, limit)).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
