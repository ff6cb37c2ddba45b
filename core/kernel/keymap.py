"""The keymap: raw identifier -> new id (or drop), and the artifact that carries it to services.

:class:`Keymap` is what every step applies through :mod:`keyshift.core.kernel.transform`; it is
built from rules plus decisions by :func:`keyshift.core.resolve.keymap_build.build_keymap` and
written as a JSON document (``keyshift-keymap/1``, see docs/resolving.md) by ``keymap build
--out``. :func:`keymap_from_document` reads that document back: the Lambda handler and the router
of other people's services load their keymap this way, so this module uses the standard library
only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import KeyshiftError

__all__ = [
    "FORMAT",
    "Keymap",
    "KeymapEntry",
    "KeymapFormatError",
    "keymap_from_document",
    "split_s3_uri",
    "sort_key_json",
]

#: The keymap artifact's format tag; a reader refuses any other.
FORMAT = "keyshift-keymap/1"


class KeymapFormatError(KeyshiftError):
    """A keymap document this keyshift cannot read (another format, or a malformed one)."""

    title = "Unreadable keymap"


def sort_key_json(value: Any) -> str:
    """The canonical text of a wire sort-key value, as used in :attr:`Keymap.winners`.

    Compact JSON with non-ASCII kept as it is: byte for byte what the planner's ``orjson.dumps``
    writes into the workspace (checked for every code point by a unit test), without orjson.
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class KeymapEntry:
    """What one raw identifier becomes. ``new_id`` None means: drop this raw identifier's items."""

    new_id: str | None
    source: str  # "rule", "reference", "decision:12", ...
    reason: str = ""


@dataclass(frozen=True)
class Keymap:
    """Raw identifier -> new id (or drop), from rules plus decisions.

    ``winners`` settles item conflicts: for a full new primary key ``(new_id, sort-key JSON)``
    (the sort key JSON is :func:`sort_key_json` of the item's sort key value, or None when the
    table has no sort key) it names the raw identifier whose item survives; the other raws' items
    for that key are skipped, and so are their stream deletes.

    ``primaries`` names, for a new id that several raw identifiers merge into, the raw spelling
    that writes go back to (reverse sync, :func:`~keyshift.core.kernel.transform.inverse`).
    ``migration`` is the deployment context the artifact carries for code that has no spec (the
    Lambda handler): ``source_table``, ``target_table``, ``source_pk``, ``source_sk``,
    ``target_pk``, ``legacy`` (see :meth:`KeyNames.from_migration
    <keyshift.core.kernel.transform.KeyNames.from_migration>`); None when built without a spec.
    Neither is part of the version unless ``primaries`` is non-empty.
    """

    version: str
    entries: Mapping[str, KeymapEntry]
    unresolved: Mapping[str, str] = field(default_factory=dict)
    winners: Mapping[tuple[str, str | None], str] = field(default_factory=dict)
    primaries: Mapping[str, str] = field(default_factory=dict)
    migration: Mapping[str, Any] | None = None

    def lookup(self, raw: str) -> KeymapEntry | None:
        """The entry for ``raw``, or None when it has none (see :attr:`unresolved` for why)."""
        return self.entries.get(raw)

    @cached_property
    def reverse(self) -> Mapping[str, tuple[str, ...]]:
        """new id -> every raw identifier mapped to it (built once, on first use)."""
        out: dict[str, list[str]] = {}
        for raw, entry in self.entries.items():
            if entry.new_id is not None:
                out.setdefault(entry.new_id, []).append(raw)
        return {new_id: tuple(raws) for new_id, raws in out.items()}

    def raws_for(self, new_id: str) -> tuple[str, ...]:
        """The raw identifiers that map to ``new_id`` (empty when none)."""
        return self.reverse.get(new_id, ())


def split_s3_uri(uri: str) -> tuple[str, str] | None:
    """``(bucket, key)`` of an ``s3://bucket/key`` artifact location, None when it is not one
    (no bucket, no key, or a folder). The Lambda handler and the router read keymaps from there."""
    if not uri.startswith("s3://") or "/" not in uri[5:] or uri.endswith("/") or uri[5:].startswith("/"):
        return None
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def keymap_from_document(doc: Any) -> Keymap:
    """A :class:`Keymap` from its artifact; :class:`KeymapFormatError` names what is wrong."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise KeymapFormatError(f"not a keyshift keymap: format {found!r}, expected {FORMAT!r}")
    try:
        entries = {raw: KeymapEntry(e["new_id"], e["source"], e.get("reason", ""))
                   for raw, e in doc["entries"].items()}
        winners = {(w["new_id"], w["sort_key"]): w["raw"] for w in doc["winners"]}
        primaries = dict(doc.get("primaries") or {})
        migration = doc.get("migration")
        if migration is not None and not isinstance(migration, dict):
            raise TypeError("migration is not an object")
        return Keymap(doc["version"], entries, dict(doc["unresolved"]), winners, primaries, migration)
    except (KeyError, TypeError, AttributeError) as exc:
        raise KeymapFormatError(f"malformed keymap document ({FORMAT}): {type(exc).__name__} {exc}") from None
