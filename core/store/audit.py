"""The audit log: who did what, when, with which details. Append-only.

An entry is written with the caller's connection, so when the caller has a transaction open the
action and its audit entry commit together or not at all (the cut-over's hash chain relies on it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .schema import utcnow

__all__ = ["AuditEntry", "append_audit", "read_audit"]


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: who did what, when, with which details."""

    id: int
    ts: str
    operator: str
    action: str
    details: dict[str, Any]


def append_audit(conn: Any, operator: str, action: str, details: dict[str, Any] | None = None) -> int:
    """Append an entry on ``conn`` (in its open transaction, if any); returns its id."""
    cur = conn.execute(
        "INSERT INTO audit(ts, operator, action, details) VALUES (?, ?, ?, ?)",
        (utcnow(), operator, action, json.dumps(details or {}, ensure_ascii=True, default=str)),
    )
    return int(cur.lastrowid)


def read_audit(conn: Any, *, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
    """The newest entries first (of one ``action``, when given)."""
    sql = "SELECT id, ts, operator, action, details FROM audit"
    args: tuple = ()
    if action:
        sql += " WHERE action = ?"
        args = (action,)
    sql += " ORDER BY id DESC LIMIT ?"
    rows = conn.execute(sql, (*args, limit)).fetchall()
    return [AuditEntry(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
