"""Checks on a new id an operator gives: it must be a key the rules themselves could have produced.

A planned key is clean by construction (it *is* the output of the rules); an id typed into a
decision is not. Every new id of a decision (``same``, ``split``, ``map``, an imported decision
file) goes through :func:`new_id_problem`, the same standard as a planned key:

1. the migration's normalization rules leave it unchanged (no ZWSP, NBSP, fullwidth form,
   decomposed accent… would be removed or rewritten);
2. it is 1 to 2,048 UTF-8 bytes (DynamoDB's partition key limit);
3. it is not flagged suspicious (mixed scripts, a Latin look-alike), unless the operator says so
   explicitly (``allow_suspicious``, recorded in the decision) or the id is what the rules or
   upstream produced anyway for this case: the canonical form of one of its own members, or one of
   its reference ids.

A refused id is explained: which character, at which position, and which rule or limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import unicodedata2

from ..kernel.items import MAX_PARTITION_KEY_BYTES, utf8_len
from ..text.escape import escape
from ..text.normalize import DEFAULT_RULES, Normalizer
from ..text.unicode_chars import char_label

__all__ = ["new_id_problem"]

_normalizers: dict[tuple[str, ...], Normalizer] = {}


def _normalizer(rules: Sequence[str]) -> Normalizer:
    key = tuple(rules)
    found = _normalizers.get(key)
    if found is None:
        found = _normalizers[key] = Normalizer(key)
    return found


def _has_marks(text: str) -> bool:
    return any(unicodedata2.combining(ch) for ch in text)


def _exact(text: str) -> str:
    """Every character outside printable ASCII as an escape: two look-alikes never print the same."""
    return "".join(ch if " " <= ch <= "~" and ch != "\\" else escape(ch) if escape(ch) != ch
                   else (f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}") for ch in text)


def new_id_problem(new_id: str, *, rules: Sequence[str] = DEFAULT_RULES, allowed: Iterable[str] = (),
                   allow_suspicious: bool = False) -> str | None:
    """Why ``new_id`` cannot be a new key, in words an operator can act on; None when it can.

    ``rules`` are the plan's normalization rules; ``allowed`` the ids that may be suspicious
    without ``allow_suspicious`` (the case's canonical forms and reference ids).
    """
    shown = f"new id '{escape(new_id)}'"
    if not new_id:
        return "the new id is empty: a DynamoDB key needs at least one character"
    norm = _normalizer(rules).explain(new_id)
    if norm.canonical != new_id:
        typed, fixed = escape(new_id), escape(norm.canonical)
        if typed == fixed or _has_marks(new_id):
            # Look-alikes on screen (NFD "Cafe\u0301" and NFC "Café"): spell both out exactly.
            typed, fixed = _exact(new_id), _exact(norm.canonical)
        shown = f"new id '{typed}'"
        change = norm.changes[0] if norm.changes else None
        if change is None:  # pragma: no cover - a change always comes with its explanation
            return f"{shown} is not in canonical form (the rules make it '{fixed}')"
        what = " + ".join(char_label(ch) for ch in change.original) or "text"
        verb = "removes it" if not change.replacement else f"rewrites it to '{_exact(change.replacement)}'"
        where = f"{change.context} " if change.context else ""
        more = f" (and {len(norm.changes) - 1} more change(s))" if len(norm.changes) > 1 else ""
        return (f"{shown} is not clean: {where}{what} at position {change.position}: rule {change.rule}"
                f" {verb}{more}; the rules make it '{fixed}': type that instead")
    size = utf8_len(new_id)
    if size > MAX_PARTITION_KEY_BYTES:
        return (f"{shown[:80]}… is {size:,} UTF-8 bytes, over DynamoDB's {MAX_PARTITION_KEY_BYTES:,}-byte"
                " partition key limit")
    if norm.suspicious and not allow_suspicious and new_id not in set(allowed):
        return (f"{shown} is suspicious: {'; '.join(norm.suspicious)}. Check it is the id you mean; to record"
                " it anyway, allow a suspicious id explicitly (--allow-suspicious; kept with the decision)")
    return None
