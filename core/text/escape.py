"""Showing identifiers to operators: never a raw invisible character on screen.

* :func:`escape` / :func:`unescape`: a reversible, printable text form (``Acme\\u200b``) for
  reports, JSON, CLI output and input fields. ``unescape(escape(s)) == s`` for every string.
* :func:`visible`: a display-only form with named markers (``Acme⟨ZWSP⟩``); not reversible.
* :func:`char_label`: ``"U+200B ZERO WIDTH SPACE"``.

What counts as invisible: controls, format characters, private use, surrogates, unassigned code
points, line/paragraph separators, every space other than U+0020, every default-ignorable
character, and a combining mark with nothing to sit on (at the start, after a space or after an
escape).
"""

from __future__ import annotations

import unicodedata2

from .unicode_chars import SHORT_ALIASES, char_label, is_invisible

__all__ = ["escape", "unescape", "visible", "char_label", "EscapeError"]

_HEX = frozenset("0123456789abcdefABCDEF")
_WIDTH = {"x": 2, "u": 4, "U": 8}


class EscapeError(ValueError):
    """An escaped string that cannot be read back; ``position`` is the offending backslash."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


def _hex(ch: str) -> str:
    cp = ord(ch)
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _render(s: str, hidden) -> str:  # noqa: ANN001 - hidden: Callable[[str], str]
    """Shared walk: keep visible characters, pass the others through ``hidden``."""
    out: list[str] = []
    attach = False  # may a combining mark attach to what was written last?
    combining = unicodedata2.combining
    category = unicodedata2.category
    for ch in s:
        if " " <= ch <= "~":
            if ch == "\\":
                out.append(hidden(ch))
                attach = False
            else:
                out.append(ch)
                attach = ch != " "
        elif is_invisible(ch):
            out.append(hidden(ch))
            attach = False
        elif category(ch).startswith("M") or combining(ch):
            if attach:
                out.append(ch)
            else:
                out.append(hidden(ch))
        else:
            out.append(ch)
            attach = True
    return "".join(out)


def _escape_one(ch: str) -> str:
    return "\\\\" if ch == "\\" else _hex(ch)


def escape(s: str) -> str:
    """A printable, reversible form of ``s``.

    Printable ASCII and visible non-ASCII characters stay as they are; a backslash becomes
    ``\\\\``; every invisible character becomes ``\\uXXXX`` (``\\UXXXXXXXX`` beyond the BMP), e.g.
    NBSP → ``\\u00a0``. U+0020 stays a plain space, except where a reader cannot see it: at
    either end and after another space, it becomes ``\\u0020`` (``"Acme Corp\\u0020"``).
    """
    if s.isascii() and s.isprintable() and "\\" not in s and not _odd_spaces(s):
        return s
    return _spell_spaces(_render(s, _escape_one))


def _odd_spaces(s: str) -> bool:
    return s.startswith(" ") or s.endswith(" ") or "  " in s


def _spell_spaces(text: str) -> str:
    """Spell out the spaces nobody can count: leading, trailing, and each after another space."""
    if not _odd_spaces(text):
        return text
    n = len(text)
    lead = n - len(text.lstrip(" "))
    trail = n - len(text.rstrip(" "))
    out = []
    for i, ch in enumerate(text):
        if ch == " " and (i < lead or i >= n - trail or text[i - 1] == " "):
            out.append("\\u0020")
        else:
            out.append(ch)
    return "".join(out)


def unescape(s: str) -> str:
    """Inverse of :func:`escape`: reads ``\\uXXXX``, ``\\UXXXXXXXX``, ``\\xXX`` and ``\\\\``.

    Anything else after a backslash raises :class:`EscapeError` (a ``ValueError``) naming the
    position. Surrogate escapes are kept as single code points, never paired, so that every
    string survives ``unescape(escape(s))``.
    """
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        j = s.find("\\", i)
        if j < 0:
            out.append(s[i:])
            break
        out.append(s[i:j])
        if j + 1 >= n:
            raise EscapeError("dangling backslash", j)
        kind = s[j + 1]
        if kind == "\\":
            out.append("\\")
            i = j + 2
            continue
        width = _WIDTH.get(kind)
        if width is None:
            raise EscapeError(
                f"invalid escape \\{kind} (use \\uXXXX, \\UXXXXXXXX, \\xXX or \\\\)", j
            )
        digits = s[j + 2 : j + 2 + width]
        if len(digits) != width or not _HEX.issuperset(digits):
            raise EscapeError(f"\\{kind} needs exactly {width} hex digits", j)
        cp = int(digits, 16)
        if cp > 0x10FFFF:
            raise EscapeError(f"\\{kind}{digits} is beyond U+10FFFF", j)
        out.append(chr(cp))
        i = j + 2 + width
    return "".join(out)


def _marker(ch: str) -> str:
    if ch == "\\":
        return ch
    alias = SHORT_ALIASES.get(ord(ch))
    return f"⟨{alias}⟩" if alias else f"⟨U+{ord(ch):04X}⟩"


def _edge_spaces(s: str) -> str:
    head = len(s) - len(s.lstrip(" "))
    tail = len(s) - len(s.rstrip(" "))
    if head == len(s):
        return "⟨SP⟩" * len(s)
    return "⟨SP⟩" * head + s[head : len(s) - tail] + "⟨SP⟩" * tail


def visible(s: str, *, edge_spaces: bool = False) -> str:
    """Display form: invisible characters as markers, e.g. ``"Acme⟨ZWSP⟩"``, ``"⟨NBSP⟩"``,
    ``"⟨U+E0101⟩"`` (no short alias). Not reversible: use :func:`escape` for anything stored.

    ``edge_spaces=True`` also marks leading and trailing U+0020 as ``⟨SP⟩``.
    """
    if s.isascii() and s.isprintable():
        out = s
    else:
        out = _render(s, _marker)
    return _edge_spaces(out) if edge_spaces and out else out
