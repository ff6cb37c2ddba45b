"""New table stream records to old table writes: reverse sync, the way back after a cut-over.

The mirror of :mod:`~keyshift.core.kernel.stream_records`: a record of the **new** table's stream
becomes writes into the **old** table through the inverse keymap
(:func:`~keyshift.core.kernel.transform.inverse` for a new image,
:func:`~keyshift.core.kernel.transform.inverse_key` for a REMOVE). Shared by the local replay
(``keyshift stream-sync --reverse``) and the Lambda handler (``KEYSHIFT_DIRECTION=reverse``), so
it is kernel code: the standard library only.

One new key is held by the old table under **one spelling**: the conflict's winner, the legacy
attribute's raw, or the primary of merged raws. So a record may make more than one write: the put
(or delete) under that spelling, and deletes of the same key under the other raws merged into
that new id (an item moved to the primary spelling must not leave its old spelling behind, or the
old table would hold two items that transform to one). Conflict losers are never deleted.
"""

from __future__ import annotations

import json
from typing import Any

from .keymap import Keymap, sort_key_json
from .transform import (
    Delete,
    KeyNames,
    Put,
    Skip,
    inverse,
    inverse_key,
    inverse_raw,
    other_spellings,
)

__all__ = ["REVERSE_SKIP_KINDS", "ReverseOutcome", "old_key", "reduce_reverse", "reverse_outcome"]

#: Every ``Skip.kind`` :func:`reverse_outcome` produces.
REVERSE_SKIP_KINDS = ("no-image", "bad-key", "no-raw", "unknown-event")

#: What one record does to the old table: its writes in order, or why nothing.
ReverseOutcome = tuple[Put | Delete, ...] | Skip


def old_key(write: Put | Delete, names: KeyNames) -> dict[str, Any]:
    """The old table key a reverse write touches (its source partition and sort key)."""
    source = write.item if type(write) is Put else write.key
    key = {names.source_pk: source[names.source_pk]}
    if names.source_sk is not None:
        key[names.source_sk] = source[names.source_sk]
    return key


def _also_delete(raw: str, new: dict, names: KeyNames, keymap: Keymap) -> list[Delete]:
    value = new[names.target_pk]["S"]
    sk = new.get(names.source_sk) if names.source_sk is not None else None
    sk_json = None if sk is None else sort_key_json(sk)
    out = []
    for other in other_spellings(value, sk_json, raw, keymap):
        key = {names.source_pk: {"S": other}}
        if names.source_sk is not None:
            key[names.source_sk] = sk
        out.append(Delete(key))
    return out


def reverse_outcome(record: dict[str, Any], keymap: Keymap, names: KeyNames) -> ReverseOutcome:
    """What one record of the new table's stream does to the old table.

    ``INSERT``/``MODIFY``: a put of :func:`inverse` of the new image (then deletes of the same key
    under the other merged spellings, unless the legacy attribute named the spelling). ``REMOVE``:
    deletes of :func:`inverse_key` of the keys and of the other merged spellings. A new id the
    keymap has no raw identifier for (an entity created on the new table after the flip) is
    skipped as ``no-raw``, and counted: the old table has no spelling for it.
    """
    event = record.get("eventName")
    body = record.get("dynamodb") or {}
    try:
        if event in ("INSERT", "MODIFY"):
            image = body.get("NewImage")
            if image is None:
                return Skip(f"{event} record without a new image: the new table's stream must be NEW_IMAGE"
                            " or NEW_AND_OLD_IMAGES", "no-image")
            raw, from_legacy = inverse_raw(image, names, keymap)
            put = Put(inverse(image, names, keymap))
            extra = [] if from_legacy else _also_delete(raw, image, names, keymap)
            return (put, *extra)
        if event == "REMOVE":
            keys = body.get("Keys")
            if not keys:
                return Skip("REMOVE record without keys", "bad-key")
            delete = Delete(inverse_key(keys, names, keymap))
            raw = delete.key[names.source_pk]["S"]
            return (delete, *_also_delete(raw, keys, names, keymap))
    except ValueError as exc:
        text = str(exc)
        kind = "no-raw" if "raw identifier" in text else "bad-key"
        return Skip(text, kind)
    return Skip(f"unknown stream event {event!r}", "unknown-event")


def reduce_reverse(outcomes: list[ReverseOutcome], names: KeyNames) -> list[Put | Delete]:
    """The writes of a run of reverse outcomes in stream order: the last one per old key (a ``BatchWriteItem`` must not name a key twice; each write is a whole-item
    put or a delete, so the last one alone gives the same table)."""
    last: dict[str, Put | Delete] = {}
    for outcome in outcomes:
        if type(outcome) is Skip:
            continue
        for write in outcome:
            key = old_key(write, names)
            last[json.dumps(key, sort_keys=True, default=repr)] = write
    return list(last.values())
