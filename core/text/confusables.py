"""UTS #39 confusables: each character's prototype and a text's skeleton (``data/confusables.txt``).

Two texts are confusable when their skeletons are equal. ``skeleton(X)`` is, exactly as UTS #39
section 4 defines it: NFD, then every character replaced by its prototype from confusables.txt,
then NFD again (a few prototypes are not in NFD themselves). Prototypes are chosen by Unicode and
are not always the "natural" letter: the prototype of ``I`` (and of ``1``, ``|`` and Cyrillic
``І``) is ``l``, that of ``m`` is ``rn``, that of ``0`` is ``O``. So a skeleton is a key to
compare with, not a text to show; :func:`ascii_letters_for` turns a prototype back into the
ASCII letters that share it.

Loaded on first use, once per process, as a dict (about 6,700 entries).
"""

from __future__ import annotations

import string
from functools import cache

import unicodedata2

from .unicode_data import load

__all__ = ["prototype", "skeleton", "ascii_letters_for", "data_version"]


@cache
def _table() -> tuple[str, dict[str, str]]:
    data = load("confusables.txt")
    table: dict[str, str] = {}
    for line in data.lines:
        source, _, target = line.partition(";")
        table[chr(int(source, 16))] = (
            chr(int(target, 16)) if " " not in target  # nine in ten prototypes are one character
            else "".join([chr(int(cp, 16)) for cp in target.split()])
        )
    return data.version, table


@cache
def _ascii_by_prototype() -> dict[str, tuple[str, ...]]:
    """Prototype → the ASCII letters whose prototype it is (``"l"`` → ``("I", "l")``)."""
    found: dict[str, list[str]] = {}
    for letter in string.ascii_letters:
        found.setdefault(prototype(letter), []).append(letter)
    return {proto: tuple(sorted(letters)) for proto, letters in found.items()}


def prototype(ch: str) -> str:
    """The UTS #39 prototype of one character (the character itself when it has none)."""
    return _table()[1].get(ch, ch)


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``: NFD, each character mapped to its prototype, NFD."""
    table = _table()[1]
    nfd = unicodedata2.normalize("NFD", text)
    return unicodedata2.normalize("NFD", "".join([table.get(ch, ch) for ch in nfd]))


def ascii_letters_for(proto: str, *, upper: bool) -> str | None:
    """ASCII letters that have the prototype ``proto``, or ``None`` if ``proto`` is not made of them.

    The whole prototype is tried first (``"rn"`` → ``"m"``), then letter by letter (``"lJ"`` →
    ``"IJ"``). Where two ASCII letters share a prototype (``I`` and ``l`` share ``l``) the one of
    the case asked for wins: an upper-case look-alike reads as ``I``, a lower-case or uncased one
    as ``l``.
    """
    by_proto = _ascii_by_prototype()

    def pick(candidates: tuple[str, ...]) -> str:
        return next((c for c in candidates if c.isupper() == upper), candidates[0])

    if proto in by_proto:
        return pick(by_proto[proto])
    out = []
    for ch in proto:
        candidates = by_proto.get(ch)
        if candidates is None:
            return None
        out.append(pick(candidates))
    return "".join(out)


def data_version() -> str:
    """The Unicode version of the confusables data."""
    return _table()[0]
