"""New keys that several raw identifiers share: which old item the new table holds.

A ``same`` decision (or reference data) maps several raw spellings to one new id. The plan saw
the item conflicts of the dump (two spellings with an item under one sort key) and an operator
chose a winner (:attr:`Keymap.winners`). But services keep writing the old table: after the dump,
``Acme`` and ``Acme\\u200b`` may each write order ``ORD-9``, or one may delete its ``ORD-9``
while the other's stays. Applying each stream record by itself would let whichever was written
last win, and a delete of one spelling's item would remove the other's from the new table.

The rule, one for every step: the new item at a shared key is the transform of the old item of
the **first raw identifier in precedence order that has one** (the conflict's decided winner,
else the merge's primary spelling, :attr:`Keymap.primaries`, else the raw identifiers in code
point order), and no item when none has one. Stream sync (local and Lambda) settles such a key by
reading the old table (consistent ``GetItem`` of each spelling) instead of trusting the record,
and verify expects the same. A record of one spelling is only the news that the key may have
changed. The standard library only: the Lambda imports this.
"""

from __future__ import annotations

from typing import Any, Callable

from .keymap import Keymap, sort_key_json
from .transform import Delete, KeyNames, Put, Skip, transform

__all__ = ["is_shared", "precedence", "settle_shared_key", "shared_new_id"]


def shared_new_id(outcome: Put | Delete | Skip, keymap: Keymap, names: KeyNames) -> str | None:
    """The new id of a write whose key several raw identifiers share, else None."""
    if type(outcome) is Put:
        value = outcome.item.get(names.target_pk)
    elif type(outcome) is Delete:
        value = outcome.key.get(names.target_pk)
    else:
        return None
    new_id = value.get("S") if type(value) is dict else None
    return new_id if type(new_id) is str and is_shared(keymap, new_id) else None


def is_shared(keymap: Keymap, new_id: str) -> bool:
    """Whether more than one raw identifier maps to ``new_id``."""
    return len(keymap.raws_for(new_id)) > 1


def precedence(keymap: Keymap, new_id: str, sort_key: Any = None) -> tuple[str, ...]:
    """The raw identifiers whose old item may stand at ``(new_id, sort_key)``, best first.

    A decided conflict names its winner alone (the others' items are never written there); an
    open conflict (winner ``""``) none. Otherwise the merge's primary spelling, then the rest in
    code point order.
    """
    raws = keymap.raws_for(new_id)
    sk_json = None if sort_key is None else sort_key_json(sort_key)
    winner = keymap.winners.get((new_id, sk_json)) if keymap.winners else None
    if winner is not None:
        return (winner,) if winner in raws else ()
    primary = keymap.primaries.get(new_id) if keymap.primaries else None
    ordered = sorted(raws)
    if primary in raws:
        ordered.remove(primary)
        ordered.insert(0, primary)
    return tuple(ordered)


def settle_shared_key(
    read_old: Callable[[dict], dict | None],
    keymap: Keymap,
    names: KeyNames,
    new_key: dict,
) -> Put | Delete:
    """What the new table must hold at ``new_key`` (a shared key), from the old table's state now.

    ``read_old(old_key)`` is a consistent read of the old table (None: no item). The first raw
    identifier in :func:`precedence` order whose old item exists and transforms gives the item;
    none: the key is deleted.
    """
    new_id = new_key[names.target_pk]["S"]
    sort_key = new_key.get(names.source_sk) if names.source_sk is not None else None
    for raw in precedence(keymap, new_id, sort_key):
        old_key = {names.source_pk: {"S": raw}}
        if names.source_sk is not None:
            old_key[names.source_sk] = sort_key
        item = read_old(old_key)
        if item is None:
            continue
        out = transform(item, keymap, names)
        if type(out) is Put:
            return out
    return Delete(new_key)


def new_key_of(outcome: Put | Delete, names: KeyNames) -> dict:
    """The new table's key of a write."""
    if type(outcome) is Delete:
        return outcome.key
    key = {names.target_pk: outcome.item[names.target_pk]}
    if names.source_sk is not None:
        key[names.source_sk] = outcome.item[names.source_sk]
    return key
