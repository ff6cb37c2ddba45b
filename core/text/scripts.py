"""Scripts and look-alikes: the checks that *flag* an identifier for a human, never change it.

Two checks (brief section 4, "never auto-fixed, only flagged"):

* **mixed scripts**: the letters come from more than one script (Latin and Cyrillic…). Digits,
  punctuation, symbols, spaces and combining marks belong to no script and never count. The
  combinations that UTS #39 calls *highly restrictive* are normal writing, not suspicious: Latin
  with Han + Hiragana + Katakana (Japanese), Latin with Han + Bopomofo (Chinese), Latin with
  Han + Hangul (Korean).
* **confusable**: every letter is Latin or a known look-alike of a Latin letter, and at least one
  look-alike is present, so the text *reads* as a Latin word: ``раураl`` (Cyrillic р а у р а and a
  Latin l) reads as ``paypal``. ``Москва`` is not flagged: к and в have no Latin twin here.

A character's script comes from its ``unicodedata2`` name (``CYRILLIC SMALL LETTER ER`` →
Cyrillic). Letters named for a style rather than a script (``MATHEMATICAL BOLD CAPITAL A``,
``MODIFIER LETTER SMALL H``, ``KELVIN SIGN``…) take the script of their compatibility
decomposition, or none.
"""

from __future__ import annotations

from functools import lru_cache

import unicodedata2

from .escape import escape
from .unicode_chars import char_label

__all__ = ["CONFUSABLES", "script_of", "letter_scripts", "skeleton", "suspicious"]

#: First name words that need the second word to name a distinct script.
_TWO_WORD = frozenset(
    {"OLD", "NEW", "TAI", "LINEAR", "INSCRIPTIONAL", "MEROITIC", "CAUCASIAN", "IMPERIAL",
     "PSALTER", "MEETEI", "OL", "SYLOTI", "SORA", "KAYAH", "NAG", "PAU", "WARANG", "NYIAKENG",
     "PAHAWH", "HANIFI", "MASARAM", "GUNJALA", "DIVES", "ZANABAZAR", "BASSA", "MENDE", "TOLONG",
     "BERIA", "GURUNG", "KIRAT", "SMALL", "CANADIAN"}
)

#: First name words whose script has another usual name.
_ALIASES = {
    "CJK": "Han", "IDEOGRAPHIC": "Han", "CHINESE": "Han", "HENTAIGANA": "Hiragana",
    "CANADIAN SYLLABICS": "Canadian Aboriginal", "NKO": "NKo", "PHAGS-PA": "Phags-pa",
    "SMALL SEAL": "Han",
}

#: First name words that name a style or a unit, not a script.
_NOT_A_SCRIPT = frozenset(
    {"MATHEMATICAL", "DOUBLE-STRUCK", "SCRIPT", "BLACK-LETTER", "SUPERSCRIPT", "SUBSCRIPT",
     "TURNED", "MODIFIER", "FEMININE", "MASCULINE", "ANGSTROM", "KELVIN", "OHM", "MICRO",
     "PLANCK", "EULER", "INFORMATION", "ROMAN", "ALEF", "BET", "GIMEL", "DALET", "CARON",
     "VERTICAL", "KATAKANA-HIRAGANA", "VEDIC", "MASU", "ESTIMATED"}
)


@lru_cache(maxsize=8192)
def script_of(ch: str) -> str | None:
    """The script of a *letter* (``"Latin"``, ``"Cyrillic"``…); ``None`` for anything else."""
    if not unicodedata2.category(ch).startswith("L"):
        return None
    words = unicodedata2.name(ch, "").split()
    if words and words[0] in ("FULLWIDTH", "HALFWIDTH"):
        words = words[1:]
    if not words:
        return None
    key = words[0]
    if key in _NOT_A_SCRIPT:
        decomposed = unicodedata2.normalize("NFKD", ch)
        if decomposed == ch:
            return None
        return next((s for s in map(script_of, decomposed) if s), None)
    if key in _TWO_WORD and len(words) > 1:
        key = f"{key} {words[1]}"
    if key in _ALIASES:
        return _ALIASES[key]
    return key.title()


def letter_scripts(text: str) -> dict[str, list[int]]:
    """Script → positions of its letters in ``text``, in order of first appearance."""
    found: dict[str, list[int]] = {}
    for i, ch in enumerate(text):
        if ch.isascii():
            if ch.isalpha():
                found.setdefault("Latin", []).append(i)
            continue
        script = script_of(ch)
        if script is not None:
            found.setdefault(script, []).append(i)
    return found


#: Script sets that are one writing system (UTS #39 "highly restrictive"), not a mix.
_ALLOWED_MIXES = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)


def _table() -> dict[str, str]:
    pairs = {
        # Cyrillic
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i",
        "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ү": "y", "ӏ": "l", "ѵ": "v", "ҽ": "e",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
        "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y",
        "Ӏ": "I", "Ѵ": "V", "Ԍ": "G",
        # Greek
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
        "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J", "Ϝ": "F",
        "α": "a", "γ": "y", "ι": "i", "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "υ": "u", "ϲ": "c",
        "ϳ": "j",
        # Armenian
        "ս": "u", "օ": "o", "հ": "h", "ո": "n", "զ": "q", "ց": "g", "Ս": "U", "Տ": "S", "Օ": "O",
        # Cherokee (capital letters; their small forms are added below)
        "Ꭰ": "D", "Ꭱ": "R", "Ꭲ": "T", "Ꭵ": "i", "Ꭹ": "Y", "Ꭺ": "A", "Ꭻ": "J", "Ꭼ": "E", "Ꮃ": "W",
        "Ꮇ": "M", "Ꮋ": "H", "Ꮍ": "Y", "Ꮐ": "G", "Ꮒ": "h", "Ꮓ": "Z", "Ꮟ": "b", "Ꮢ": "R", "Ꮤ": "W",
        "Ꮥ": "S", "Ꮩ": "V", "Ꮪ": "S", "Ꮮ": "L", "Ꮯ": "C", "Ꮲ": "P", "Ꮶ": "K", "Ꮷ": "d", "Ᏻ": "G",
        "Ᏼ": "B",
        # Lisu
        "ꓐ": "B", "ꓑ": "P", "ꓓ": "D", "ꓔ": "T", "ꓖ": "G", "ꓗ": "K", "ꓙ": "J", "ꓚ": "C", "ꓜ": "Z",
        "ꓝ": "F", "ꓟ": "M", "ꓠ": "N", "ꓡ": "L",
        # Latin letters that pass for basic Latin ones
        "ɑ": "a", "ɡ": "g", "ɩ": "i", "ɪ": "i", "ǀ": "l", "ᴄ": "c", "ᴏ": "o", "ᴜ": "u", "ᴠ": "v",
        "ᴡ": "w", "ᴢ": "z",
    }
    for ch, latin in list(pairs.items()):
        if "\u13a0" <= ch <= "\u13f5":  # Cherokee small letters look like small capitals
            small = ch.lower()
            if small != ch:
                pairs[small] = latin.lower()
    return pairs


#: Look-alike letter → the basic Latin letter it passes for.
CONFUSABLES: dict[str, str] = _table()


def skeleton(text: str) -> str | None:
    """The Latin text ``text`` passes for, or ``None`` if it does not pass for Latin at all.

    ``None`` unless every letter is Latin or a look-alike in :data:`CONFUSABLES` and at least one
    look-alike is present. Non-letters (digits, punctuation, marks, spaces) are kept as they are.
    """
    out: list[str] = []
    lookalike = False
    for ch in text:
        latin = CONFUSABLES.get(ch)
        if latin is not None:
            lookalike = True
            out.append(latin)
        elif ch.isascii() or script_of(ch) in (None, "Latin"):
            out.append(ch)
        else:
            return None
    return "".join(out) if lookalike else None


def _is_mixed(scripts: dict[str, list[int]]) -> bool:
    if len(scripts) < 2:
        return False
    names = set(scripts)
    return not any(names <= allowed for allowed in _ALLOWED_MIXES)


def suspicious(text: str, *, limit: int = 3) -> tuple[str, ...]:
    """Human-readable flags for ``text`` (usually a canonical form); empty when nothing is odd.

    ``limit`` caps how many characters a flag names before it ends with ``…``.
    """
    if not text or max(text) < "\u0180":
        # Basic Latin, Latin-1 and Latin Extended-A hold letters of one script only and none of
        # the look-alikes: nothing to flag (the common case, decided without a per-letter walk).
        return ()
    flags: list[str] = []
    scripts = letter_scripts(text)
    if _is_mixed(scripts):
        order = sorted(scripts, key=lambda s: (s != "Latin", scripts[s][0]))
        others = sorted(i for s in order[1:] for i in scripts[s])
        named = [f"{char_label(text[i])} at {i}" for i in others[:limit]]
        if len(others) > limit:
            named.append("…")
        flags.append(f"mixed scripts: {', '.join(order)} ({', '.join(named)})")
    latin = skeleton(text)
    if latin is not None:
        flags.append(f"confusable with Latin '{escape(latin)}'")
    return tuple(flags)
