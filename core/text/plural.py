"""Counts and names in operator-facing sentences: "1 row", "2 rows", "orders' stream".

Kept tiny and English-only on purpose: the console and the CLI speak one language, and a wrong
plural ("1 unusable reference rows") reads as a wrong count to an operator under pressure.
"""

from __future__ import annotations

__all__ = ["count", "plural", "possessive"]

#: Words whose plural is not the word plus "s" (only those the console actually says).
_IRREGULAR = {"entry": "entries", "mismatch": "mismatches", "is": "are", "was": "were", "has": "have",
              "identity": "identities", "this": "these"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """``word`` as ``n`` of it needs: ``plural(1, "row")`` is ``row``, ``plural(2, "row")`` ``rows``."""
    if n == 1:
        return word
    if many is not None:
        return many
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def count(n: int, word: str, many: str | None = None) -> str:
    """``n`` with its word, thousands separated: ``count(1, "case")`` → ``1 case``,
    ``count(1200, "row")`` → ``1,200 rows``."""
    return f"{n:,} {plural(n, word, many)}"


def possessive(name: str) -> str:
    """``name``'s, except after a final s (``orders'`` stream, never ``orders's``)."""
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"
