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
from .keymap import Keymap, KeymapEntry, sort_key_json

__all__ = [
    "SKIP_KINDS",
    "Delete",
    "KeyNames",
    "Outcome",
    "Put",
    "Skip",
    "inverse",
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


def inverse(new_item: dict, names: KeyNames, keymap: Keymap | None = None) -> dict:
    """The old table's item for a new table item (rollback's reverse sync).

    The raw identifier comes from the legacy attribute when one is configured; otherwise from the
    keymap's reverse index, which must name exactly one raw for the item's new id. Raises
    ``ValueError("cannot invert: ...")`` when the raw identifier cannot be recovered.
    """
    source_pk, target_pk, legacy = names.source_pk, names.target_pk, names.legacy
    if legacy is not None:
        value = new_item.get(legacy)
        raw = value.get("S") if type(value) is dict and len(value) == 1 else None
        if type(raw) is not str:
            raise ValueError(
                f"cannot invert: legacy attribute {legacy!r} is missing or not a string (S)"
            )
    else:
        value = new_item.get(target_pk)
        new_id = value.get("S") if type(value) is dict and len(value) == 1 else None
        if type(new_id) is not str:
            raise ValueError(
                f"cannot invert: key attribute {target_pk!r} is missing or not a string (S)"
            )
        if keymap is None:
            raise ValueError(
                "cannot invert: no legacy attribute configured and no keymap given"
            )
        raws = keymap.raws_for(new_id)
        if len(raws) != 1:
            what = "no raw identifier" if not raws else f"{len(raws)} raw identifiers"
            raise ValueError(
                f"cannot invert: {what} map to {new_id!r} in keymap {keymap.version} "
                "(configure target.legacy_attribute to roll back merged identifiers)"
            )
        raw = raws[0]
    if legacy == source_pk:
        old = dict(new_item)
        if target_pk != source_pk:
            old.pop(target_pk, None)
        return old
    if target_pk != source_pk and source_pk in new_item:
        raise ValueError(
            f"cannot invert: item already has {source_pk!r} (attribute collision)"
        )
    old = dict(new_item)
    if target_pk != source_pk:
        old.pop(target_pk, None)
    if legacy is not None:
        del old[legacy]
    old[source_pk] = {"S": raw}
    return old
