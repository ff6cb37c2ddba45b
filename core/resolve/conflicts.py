"""Item conflicts, kept true to the decisions in force.

An item conflict is two or more records that would land on one full new key (new id + sort key).
The plan finds them under its own mapping (raws sharing a canonical form, or one raw repeating a
sort key). Decisions change the mapping, so after every decision the conflicts it can affect are
derived again (:func:`refresh_conflicts`), in the decision's own transaction:

* a conflict whose records no longer share a new key (a ``split`` gave them different ids, a
  ``drop`` left one record) becomes **moot**: shown as such, not open, and it blocks nothing;
* records that a decision brings onto one key (a ``same`` over canonical forms that share a
  reference id) make a conflict that did not exist in the plan: it is **opened**;
* a conflict that comes back (an ``undo``) is live again, with its earlier decision if that
  still names one of its records' raw identifiers.

A conflict keeps its identity while it involves the same records: an existing case is updated (new
key, members) rather than replaced, so a ``keep`` decision stays attached to it.

The effective new id of a raw identifier is the decision's when one is in force, else the plan's
(``fixed``/``unchanged``), else its canonical form (undecided: the rules would merge it with the
other raws of that form, so the conflict is assumed until a person says otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..plan import queries
from .cases import case_id, conflict_cases_touching, save_conflict_case, set_moot

__all__ = ["MOOT_DIFFERENT_KEYS", "affected_ids", "effective_id", "refresh_conflicts", "refresh_all"]

#: Why a conflict is moot when its records no longer share a new key.
MOOT_DIFFERENT_KEYS = ("no longer a conflict: under the decisions in force its records land on different"
                       " new keys, or were dropped")
_SETTLED = ("fixed", "unchanged")


def effective_id(row: Any, by_raw: dict[str, str | None]) -> str | None:
    """The new id a raw identifier lands on now (``row``: raw, new_id, canonical, status)."""
    raw, new_id, canonical, status = row[0], row[1], row[2], row[3]
    if raw in by_raw:
        return by_raw[raw]
    return new_id if status in _SETTLED else canonical


def _rows_for(conn: Any, raws: Iterable[str]) -> list[Any]:
    return queries.identifier_rows(conn, raws)


def affected_ids(conn: Any, raws: Iterable[str], before: dict[str, str | None],
                 after: dict[str, str | None]) -> set[str]:
    """The new ids whose conflicts a decision on ``raws`` can change: where they landed, where they land."""
    ids: set[str] = set()
    for row in _rows_for(conn, raws):
        for mapping in (before, after):
            new_id = effective_id(row, mapping)
            if new_id is not None:
                ids.add(new_id)
    return ids


def _holders(conn: Any, new_id: str, by_raw: dict[str, str | None],
             by_id: dict[str, set[str]]) -> dict[int, str]:
    """ident -> raw of every identifier landing on ``new_id`` now."""
    rows = queries.identifiers_on(conn, new_id) + _rows_for(conn, by_id.get(new_id, ()))
    return {row[4]: row[0] for row in rows if effective_id(row, by_raw) == new_id}


def _live(conn: Any, new_id: str, holders: dict[int, str]) -> list[tuple[str, str | None, dict[int, int]]]:
    """(new id, sort key, ident -> records) of every key two or more records of ``holders`` share."""
    if not holders:
        return []
    counts = queries.records_by_sort_key(conn, holders)
    return [(new_id, sort_key, members) for sort_key, members in sorted(counts.items(), key=lambda kv: kv[0] or "")
            if sum(members.values()) > 1]


def refresh_conflicts(conn: Any, ids: Iterable[str], by_raw: dict[str, str | None],
                      by_id: dict[str, set[str]], touched: Iterable[str] = ()) -> dict[str, int]:
    """Derive again the conflicts on the new ids ``ids`` under the mapping ``by_raw``/``by_id``.

    ``touched``: raw identifiers whose mapping changed (their old conflict cases are looked at even
    when their old key is not in ``ids``). Runs inside the caller's transaction. Returns counts:
    ``opened`` (new cases), ``moot`` (cases that stopped applying), ``live`` (cases kept or revived).
    """
    ids = sorted(set(ids))
    holders = {new_id: _holders(conn, new_id, by_raw, by_id) for new_id in ids}
    groups = [g for new_id in ids for g in _live(conn, new_id, holders[new_id])]
    involved = {ident for h in holders.values() for ident in h} | {r[4] for r in _rows_for(conn, touched)}
    existing = conflict_cases_touching(conn, ids, involved)
    counts = {"opened": 0, "moot": 0, "live": 0}
    assigned: set[str] = set()
    for new_id, sort_key, members in groups:
        idents = set(members)
        candidates = sorted((c for c, row in existing.items() if row["sort_key"] == sort_key
                             and row["members"] & idents and c not in assigned),
                            key=lambda c: existing[c]["ord"])
        primary = candidates[0] if candidates else case_id("conflict", new_id, sort_key)
        raws = sorted(holders[new_id][i] for i in idents)
        opened = save_conflict_case(conn, primary, title=f"{sum(members.values())} records on one new key",
                                    raws=raws, sort_key=sort_key, new_key=new_id, idents=idents)
        counts["opened" if opened else "live"] += 1
        assigned.add(primary)
        for other in candidates[1:]:  # two conflicts a decision merged onto one key: one case
            if other not in assigned and existing[other]["moot"] is None:
                set_moot(conn, other, f"merged into conflict {primary}")
                assigned.add(other)
                counts["moot"] += 1
    for cid, row in existing.items():
        if cid not in assigned and row["moot"] is None:
            set_moot(conn, cid, MOOT_DIFFERENT_KEYS)
            counts["moot"] += 1
    return counts


def refresh_all(conn: Any, by_raw: dict[str, str | None], by_id: dict[str, set[str]]) -> dict[str, int]:
    """After a plan: the conflicts of every raw identifier some decision in force maps."""
    if not by_raw:
        return {"opened": 0, "moot": 0, "live": 0}
    ids = affected_ids(conn, by_raw, {}, by_raw)
    return refresh_conflicts(conn, ids, by_raw, by_id, touched=by_raw)
