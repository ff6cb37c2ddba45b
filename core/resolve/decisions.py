"""Operators' decisions on cases: validated, append-only, each with who, when and why.

A later decision on a case supersedes the earlier one (history is kept); ``undo`` is a decision
too, reopening the case. A decision that would give two different entities one new id is refused
with the identifiers involved named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..store.workspace import Workspace, utcnow
from .cases import Case, CaseError
from .new_ids import new_id_problem
from ..plan.queries import settled_raws_with_new_id
from ..text.escape import escape

__all__ = ["ACTIONS", "Decision", "Overrides", "decide", "default_primary", "undo", "effective_overrides",
           "assignments", "latest_decision_id"]

#: Which actions each case kind takes (``undo`` applies to every kind).
ACTIONS: dict[str, tuple[str, ...]] = {
    "ambiguous": ("same", "split", "drop"),
    "orphaned": ("map", "keep", "drop"),
    "invalid": ("map", "drop"),
    "conflict": ("keep",),
    "suspicious": ("accept", "map"),
    # A raw identifier first seen on the stream: a new id of its own, an existing one, or drop.
    "unmapped": ("map", "same", "drop"),
}


@dataclass(frozen=True)
class Decision:
    """A recorded decision."""

    id: int
    case_id: str
    kind: str
    action: str
    payload: dict[str, Any]
    reason: str
    operator: str
    ts: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _plan_rules(ws: Workspace) -> tuple[str, ...]:
    """The normalization rules of the workspace's plan: what a new id must already satisfy."""
    from ..plan.queries import latest_plan

    plan = latest_plan(ws)
    return tuple(plan.rules) if plan is not None else ()


class _IdCheck:
    """Checks every new id of one decision against the plan's rules (see :mod:`.new_ids`)."""

    def __init__(self, ws: Workspace, case: Case, allow_suspicious: bool) -> None:
        self.rules = _plan_rules(ws)
        # What the rules or upstream produced for this case may be suspicious without a say-so.
        self.allowed = {m.canonical for m in case.members} | set(case.candidates)
        self.allow_suspicious = allow_suspicious

    def __call__(self, new_id: str | None, what: str) -> str:
        if new_id is None or not new_id.strip():
            raise CaseError(f"{what}: a new id is required (--id)")
        problem = new_id_problem(new_id, rules=self.rules, allowed=self.allowed,
                                 allow_suspicious=self.allow_suspicious)
        if problem is not None:
            raise CaseError(f"{what}: {problem}")
        return new_id


def default_primary(case: Case) -> str:
    """The raw spelling a ``same`` decision sends writes back to when the operator names none:
    the member with the most items; on a tie the one closest to the canonical form (equal to it,
    then the fewest changes by the rules), then the smallest raw (deterministic)."""
    return min(case.members, key=lambda m: (-m.items, m.raw != m.canonical, len(m.changes), m.raw)).raw


def assignments(case: Case, action: str, payload: dict[str, Any]) -> dict[str, str | None]:
    """What a decision does to identifiers: raw -> new id (None: dropped). Conflicts and
    ``accept`` assign nothing new."""
    members = [m.raw for m in case.members]
    if action == "same":
        return dict.fromkeys(members, payload["id"])
    if action == "split":
        return dict(payload["map"])
    if action == "drop":
        out: dict[str, str | None] = dict.fromkeys(payload["raws"], None)
        rest = [m for m in members if m not in out]
        if case.kind == "ambiguous" and len(rest) == 1 and len(case.candidates) == 1:
            # One raw form left and one candidate: nothing ambiguous remains.
            out[rest[0]] = case.candidates[0]
        return out
    if action == "map":
        return dict.fromkeys(members, payload["id"])
    if action == "keep" and case.kind == "orphaned":
        return {m.raw: m.canonical for m in case.members}
    return {}


class Overrides:
    """raw -> new id (None: dropped) from decisions in force, with the reverse index the
    collision check needs (new id -> raws), kept in step as decisions are added."""

    def __init__(self, by_raw: dict[str, str | None]) -> None:
        self.by_raw = dict(by_raw)
        self.by_id: dict[str, set[str]] = {}
        for raw, new_id in self.by_raw.items():
            if new_id is not None:
                self.by_id.setdefault(new_id, set()).add(raw)

    def update(self, assigned: dict[str, str | None]) -> None:
        """Apply a decision's assignments."""
        for raw, new_id in assigned.items():
            old = self.by_raw.get(raw)
            if old is not None:
                self.by_id.get(old, set()).discard(raw)
            self.by_raw[raw] = new_id
            if new_id is not None:
                self.by_id.setdefault(new_id, set()).add(raw)

    def holders(self, new_id: str, base: set[str]) -> set[str]:
        """Raws landing on ``new_id``: ``base`` (the plan's) unless overridden, plus overrides."""
        kept = {r for r in base if self.by_raw.get(r, new_id) == new_id}
        return kept | self.by_id.get(new_id, set())


def effective_overrides(ws: Workspace) -> Overrides:
    """raw -> new id (None: dropped) from every decision in force, later ones winning."""
    from .cases import get_cases

    get_cases(ws, [])  # the upgrade check of the readers, before reading on the connection
    return overrides_in(ws.connect())


def overrides_in(conn: Any) -> Overrides:
    """:func:`effective_overrides` on a connection (inside a caller's transaction)."""
    from .cases import load_cases

    # Only cases with a decision row matter: cost follows the number of decisions, not cases.
    ids = [r[0] for r in conn.execute("SELECT DISTINCT case_id FROM decisions")]
    out: dict[str, tuple[int, str | None]] = {}
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        chunk = ids[start:start + 500]
        for case in load_cases(conn, f"WHERE c.id IN ({','.join('?' * len(chunk))})", tuple(chunk)):
            d = case.decision
            if d is None:
                continue
            for raw, new_id in assignments(case, d["action"], d["payload"]).items():
                if raw not in out or out[raw][0] < d["decision_id"]:
                    out[raw] = (d["decision_id"], new_id)
    return Overrides({raw: v[1] for raw, v in out.items()})


def _quoted(raw: str) -> str:
    """An identifier in a message: its escaped form in quotes, what --raw and the dialogs read back
    (a JSON or repr form says ``\\t`` or ``\\"``, which they refuse)."""
    return f'"{escape(raw)}"'


def _collisions(ws: Workspace, case: Case, assigned: dict[str, str | None],
                overrides: Overrides | None = None) -> list[str]:
    """Raw identifiers outside ``case`` that already land on one of ``assigned``'s new ids."""
    members = {m.raw for m in case.members}
    if overrides is None:
        overrides = effective_overrides(ws)
    conn = ws.connect()
    found: list[str] = []
    for new_id in sorted({v for v in assigned.values() if v is not None}):
        base = settled_raws_with_new_id(conn, new_id)
        for raw in sorted(overrides.holders(new_id, base) - members):
            # The escaped form (never repr or JSON: "\t", "\"") is what --raw and the dialogs read back.
            found.append(f"'{escape(new_id)}' is already the new id of {_quoted(raw)}")
    return found


def decide(ws: Workspace, case: Case, action: str, *, reason: str, operator: str,
           new_id: str | None = None, mapping: dict[str, str] | None = None,
           raws: list[str] | None = None, primary: str | None = None,
           overrides: Overrides | None = None, allow_suspicious: bool = False) -> Decision:
    """Validate and record a decision on ``case``; raises :class:`CaseError` with the reason.

    Every new id must pass :func:`~keyshift.core.resolve.new_ids.new_id_problem` under the plan's
    rules; ``allow_suspicious`` accepts a suspicious one (recorded in the payload).
    ``overrides`` (from :func:`effective_overrides`) saves recomputing every decision in force
    when many decisions are made in a row (bulk); it is updated with this decision's effect.
    ``primary`` (``same`` only) names the member spelling that reverse sync writes back to; without
    it :func:`default_primary` picks one. Either way it is recorded in the payload as ``primary``.
    """
    if not reason or not reason.strip():
        raise CaseError("a reason is required (--reason)")
    if case.moot is not None:
        raise CaseError(f"case {case.id} is moot ({case.moot}): there is nothing to decide")
    allowed = ACTIONS[case.kind]
    if action not in allowed:
        raise CaseError(f"{case.kind} case {case.id} takes {', '.join(allowed)} or undo, not {action!r}")
    members = [m.raw for m in case.members]
    payload: dict[str, Any] = {}
    check_id = _IdCheck(ws, case, allow_suspicious)
    if primary is not None and (action != "same" or case.kind == "unmapped"):
        raise CaseError(f"{case.kind} {action}: only a `same` decision on planned spellings names a primary"
                        " spelling (--primary); an identifier first seen on the stream joins an existing"
                        " id, whose primary stays")
    if case.kind == "unmapped" and action == "same":
        if overrides is None:
            overrides = effective_overrides(ws)
        payload.update(_unmapped_same(ws, case, new_id, raws, overrides, check_id))
    elif action in ("same", "map"):
        payload["id"] = check_id(new_id, action)
    if action == "same" and case.kind != "unmapped":
        if primary is not None and primary not in members:
            raise CaseError(f"same: primary {_quoted(primary)} is not a member of case {case.id}"
                            f" (one of {', '.join(_quoted(m) for m in members)})")
        # Writes made on the new table after the cut-over go back to this spelling (reverse sync).
        payload["primary"] = primary if primary is not None else default_primary(case)
    elif action == "split":
        mapping = mapping or {}
        missing = [m for m in members if m not in mapping]
        extra = [r for r in mapping if r not in members]
        if extra:
            raise CaseError(f"split: {_quoted(extra[0])} is not a member of case {case.id}")
        if missing:
            raise CaseError(f"split: every member needs a new id; missing {_quoted(missing[0])}")
        ids = [check_id(v, f"split {_quoted(raw)}") for raw, v in mapping.items()]
        if len(set(ids)) != len(ids):
            raise CaseError("split: two members got the same new id (that is `same`, not `split`)")
        payload["map"] = dict(mapping)
    elif action == "drop":
        raws = raws or (members if len(members) == 1 else [])  # a one-member case drops its member
        if not raws:
            raise CaseError("drop: name the raw identifiers to drop (--raw)")
        extra = [r for r in raws if r not in members]
        if extra:
            raise CaseError(f"drop: {_quoted(extra[0])} is not a member of case {case.id}")
        payload["raws"] = list(dict.fromkeys(raws))
    elif action == "keep" and case.kind == "conflict":
        keep = (raws or [None])[0] if raws else None
        if keep is None and len(members) == 1:
            keep = members[0]
        if keep not in members:
            raise CaseError(f"keep: name the raw identifier whose item survives (--raw), one of {members}")
        payload["raw"] = keep
    if allow_suspicious and action in ("same", "map", "split"):
        payload["allow_suspicious"] = True  # the operator's explicit say-so, kept with the decision
    assigned = assignments(case, action, payload)
    if overrides is None:
        overrides = effective_overrides(ws)
    # An unmapped `same` joins an existing new id on purpose: that is not a collision.
    problems = [] if case.kind == "unmapped" and action == "same" else _collisions(ws, case, assigned, overrides)
    if problems:
        raise CaseError("refused, it would create a collision: " + "; ".join(problems[:3]))
    return _record(ws, case, action, payload, reason, operator, overrides, assigned)


def _unmapped_same(ws: Workspace, case: Case, new_id: str | None, raws: list[str] | None,
                   overrides: Overrides, check_id: _IdCheck) -> dict[str, Any]:
    """The payload of ``same`` on an unmapped case: the existing identifier named (``--raw``) and
    its new id, or an existing new id (``--id``) someone already has (or the reference data gives)."""
    from ..plan.queries import identifier_rows

    conn = ws.connect()
    if raws:
        other = raws[0]
        if other in overrides.by_raw:
            found = overrides.by_raw[other]
        else:
            rows = identifier_rows(conn, [other])
            found = rows[0][1] if rows and rows[0][3] in ("fixed", "unchanged") else None
            if not rows:
                raise CaseError(f"same: {_quoted(other)} is not an identifier of this migration")
        if found is None:
            raise CaseError(f"same: {_quoted(other)} has no new id (undecided or dropped): decide it first")
        return {"id": check_id(found, "same"), "raw": other}
    if new_id is None:
        raise CaseError("same: name the existing identifier (--raw) or its new id (--id)")
    checked = check_id(new_id, "same")
    if not (settled_raws_with_new_id(conn, checked) or overrides.by_id.get(checked) or checked in case.candidates):
        raise CaseError(f"same: no identifier has the new id {checked!r} yet: that is `map`, not `same`")
    return {"id": checked}


def undo(ws: Workspace, case: Case, *, reason: str, operator: str) -> Decision:
    """Reopen ``case`` (recorded as a decision; history kept)."""
    if not reason or not reason.strip():
        raise CaseError("a reason is required (--reason)")
    if case.decision is None:
        raise CaseError(f"case {case.id} is open already: nothing to undo")
    return _record(ws, case, "undo", {"undoes": case.decision["decision_id"]}, reason, operator,
                   effective_overrides(ws), None)


def latest_decision_id(ws: Workspace) -> int:
    """The newest decision's id (0: none yet): one indexed read, cheap enough to poll every second.

    Decisions are append-only, so any new decision anywhere changes this number.
    """
    row = ws.connect().execute("SELECT max(id) FROM decisions").fetchone()
    return int(row[0] or 0)


def _record(ws: Workspace, case: Case, action: str, payload: dict[str, Any], reason: str,
            operator: str, overrides: Overrides, assigned: dict[str, str | None] | None) -> Decision:
    """Insert the decision, derive again the conflicts it can change, audit it: one transaction.

    ``assigned`` (None: recompute) is the decision's effect, applied to ``overrides`` in place so a
    caller deciding many cases in a row (bulk) keeps an up-to-date mapping.
    """
    from .conflicts import affected_ids, refresh_conflicts

    ts = utcnow()
    members = [m.raw for m in case.members]
    before = {raw: overrides.by_raw[raw] for raw in members if raw in overrides.by_raw}
    with ws.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO decisions(case_id, kind, action, payload, reason, operator, ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (case.id, case.kind, action, json.dumps(payload, ensure_ascii=False), reason, operator, ts),
        )
        decision = Decision(int(cur.lastrowid), case.id, case.kind, action, payload, reason, operator, ts)
        if assigned is None or case.decision is not None:
            # An undo, or a decision replacing another on this case: what the earlier one assigned
            # falls back to older decisions or the plan, so recompute the mapping in full.
            fresh = overrides_in(conn)
            overrides.by_raw, overrides.by_id = fresh.by_raw, fresh.by_id
        else:
            overrides.update(assigned)
        after = {raw: overrides.by_raw[raw] for raw in members if raw in overrides.by_raw}
        ids = affected_ids(conn, members, before, after)
        changed = refresh_conflicts(conn, ids, overrides.by_raw, overrides.by_id, touched=members) if ids else {}
        # In the same transaction: the decision and its audit entry commit together, or neither.
        ws.audit(operator, f"resolve.{action}", {"case": case.id, "kind": case.kind, "payload": payload,
                                                 "reason": reason, "decision_id": decision.id,
                                                 **({"conflicts": changed} if any(changed.values()) else {})})
    return decision
