"""Character facts shared by normalization, escaping and the suspicious-text checks.

Every Unicode property comes from ``unicodedata2`` (the newest Unicode tables, independent of the
interpreter). The one exception is whitespace: the ``fold-space`` rule is defined by
``str.isspace`` (brief section 4), so that is what decides "whitespace" here too.

The *ignorable* set (what ``strip-ignorable`` removes) is:

* every format character (general category ``Cf``),
* the rest of ``Default_Ignorable_Code_Point``: ``Other_Default_Ignorable_Code_Point`` and the
  variation selectors, listed below as ranges (PropList.txt; these lists only ever grow),
* every control character (``Cc``) that is not whitespace: ``\\t \\n \\v \\f \\r``, ``\\x1c``-``\\x1f``
  and ``\\x85`` are whitespace and are left for ``fold-space``.

The ``Cf`` part is derived from ``unicodedata2`` at import time by scanning planes 0, 1 and 14,
the only planes where Unicode allocates format characters (planes 2-3 hold ideographs, 4-13 are
unassigned, 15-16 are private use); a unit test re-derives the set over all 1,114,112 code points
so a future Unicode that breaks this assumption fails loudly instead of silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import unicodedata2

__all__ = [
    "IGNORABLE_RANGES",
    "IGNORABLE_RE",
    "CONTROL_NAMES",
    "SHORT_ALIASES",
    "UNICODE_VERSION",
    "is_ignorable",
    "is_invisible",
    "char_name",
    "char_label",
    "codepoint",
]

#: The Unicode version every table here comes from.
UNICODE_VERSION: str = unicodedata2.unidata_version

#: Other_Default_Ignorable_Code_Point (PropList.txt). Several are unassigned but reserved as
#: default-ignorable, so renderers already draw nothing for them.
_OTHER_DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x115F, 0x1160),  # HANGUL CHOSEONG FILLER, HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ, AA
    (0x2065, 0x2065),  # reserved
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # reserved
    (0xE0000, 0xE0000),  # reserved
    (0xE0002, 0xE001F),  # reserved
    (0xE0080, 0xE00FF),  # reserved
    (0xE01F0, 0xE0FFF),  # reserved
)

#: Variation_Selector (PropList.txt).
_VARIATION_SELECTORS: tuple[tuple[int, int], ...] = (
    (0x180B, 0x180D),  # MONGOLIAN FREE VARIATION SELECTOR ONE..THREE
    (0x180F, 0x180F),  # MONGOLIAN FREE VARIATION SELECTOR FOUR
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1..16
    (0xE0100, 0xE01EF),  # VARIATION SELECTOR-17..256
)

#: Planes scanned for ``Cf``/``Cc`` at import (see the module docstring).
_SCANNED = (range(0x0000, 0x20000), range(0xE0000, 0xE1000))


def _merge(points: list[int]) -> tuple[tuple[int, int], ...]:
    points.sort()
    ranges: list[list[int]] = []
    for cp in points:
        if ranges and cp <= ranges[-1][1] + 1:
            ranges[-1][1] = max(ranges[-1][1], cp)
        else:
            ranges.append([cp, cp])
    return tuple((a, b) for a, b in ranges)


def _derive_ignorable(code_points: Iterable[range] = _SCANNED) -> tuple[tuple[int, int], ...]:
    """Derive the ignorable set as sorted, merged ranges (``code_points``: ranges to scan)."""
    category = unicodedata2.category
    found: list[int] = []
    for block in code_points:
        for cp in block:
            ch = chr(cp)
            cat = category(ch)
            if cat == "Cf" or (cat == "Cc" and not ch.isspace()):
                found.append(cp)
    for lo, hi in _OTHER_DEFAULT_IGNORABLE + _VARIATION_SELECTORS:
        found.extend(cp for cp in range(lo, hi + 1) if not chr(cp).isspace())
    return _merge(found)


#: What ``strip-ignorable`` removes, as inclusive code point ranges.
IGNORABLE_RANGES: tuple[tuple[int, int], ...] = _derive_ignorable()


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    parts = []
    for lo, hi in ranges:
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return "[" + "".join(parts) + "]"


#: Matches one ignorable character.
IGNORABLE_RE: re.Pattern[str] = re.compile(_class(IGNORABLE_RANGES))

_ignorable_match = IGNORABLE_RE.match


def is_ignorable(ch: str) -> bool:
    """True if ``strip-ignorable`` removes the single character ``ch``."""
    return _ignorable_match(ch) is not None


#: Characters that draw nothing (or nothing distinguishable from a space) although their general
#: category says "symbol" or "letter"; the ignorable Hangul fillers are covered by ``is_ignorable``.
_BLANK_LOOKING = frozenset({"\u2800"})  # BRAILLE PATTERN BLANK

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def is_invisible(ch: str) -> bool:
    """True if ``ch`` must never reach an operator's screen raw.

    Controls, format characters, private use, surrogates, unassigned code points, line and
    paragraph separators, every space other than U+0020, every ignorable character, and a few
    visually blank symbols. Combining marks are judged by their context, not here.
    """
    if " " <= ch <= "~":
        return False
    cat = unicodedata2.category(ch)
    if cat in _INVISIBLE_CATEGORIES or (cat == "Zs" and ch != " "):
        return True
    return _ignorable_match(ch) is not None or ch in _BLANK_LOOKING


#: Formal name aliases (NameAliases.txt, type "control"/"figment") for the unnamed controls.
CONTROL_NAMES: dict[int, str] = {
    0x00: "NULL", 0x01: "START OF HEADING", 0x02: "START OF TEXT", 0x03: "END OF TEXT",
    0x04: "END OF TRANSMISSION", 0x05: "ENQUIRY", 0x06: "ACKNOWLEDGE", 0x07: "ALERT",
    0x08: "BACKSPACE", 0x09: "CHARACTER TABULATION", 0x0A: "LINE FEED", 0x0B: "LINE TABULATION",
    0x0C: "FORM FEED", 0x0D: "CARRIAGE RETURN", 0x0E: "SHIFT OUT", 0x0F: "SHIFT IN",
    0x10: "DATA LINK ESCAPE", 0x11: "DEVICE CONTROL ONE", 0x12: "DEVICE CONTROL TWO",
    0x13: "DEVICE CONTROL THREE", 0x14: "DEVICE CONTROL FOUR", 0x15: "NEGATIVE ACKNOWLEDGE",
    0x16: "SYNCHRONOUS IDLE", 0x17: "END OF TRANSMISSION BLOCK", 0x18: "CANCEL",
    0x19: "END OF MEDIUM", 0x1A: "SUBSTITUTE", 0x1B: "ESCAPE", 0x1C: "INFORMATION SEPARATOR FOUR",
    0x1D: "INFORMATION SEPARATOR THREE", 0x1E: "INFORMATION SEPARATOR TWO",
    0x1F: "INFORMATION SEPARATOR ONE", 0x7F: "DELETE",
    0x80: "PADDING CHARACTER", 0x81: "HIGH OCTET PRESET", 0x82: "BREAK PERMITTED HERE",
    0x83: "NO BREAK HERE", 0x84: "INDEX", 0x85: "NEXT LINE", 0x86: "START OF SELECTED AREA",
    0x87: "END OF SELECTED AREA", 0x88: "CHARACTER TABULATION SET",
    0x89: "CHARACTER TABULATION WITH JUSTIFICATION", 0x8A: "LINE TABULATION SET",
    0x8B: "PARTIAL LINE FORWARD", 0x8C: "PARTIAL LINE BACKWARD", 0x8D: "REVERSE LINE FEED",
    0x8E: "SINGLE SHIFT TWO", 0x8F: "SINGLE SHIFT THREE", 0x90: "DEVICE CONTROL STRING",
    0x91: "PRIVATE USE ONE", 0x92: "PRIVATE USE TWO", 0x93: "SET TRANSMIT STATE",
    0x94: "CANCEL CHARACTER", 0x95: "MESSAGE WAITING", 0x96: "START OF GUARDED AREA",
    0x97: "END OF GUARDED AREA", 0x98: "START OF STRING",
    0x99: "SINGLE GRAPHIC CHARACTER INTRODUCER", 0x9A: "SINGLE CHARACTER INTRODUCER",
    0x9B: "CONTROL SEQUENCE INTRODUCER", 0x9C: "STRING TERMINATOR",
    0x9D: "OPERATING SYSTEM COMMAND", 0x9E: "PRIVACY MESSAGE", 0x9F: "APPLICATION PROGRAM COMMAND",
}

#: Short, conventional abbreviations shown inside ``⟨…⟩`` markers by ``escape.visible``.
SHORT_ALIASES: dict[int, str] = {
    0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x09: "TAB", 0x0A: "LF", 0x0B: "VT", 0x0C: "FF",
    0x0D: "CR", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL", 0xA0: "NBSP", 0xAD: "SHY", 0x34F: "CGJ",
    0x61C: "ALM", 0x115F: "HCF", 0x1160: "HJF", 0x1680: "OGHAM SP", 0x180B: "FVS1", 0x180C: "FVS2",
    0x180D: "FVS3", 0x180E: "MVS", 0x180F: "FVS4", 0x2000: "NQSP", 0x2001: "MQSP", 0x2002: "ENSP",
    0x2003: "EMSP", 0x2004: "3/MSP", 0x2005: "4/MSP", 0x2006: "6/MSP", 0x2007: "FSP",
    0x2008: "PSP", 0x2009: "THSP", 0x200A: "HSP", 0x200B: "ZWSP", 0x200C: "ZWNJ", 0x200D: "ZWJ",
    0x200E: "LRM", 0x200F: "RLM", 0x2028: "LSEP", 0x2029: "PSEP", 0x202A: "LRE", 0x202B: "RLE",
    0x202C: "PDF", 0x202D: "LRO", 0x202E: "RLO", 0x202F: "NNBSP", 0x205F: "MMSP", 0x2060: "WJ",
    0x2066: "LRI", 0x2067: "RLI", 0x2068: "FSI", 0x2069: "PDI", 0x3000: "IDSP", 0x3164: "HF",
    0xFEFF: "BOM", 0xFFA0: "HWHF",
    **{0xFE00 + i: f"VS{i + 1}" for i in range(16)},
}


def codepoint(ch: str) -> str:
    """``"U+200B"``: at least four upper-case hex digits."""
    return f"U+{ord(ch):04X}"


def char_name(ch: str) -> str:
    """The character's Unicode name, its formal alias for controls, or a ``<category>`` label."""
    name = unicodedata2.name(ch, "")
    if name:
        return name
    cp = ord(ch)
    if cp in CONTROL_NAMES:
        return CONTROL_NAMES[cp]
    cat = unicodedata2.category(ch)
    if cat == "Cc":
        return "<control>"
    if cat == "Co":
        return "<private-use>"
    if cat == "Cs":
        return "<surrogate>"
    if cat == "Cn":
        if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
            return "<noncharacter>"
        return "<unassigned>"
    return "<unnamed>"


def char_label(ch: str) -> str:
    """``"U+200B ZERO WIDTH SPACE"`` for one character."""
    return f"{codepoint(ch)} {char_name(ch)}"
