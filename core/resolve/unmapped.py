"""Identifiers first seen on the stream: the ``unmapped`` case kind, and the automatic rule.

A raw identifier that no plan has seen (typed after the dump: ``'ACME\\u200b Corp'`` when ``'ACME
Corp'`` exists, or a wholly new customer) has its stream records held
(:mod:`keyshift.core.migrate.stream.held`). Each such identifier is explained once with the plan's
normalization rules (``unmapped_identifiers``, written here only) and becomes one ``unmapped`` case
(written by :mod:`.cases`), showing its canonical form and what it collides with: planned
identifiers of the same canonical form, settled identifiers whose new id is that form, and the
reference data's ids for it.

Decisions (validated by :mod:`.decisions` like every other): ``map --id`` (a new id nobody has),
``same`` with an existing identifier (``--raw``: it gets that identifier's new id) or an existing new
id (``--id``), ``drop``.

``[stream] new_identifiers = "rule"`` decides automatically (:func:`rule_decision`) when the
canonical form leads to exactly one existing new id, no identifier of that form is still
undecided, and none of the held records would land on an item another identifier already has
there (same new id and sort key); the decision is recorded as operator ``keyshift:rule`` with the
reason, so an operator can review and undo it. Otherwise the records stay held.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..kernel.keymap import sort_key_json
from ..plan import queries
from ..store.schema import utcnow
from ..text.escape import escape
from ..text.normalize import DEFAULT_RULES, Normalizer
from .cases import drop_unmapped_case, save_unmapped_case

__all__ = ["RULE_OPERATOR", "Collision", "collisions", "derive_unmapped", "rule_decision", "unmapped_details"]

#: The operator recorded on automatic decisions.
RULE_OPERATOR = "keyshift:rule"
_SETTLED = ("fixed", "unchanged")
_TITLE = "first seen on the stream"


def _normalizer(conn: Any) -> Normalizer:
    return Normalizer(tuple(queries.latest_rules(conn)) or DEFAULT_RULES)


Collision = dict[str, Any]  # {"raw", "raw_escaped", "new_id", "status"} or {"reference_id"}


def collisions(conn: Any, canonical: str, *, exclude: str | None = None,
               by_raw: dict[str, str | None] | None = None) -> list[Collision]:
    """What a new spelling with ``canonical`` meets: planned identifiers of that form (any status;
    ``new_id`` None while undecided), settled ones whose new id is that form, identifiers first
    seen on the stream with that form, and the reference data's ids for it. New ids are the ones
    in force (decisions applied; ``by_raw``: :func:`~.decisions.overrides_in`'s, when the caller has it)."""
    if by_raw is None:
        from .decisions import overrides_in

        by_raw = overrides_in(conn).by_raw
    out: list[Collision] = []
    for raw, new_id, _, status in queries.identifiers_colliding(conn, canonical):
        effective = by_raw[raw] if raw in by_raw else (new_id if status in _SETTLED else None)
        out.append({"raw": raw, "raw_escaped": escape(raw), "new_id": effective,
                    "status": "decided" if raw in by_raw else status})
    for (raw,) in conn.execute("SELECT raw FROM unmapped_identifiers WHERE canonical = ? ORDER BY raw", (canonical,)):
        if raw != exclude:
            out.append({"raw": raw, "raw_escaped": escape(raw), "new_id": by_raw.get(raw),
                        "status": "decided" if raw in by_raw else "unmapped"})
    out += [{"reference_id": ref} for ref in queries.reference_ids(conn, canonical)]
    return out


def _candidates(found: list[Collision]) -> list[str]:
    ids = {c["new_id"] for c in found if c.get("new_id")} | {c["reference_id"] for c in found if "reference_id" in c}
    return sorted(ids)


def derive_unmapped(conn: Any, raws: Iterable[str] | None = None) -> int:
    """Explain held raw identifiers the plan does not know and open their ``unmapped`` cases
    (inside the caller's transaction); returns how many cases are new. ``raws`` None: every
    identifier with held records. A raw the (new) plan knows loses its ``unmapped`` case."""
    if raws is None:
        raws = [r[0] for r in conn.execute("SELECT DISTINCT raw FROM held_records")]
    raws = sorted(set(raws))
    if not raws:
        return 0
    planned = {row[0] for row in queries.identifier_rows(conn, raws)}
    norm = _normalizer(conn)
    new = 0
    for raw in raws:
        if raw in planned:
            drop_unmapped_case(conn, raw)
            continue
        row = conn.execute("SELECT id, canonical FROM unmapped_identifiers WHERE raw = ?", (raw,)).fetchone()
        if row is None:
            explained = norm.explain(raw)
            cur = conn.execute(
                "INSERT INTO unmapped_identifiers(raw, escaped, canonical, changes, suspicious, ref_ids, first_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (raw, escape(raw), explained.canonical, json.dumps([c.to_dict() for c in explained.changes]),
                 json.dumps(list(explained.suspicious)),
                 json.dumps(queries.reference_ids(conn, explained.canonical)), utcnow()))
            row = (int(cur.lastrowid), explained.canonical)
        new += save_unmapped_case(conn, raw, row[0], _candidates(collisions(conn, row[1], exclude=raw)), _TITLE)
    return new


def unmapped_details(conn: Any, member: Any, by_raw: dict[str, str | None] | None = None) -> dict[str, Any]:
    """What ``resolve list --json`` adds to an unmapped case: ``canonical``, ``collisions`` and
    ``held`` (its records waiting, applied, dropped)."""
    held = dict(conn.execute("SELECT state, count(*) FROM held_records WHERE raw = ? GROUP BY state",
                             (member.raw,)).fetchall())
    return {"canonical": member.canonical, "canonical_escaped": escape(member.canonical),
            "collisions": collisions(conn, member.canonical, exclude=member.raw, by_raw=by_raw),
            "held": {s: held.get(s, 0) for s in ("held", "applied", "dropped")}}


def rule_decision(conn: Any, raw: str, sort_key_name: str | None) -> tuple[str | None, str]:
    """Whether the rules decide ``raw`` on their own: ``(new_id, reason)``, or ``(None, why it
    holds)``. Looks at its canonical form's collisions and at its held records' sort keys."""
    row = conn.execute("SELECT canonical FROM unmapped_identifiers WHERE raw = ?", (raw,)).fetchone()
    if row is None:
        return None, "not an identifier first seen on the stream"
    canonical = row[0]
    found = collisions(conn, canonical, exclude=raw)
    # Planned identifiers of this form still undecided make it ambiguous; other new spellings seen
    # on the stream do not (each gets its own rule decision, and its own conflict check).
    undecided = [c["raw"] for c in found if "raw" in c and c["new_id"] is None
                 and c["status"] not in ("decided", "unmapped")]
    ids = _candidates(found)
    shown = f"'{escape(canonical)}'"
    if undecided:
        return None, f"canonical form {shown} is also the form of undecided {json.dumps(undecided[0])}"
    if len(ids) != 1:
        return None, (f"canonical form {shown} leads to no existing new id" if not ids else
                      f"canonical form {shown} leads to {len(ids)} new ids ({', '.join(ids[:3])})")
    new_id = ids[0]
    from ..migrate.stream.held import held_records

    sort_keys: set[str | None] = set()
    for rec in held_records(conn, raws=[raw], state=None):
        keys = rec.body.get("Keys") or {}
        sort_keys.add(sort_key_json(keys[sort_key_name]) if sort_key_name and sort_key_name in keys else None)
    for sk in sorted(sort_keys, key=lambda k: k or ""):
        others = [r for r in queries.raws_with_record_on(conn, new_id, sk) if r != raw]
        if others:
            where = f"new id '{escape(new_id)}'" + (f" / sort key {sk}" if sk is not None else "")
            return None, f"an item of {json.dumps(others[0])} is already on {where}: a conflict for a person"
    holder = next((c["raw"] for c in found if c.get("new_id") == new_id and "raw" in c), None)
    of = f" (of {json.dumps(holder)})" if holder else " (reference data)"
    return new_id, (f"rule: the normalization rules make it {shown}, which leads to exactly one existing new id"
                    f" '{escape(new_id)}'{of}, and none of its records lands on another identifier's item")
