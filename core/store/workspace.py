"""The local workspace: a directory holding one SQLite database shared by consoles and CLIs.

WAL mode lets two consoles and a CLI read while one of them writes (pairing operators, a script
beside the console). The schema is versioned in ``meta.schema_version``; opening a workspace
written by a newer keyshift is refused rather than guessed at. Each thread gets its own
connection because sqlite3 connections must not cross threads.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import WorkspaceError, WorkspaceMissing
from .audit import AUDIT_BACKFILL_FLAG, AuditEntry, ChainReport, append_audit, backfill_chain, read_audit, verify_chain
from .schema import IDENTIFIER_INDEXES, MIGRATIONS, RECORD_INDEXES, SCHEMA_VERSION, clear_meta_flag, meta_flag, utcnow

__all__ = ["Workspace", "AuditEntry", "SCHEMA_VERSION", "DB_NAME", "IDENTIFIER_INDEXES", "RECORD_INDEXES",
           "utcnow"]

DB_NAME = "keyshift.db"


def _execute_step(conn: sqlite3.Connection, statement: str) -> None:
    """One statement of a schema step. ``ALTER TABLE … ADD COLUMN`` of a column that is there
    already is skipped (SQLite has no ``IF NOT EXISTS`` for columns; a workspace rebuilt from an
    older step, as tests simulate, may have it)."""
    try:
        conn.execute(statement)
    except sqlite3.OperationalError as exc:
        if not ("duplicate column name" in str(exc) and "ADD COLUMN" in statement.upper()):
            raise


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
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        _execute_step(conn, statement)
                if step == 2 and conn.execute("SELECT 1 FROM plans WHERE state = 'complete'").fetchone():
                    # A plan made before cases were stored: the domain derives its cases on next use.
                    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('derive_cases', '1')")
                if meta_flag(conn, AUDIT_BACKFILL_FLAG):
                    # The step that adds the audit chain: chain the entries already there, in order.
                    backfill_chain(conn)
                    clear_meta_flag(conn, AUDIT_BACKFILL_FLAG)
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
        """Append an audit entry (inside the caller's transaction, if one is open); returns its id.

        Refused in read-only mode. See :mod:`keyshift.core.store.audit`.
        """
        self._check_writable()
        return append_audit(self.connect(), operator, action, details)

    def audit_log(self, limit: int = 100, action: str | None = None, *, operator: str | None = None,
                  before_id: int | None = None) -> list[AuditEntry]:
        """The newest audit entries first (filters and paging: :func:`~keyshift.core.store.audit.read_audit`)."""
        return read_audit(self.connect(), limit=limit, action=action, operator=operator, before_id=before_id)

    def verify_audit(self) -> ChainReport:
        """Recompute the audit log's hash chain (reads only: works read-only)."""
        return verify_chain(self.connect())
