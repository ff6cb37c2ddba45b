"""The one pure function that rewrites items: old table item -> new table item (and back).

Restore, stream sync, the Lambda handler and verification all call :func:`transform` (or
:func:`transform_key` for stream ``REMOVE`` events), so they cannot disagree about what the new
table should hold. Rollback's reverse sync calls :func:`inverse`.

Items stay in DynamoDB wire format (``{"S": "x"}``). Only the top-level dict is copied: every
attribute other than the keys is the *same object* in the output, never copied or re-encoded.

Nothing here raises for a bad item: :func:`transform` returns :class:`Skip` with an operator-readable
reason (and a short machine ``kind``) so callers can count and report what was not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .items import MAX_PARTITION_KEY_BYTES, key_size_problem, utf8_len
from .keymap import Keymap, sort_key_json

__all__ = [
    "SKIP_KINDS",
    "Delete",
    "KeyNames",
    "Outcome",
    "Put",
    "Skip",
    "inverse",
    "inverse_key",
    "inverse_raw",
    "other_spellings",
    "spelling_for",
    "transform",
    "transform_key",
]

#: Every ``Skip.kind`` this module produces.
SKIP_KINDS = (
    "bad-key",
    "unresolved",
    "dropped",
    "invalid",
    "conflict-loser",
    "collision",
)


@dataclass(frozen=True, slots=True)
class Put:
    """Write ``item`` to the new table."""

    item: dict


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete ``key`` (the new table's key) from the new table."""

    key: dict


@dataclass(frozen=True, slots=True)
class Skip:
    """Not written. ``reason`` is for operators; ``kind`` (one of :data:`SKIP_KINDS`) for counting."""

    reason: str
    kind: str = ""


Outcome = Put | Delete | Skip


@dataclass(frozen=True, slots=True)
class KeyNames:
    """The attribute names a transform needs, taken from the spec."""

    source_pk: str
    source_sk: str | None
    target_pk: str
    legacy: str | None = None

    def __post_init__(self) -> None:
        if self.source_sk is not None and self.target_pk == self.source_sk:
            raise ValueError(
                f"target partition key {self.target_pk!r} is the source sort key"
            )
        if self.legacy is not None and self.legacy in (self.target_pk, self.source_sk):
            raise ValueError(
                f"legacy attribute {self.legacy!r} must not be a key attribute"
            )

    @classmethod
    def from_spec(cls, spec: Any) -> KeyNames:
        """The names of a :class:`keyshift.core.spec.Spec` (duck-typed: the kernel imports no spec)."""
        return cls(
            source_pk=spec.source.partition_key,
            source_sk=spec.source.sort_key,
            target_pk=spec.target.partition_key or spec.source.partition_key,
            legacy=spec.target.legacy_attribute,
        )

    @classmethod
    def from_migration(cls, migration: Any) -> KeyNames:
        """The names recorded in a keymap artifact's ``migration`` section (:attr:`Keymap.migration`),
        for code that runs without a spec (the Lambda handler)."""
        if not isinstance(migration, dict):
            raise ValueError("the keymap records no migration (tables and key names): rebuild it"
                             " with `keyshift keymap build --out`")
        try:
            return cls(source_pk=migration["source_pk"], source_sk=migration.get("source_sk"),
                       target_pk=migration["target_pk"], legacy=migration.get("legacy"))
        except KeyError as exc:
            raise ValueError(f"the keymap's migration section has no {exc.args[0]!r}") from None

    def to_migration(self) -> dict[str, Any]:
        """The key names as a keymap artifact records them (see :meth:`from_migration`)."""
        return {"source_pk": self.source_pk, "source_sk": self.source_sk, "target_pk": self.target_pk,
                "legacy": self.legacy}


def _resolve(
    source: dict, keymap: Keymap, names: KeyNames
) -> tuple[str, str, Any] | Skip:
    """(raw, new_id, sort key value or None) for an item or key, or why it cannot be migrated."""
    pk = names.source_pk
    value = source.get(pk)
    if value is None:
        return Skip(f"missing identifier attribute {pk!r}", "bad-key")
    raw = value.get("S") if type(value) is dict and len(value) == 1 else None
    if type(raw) is not str:
        kind = (
            next(iter(value), None) if isinstance(value, dict) else type(value).__name__
        )
        return Skip(
            f"identifier attribute {pk!r} is {kind}, not a string (S)", "bad-key"
        )
    if not raw or utf8_len(raw) > MAX_PARTITION_KEY_BYTES:
        # Restore, stream sync and verify must agree on an item the old table cannot hold (a dump
        # line can): none of them expects it in the new table, whatever the keymap says.
        shown = repr(raw[:40]) + ("…" if len(raw) > 40 else "")
        return Skip(f"identifier {shown}: {key_size_problem(value, role='identifier')}", "bad-key")
    sk_value = None
    if names.source_sk is not None:
        sk_value = source.get(names.source_sk)
        if sk_value is None:
            return Skip(
                f"missing sort key attribute {names.source_sk!r} (identifier {raw!r})",
                "bad-key",
            )
        problem = key_size_problem(sk_value, role="sort key")
        if problem is not None:
            return Skip(f"identifier {raw!r}: {problem}", "bad-key")
    entry = keymap.entries.get(raw)
    if entry is None:
        why = keymap.unresolved.get(raw)
        if why is None:
            why = f"not in keymap {keymap.version}"
        return Skip(f"unresolved identifier {raw!r}: {why}", "unresolved")
    new_id = entry.new_id
    if new_id is None:
        detail = f": {entry.reason}" if entry.reason else ""
        return Skip(f"identifier {raw!r} dropped by {entry.source}{detail}", "dropped")
    if not new_id or utf8_len(new_id) > MAX_PARTITION_KEY_BYTES:
        return Skip(
            f"identifier {raw!r} maps to an invalid key ({utf8_len(new_id)} bytes, from {entry.source})",
            "invalid",
        )
    if keymap.winners:
        sk_json = None if sk_value is None else sort_key_json(sk_value)
        winner = keymap.winners.get((new_id, sk_json))
        if winner is not None and winner != raw:
            where = (
                repr(new_id)
                if sk_json is None
                else f"{new_id!r} / {names.source_sk}={sk_json}"
            )
            return Skip(
                f"item conflict on {where}: {raw!r} loses to {winner!r}",
                "conflict-loser",
            )
    return raw, new_id, sk_value


def transform(item: dict, keymap: Keymap, names: KeyNames) -> Put | Skip:
    """The new table's item for an old table item, or why it is not written.

    The source partition key is replaced by ``target_pk = {"S": new_id}``; the legacy attribute
    (when configured) gets ``{"S": raw}``; every other attribute is the same object as in ``item``.
    An item that already has an attribute named like the target key or the legacy attribute is
    skipped rather than overwritten.
    """
    resolved = _resolve(item, keymap, names)
    if type(resolved) is Skip:
        return resolved
    raw, new_id, _ = resolved
    source_pk, target_pk, legacy = names.source_pk, names.target_pk, names.legacy
    if target_pk != source_pk and target_pk in item:
        return Skip(
            f"attribute collision: item {raw!r} already has {target_pk!r} (the new key)",
            "collision",
        )
    if legacy is not None and legacy != source_pk and legacy in item:
        return Skip(
            f"attribute collision: item {raw!r} already has {legacy!r} (the legacy attribute)",
            "collision",
        )
    new = dict(item)  # top level only: values are shared, never copied
    if target_pk != source_pk and legacy != source_pk:
        del new[source_pk]
    new[target_pk] = {"S": new_id}
    if legacy is not None and legacy != source_pk:
        new[legacy] = {"S": raw}
    return Put(new)


def transform_key(key: dict, keymap: Keymap, names: KeyNames) -> Delete | Skip:
    """The new table's key to delete for an old table key (stream ``REMOVE``), or why not.

    A conflict loser's delete is skipped: it must not remove the winner's item.
    """
    resolved = _resolve(key, keymap, names)
    if type(resolved) is Skip:
        return resolved
    _, new_id, sk_value = resolved
    new_key = {names.target_pk: {"S": new_id}}
    if names.source_sk is not None:
        new_key[names.source_sk] = sk_value
    return Delete(new_key)


def _sort_value(new: dict, names: KeyNames) -> tuple[Any, str | None]:
    """The new item's (or key's) sort key value and its :func:`sort_key_json` (None, None: no sort key)."""
    if names.source_sk is None:
        return None, None
    value = new.get(names.source_sk)
    return value, (None if value is None else sort_key_json(value))


def spelling_for(new_id: str, sk_json: str | None, keymap: Keymap) -> str:
    """The raw identifier a new table item of ``new_id`` (sort key ``sk_json``) goes back to.

    In order: the item conflict's winner for that full key (the raw whose item the new table holds);
    the only raw mapped to ``new_id``; the primary the keymap names for merged raws
    (:attr:`Keymap.primaries`). Raises ``ValueError("cannot invert: ...")`` otherwise.
    """
    if keymap.winners:
        winner = keymap.winners.get((new_id, sk_json))
        if winner:  # "" is an open conflict: nobody won, fall through to the primary
            return winner
    raws = keymap.raws_for(new_id)
    if len(raws) == 1:
        return raws[0]
    if not raws:
        raise ValueError(f"cannot invert: no raw identifier maps to {new_id!r} in keymap {keymap.version}")
    primary = keymap.primaries.get(new_id)
    if primary is None or primary not in raws:
        raise ValueError(
            f"cannot invert: {len(raws)} raw identifiers map to {new_id!r} in keymap {keymap.version} and"
            " it names no primary among them (rebuild the keymap: decisions name one)")
    return primary


def other_spellings(new_id: str, sk_json: str | None, raw: str, keymap: Keymap) -> tuple[str, ...]:
    """The raw identifiers other than ``raw`` whose items would also land on the full new key
    ``(new_id, sk_json)``, and that reverse sync may delete from the old table so that the old
    table holds the key under one spelling. Conflict losers are never among them: their items
    are kept on purpose (the report names them)."""
    if keymap.winners and (new_id, sk_json) in keymap.winners:
        return ()
    return tuple(r for r in keymap.raws_for(new_id) if r != raw)


def _new_id_of(new: dict, names: KeyNames) -> str:
    value = new.get(names.target_pk)
    new_id = value.get("S") if type(value) is dict and len(value) == 1 else None
    if type(new_id) is not str:
        raise ValueError(f"cannot invert: key attribute {names.target_pk!r} is missing or not a string (S)")
    return new_id


def inverse_raw(new_item: dict, names: KeyNames, keymap: Keymap | None = None) -> tuple[str, bool]:
    """(raw identifier, whether it came from the legacy attribute) for a new table item.

    The legacy attribute, when configured and present, is the exact spelling the item came from;
    without it, :func:`spelling_for` decides from the keymap.
    """
    legacy = names.legacy
    if legacy is not None and legacy in new_item:
        value = new_item[legacy]
        raw = value.get("S") if type(value) is dict and len(value) == 1 else None
        if type(raw) is not str:
            raise ValueError(f"cannot invert: legacy attribute {legacy!r} is not a string (S)")
        return raw, True
    if keymap is None:
        if legacy is not None:
            raise ValueError(f"cannot invert: legacy attribute {legacy!r} is missing and no keymap given")
        raise ValueError("cannot invert: no legacy attribute configured and no keymap given")
    new_id = _new_id_of(new_item, names)
    return spelling_for(new_id, _sort_value(new_item, names)[1], keymap), False


def inverse(new_item: dict, names: KeyNames, keymap: Keymap | None = None) -> dict:
    """The old table's item for a new table item (rollback's reverse sync).

    The raw identifier comes from the legacy attribute when the item has it; otherwise from the
    keymap (:func:`spelling_for`: a conflict's winner, the only raw, or the primary of merged
    raws). Raises ``ValueError("cannot invert: ...")`` when the raw identifier cannot be recovered.
    ``inverse(transform(item)) == item`` for every item whose raw is the one :func:`spelling_for`
    names (always, with the legacy attribute).
    """
    source_pk, target_pk, legacy = names.source_pk, names.target_pk, names.legacy
    raw, from_legacy = inverse_raw(new_item, names, keymap)
    if legacy == source_pk and from_legacy:
        old = dict(new_item)
        if target_pk != source_pk:
            old.pop(target_pk, None)
        return old
    if target_pk != source_pk and source_pk in new_item and legacy != source_pk:
        raise ValueError(
            f"cannot invert: item already has {source_pk!r} (attribute collision)"
        )
    old = dict(new_item)
    if target_pk != source_pk:
        old.pop(target_pk, None)
    if legacy is not None and legacy != source_pk:
        old.pop(legacy, None)
    old[source_pk] = {"S": raw}
    return old


def inverse_key(new_key: dict, names: KeyNames, keymap: Keymap) -> dict:
    """The old table's key for a new table key (a ``REMOVE`` record of the new table's stream).

    A REMOVE's ``Keys`` hold only key attributes, so the legacy attribute cannot say the spelling
    (unless it *is* the source key, which is not among the new table's keys either): the keymap
    decides, as for :func:`inverse`. Raises ``ValueError("cannot invert: ...")``.
    """
    new_id = _new_id_of(new_key, names)
    sk_value, sk_json = _sort_value(new_key, names)
    if names.source_sk is not None and sk_value is None:
        raise ValueError(f"cannot invert: key has no sort key attribute {names.source_sk!r}")
    old = {names.source_pk: {"S": spelling_for(new_id, sk_json, keymap)}}
    if names.source_sk is not None:
        old[names.source_sk] = sk_value
    return old
