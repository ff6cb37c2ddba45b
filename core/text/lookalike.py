"""Look-alike marks: why two identifiers that render the same are not the same.

An operator choosing between identifiers (a queue's members, a dialog's candidates, the browser's
rows, ``keyshift resolve list``) cannot tell ``Café`` (NFC) from ``Cafe`` + U+0301 (NFD), a Latin
``a`` from a Cyrillic ``а``, or ``Acme  Corp`` from ``Acme Corp`` by looking: a terminal draws them
alike. :func:`marks` names each difference as a short badge (``NFD``, ``Cyrl``, ``␣␣``, ``NBSP``,
``ZWSP``…) that a screen shows next to the escaped form (:func:`.escape.escape`). It only
*describes* the raw text; nothing here changes an identifier (that is :mod:`.normalize`'s job).

The checks, in the order their marks are listed:

* ``nfd``: the text is not in NFC (a decomposed accent); ``where``: the combining marks that NFC
  would compose into the letter before them.
* ``compat``: NFC and NFKC differ (fullwidth ``Ａ``, ligature ``ﬁ``, superscript ``²``); badge
  ``NFKC``; odd spaces, which NFKC also changes, only get their own mark.
* ``script``: letters of more than one script where UTS #39 "highly restrictive" allows one
  (:func:`.scripts.is_mixed`); one mark per script other than the first (Latin first), badged
  with its ISO 15924 code (``Cyrl``, ``Grek``); ``where``: that script's letters.
* ``confusable``: no mixing and no Latin letter, but the whole text passes for Latin letters
  (``рау``, all Cyrillic, reads ``pay``); badge ``≈Latn``.
* ``double-space``, ``edge-space``: a run of U+0020 (``␣␣``), a space at either end (``␣|``).
* ``nbsp`` and the other non-U+0020 spaces, ``invisible`` (zero-width, bidi, controls…): one mark
  per distinct character, badged with its short alias (``NBSP``, ``ZWSP``) or code point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import unicodedata2

_nf = unicodedata2.normalize


def _is(form: str, text: str) -> bool:
    """``unicodedata.is_normalized`` with the project's Unicode data (unicodedata2 lacks it)."""
    return _nf(form, text) == text

from .scripts import is_mixed, latin_reading, letter_scripts
from .unicode_chars import SHORT_ALIASES, char_label, codepoint, is_invisible

__all__ = ["Mark", "marks", "badges", "SCRIPT_CODES"]

#: ISO 15924 codes of the scripts an identifier is likely to mix; others use their first four letters.
SCRIPT_CODES: dict[str, str] = {
    "Latin": "Latn", "Cyrillic": "Cyrl", "Greek": "Grek", "Armenian": "Armn", "Georgian": "Geor",
    "Cherokee": "Cher", "Han": "Hani", "Hiragana": "Hira", "Katakana": "Kana", "Hangul": "Hang",
    "Arabic": "Arab", "Hebrew": "Hebr", "Devanagari": "Deva", "Thai": "Thai", "Coptic": "Copt",
    "Lisu": "Lisu", "Canadian_Aboriginal": "Cans", "Tifinagh": "Tfng", "Vai": "Vaii",
}


@dataclass(frozen=True, slots=True)
class Mark:
    """One reason an identifier may pass for another: ``code`` (stable, for JSON and tests), the
    short ``label`` a screen shows as a badge, the code point positions ``where`` it applies, and
    one sentence for an operator (``detail``)."""

    code: str
    label: str
    where: tuple[int, ...] = ()
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``where`` as a list)."""
        return {"code": self.code, "label": self.label, "where": list(self.where), "detail": self.detail}


def _nfd_marks(raw: str) -> list[Mark]:
    if _is("NFC", raw):
        return []
    # The marks NFC composes are those whose position's character disappears in the composed
    # form; counting code points before and after each one finds them without an alignment.
    where = tuple(i for i, ch in enumerate(raw)
                  if unicodedata2.combining(ch) and i > 0
                  and len(unicodedata2.normalize("NFC", raw[i - 1 : i + 1])) == 1)
    return [Mark("nfd", "NFD", where or tuple(range(len(raw))),
                 "not in NFC: an accent is a separate combining mark (renders like the composed letter)")]


def _compat_marks(raw: str) -> list[Mark]:
    nfc = unicodedata2.normalize("NFC", raw)
    if _is("NFKC", nfc):
        return []
    # Odd spaces have their own mark (NBSP, THSP…): naming them twice would only add noise.
    where = tuple(i for i, ch in enumerate(raw) if not _is("NFKC", ch) and unicodedata2.category(ch) != "Zs")
    if not where:
        return []
    return [Mark("compat", "NFKC", where, "compatibility forms (fullwidth, ligatures…): NFKC changes them")]


def _script_marks(raw: str) -> list[Mark]:
    text = unicodedata2.normalize("NFC", raw)  # positions below are the NFC text's
    if text.isascii():
        return []
    if is_mixed(text):
        found = letter_scripts(text)
        order = sorted(found, key=lambda s: (s != "Latin", found[s][0]))
        return [Mark("script", SCRIPT_CODES.get(name, name[:4]), tuple(found[name]),
                     f"{name} letters in a {order[0]} name: "
                     + ", ".join(char_label(text[i]) for i in found[name][:3]))
                for name in order[1:]]
    # A Latin compatibility form (fullwidth ``Ａ``) has an ASCII prototype too, but it is Latin:
    # the compat mark says what is odd about it. Only a name with no Latin letter at all can be
    # a whole-script look-alike.
    reading = latin_reading(text) if "Latin" not in letter_scripts(text) else None
    if reading is not None:
        return [Mark("confusable", "≈Latn", tuple(range(len(text))),
                     f"reads as Latin '{reading}' but is written in other scripts' letters")]
    return []


def _space_marks(raw: str) -> list[Mark]:
    out: list[Mark] = []
    doubled = tuple(i for i in range(1, len(raw)) if raw[i] == " " and raw[i - 1] == " ")
    if doubled:
        out.append(Mark("double-space", "␣␣", doubled, "two or more spaces in a row"))
    edges = tuple(sorted({i for i in range(len(raw) - len(raw.lstrip(" ")))}
                         | {i for i in range(len(raw.rstrip(" ")), len(raw))}))
    if edges and raw.strip(" "):
        out.append(Mark("edge-space", "␣|", edges, "a space at the start or the end"))
    return out


def _invisible_marks(raw: str) -> list[Mark]:
    seen: dict[str, list[int]] = {}
    for i, ch in enumerate(raw):
        if ch != " " and is_invisible(ch):
            seen.setdefault(ch, []).append(i)
    out = []
    for ch, where in seen.items():
        spacing = unicodedata2.category(ch) == "Zs"
        code = "nbsp" if ch == "\u00a0" else "space" if spacing else "invisible"
        label = SHORT_ALIASES.get(ord(ch)) or codepoint(ch)
        what = "a space other than U+0020" if spacing else "an invisible character"
        out.append(Mark(code, label, tuple(where), f"{what}: {char_label(ch)}"))
    return out


def marks(raw: str) -> list[Mark]:
    """Every look-alike mark of ``raw`` (empty for plain ASCII without odd spaces: the common case)."""
    if raw.isascii() and raw.isprintable() and "  " not in raw and raw == raw.strip(" "):
        return []
    return [*_nfd_marks(raw), *_compat_marks(raw), *_script_marks(raw), *_space_marks(raw),
            *_invisible_marks(raw)]


def badges(raw: str) -> str:
    """The marks' labels as one bracketed badge (``"[NFD Cyrl]"``), or ``""`` when there are none."""
    found = marks(raw)
    return f"[{' '.join(m.label for m in found)}]" if found else ""
