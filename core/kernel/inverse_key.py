"""The way back for keys: a new table key (a stream ``REMOVE``) -> the old table key to delete.

:func:`~keyshift.core.kernel.transform.inverse` turns a whole new item into the old one; a
``REMOVE`` record carries only ``Keys`` (and, with ``NEW_AND_OLD_IMAGES``, the ``OldImage``). The
raw identifier a write goes back to is, in order: the legacy attribute (in the keys, or in the old
image, where the forward transform put it), else the primary raw spelling the ``same`` decision
named for a merged new id (:attr:`Keymap.primaries`), else the one raw identifier mapped to the
new id. Standard library only: the Lambda handler imports this.
"""

from __future__ import annotations

from typing import Any

from .keymap import Keymap
from .transform import KeyNames, inverse

__all__ = ["inverse_item", "inverse_key", "raw_for_new_id"]


def raw_for_new_id(new_id: str, keymap: Keymap) -> str:
    """The raw identifier writes of ``new_id`` go back to; ``ValueError("cannot invert: …")`` if none."""
    primary = keymap.primaries.get(new_id)
    if primary is not None:
        return primary
    raws = keymap.raws_for(new_id)
    if len(raws) == 1:
        return raws[0]
    what = "no raw identifier" if not raws else f"{len(raws)} raw identifiers and no primary"
    raise ValueError(f"cannot invert: {what} for {new_id!r} in keymap {keymap.version}")


def _string(value: Any) -> str | None:
    inner = value.get("S") if type(value) is dict and len(value) == 1 else None
    return inner if type(inner) is str else None


def inverse_key(keys: dict, names: KeyNames, keymap: Keymap, old_image: dict | None = None) -> dict:
    """The old table's key for a new table key (``{target_pk: {"S": new_id}, sort key…}``).

    Raises ``ValueError("cannot invert: …")`` when no raw identifier can be recovered.
    """
    legacy = names.legacy
    raw = None
    if legacy is not None:
        raw = _string(keys.get(legacy)) or _string((old_image or {}).get(legacy))
    if raw is None:
        new_id = _string(keys.get(names.target_pk))
        if new_id is None:
            raise ValueError(f"cannot invert: key attribute {names.target_pk!r} is missing or not a string (S)")
        raw = raw_for_new_id(new_id, keymap)
    old = {names.source_pk: {"S": raw}}
    if names.source_sk is not None:
        if names.source_sk not in keys:
            raise ValueError(f"cannot invert: sort key attribute {names.source_sk!r} is missing")
        old[names.source_sk] = keys[names.source_sk]
    return old


def inverse_item(new_item: dict, names: KeyNames, keymap: Keymap) -> dict:
    """:func:`~keyshift.core.kernel.transform.inverse`, with a merged new id going back to its
    primary raw spelling when the item carries no legacy attribute to say which raw it was."""
    try:
        return inverse(new_item, names, keymap)
    except ValueError:
        # inverse refuses a new id several raws map to; the decision's primary settles it.
        if names.legacy is not None:
            raise
        new_id = _string(new_item.get(names.target_pk))
        if new_id is None or new_id not in keymap.primaries:
            raise
        if names.target_pk != names.source_pk and names.source_pk in new_item:
            raise
        old = dict(new_item)
        old.pop(names.target_pk, None)
        old[names.source_pk] = {"S": keymap.primaries[new_id]}
        return old
