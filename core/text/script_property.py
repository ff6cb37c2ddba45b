"""The Unicode Script and Script_Extensions properties of a character (``data/scripts.txt``).

Script names are the long property value names of PropertyValueAliases.txt with spaces for
underscores, as operators read them: ``Latin``, ``Cyrillic``, ``Han``, ``Old Italic``,
``Canadian Aboriginal``; plus the special values ``Common`` (digits, punctuation, symbols shared
by all scripts), ``Inherited`` (combining marks that take their base letter's script) and
``Unknown`` (unassigned code points).

The table is loaded on first use, once per process (a plan's child interpreters load their own),
as sorted range starts searched with ``bisect``; callers that look up the same characters over
and over (``scripts.suspicious``) keep their own per-character cache on top.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import cache

from .unicode_data import load

__all__ = ["COMMON", "INHERITED", "UNKNOWN", "script", "script_extensions", "data_version", "ranges"]

COMMON = "Common"
INHERITED = "Inherited"
UNKNOWN = "Unknown"

_Value = tuple[str, frozenset[str]]


@cache
def _table() -> tuple[str, list[int], list[_Value]]:
    """``(version, starts, values)``: ``values[i]`` holds from ``starts[i]`` to the next start."""
    data = load("scripts.txt")
    unknown: _Value = (UNKNOWN, frozenset({UNKNOWN}))
    interned: dict[_Value, _Value] = {}
    starts: list[int] = []
    values: list[_Value] = []
    end = -1  # last code point covered so far
    for line in data.lines:
        first, last, sc, *ext = line.split(";")
        lo, hi = int(first, 16), int(last, 16)
        if lo <= end:
            raise ValueError(f"scripts.txt: ranges overlap or are not sorted at {first}")
        if lo > end + 1:  # a gap: unassigned
            starts.append(end + 1)
            values.append(unknown)
        name = sc.replace("_", " ")
        scx = frozenset(s.replace("_", " ") for s in ext[0].split()) if ext else frozenset({name})
        starts.append(lo)
        values.append(interned.setdefault((name, scx), (name, scx)))
        end = hi
    starts.append(end + 1)
    values.append(unknown)
    return data.version, starts, values


def _value(ch: str) -> _Value:
    _, starts, values = _table()
    return values[bisect_right(starts, ord(ch)) - 1]


def script(ch: str) -> str:
    """The Script property of ``ch``: ``"Latin"``, ``"Cyrillic"``, ``"Common"``, ``"Inherited"``…"""
    return _value(ch)[0]


def script_extensions(ch: str) -> frozenset[str]:
    """The Script_Extensions of ``ch``: the scripts it is used with (``{Script}`` for most)."""
    return _value(ch)[1]


def data_version() -> str:
    """The Unicode version of the Script data."""
    return _table()[0]


def ranges() -> list[tuple[int, int, str, frozenset[str]]]:
    """Every assigned range as ``(first, last, script, script_extensions)``, for checks and tests."""
    _, starts, values = _table()
    ends = [s - 1 for s in starts[1:]] + [0x10FFFF]
    return [(a, b, sc, scx) for a, b, (sc, scx) in zip(starts, ends, values) if sc != UNKNOWN]
