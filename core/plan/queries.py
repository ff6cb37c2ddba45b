"""Read-side of the plan: what the CLI's ``records`` command and the console screens ask for.

Paging is keyset-based (``seq > after``) on indexed columns so a page costs the same at record
one and at record one million; no query here counts or sorts the whole table unless asked to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from collections.abc import Iterable, Iterator
from typing import Any

from ..store.workspace import Workspace

__all__ = [
    "ConflictRecord",
    "conflict_records",
    "PlanRow",
    "RecordRow",
    "IdentifierRow",
    "RECORD_STATUSES",
    "RECORD_FILTERS",
    "REMAPPED",
    "latest_plan",
    "records_page",
    "count_records",
    "status_counts",
    "get_identifier",
    "identifiers_page",
]

#: Statuses a record can be filtered by: the identifier statuses plus ``quarantined``.
RECORD_STATUSES = ("unchanged", "fixed", "ambiguous", "orphaned", "invalid", "quarantined")
#: What ``records --status`` and the browser filter take: the statuses, plus ``remapped`` (not a
#: status: ``unchanged`` or ``fixed`` records whose new id reference data gives, other than their
#: canonical form).
RECORD_FILTERS = (*RECORD_STATUSES, "remapped")
#: SQL on ``identifiers`` (alias-free) for remapped identifiers.
REMAPPED = "status IN ('fixed', 'unchanged') AND new_id IS NOT canonical"


@dataclass(frozen=True)
class PlanRow:
    """The newest plan of the workspace, whatever its state."""

    id: int
    dump_uri: str
    format: str | None
    state: str
    operator: str
    started_at: str
    finished_at: str | None
    summary: dict[str, Any] | None
    rules: list[str]


@dataclass(frozen=True)
class RecordRow:
    """One planned (or quarantined) dump line, joined with its identifier's plan."""

    seq: int
    file: str
    line: int
    raw: str | None
    escaped: str
    canonical: str | None
    new_id: str | None
    status: str
    reason: str
    sort_key: Any = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    suspicious: list[str] = field(default_factory=list)
    #: A quarantined line: the start of the line as read (what the operator needs to find and fix it).
    excerpt: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form used by ``records --json`` (raw identifiers are given escaped too; a
        quarantined line also gives its ``excerpt``)."""
        from ..text.escape import escape

        extra = {"excerpt": self.excerpt} if self.status == "quarantined" else {}
        return {
            "seq": self.seq,
            "file": self.file,
            "line": self.line,
            "raw": self.raw,
            "raw_escaped": self.escaped,
            "canonical": self.canonical,
            "canonical_escaped": escape(self.canonical) if self.canonical is not None else None,
            "new_id": self.new_id,
            "status": self.status,
            "reason": self.reason,
            "sort_key": self.sort_key,
            "changes": self.changes,
            "suspicious": self.suspicious,
            **extra,
        }


@dataclass(frozen=True)
class IdentifierRow:
    """One distinct raw identifier and everything the plan knows about it."""

    raw: str
    escaped: str
    canonical: str
    new_id: str | None
    status: str
    reason: str
    items: int
    changes: list[dict[str, Any]]
    suspicious: list[str]
    ref_ids: list[str]
    sample: dict[str, Any] | None = None


def latest_plan(ws: Workspace) -> PlanRow | None:
    """The most recent plan, or ``None`` when the workspace has never been planned."""
    row = ws.connect().execute(
        "SELECT id, dump_uri, format, state, operator, started_at, finished_at, summary, rules"
        " FROM plans ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return PlanRow(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6],
        json.loads(row[7]) if row[7] else None, json.loads(row[8]),
    )


_COLUMNS = (
    "SELECT r.seq, f.uri, r.line, i.raw, i.escaped, i.canonical, i.new_id, i.status, i.reason,"
    " r.sort_key, i.changes, i.suspicious"
)
_RECORD_SQL = f"{_COLUMNS} FROM records r CROSS JOIN identifiers i ON i.id = r.ident JOIN files f ON f.id = r.file_id"
_RECORD_SQL_BY_IDENTIFIER = (
    f"{_COLUMNS} FROM identifiers i CROSS JOIN records r ON r.ident = i.id JOIN files f ON f.id = r.file_id"
)
_QUARANTINE_SQL = (
    "SELECT q.seq, f.uri, q.line, q.raw, q.reason, q.excerpt FROM quarantine q"
    " JOIN files f ON f.id = q.file_id"
)


def _where(status: str | None, identifier: str | None, search: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if status == "remapped":
        clauses.append("i.status IN ('fixed', 'unchanged') AND i.new_id IS NOT i.canonical")
    elif status:
        clauses.append("i.status = ?")
        args.append(status)
    if identifier is not None:
        clauses.append("r.ident = (SELECT id FROM identifiers WHERE raw = ?)")
        args.append(identifier)
    if search:
        # Prefix match on the canonical form through its index: an operator types "acme" and
        # finds "Acme\u200b" too (the caller normalizes the search text with the plan's rules).
        clauses.append("i.canonical >= ? AND i.canonical < ?")
        args.extend([search, search + "\U0010ffff"])
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


#: Above this many matching identifiers a search walks records in order instead of collecting them.
_BROAD_SEARCH = 2000
#: Below this many records a status is "rare": its records are collected through their identifiers.
_RARE_STATUS = 20_000


def _record_sql(conn: Any, search: str | None, status: str | None) -> str:
    """The records query, joined in the order that suits the filter.

    A narrow filter (a search few identifiers match, a status few records have) starts from the
    identifiers and reaches their records through the ``ident`` index, then sorts that handful; a
    broad one walks records in ``seq`` order and stops after a page, since matches are dense.
    ``CROSS JOIN`` pins SQLite's join order to the one chosen here. Either way a page costs
    milliseconds at a million records.
    """
    if search:
        hits = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM identifiers WHERE canonical >= ? AND canonical < ?"
            " LIMIT ?)", (search, search + "\U0010ffff", _BROAD_SEARCH + 1),
        ).fetchone()[0]
        if hits <= _BROAD_SEARCH:
            return _RECORD_SQL_BY_IDENTIFIER
    if status and _status_records(conn, status) <= _RARE_STATUS:
        return _RECORD_SQL_BY_IDENTIFIER
    return _RECORD_SQL


def _status_records(conn: Any, status: str) -> int:
    if status == "remapped":
        return conn.execute(f"SELECT coalesce(sum(items), 0) FROM identifiers WHERE {REMAPPED}").fetchone()[0]
    return conn.execute(
        "SELECT coalesce(sum(items), 0) FROM identifiers WHERE status = ?", (status,)
    ).fetchone()[0]


def records_page(
    ws: Workspace,
    *,
    status: str | None = None,
    identifier: str | None = None,
    search: str | None = None,
    after_seq: int = 0,
    before_seq: int | None = None,
    limit: int = 100,
) -> list[RecordRow]:
    """Records in dump order after ``after_seq`` (or the page ending before ``before_seq``)."""
    conn = ws.connect()
    if status == "quarantined":
        return _quarantine_page(conn, identifier, after_seq, before_seq, limit)
    where, args = _where(status, identifier, search)
    where += (" AND " if where else " WHERE ")
    base = _record_sql(conn, search, status)
    if before_seq is not None:
        sql = f"{base}{where}r.seq < ? ORDER BY r.seq DESC LIMIT ?"
        rows = conn.execute(sql, (*args, before_seq, limit)).fetchall()[::-1]
    else:
        sql = f"{base}{where}r.seq > ? ORDER BY r.seq LIMIT ?"
        rows = conn.execute(sql, (*args, after_seq, limit)).fetchall()
    return [
        RecordRow(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
            json.loads(r[9]) if r[9] else None, json.loads(r[10]), json.loads(r[11]),
        )
        for r in rows
    ]


def _quarantine_page(conn, identifier, after_seq, before_seq, limit) -> list[RecordRow]:
    from ..text.escape import escape

    clauses, args = [], []
    if identifier is not None:
        clauses.append("q.raw = ?")
        args.append(identifier)
    if before_seq is not None:
        clauses.append("q.seq < ?")
        args.append(before_seq)
        order = "DESC"
    else:
        clauses.append("q.seq > ?")
        args.append(after_seq)
        order = "ASC"
    sql = f"{_QUARANTINE_SQL} WHERE {' AND '.join(clauses)} ORDER BY q.seq {order} LIMIT ?"
    rows = conn.execute(sql, (*args, limit)).fetchall()
    if order == "DESC":
        rows = rows[::-1]
    return [
        RecordRow(r[0], r[1], r[2], r[3], escape(r[3]) if r[3] is not None else "", None, None,
                  "quarantined", r[4], None, [], [], r[5] or "")
        for r in rows
    ]


def count_records(ws: Workspace, *, status: str | None = None, search: str | None = None) -> int:
    """How many records match (a status alone is counted from identifiers; a search may scan)."""
    conn = ws.connect()
    if status == "quarantined":
        return conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    if status and not search:
        return _status_records(conn, status)
    where, args = _where(status, None, search)
    join = " JOIN identifiers i ON i.id = r.ident" if search or status else ""
    return conn.execute(f"SELECT count(*) FROM records r{join}{where}", args).fetchone()[0]


def status_counts(ws: Workspace) -> dict[str, dict[str, int]]:
    """Per status: how many identifiers and how many records (quarantined: records only), plus
    ``remapped`` (a subset of unchanged and fixed, see :data:`RECORD_FILTERS`)."""
    conn = ws.connect()
    out = {s: {"identifiers": 0, "records": 0} for s in RECORD_STATUSES}
    # Each identifier knows how many records it has: no scan of the records table.
    for status, n, items in conn.execute(
        "SELECT status, count(*), sum(items) FROM identifiers GROUP BY status"
    ):
        out.setdefault(status, {"identifiers": 0, "records": 0}).update(identifiers=n, records=items)
    out["quarantined"]["records"] = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    n, items = conn.execute(f"SELECT count(*), coalesce(sum(items), 0) FROM identifiers WHERE {REMAPPED}").fetchone()
    out["remapped"] = {"identifiers": n, "records": items}
    return out


def _identifier_row(r: Any, sample: str | None = None) -> IdentifierRow:
    return IdentifierRow(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6],
        json.loads(r[7]), json.loads(r[8]), json.loads(r[9]),
        json.loads(sample) if sample else None,
    )


_IDENT_SQL = (
    "SELECT raw, escaped, canonical, new_id, status, reason, items, changes, suspicious, ref_ids"
    " FROM identifiers"
)


def get_identifier(ws: Workspace, raw: str) -> IdentifierRow | None:
    """One identifier with a sample item, or ``None``."""
    conn = ws.connect()
    row = conn.execute(f"{_IDENT_SQL} WHERE raw = ?", (raw,)).fetchone()
    if row is None:
        return None
    sample = conn.execute(
        "SELECT item FROM samples WHERE ident = (SELECT id FROM identifiers WHERE raw = ?)", (raw,)
    ).fetchone()
    return _identifier_row(row, sample[0] if sample else None)


def identifiers_page(
    ws: Workspace, *, status: str | None = None, canonical: str | None = None,
    after_raw: str = "", limit: int = 100,
) -> list[IdentifierRow]:
    """Identifiers ordered by raw form, optionally one status or one canonical group."""
    clauses, args = ["raw > ?"], [after_raw]
    if status:
        clauses.append("status = ?")
        args.append(status)
    if canonical is not None:
        clauses.append("canonical = ?")
        args.append(canonical)
    sql = f"{_IDENT_SQL} WHERE {' AND '.join(clauses)} ORDER BY raw LIMIT ?"
    return [_identifier_row(r) for r in ws.connect().execute(sql, (*args, limit))]


# -- what later steps read of the plan (the plan's tables are written by the planner only) ------------
def _chunks(values: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """Slices of at most ``size`` values: SQLite's bound-parameter limit."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def settled_identifiers(conn: Any) -> Iterator[tuple[str, str]]:
    """(raw, new id) of every identifier the rules (and reference data) settled: unchanged or fixed."""
    yield from conn.execute("SELECT raw, new_id FROM identifiers WHERE status IN ('fixed', 'unchanged')")


def has_reference(conn: Any) -> bool:
    """Whether the plan matched reference data (its new ids then come from upstream)."""
    return conn.execute("SELECT 1 FROM reference LIMIT 1").fetchone() is not None


def settled_raws_with_new_id(conn: Any, new_id: str) -> set[str]:
    """Raw identifiers the plan itself gives ``new_id`` (unchanged or fixed)."""
    return {r[0] for r in conn.execute(
        "SELECT raw FROM identifiers WHERE new_id = ? AND status IN ('fixed', 'unchanged')", (new_id,))}


def identifier_rows(conn: Any, raws: Iterable[str]) -> list[Any]:
    """(raw, new_id, canonical, status, id) of each of ``raws`` the plan knows."""
    out: list[Any] = []
    for chunk in _chunks(list(raws)):
        out += conn.execute("SELECT raw, new_id, canonical, status, id FROM identifiers WHERE raw IN"
                            f" ({','.join('?' * len(chunk))})", chunk).fetchall()
    return out


def identifiers_on(conn: Any, key: str) -> list[Any]:
    """(raw, new_id, canonical, status, id) of the identifiers the plan puts on ``key``: settled ones
    with that new id, undecided ones with that canonical form."""
    return conn.execute(
        "SELECT raw, new_id, canonical, status, id FROM identifiers WHERE new_id = ? AND status IN"
        " ('fixed', 'unchanged') UNION SELECT raw, new_id, canonical, status, id FROM identifiers"
        " WHERE canonical = ? AND status NOT IN ('fixed', 'unchanged')", (key, key)).fetchall()


def records_by_sort_key(conn: Any, idents: Iterable[int]) -> dict[str | None, dict[int, int]]:
    """sort key -> identifier id -> how many records of those identifiers have that sort key."""
    counts: dict[str | None, dict[int, int]] = {}
    for chunk in _chunks(list(idents)):
        for sort_key, ident, n in conn.execute(
                f"SELECT sort_key, ident, count(*) FROM records WHERE ident IN ({','.join('?' * len(chunk))})"
                " GROUP BY ident, sort_key", chunk):
            counts.setdefault(sort_key, {})[ident] = n
    return counts


def superseded_lines(conn: Any) -> set[tuple[str, int]]:
    """(file, line) of dump lines repeating an item (same identifier and sort key) that a later
    line repeats again: a restore writes only the last one, so parallel batches cannot reorder them."""
    rows = conn.execute(
        "SELECT f.uri, r.line FROM records r JOIN files f ON f.id = r.file_id JOIN"
        " (SELECT ident, sort_key, max(seq) AS last FROM records GROUP BY ident, sort_key"
        "  HAVING count(*) > 1) d ON d.ident = r.ident AND d.sort_key IS r.sort_key"
        " WHERE r.seq != d.last"
    )
    return {(uri, line) for uri, line in rows}


def ambiguous_identifiers(conn: Any) -> list[tuple[int, str, list[str]]]:
    """(id, canonical, reference ids) of every ambiguous identifier, by canonical form and raw."""
    return [(r[0], r[1], json.loads(r[2])) for r in conn.execute(
        "SELECT id, canonical, ref_ids FROM identifiers WHERE status = 'ambiguous' ORDER BY canonical, raw")]


def identifiers_with_status(conn: Any, status: str) -> list[tuple[int, str, str]]:
    """(id, raw, canonical) of every identifier with ``status``, by raw."""
    return conn.execute("SELECT id, raw, canonical FROM identifiers WHERE status = ? ORDER BY raw",
                        (status,)).fetchall()


def suspicious_identifiers(conn: Any) -> list[tuple[int, str, str, list[str]]]:
    """(id, raw, canonical, flags) of every identifier flagged suspicious, by raw."""
    return [(r[0], r[1], r[2], json.loads(r[3])) for r in conn.execute(
        "SELECT id, raw, canonical, suspicious FROM identifiers WHERE suspicious != '[]' ORDER BY raw")]


def plan_conflicts(conn: Any) -> list[tuple[str, str | None, int, list[tuple[int, str, str]]]]:
    """The plan's item conflicts: (canonical form, sort key, records, [(id, raw, key)…]) where key
    is each member's new id, or its canonical form while undecided."""
    out = []
    for canonical, sort_key, n, raws in conn.execute(
            "SELECT canonical, sort_key, records, raws FROM conflicts ORDER BY canonical, sort_key").fetchall():
        names = json.loads(raws)
        members = conn.execute(
            f"SELECT id, raw, coalesce(new_id, canonical) FROM identifiers WHERE raw IN ({','.join('?' * len(names))})"
            " ORDER BY raw", names).fetchall()
        out.append((canonical, sort_key, n, [tuple(m) for m in members]))
    return out


def latest_rules(conn: Any) -> list[str]:
    """The normalization rules of the newest plan (empty when never planned)."""
    row = conn.execute("SELECT rules FROM plans ORDER BY id DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row is not None else []


def reference_ids(conn: Any, canonical: str) -> list[str]:
    """The reference data's ids for a canonical form (empty: no match, or no reference data)."""
    return sorted({r[0] for r in conn.execute("SELECT id FROM reference WHERE canonical = ?", (canonical,))})


def identifiers_colliding(conn: Any, canonical: str) -> list[tuple[str, str | None, str, str]]:
    """(raw, new_id, canonical, status) of the planned identifiers a new spelling with this canonical
    form meets: those with the same canonical form, and settled ones whose new id is that form."""
    return conn.execute(
        "SELECT raw, new_id, canonical, status FROM identifiers WHERE canonical = ? UNION"
        " SELECT raw, new_id, canonical, status FROM identifiers WHERE new_id = ? AND status IN ('fixed', 'unchanged')"
        " ORDER BY raw", (canonical, canonical)).fetchall()


def raws_with_record_on(conn: Any, new_id: str, sort_key: str | None) -> list[str]:
    """Raw identifiers the plan settles on ``new_id`` that have a record with this sort key
    (``sort_key``: its JSON as the plan stores it; None for a table without one): an item a new
    spelling mapped onto ``new_id`` would collide with."""
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT i.raw FROM identifiers i JOIN records r ON r.ident = i.id WHERE i.new_id = ?"
        " AND i.status IN ('fixed', 'unchanged') AND r.sort_key IS ? ORDER BY i.raw", (new_id, sort_key))]


@dataclass(frozen=True)
class ConflictRecord:
    """One record of an item conflict: where it is in the dump, and its item when the plan kept it.

    The plan keeps one item per identifier (its first in dump order); ``item`` is that item when it
    is this record, else None (the record is then named by its file and line).
    """

    raw: str
    file: str
    line: int
    size: int
    item: dict[str, Any] | None


def conflict_records(ws: Workspace, raws: Iterable[str], sort_key: str | None, *,
                     per_raw: int = 3) -> list[ConflictRecord]:
    """The records of ``raws`` on ``sort_key`` (a conflict's sort key as the plan stores it), at
    most ``per_raw`` of each: what an operator compares before keeping one of them."""
    conn, out = ws.connect(), []
    for raw in dict.fromkeys(raws):
        rows = conn.execute(
            "SELECT f.uri, r.line, r.size, s.item FROM identifiers i JOIN records r ON r.ident = i.id"
            " JOIN files f ON f.id = r.file_id LEFT JOIN samples s ON s.ident = i.id AND s.seq = r.seq"
            " WHERE i.raw = ? AND r.sort_key IS ? ORDER BY r.seq LIMIT ?", (raw, sort_key, per_raw)).fetchall()
        out.extend(ConflictRecord(raw, r[0], r[1], r[2], json.loads(r[3]) if r[3] else None) for r in rows)
    return out
