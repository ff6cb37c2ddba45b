"""Open cases: what the rules could not decide and an operator must.

Cases are derived from the plan when it completes and stored (``cases``, ``case_members``) so that
listing, fetching one case and deciding stay fast at a million records. Kinds: an ambiguous group
(one canonical form with several raw identifiers, several reference ids, or one reference id for
several canonical forms), an orphaned or invalid identifier, an item conflict (two records on one
canonical form and sort key), a suspicious identifier, and an unmapped identifier (a raw identifier
first seen on the stream after the plan, whose records are held: :mod:`.unmapped`). A case's id is a hash of what defines it,
so it is stable across re-plans and across workspaces that share the identifiers: decisions
exported from one apply to the other. Decisions live in their own table and are joined in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import KeyshiftError
from ..plan import queries
from ..store.schema import clear_meta_flag, meta_flag
from ..store.workspace import Workspace

__all__ = ["AUTO_OPERATOR_PREFIX", "KINDS", "STATUSES", "Member", "Case", "CaseError", "case_id", "list_cases", "get_case",
           "get_cases", "materialize_cases", "progress"]

#: Every case kind, in the order the queue shows them.
KINDS = ("ambiguous", "orphaned", "invalid", "conflict", "suspicious", "unmapped")
#: Decisions by keyshift itself (``[stream] new_identifiers = "rule"``) carry this operator prefix.
AUTO_OPERATOR_PREFIX = "keyshift:"
#: A case's status: an operator must decide it, did, or a decision took it away (derived cases).
STATUSES = ("open", "decided", "moot")


class CaseError(KeyshiftError):
    """No such case, or a decision that does not fit it."""

    title = "Cannot decide"


@dataclass(frozen=True)
class Member:
    """One raw identifier of a case, with what the plan knows about it."""

    raw: str
    escaped: str
    canonical: str
    items: int
    changes: list[dict[str, Any]]
    suspicious: list[str]
    ref_ids: list[str]
    sample: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``raw`` is also given escaped (``raw_escaped``) for reading."""
        return {
            "raw": self.raw, "raw_escaped": self.escaped, "canonical": self.canonical,
            "items": self.items, "changes": [c.get("description") for c in self.changes],
            "suspicious": self.suspicious, "ref_ids": self.ref_ids, "sample": self.sample,
        }


@dataclass
class Case:
    """One thing to decide. ``decision`` is the decision in force (None: open)."""

    id: str
    kind: str
    title: str
    members: list[Member]
    candidates: list[str]
    sort_key: str | None = None
    decision: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    moot: str | None = None  # why this derived case no longer applies (a decision took it away)
    new_key: str | None = None  # conflicts: the new id its records land on now
    details: dict[str, Any] | None = None  # unmapped: collisions and held records (see .unmapped)

    @property
    def status(self) -> str:
        """``open``, ``decided`` or ``moot`` (derived from the plan, then taken away by decisions)."""
        if self.moot is not None:
            return "moot"
        return "decided" if self.decision is not None else "open"

    @property
    def is_open(self) -> bool:
        """Whether an operator must still decide this case (moot and decided cases are not open)."""
        return self.status == "open"

    def to_dict(self) -> dict[str, Any]:
        """The ``resolve list --json`` form of a case."""
        return {
            "id": self.id, "kind": self.kind, "status": self.status, "title": self.title,
            "members": [m.to_dict() for m in self.members], "candidates": self.candidates,
            "sort_key": self.sort_key, "decision": self.decision, "moot": self.moot,
            "new_key": self.new_key, "auto": bool(self.decision and self.decision.get("auto")),
            **(self.details or {}),
        }


def case_id(kind: str, *parts: str | None) -> str:
    """Stable id: kind prefix + the first 12 hex digits of SHA-256 over the defining values."""
    digest = hashlib.sha256("\x00".join(p or "" for p in (kind, *parts)).encode("utf-8", "surrogatepass"))
    return f"{kind[:3]}-{digest.hexdigest()[:12]}"


# -- deriving (once per plan) ---------------------------------------------------------------------
def materialize_cases(conn: Any) -> int:
    """Derive every case from the plan's tables and store them; returns how many."""
    conn.execute("DELETE FROM case_members")
    conn.execute("DELETE FROM cases")
    rows: list[tuple] = []
    members: list[tuple[str, int]] = []

    def add(cid: str, kind: str, title: str, candidates: list[str], idents: Iterable[int],
            sort_key: str | None = None, new_key: str | None = None) -> None:
        rows.append((cid, kind, title, json.dumps(candidates), sort_key, len(rows), new_key))
        members.extend((cid, ident) for ident in dict.fromkeys(idents))

    for group in _ambiguous_groups(conn):
        refs = sorted({r for _, _, ref_ids in group for r in ref_ids})
        canonicals = sorted({c for _, c, _ in group})
        title = (f"{len(group)} raw form(s) of one canonical form" if len(canonicals) == 1
                 else f"{len(canonicals)} canonical forms share reference id(s)")
        add(case_id("ambiguous", *canonicals), "ambiguous", title, refs or canonicals, [g[0] for g in group])
    for kind, title in (("orphaned", "no reference match"), ("invalid", "canonical form unusable as a key")):
        for ident, raw, canonical in queries.identifiers_with_status(conn, kind):
            add(case_id(kind, raw), kind, title, [canonical] if kind == "orphaned" else [], [ident])
    for canonical, sort_key, n, members_on_key in queries.plan_conflicts(conn):
        add(case_id("conflict", canonical, sort_key), "conflict", f"{n} records on one new key",
            [m[1] for m in members_on_key], [m[0] for m in members_on_key], sort_key,
            members_on_key[0][2] if members_on_key else canonical)
    for ident, raw, canonical, flags in queries.suspicious_identifiers(conn):
        add(case_id("suspicious", raw), "suspicious", "; ".join(flags), [canonical], [ident])
    conn.executemany("INSERT OR IGNORE INTO cases(id, kind, title, candidates, sort_key, ord, new_key)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("INSERT OR IGNORE INTO case_members(case_id, ident) VALUES (?, ?)", members)
    # Identifiers first seen on the stream outlive a re-plan too (unless the new plan has them).
    from .unmapped import derive_unmapped

    derive_unmapped(conn)
    # Decisions outlive a re-plan: the conflicts they change are derived again under them.
    from .conflicts import refresh_all
    from .decisions import overrides_in

    overrides = overrides_in(conn)
    refresh_all(conn, overrides.by_raw, overrides.by_id)
    clear_meta_flag(conn, "derive_cases")
    return len(rows)


def _ambiguous_groups(conn: Any) -> list[list[tuple[int, str, list[str]]]]:
    """Ambiguous identifiers grouped into one case per decision problem: identifiers sharing a
    canonical form, and canonical forms sharing a reference id (union-find over both)."""
    rows = queries.ambiguous_identifiers(conn)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _, canonical, ref_ids in rows:
        for ref in ref_ids:
            parent[find("c:" + canonical)] = find("r:" + ref)
    groups: dict[str, list[tuple[int, str, list[str]]]] = {}
    for row in rows:
        groups.setdefault(find("c:" + row[1]), []).append(row)
    return sorted(groups.values(), key=lambda g: g[0][1])


# -- reading --------------------------------------------------------------------------------------
_MEMBER_COLUMNS = "i.raw, i.escaped, i.canonical, i.items, i.changes, i.suspicious, i.ref_ids"


def _member(row: Any, sample: str | None = None) -> Member:
    return Member(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]),
                  json.loads(row[6]), json.loads(sample) if sample else None)


def _load(ws: Workspace, where: str, args: tuple, *, samples: bool) -> list[Case]:
    """Cases matching ``where`` (on ``cases c``), members and decisions attached."""
    _ensure_derived(ws)
    return load_cases(ws.connect(), where, args, samples=samples, details=True)


def load_cases(conn: Any, where: str = "", args: tuple = (), *, samples: bool = False,
               details: bool = False) -> list[Case]:
    """:func:`_load` on a connection (inside a caller's transaction; no upgrade check).
    ``details``: an unmapped case's collisions and held counts (reading decisions: not needed)."""
    cases: dict[str, Case] = {}
    for cid, kind, title, candidates, sort_key, moot, new_key in conn.execute(
        f"SELECT c.id, c.kind, c.title, c.candidates, c.sort_key, c.moot, c.new_key FROM cases c {where}"
        " ORDER BY c.ord", args
    ):
        cases[cid] = Case(cid, kind, title, [], json.loads(candidates), sort_key, moot=moot, new_key=new_key)
    if not cases:
        return []
    sample_col = ", s.item" if samples else ", NULL"
    sample_join = " LEFT JOIN samples s ON s.ident = i.id" if samples else ""
    for row in conn.execute(
        f"SELECT cm.case_id, {_MEMBER_COLUMNS}{sample_col} FROM cases c"
        f" JOIN case_members cm ON cm.case_id = c.id JOIN identifiers i ON i.id = cm.ident{sample_join}"
        f" {where} ORDER BY c.ord, i.raw", args
    ):
        cases[row[0]].members.append(_member(row[1:8], row[8]))
    if any(c.kind == "unmapped" for c in cases.values()):
        # Their member is not a planned identifier: case_members holds minus its unmapped_identifiers
        # id (planned identifiers' ids are positive), so the join above never meets it.
        for row in conn.execute(
            "SELECT cm.case_id, u.raw, u.escaped, u.canonical, (SELECT count(*) FROM held_records h WHERE"
            " h.raw = u.raw), u.changes, u.suspicious, u.ref_ids FROM cases c JOIN case_members cm ON"
            f" cm.case_id = c.id JOIN unmapped_identifiers u ON u.id = -cm.ident {where} ORDER BY c.ord", args
        ):
            cases[row[0]].members.append(_member(row[1:8], _held_sample(conn, row[1]) if samples else None))
    _attach_decisions(conn, cases, where, args)
    if details and any(c.kind == "unmapped" for c in cases.values()):
        from .decisions import overrides_in
        from .unmapped import unmapped_details

        by_raw = overrides_in(conn).by_raw
        for case in cases.values():
            if case.kind == "unmapped" and case.members:
                case.details = unmapped_details(conn, case.members[0], by_raw)
    return list(cases.values())


def _held_sample(conn: Any, raw: str) -> str | None:
    """An unmapped identifier's sample: the newest image (or key) among its held records."""
    row = conn.execute("SELECT record FROM held_records WHERE raw = ? ORDER BY seq DESC LIMIT 1", (raw,)).fetchone()
    if row is None:
        return None
    body = json.loads(row[0])
    return json.dumps(body.get("NewImage") or body.get("Keys"))


def _attach_decisions(conn: Any, cases: dict[str, Case], where: str, args: tuple) -> None:
    for row in conn.execute(
        "SELECT d.id, d.case_id, d.action, d.payload, d.reason, d.operator, d.ts FROM decisions d"
        f" WHERE d.case_id IN (SELECT c.id FROM cases c {where}) ORDER BY d.id", args
    ):
        case = cases[row[1]]
        entry = {"decision_id": row[0], "action": row[2], "payload": json.loads(row[3]),
                 "reason": row[4], "operator": row[5], "ts": row[6],
                 "auto": row[5].startswith(AUTO_OPERATOR_PREFIX)}
        case.history.append(entry)
        case.decision = None if row[2] == "undo" else entry
    for case in cases.values():
        if case.kind == "conflict" and case.decision is not None and case.moot is None \
                and case.decision["payload"].get("raw") not in {m.raw for m in case.members}:
            # Its survivor is no longer one of the records on this key (a later decision moved it):
            # the conflict needs deciding again. The stale decision stays in the history.
            case.decision = None


def _ensure_derived(ws: Workspace) -> None:
    """Derive the cases again when a schema upgrade asked for it (the store cannot: it imports no
    domain code). Refused in read-only mode, like the upgrade itself."""
    conn = ws.connect()
    if not meta_flag(conn, "derive_cases"):
        return
    if ws.read_only:
        raise CaseError(f"workspace {ws.path} was upgraded and its cases must be derived again: open it once"
                        " without --read-only", title="Workspace needs a refresh")
    with ws.transaction() as tx:
        if meta_flag(tx, "derive_cases"):
            materialize_cases(tx)


def list_cases(ws: Workspace, *, kind: str | None = None, open_only: bool = False,
               samples: bool = False) -> list[Case]:
    """Every case of the current plan (of one ``kind``), open ones first, with decisions attached.

    ``samples`` also loads each member's sample item (the CLI's ``--json`` and the console's
    detail pane want them; counting and deciding do not).
    """
    if kind is not None and kind not in KINDS:
        raise CaseError(f"unknown case kind {kind!r} (known: {', '.join(KINDS)})")
    where, args = ("WHERE c.kind = ?", (kind,)) if kind else ("", ())
    cases = _load(ws, where, args, samples=samples)
    if open_only:
        cases = [c for c in cases if c.is_open]
    cases.sort(key=lambda c: (("open", "decided", "moot").index(c.status), KINDS.index(c.kind)))
    return cases


def get_cases(ws: Workspace, ids: list[str], *, samples: bool = False) -> list[Case]:
    """The cases with these ids (unknown ids are left out), in plan order."""
    if not ids:
        return []
    cases: list[Case] = []
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        chunk = ids[start:start + 500]
        cases += _load(ws, f"WHERE c.id IN ({','.join('?' * len(chunk))})", tuple(chunk), samples=samples)
    return cases


def get_case(ws: Workspace, cid: str) -> Case:
    """One case by id, with samples; :class:`CaseError` (exit 2) when the plan has no such case."""
    found = get_cases(ws, [cid], samples=True)
    if not found:
        raise CaseError(f"no case {cid!r} in this plan (see `keyshift resolve list`)")
    return found[0]


def progress(ws: Workspace) -> tuple[int, int]:
    """(closed, total) cases for progress lines: closed is decided or moot. Cheap enough to poll
    (a conflict whose survivor left it counts as closed here until the cases are read)."""
    _ensure_derived(ws)
    row = ws.connect().execute(
        "SELECT count(*), coalesce(sum(c.moot IS NOT NULL OR (d.action IS NOT NULL AND d.action != 'undo')), 0)"
        " FROM cases c LEFT JOIN decisions d ON d.id = (SELECT max(id) FROM decisions WHERE case_id = c.id)"
    ).fetchone()
    return int(row[1]), int(row[0])


# -- writing conflict cases (the conflicts module decides what; this module owns the tables) ----------
def conflict_cases_touching(conn: Any, keys: list[str], idents: set[int]) -> dict[str, dict[str, Any]]:
    """Conflict cases on one of the new ``keys`` or with a member among ``idents``:
    id -> {"sort_key", "ord", "moot", "members" (set of identifier ids)}."""
    found: dict[str, dict[str, Any]] = {}

    def take(rows: Iterable[Any]) -> None:
        for cid, sort_key, ord_, moot in rows:
            found[cid] = {"sort_key": sort_key, "ord": ord_, "moot": moot, "members": set()}

    for chunk in queries._chunks(keys):
        take(conn.execute("SELECT id, sort_key, ord, moot FROM cases WHERE kind = 'conflict' AND new_key IN"
                          f" ({','.join('?' * len(chunk))})", chunk))
    for chunk in queries._chunks(sorted(idents)):
        take(conn.execute(
            "SELECT id, sort_key, ord, moot FROM cases WHERE kind = 'conflict' AND id IN (SELECT case_id FROM"
            f" case_members WHERE ident IN ({','.join('?' * len(chunk))}))", chunk))
    for chunk in queries._chunks(list(found)):
        for cid, ident in conn.execute(f"SELECT case_id, ident FROM case_members WHERE case_id IN"
                                       f" ({','.join('?' * len(chunk))})", chunk):
            found[cid]["members"].add(ident)
    return found


def save_conflict_case(conn: Any, cid: str, *, title: str, raws: list[str], sort_key: str | None,
                       new_key: str, idents: Iterable[int]) -> bool:
    """Create or update a live conflict case (members replaced); True when it is new."""
    exists = conn.execute("SELECT 1 FROM cases WHERE id = ?", (cid,)).fetchone() is not None
    if exists:
        conn.execute("UPDATE cases SET new_key = ?, moot = NULL, title = ?, candidates = ? WHERE id = ?",
                     (new_key, title, json.dumps(raws), cid))
        conn.execute("DELETE FROM case_members WHERE case_id = ?", (cid,))
    else:
        ord_ = conn.execute("SELECT coalesce(max(ord), -1) + 1 FROM cases").fetchone()[0]
        conn.execute("INSERT INTO cases(id, kind, title, candidates, sort_key, ord, new_key)"
                     " VALUES (?, 'conflict', ?, ?, ?, ?, ?)", (cid, title, json.dumps(raws), sort_key, ord_, new_key))
    conn.executemany("INSERT INTO case_members(case_id, ident) VALUES (?, ?)", [(cid, i) for i in sorted(idents)])
    return not exists


def save_unmapped_case(conn: Any, raw: str, unmapped_id: int, candidates: list[str], title: str) -> bool:
    """Create (or refresh the candidates of) the ``unmapped`` case of a raw identifier first seen on
    the stream (``unmapped_id``: its ``unmapped_identifiers`` row); True when it is new."""
    cid = case_id("unmapped", raw)
    if conn.execute("SELECT 1 FROM cases WHERE id = ?", (cid,)).fetchone() is not None:
        conn.execute("UPDATE cases SET candidates = ?, title = ? WHERE id = ?", (json.dumps(candidates), title, cid))
        return False
    ord_ = conn.execute("SELECT coalesce(max(ord), -1) + 1 FROM cases").fetchone()[0]
    conn.execute("INSERT INTO cases(id, kind, title, candidates, sort_key, ord, new_key)"
                 " VALUES (?, 'unmapped', ?, ?, NULL, ?, NULL)", (cid, title, json.dumps(candidates), ord_))
    conn.execute("INSERT OR IGNORE INTO case_members(case_id, ident) VALUES (?, ?)", (cid, -unmapped_id))
    return True


def drop_unmapped_case(conn: Any, raw: str) -> None:
    """Forget the ``unmapped`` case of ``raw`` (a new plan knows the identifier: its own case applies)."""
    cid = case_id("unmapped", raw)
    conn.execute("DELETE FROM case_members WHERE case_id = ?", (cid,))
    conn.execute("DELETE FROM cases WHERE id = ?", (cid,))


def set_moot(conn: Any, cid: str, reason: str) -> None:
    """Mark a derived case moot: a decision took it away (``reason`` says how)."""
    conn.execute("UPDATE cases SET moot = ? WHERE id = ?", (reason, cid))
