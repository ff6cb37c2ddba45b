"""Compile rules plus decisions into one versioned keymap: raw identifier -> new id or drop.

The keymap is the single artifact that restore, stream sync, the Lambda handler and verification
read (through :mod:`keyshift.core.kernel.transform`). Its version is a hash of its content, so anything
downstream can say exactly which mapping it used, and rebuilding from the same plan and decisions
gives the same version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import orjson

from ..plan.queries import has_reference, settled_identifiers
from .cases import list_cases
from ..errors import KeyshiftError
from ..kernel.keymap import FORMAT, Keymap, KeymapEntry, keymap_from_document
from ..kernel.transform import KeyNames
from ..store.workspace import Workspace, utcnow

__all__ = ["KeymapBuild", "UnresolvedError", "build_keymap", "keymap_document", "latest_keymap_version",
           "load_keymap_document"]

class UnresolvedError(KeyshiftError):
    """Cases are still open and ``allow_unresolved`` was not given."""

    title = "Open cases"


@dataclass
class KeymapBuild:
    """A built keymap and what went into it."""

    keymap: Keymap
    open_cases: list[str]
    summary: dict[str, Any]


def build_keymap(ws: Workspace, *, allow_unresolved: bool = False) -> KeymapBuild:
    """Rules + decisions -> :class:`Keymap`. Refuses while cases are open, unless allowed: then
    open cases' identifiers are left out (``unresolved``, with the case id) so their items are
    skipped, and an open conflict's key has no winner, so none of its items is written."""
    cases = [c for c in list_cases(ws) if c.moot is None]  # a moot case decides nothing
    # An open unmapped case blocks nothing: its identifier has no dump items, and its stream records
    # are held until it is decided (its raw is listed as unresolved, so the Lambda holds them too).
    open_cases = [c for c in cases if c.is_open and c.kind != "unmapped"]
    if open_cases and not allow_unresolved:
        kinds: dict[str, int] = {}
        for c in open_cases:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        detail = ", ".join(f"{n} {k}" for k, n in kinds.items())
        raise UnresolvedError(
            f"{len(open_cases)} case(s) still open ({detail}); decide them (`keyshift resolve list --open`)"
            " or pass --allow-unresolved to skip their items"
        )
    entries: dict[str, KeymapEntry] = {}
    conn = ws.connect()
    source = "reference" if has_reference(conn) else "rule"
    for raw, new_id in settled_identifiers(conn):
        entries[raw] = KeymapEntry(new_id, source)
    unresolved: dict[str, str] = {}
    winners: dict[tuple[str, str | None], str] = {}
    from .decisions import assignments

    for case in sorted(cases, key=lambda c: c.decision["decision_id"] if c.decision else 0):
        d = case.decision
        if d is None:
            if case.kind == "conflict":
                continue  # handled below, once new ids are known
            for m in case.members:
                entries.pop(m.raw, None)
                unresolved[m.raw] = f"open {case.kind} case {case.id}"
            continue
        assigned = assignments(case, d["action"], d["payload"])
        for raw, new_id in assigned.items():
            entries[raw] = KeymapEntry(new_id, f"decision:{d['decision_id']}",
                                       d["reason"] if new_id is None else "")
            unresolved.pop(raw, None)
        if case.kind == "ambiguous":
            for m in case.members:  # a drop can leave several raw forms still undecided
                if m.raw not in assigned and m.raw not in entries:
                    unresolved[m.raw] = f"still ambiguous after decision {d['decision_id']} on {case.id}"
    for case in cases:
        if case.kind != "conflict" or case.new_key is None:
            continue
        # "" wins nothing: an open conflict writes none of its items.
        winners[(case.new_key, case.sort_key)] = case.decision["payload"]["raw"] if case.decision else ""
    primaries = _primaries(conn, entries, cases)
    version = _version(entries, unresolved, winners, primaries)
    keymap = Keymap(version, entries, unresolved, winners, primaries)
    dropped = sum(e.new_id is None for e in entries.values())
    summary = {
        "version": version, "entries": len(entries), "mapped": len(entries) - dropped,
        "dropped": dropped, "unresolved": len(unresolved), "open_cases": len(open_cases),
        "conflict_keys": len(winners), "merged_ids": len(primaries),
    }
    return KeymapBuild(keymap, [c.id for c in open_cases], summary)


def _primaries(conn: Any, entries: dict[str, KeymapEntry], cases: list[Any]) -> dict[str, str]:
    """new id -> the raw spelling writes go back to (reverse sync), for every new id that two or
    more raw identifiers map to: the ``same`` decision's ``primary`` when it still belongs to the
    merge; otherwise (reference data merging raws with no case, a decision older than primaries)
    the raw with the most items, then the lexicographically smallest (docs/resolving.md)."""
    from .decisions import default_primary

    groups: dict[str, list[str]] = {}
    for raw, entry in entries.items():
        if entry.new_id is not None:
            groups.setdefault(entry.new_id, []).append(raw)
    merged = {new_id: raws for new_id, raws in groups.items() if len(raws) > 1}
    if not merged:
        return {}
    chosen: dict[str, str] = {}
    for case in cases:
        d = case.decision
        if d is None or d["action"] != "same":
            continue
        new_id = d["payload"].get("id")
        primary = d["payload"].get("primary") or default_primary(case)
        if new_id in merged and primary in merged[new_id]:
            chosen[new_id] = primary
    rest = sorted({raw for new_id, raws in merged.items() if new_id not in chosen for raw in raws})
    items: dict[str, int] = {}
    for start in range(0, len(rest), 500):  # SQLite's bound-parameter limit
        chunk = rest[start:start + 500]
        items.update(conn.execute(f"SELECT raw, items FROM identifiers WHERE raw IN ({','.join('?' * len(chunk))})",
                                  chunk).fetchall())
    for new_id, raws in merged.items():
        if new_id not in chosen:
            chosen[new_id] = min(raws, key=lambda r: (-items.get(r, 0), r))
    return dict(sorted(chosen.items()))


def _version(entries, unresolved, winners, primaries=None) -> str:
    h = hashlib.sha256()
    for raw in sorted(entries):
        e = entries[raw]
        h.update(orjson.dumps([raw, e.new_id, e.source]))
    h.update(orjson.dumps(sorted(unresolved)))
    h.update(orjson.dumps(sorted([k[0], k[1] or "", v] for k, v in winners.items())))
    if primaries:  # only when present: keymaps without merges keep the versions they had
        h.update(orjson.dumps(sorted(primaries.items())))
    return h.hexdigest()[:16]


def migration_section(spec: Any) -> dict[str, Any]:
    """What the artifact records of the migration for code without a spec (the Lambda handler):
    both tables and the key names (:meth:`KeyNames.from_migration`)."""
    stream = getattr(spec, "stream", None)
    return {"source_table": spec.source.table, "target_table": spec.target.table,
            **KeyNames.from_spec(spec).to_migration(),
            "new_identifiers": getattr(stream, "new_identifiers", "hold"),
            "hold_table": getattr(stream, "hold_table", None),
            "echo_table": getattr(stream, "echo_table", None)}


def keymap_document(build: KeymapBuild, *, operator: str, spec: Any = None) -> dict[str, Any]:
    """The artifact written by ``keymap build --out`` (documented in docs/resolving.md). With
    ``spec`` it carries the ``migration`` section the Lambda handler is configured from."""
    km = build.keymap
    migration = migration_section(spec) if spec is not None else km.migration
    return {
        "format": FORMAT,
        "version": km.version,
        "built_at": utcnow(),
        "operator": operator,
        "summary": build.summary,
        "entries": {raw: {"new_id": e.new_id, "source": e.source, "reason": e.reason}
                    for raw, e in sorted(km.entries.items())},
        "unresolved": dict(sorted(km.unresolved.items())),
        "winners": [{"new_id": k[0], "sort_key": k[1], "raw": v} for k, v in sorted(
            km.winners.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))],
        "primaries": dict(sorted(km.primaries.items())),
        "migration": migration,
    }


def load_keymap_document(doc: dict[str, Any]) -> Keymap:
    """A :class:`Keymap` from its artifact (kept for callers of this module; the reader itself is
    :func:`keyshift.core.kernel.keymap.keymap_from_document`, which services use)."""
    return keymap_from_document(doc)


def record_build(ws: Workspace, build: KeymapBuild, *, operator: str, location: str | None) -> None:
    """Remember the build in the workspace and the audit log."""
    with ws.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO keymaps(version, built_at, operator, location, summary)"
            " VALUES (?, ?, ?, ?, ?)",
            (build.keymap.version, utcnow(), operator, location, json.dumps(build.summary)),
        )
        # In the same transaction: the build and its audit entry commit together, or neither.
        ws.audit(operator, "keymap.build", {**build.summary, "location": location})


def latest_keymap_version(ws: Workspace) -> str | None:
    """The version of the newest keymap built (``keyshift keymap build``), None when none was.

    ``INSERT OR REPLACE`` gives a rebuilt version a new rowid, so the newest build is the last row."""
    row = ws.connect().execute("SELECT version FROM keymaps ORDER BY built_at DESC, rowid DESC LIMIT 1").fetchone()
    return row[0] if row else None
