"""The audit log: who did what, when, with which details. Append-only and hash-chained.

An entry is written with the caller's connection, so when the caller has a transaction open the
action and its audit entry commit together or not at all.

**The chain.** Every entry stores the previous entry's hash (``prev_hash``; :data:`GENESIS`, the
empty string, for the first) and ``hash = SHA-256(prev_hash ‖ canonical JSON of the entry)``,
the canonical JSON being ``json.dumps({"id", "ts", "operator", "action", "details"},
sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` (:func:`canonical_json`), hex
digests, UTF-8. The previous entry is read and the new one inserted under SQLite's write lock:
inside the caller's ``BEGIN IMMEDIATE`` transaction (``Workspace.transaction``), or in one this
module opens when the caller has none, so two processes appending at once cannot both build on the
same entry (and ids are given explicitly, the previous id plus one, so a second entry with the
same predecessor would also break the primary key). ``meta.audit_head`` (``id:hash``) is updated
in the same transaction, so the removal of the newest entries is detected too.

:func:`verify_chain` recomputes the chain: ids consecutive from 1, each ``prev_hash`` equal to the
previous entry's hash, each hash recomputing, the last entry equal to the head. An entry edited,
deleted or reordered in the SQLite file (without recomputing every later hash and the head) is
named: ``first_broken`` is the id of the first entry that does not verify (for a deleted entry,
the missing id). What a chain cannot prove by itself: someone who rewrites the whole file
consistently (every later hash and the head); against that, compare the head hash with a copy
kept elsewhere (the control table's copy of flag entries, or a head noted from ``audit --verify``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .schema import utcnow

__all__ = ["AUDIT_BACKFILL_FLAG", "AuditEntry", "ChainReport", "GENESIS", "HEAD_KEY", "append_audit",
           "audit_facets", "backfill_chain", "canonical_json", "entry_hash", "read_audit", "read_entry",
           "verify_chain"]

#: ``prev_hash`` of the first entry.
GENESIS = ""
#: ``meta`` key holding ``"<id>:<hash>"`` of the newest entry.
HEAD_KEY = "audit_head"
#: ``meta`` flag set by the schema step that adds the chain's columns: the rows already there get
#: their hashes computed, in id order, in that step's transaction (:func:`backfill_chain`).
AUDIT_BACKFILL_FLAG = "audit_chain_backfill"


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: who did what, when, with which details; its place in the chain."""

    id: int
    ts: str
    operator: str
    action: str
    details: dict[str, Any]
    prev_hash: str | None = None
    hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``audit --json`` form."""
        return {"id": self.id, "ts": self.ts, "operator": self.operator, "action": self.action,
                "details": self.details, "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: ``entries`` in the log, ``first_broken`` the id of the first
    entry that does not verify (None when the chain is whole) and ``reason`` why; ``verified`` the
    entries before it that do; ``head_id``/``head_hash`` the newest entry verified (the log's head
    when whole: note it elsewhere to detect a consistent rewrite later)."""

    entries: int
    chain_ok: bool
    first_broken: int | None
    reason: str | None = None
    head_id: int | None = None
    head_hash: str | None = None
    verified: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The ``audit --verify --json`` document."""
        return {"entries": self.entries, "chain_ok": self.chain_ok, "first_broken": self.first_broken,
                "reason": self.reason, "verified": self.verified, "head_id": self.head_id,
                "head_hash": self.head_hash}


# -- hashing -----------------------------------------------------------------------------------
def canonical_json(entry_id: int, ts: str, operator: str, action: str, details: Any) -> str:
    """The text an entry's hash covers (keys sorted, no spaces, ASCII only)."""
    return json.dumps({"id": entry_id, "ts": ts, "operator": operator, "action": action, "details": details},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_hash(prev_hash: str, canonical: str) -> str:
    """``SHA-256(prev_hash ‖ canonical)`` as 64 hex digits."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _details_text(details: dict[str, Any] | None) -> str:
    return json.dumps(details or {}, ensure_ascii=True, default=str)


def _row_hash(prev_hash: str, entry_id: int, ts: str, operator: str, action: str, details_text: str) -> str:
    # The details as stored (after default=str), so the writer and every verifier hash the same value.
    return entry_hash(prev_hash, canonical_json(entry_id, ts, operator, action, json.loads(details_text)))


# -- writing -----------------------------------------------------------------------------------
def append_audit(conn: Any, operator: str, action: str, details: dict[str, Any] | None = None) -> int:
    """Append an entry on ``conn``, chained to the newest one; returns its id.

    In the caller's open transaction when there is one (it should be ``BEGIN IMMEDIATE``, as
    ``Workspace.transaction`` is: the write lock is then held before the previous hash is read);
    otherwise in a ``BEGIN IMMEDIATE`` transaction of its own.
    """
    if conn.in_transaction:
        return _append(conn, operator, action, details)
    conn.execute("BEGIN IMMEDIATE")
    try:
        entry_id = _append(conn, operator, action, details)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return entry_id


def _append(conn: Any, operator: str, action: str, details: dict[str, Any] | None) -> int:
    last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    entry_id = int(last[0]) + 1 if last is not None else 1
    prev_hash = (last[1] or "") if last is not None else GENESIS
    ts, text = utcnow(), _details_text(details)
    digest = _row_hash(prev_hash, entry_id, ts, operator, action, text)
    conn.execute(
        "INSERT INTO audit(id, ts, operator, action, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (entry_id, ts, operator, action, text, prev_hash, digest),
    )
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (HEAD_KEY, f"{entry_id}:{digest}"))
    return entry_id


def backfill_chain(conn: Any) -> int:
    """Compute ``prev_hash`` and ``hash`` of every entry, in id order (the schema step that adds
    the columns calls this in its transaction, so an old workspace's log is chained too); returns
    how many entries it chained."""
    prev, n, last_id = GENESIS, 0, None
    rows = conn.execute("SELECT id, ts, operator, action, details FROM audit ORDER BY id").fetchall()
    for entry_id, ts, operator, action, details in rows:
        try:
            digest = _row_hash(prev, entry_id, ts, operator, action, details)
        except ValueError:
            # Details that are not JSON (never written by keyshift): chained as text.
            digest = entry_hash(prev, canonical_json(entry_id, ts, operator, action, details))
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, entry_id))
        prev, n, last_id = digest, n + 1, entry_id
    if last_id is not None:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (HEAD_KEY, f"{last_id}:{prev}"))
    return n


# -- reading -----------------------------------------------------------------------------------
_COLUMNS = "id, ts, operator, action, details, prev_hash, hash"


def _entry(row: Any) -> AuditEntry:
    try:
        details = json.loads(row[4])
    except ValueError:
        details = {"unreadable": row[4]}
    return AuditEntry(int(row[0]), row[1], row[2], row[3], details, row[5], row[6])


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"


def read_audit(conn: Any, *, limit: int = 100, action: str | None = None, operator: str | None = None,
               before_id: int | None = None) -> list[AuditEntry]:
    """The newest entries first, ``limit`` of them, older than ``before_id`` when given (keyset
    paging). ``action`` matches the action or a dotted prefix of it (``restore`` matches
    ``restore.start``); ``operator`` matches exactly."""
    where: list[str] = []
    args: list[Any] = []
    if action:
        where.append("(action = ? OR action LIKE ? ESCAPE '\\')")
        args += [action, _like_prefix(action)]
    if operator:
        where.append("operator = ?")
        args.append(operator)
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    sql = f"SELECT {_COLUMNS} FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    return [_entry(r) for r in conn.execute(sql, (*args, limit)).fetchall()]


def read_entry(conn: Any, entry_id: int) -> AuditEntry | None:
    """One entry by id (None: there is none)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM audit WHERE id = ?", (entry_id,)).fetchone()
    return _entry(row) if row is not None else None


def audit_facets(conn: Any) -> tuple[list[str], list[str]]:
    """The distinct operators and actions in the log (for filters), each sorted."""
    operators = [r[0] for r in conn.execute("SELECT DISTINCT operator FROM audit ORDER BY operator")]
    actions = [r[0] for r in conn.execute("SELECT DISTINCT action FROM audit ORDER BY action")]
    return operators, actions


def _head(conn: Any) -> tuple[int, str] | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (HEAD_KEY,)).fetchone()
    if row is None:
        return None
    entry_id, _, digest = str(row[0]).partition(":")
    try:
        return int(entry_id), digest
    except ValueError:
        return -1, digest


def verify_chain(conn: Any) -> ChainReport:
    """Recompute the whole chain; the first entry that does not verify, and why.

    Reads only (works on a ``mode=ro`` connection). Streams the rows in id order, so memory stays
    flat whatever the log's length.
    """
    total = int(conn.execute("SELECT count(*) FROM audit").fetchone()[0])
    cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY id")
    n, prev_id, prev_hash = 0, 0, GENESIS

    def broken(entry_id: int, reason: str) -> ChainReport:
        return ChainReport(total, False, entry_id, reason, prev_id or None, prev_hash or None, n)

    for row in cursor:
        entry_id, ts, operator, action, details, stored_prev, stored_hash = row
        if entry_id != prev_id + 1:
            if entry_id <= prev_id:  # cannot happen with a primary key, but a view or a copy might
                return broken(entry_id, f"entry {entry_id} is out of order (after {prev_id})")
            return broken(prev_id + 1, f"entry {prev_id + 1} is missing"
                          + (f" (entry {prev_id} is followed by {entry_id})" if prev_id else
                             f" (the log starts at {entry_id})"))
        if stored_prev != prev_hash:
            what = f"entry {prev_id}'s hash" if prev_id else "the genesis value (the empty string)"
            return broken(entry_id, f"entry {entry_id}'s prev_hash is not {what}: an entry was removed,"
                                    " inserted or moved here")
        try:
            digest = _row_hash(prev_hash, entry_id, ts, operator, action, details)
        except (TypeError, ValueError):
            return broken(entry_id, f"entry {entry_id}'s details are not JSON: it was edited")
        if digest != stored_hash:
            return broken(entry_id, f"entry {entry_id}'s hash does not recompute: it was edited")
        n, prev_id, prev_hash = n + 1, entry_id, stored_hash
    head = _head(conn)
    if head is not None:
        head_id, head_hash = head
        if head_id > prev_id:
            return broken(prev_id + 1, f"entry {prev_id + 1} is missing: the log ends at {prev_id} but its head"
                                       f" says {head_id} entries were written")
        if head_id != prev_id or head_hash != prev_hash:
            return broken(prev_id or 1, f"the newest entry ({prev_id}) is not the recorded head"
                                        f" ({head_id}): the end of the log was rewritten")
    elif n:
        return broken(prev_id, f"the log has entries but no recorded head (meta.{HEAD_KEY} is gone), so entries"
                               f" after {prev_id} may have been removed")
    return ChainReport(total, True, None, None, prev_id or None, prev_hash or None, n)
