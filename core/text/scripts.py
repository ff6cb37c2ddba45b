"""Scripts and look-alikes: the checks that *flag* an identifier for a human, never change it.

Two flags (brief section 4, "never auto-fixed, only flagged"), both from Unicode's own data: the
Script and Script_Extensions properties (:mod:`.script_property`) and the UTS #39 confusable
prototypes (:mod:`.confusables`). The exact rules (also in docs/design.md, "Unicode data"):

**mixed scripts: A, B (…)**. Only letters and combining marks (general category L or M) count;
digits, punctuation, symbols and spaces never do, and neither does a letter or mark whose
Script_Extensions is just Common or Inherited. Each counted character has a script *set*, its
Script_Extensions (``ー`` is Hiragana or Katakana; U+0301 COMBINING ACUTE ACCENT is used with
Latin, Greek, Cyrillic…). The text is *not* mixed when one script is in every set (UTS #39 "single
script"), nor when one of UTS #39's "highly restrictive" covers meets every set: Latin + Han +
Hiragana + Katakana (Japanese), Latin + Han + Bopomofo (Chinese), Latin + Han + Hangul (Korean).
Otherwise it is mixed. The flag names the scripts (Latin first, then in order of appearance) and
the first ``limit`` characters that are not of the first script. A character with several
scripts is counted for the script of the character just before it if that is one of them (a
mark goes with its base letter), else for the first of them that a single-script character of
the text has, else for its own Script value, else the alphabetically first.

**confusable with Latin '…'**: the text reads as Latin letters, as a Latin word. On the NFD form,
each non-ASCII letter (category L) is one of:

* a *look-alike*: its UTS #39 prototype is made of ASCII letters only and it is not a Latin letter
  below U+0180 (Cyrillic ``р`` → ``p``, Greek ``Α`` → ``A``, Cherokee ``Ꮯ`` → ``C``, Latin alpha
  ``ɑ`` → ``a``); it reads as the ASCII letter(s) with that prototype
  (:func:`.confusables.ascii_letters_for`);
* a Latin, Common or Inherited letter that is not a look-alike (``ß``, ``ø``, ``æ``): itself;
* anything else (Cyrillic ``к``, whose prototype is Latin ``ĸ``; Greek ``λ``; Han): the text does
  not read as Latin, no flag.

The text is flagged when no letter is of the last kind and at least one is a look-alike; the flag
shows the reading (NFC). Non-letters (digits, spaces, punctuation, marks) stay as they are. So
``раураl`` → ``paypal``, ``рау`` → ``pay`` (a whole-script look-alike), but ``Москва`` has no
flag: ``к`` and ``в`` pass for no ASCII letter. Latin letters below U+0180 are never look-alikes
(æ, þ, ı, ſ have ASCII prototypes, but they are ordinary letters of European orthographies); that
is also what makes the fast path of :func:`suspicious` exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import NamedTuple

import unicodedata2

from .confusables import ascii_letters_for, prototype
from .escape import escape
from .script_property import COMMON, INHERITED, script, script_extensions
from .unicode_chars import char_label

__all__ = ["letter_scripts", "is_mixed", "latin_reading", "suspicious"]

_LATIN = "Latin"
_LATIN_SET = frozenset({_LATIN})

#: UTS #39 "highly restrictive": script sets that are one writing system, not a mix.
_COVERS = (
    frozenset({_LATIN, "Han", "Hiragana", "Katakana"}),
    frozenset({_LATIN, "Han", "Bopomofo"}),
    frozenset({_LATIN, "Han", "Hangul"}),
)
_ALL_COVERS = (1 << len(_COVERS)) - 1

_IGNORED = (frozenset({COMMON}), frozenset({INHERITED}))

# What a character is for the Latin reading (see the module docstring), as bits: the kind of a
# text (or of a character that decomposes) is the OR of its parts' kinds, and it reads as Latin
# exactly when that OR is _LOOKALIKE.
_ITSELF, _LOOKALIKE, _NOT_LATIN = 0, 1, 2

# Script sets as bit masks (one bit per script, given on first sight), so that "one script is in
# every set" is an AND of ints, and "a cover meets every set" another (``covers``: bit j set when
# the set meets ``_COVERS[j]``). Python ints have no width limit; there are under 200 scripts.
_script_bits: dict[str, int] = {}


def _mask(scripts: frozenset[str]) -> int:
    mask = 0
    for name in scripts:
        mask |= _script_bits.setdefault(name, 1 << len(_script_bits))
    return mask


class _Facts(NamedTuple):
    """What the checks need to know about one character, computed once per process."""

    mask: int  # its script set as bits; 0: does not count for mixed scripts
    covers: int  # which of _COVERS meet its script set, as bits
    kind: int  # for the Latin reading of its NFD: an OR of _LOOKALIKE and _NOT_LATIN
    reading: str  # its NFD with each look-alike replaced by ASCII letters
    scripts: frozenset[str] | None  # its script set, None when it does not count
    only: str | None  # the one script of that set, if it has only one


def _latin_letter() -> tuple[int, int]:
    return _mask(_LATIN_SET), sum(1 << j for j, cover in enumerate(_COVERS) if _LATIN in cover)


# Filled on first sight. Every check looks at the *distinct* characters of a text first
# (``set(text)``), so a long identifier costs one dict lookup per character, not one property
# lookup. A plan's identifiers use a few hundred distinct characters; the cap only bounds a
# hostile input that walks the code space.
_ASCII: dict[str, _Facts] = {
    ch: _Facts(*_latin_letter(), _ITSELF, ch, _LATIN_SET, _LATIN) if ch.isalpha()
    else _Facts(0, _ALL_COVERS, _ITSELF, ch, None, None)
    for ch in map(chr, range(0x80))
}
_facts: dict[str, _Facts] = dict(_ASCII)
_FACTS_CAP = 50_000


def _letter_kind(ch: str) -> tuple[int, str]:
    """Kind and reading of one character of an NFD text (see the module docstring)."""
    if ch < "\x80" or unicodedata2.category(ch)[0] != "L":
        return _ITSELF, ch
    proto = unicodedata2.normalize("NFD", prototype(ch))
    sc = script(ch)
    ascii_reading = ascii_letters_for(proto, upper=ch.isupper()) if proto.isascii() else None
    if ascii_reading is not None and not (sc == _LATIN and ch < "\u0180"):
        return _LOOKALIKE, ascii_reading
    if sc in (_LATIN, COMMON, INHERITED):
        return _ITSELF, ch
    return _NOT_LATIN, ch


def _compute(ch: str) -> _Facts:
    scx: frozenset[str] | None = None
    if unicodedata2.category(ch)[0] in "LM":
        scx = script_extensions(ch)
        if scx in _IGNORED:
            scx = None
    if scx is None:
        mask, covers, only = 0, _ALL_COVERS, None
    else:
        mask = _mask(scx)
        covers = sum(1 << j for j, cover in enumerate(_COVERS) if scx & cover)
        only = next(iter(scx)) if len(scx) == 1 else None
    # The reading is decided on the NFD parts (``ё`` is ``е`` + U+0308, and ``е`` passes for
    # ``e``); joining the parts' readings and composing (NFC) at the end equals reading the NFD
    # of the whole text, because only base letters (combining class 0) are ever replaced.
    kind, reading = _ITSELF, []
    for part in unicodedata2.normalize("NFD", ch):
        part_kind, part_reading = _letter_kind(part)
        kind |= part_kind
        reading.append(part_reading)
    facts = _Facts(mask, covers, kind, "".join(reading), scx, only)
    if len(_facts) >= _FACTS_CAP:
        _facts.clear()
        _facts.update(_ASCII)
    _facts[ch] = facts
    return facts


def _facts_of(chars: Iterable[str]) -> list[_Facts]:
    facts = _facts
    return [facts.get(ch) or _compute(ch) for ch in chars]


def _summary(text: str) -> tuple[bool, int]:
    """``(mixed, kind)`` of ``text`` from its distinct characters (the two rules' inputs)."""
    facts = _facts
    common, covered, kind = -1, _ALL_COVERS, _ITSELF
    for ch in set(text):
        mask, covers, char_kind, _, _, _ = facts.get(ch) or _compute(ch)
        if mask:
            common &= mask
            covered &= covers
        kind |= char_kind
    # common == -1: nothing counted; a non-zero AND: one script in every set (single script).
    return common == 0 and covered == 0, kind


def is_mixed(text: str) -> bool:
    """True if ``text`` mixes scripts in a way UTS #39 "highly restrictive" does not allow."""
    return _summary(text)[0]


def letter_scripts(text: str) -> dict[str, list[int]]:
    """Script → positions of the letters and marks counted for it, in order of first appearance.

    Characters with several possible scripts are counted as the module docstring says.
    """
    found: dict[str, list[int]] = {}
    several: list[tuple[int, frozenset[str]]] = []
    for i, (mask, _, _, _, scx, only) in enumerate(_facts_of(text)):
        if only is not None:
            positions = found.get(only)
            if positions is None:
                found[only] = [i]
            else:
                positions.append(i)
        elif mask:
            several.append((i, scx))  # type: ignore[arg-type]
    if not several:
        return found
    definite = sorted(found, key=lambda s: found[s][0])  # single-script scripts, by appearance
    named: dict[int, str] = {i: s for s, positions in found.items() for i in positions}
    for i, scx in several:  # in text order, so a run of marks follows its base letter
        before, own = named.get(i - 1), script(text[i])
        if before in scx:
            name = before
        else:
            name = next((s for s in definite if s in scx), own if own in scx else min(scx))
        named[i] = name
        found.setdefault(name, []).append(i)
    for positions in found.values():
        positions.sort()
    return dict(sorted(found.items(), key=lambda item: item[1][0]))


def _reading(text: str) -> str:
    return unicodedata2.normalize("NFC", "".join([f[3] for f in _facts_of(text)]))


def latin_reading(text: str) -> str | None:
    """The Latin text ``text`` reads as, or ``None`` if it does not pass for Latin (module docs)."""
    if text.isascii() or _summary(text)[1] != _LOOKALIKE:
        return None
    return _reading(text)


def _mixed_flag(text: str, limit: int) -> str:
    scripts = letter_scripts(text)
    order = sorted(scripts, key=lambda s: (s != _LATIN, scripts[s][0]))
    others = sorted(chain.from_iterable(scripts[s] for s in order[1:]))
    named = [f"{char_label(text[i])} at {i}" for i in others[:limit]]
    if len(others) > limit:
        named.append("…")
    return f"mixed scripts: {', '.join(order)} ({', '.join(named)})"


def suspicious(text: str, *, limit: int = 3) -> tuple[str, ...]:
    """Human-readable flags for ``text`` (usually a canonical form); empty when nothing is odd.

    ``limit`` caps how many characters a flag names before it ends with ``…``.
    """
    if not text or max(text) < "\u0180":
        # Below U+0180 every letter is Latin (or Common: µ) and none is a look-alike, so neither
        # flag can apply (a unit test checks this against the data): the common case, decided
        # without a per-character walk.
        return ()
    mixed, kind = _summary(text)
    if not mixed and kind != _LOOKALIKE:
        return ()
    flags = [_mixed_flag(text, limit)] if mixed else []
    if kind == _LOOKALIKE:
        flags.append(f"confusable with Latin '{escape(_reading(text))}'")
    return tuple(flags)
