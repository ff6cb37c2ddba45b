"""Open cases: what the rules could not decide and an operator must.

Cases are derived from the plan, never stored: an ambiguous group (one canonical form, several raw
identifiers or several reference ids), an orphaned or invalid identifier, an item conflict (two
records on one canonical form and sort key) and a suspicious identifier. A case's id is a hash of
what defines it (the canonical form, the raw identifier…), so it is stable across re-plans and
across workspaces that share the identifier: decisions exported from one apply to the other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .errors import KeyshiftError
from .workspace import Workspace

__all__ = ["KINDS", "Member", "Case", "CaseError", "case_id", "list_cases", "get_case"]

#: Every case kind, in the order the queue shows them.
KINDS = ("ambiguous", "orphaned", "invalid", "conflict", "suspicious")


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

    @property
    def status(self) -> str:
        """``open`` or ``decided``."""
        return "decided" if self.decision is not None else "open"

    def to_dict(self) -> dict[str, Any]:
        """The ``resolve list --json`` form of a case."""
        return {
            "id": self.id, "kind": self.kind, "status": self.status, "title": self.title,
            "members": [m.to_dict() for m in self.members], "candidates": self.candidates,
            "sort_key": self.sort_key, "decision": self.decision,
        }


def case_id(kind: str, *parts: str | None) -> str:
    """Stable id: kind prefix + the first 12 hex digits of SHA-256 over the defining values."""
    digest = hashlib.sha256("\x00".join(p or "" for p in (kind, *parts)).encode("utf-8", "surrogatepass"))
    return f"{kind[:3]}-{digest.hexdigest()[:12]}"


_MEMBER_SQL = (
    "SELECT i.raw, i.escaped, i.canonical, i.items, i.changes, i.suspicious, i.ref_ids, s.item"
    " FROM identifiers i LEFT JOIN samples s ON s.ident = i.id"
)


def _member(row: Any) -> Member:
    return Member(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]),
                  json.loads(row[6]), json.loads(row[7]) if row[7] else None)


def _derive(ws: Workspace, kind: str | None) -> list[Case]:
    conn = ws.connect()
    cases: list[Case] = []
    if kind in (None, "ambiguous"):
        for members in _ambiguous_groups(conn):
            refs = sorted({r for m in members for r in m.ref_ids})
            canonicals = sorted({m.canonical for m in members})
            title = (f"{len(members)} raw form(s) of one canonical form" if len(canonicals) == 1
                     else f"{len(canonicals)} canonical forms share reference id(s)")
            cases.append(Case(case_id("ambiguous", *canonicals), "ambiguous", title, members,
                              refs or canonicals))
    for single in ("orphaned", "invalid"):
        if kind in (None, single):
            for row in conn.execute(f"{_MEMBER_SQL} WHERE i.status = ? ORDER BY i.raw", (single,)):
                m = _member(row)
                title = "no reference match" if single == "orphaned" else "canonical form unusable as a key"
                cases.append(Case(case_id(single, m.raw), single, title, [m],
                                  [m.canonical] if single == "orphaned" else []))
    if kind in (None, "conflict"):
        for canonical, sort_key, n, raws in conn.execute(
            "SELECT canonical, sort_key, records, raws FROM conflicts ORDER BY canonical, sort_key"
        ):
            names = json.loads(raws)
            marks = ",".join("?" * len(names))
            members = [_member(r) for r in conn.execute(f"{_MEMBER_SQL} WHERE i.raw IN ({marks})", names)]
            cases.append(Case(case_id("conflict", canonical, sort_key), "conflict",
                              f"{n} records on one new key", members, [m.raw for m in members],
                              sort_key=sort_key))
    if kind in (None, "suspicious"):
        for row in conn.execute(f"{_MEMBER_SQL} WHERE i.suspicious != '[]' ORDER BY i.raw"):
            m = _member(row)
            cases.append(Case(case_id("suspicious", m.raw), "suspicious", "; ".join(m.suspicious), [m],
                              [m.canonical]))
    return cases


def _ambiguous_groups(conn: Any) -> list[list[Member]]:
    """Ambiguous identifiers grouped into one case per decision problem: identifiers sharing a
    canonical form, and canonical forms sharing a reference id (union-find over both)."""
    members = [_member(r) for r in conn.execute(
        f"{_MEMBER_SQL} WHERE i.status = 'ambiguous' ORDER BY i.canonical, i.raw")]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for m in members:
        for ref in m.ref_ids:
            parent[find("c:" + m.canonical)] = find("r:" + ref)
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(find("c:" + m.canonical), []).append(m)
    return sorted(groups.values(), key=lambda g: (g[0].canonical, g[0].raw))


def _attach_decisions(ws: Workspace, cases: list[Case]) -> None:
    by_id = {c.id: c for c in cases}
    for row in ws.connect().execute(
        "SELECT id, case_id, action, payload, reason, operator, ts FROM decisions ORDER BY id"
    ):
        case = by_id.get(row[1])
        if case is None:
            continue  # a decision for a case this plan no longer has (kept, shown by export)
        entry = {"decision_id": row[0], "action": row[2], "payload": json.loads(row[3]),
                 "reason": row[4], "operator": row[5], "ts": row[6]}
        case.history.append(entry)
        case.decision = None if row[2] == "undo" else entry


def list_cases(ws: Workspace, *, kind: str | None = None, open_only: bool = False) -> list[Case]:
    """Every case of the current plan (of one ``kind``), open ones first, with decisions attached."""
    if kind is not None and kind not in KINDS:
        raise CaseError(f"unknown case kind {kind!r} (known: {', '.join(KINDS)})")
    cases = _derive(ws, kind)
    _attach_decisions(ws, cases)
    if open_only:
        cases = [c for c in cases if c.decision is None]
    cases.sort(key=lambda c: (c.decision is not None, KINDS.index(c.kind)))
    return cases


def get_case(ws: Workspace, cid: str) -> Case:
    """One case by id; :class:`CaseError` (exit 2) when the plan has no such case."""
    kind = next((k for k in KINDS if cid.startswith(k[:3] + "-")), None)
    if kind is not None:
        for case in list_cases(ws, kind=kind):
            if case.id == cid:
                return case
    raise CaseError(f"no case {cid!r} in this plan (see `keyshift resolve list`)")
