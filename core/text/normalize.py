"""Named normalization rules that turn a raw identifier into its canonical form (brief section 4).

Each rule is separately testable and reports what it changed::

    >>> n = Normalizer()
    >>> n.canonical("ＡＣＭＥ\\u200b ")
    'ACME'
    >>> [c.describe() for c in n.explain("Acme\\u200b").changes]
    ['U+200B ZERO WIDTH SPACE removed at 4']

Rules, applied in the order given (default: ``strip-ignorable``, ``nfkc``, ``fold-space``):

* ``strip-ignorable``: remove format characters (Cf), the other default-ignorable code points and
  non-whitespace controls (see :mod:`keyshift.core.text.unicode_chars`).
* ``nfkc``: Unicode NFKC from ``unicodedata2``.
* ``fold-space``: every ``str.isspace`` character becomes U+0020, runs collapse, edges are trimmed.
* ``casefold``: ``str.casefold`` (optional).

The chain is applied until nothing changes (at most :data:`MAX_PASSES` passes), so
``canonical(canonical(x)) == canonical(x)`` always holds. One pass suffices for the default chain;
``casefold`` can produce text NFKC changes again (``ǰ`` folds to ``j`` + U+030C), which the next
pass settles. Suspicious text (mixed scripts, Latin look-alikes) is only *flagged*, by
:meth:`Normalizer.explain`, never changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import unicodedata2

from .escape import escape
from .unicode_chars import IGNORABLE_RE, char_label, char_name, codepoint
from .scripts import suspicious

__all__ = [
    "Change",
    "Rule",
    "Normalized",
    "Normalizer",
    "RULES",
    "DEFAULT_RULES",
    "MAX_PASSES",
    "apply_changes",
    "canonical",
]

#: The default rule chain (brief section 4), in order.
DEFAULT_RULES: tuple[str, ...] = ("strip-ignorable", "nfkc", "fold-space")

#: Upper bound on passes of the whole chain while looking for a fixed point.
MAX_PASSES = 6

_normalize = unicodedata2.normalize


@dataclass(frozen=True, slots=True)
class Change:
    """One edit a rule made: ``original`` at ``position`` became ``replacement``.

    ``position`` counts code points in the string the rule received (not the raw identifier when
    earlier rules already changed it). ``context`` qualifies whitespace edits made by
    ``fold-space``: ``"leading"``, ``"trailing"`` or ``"extra"`` (a collapsed run); else ``""``.
    """

    rule: str
    position: int
    original: str
    replacement: str
    context: str = ""

    def describe(self) -> str:
        """``"U+200B ZERO WIDTH SPACE removed at 4"`` or ``"U+FF21 … → U+0041 … at 0"``."""
        before = " + ".join(map(char_label, self.original))
        prefix = f"{self.context} " if self.context else ""
        if not self.replacement:
            return f"{prefix}{before} removed at {self.position}"
        after = " + ".join(map(char_label, self.replacement))
        return f"{prefix}{before} → {after} at {self.position}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; text fields are escaped (:func:`keyshift.core.text.escape.escape`)."""
        return {
            "rule": self.rule,
            "position": self.position,
            "original": escape(self.original),
            "replacement": escape(self.replacement),
            "codepoints": [codepoint(ch) for ch in self.original],
            "names": [char_name(ch) for ch in self.original],
            "replacement_codepoints": [codepoint(ch) for ch in self.replacement],
            "context": self.context,
            "description": self.describe(),
        }


class Rule(Protocol):
    """A named normalization step."""

    name: str
    summary: str  # one line for the UI and docs

    def apply(self, text: str) -> tuple[str, list[Change]]:
        """The rule's output and every change it made, in position order."""
        ...

    def fast(self, text: str) -> str:
        """The same output as :meth:`apply`, without building the change list."""
        ...


def apply_changes(text: str, changes: Sequence[Change]) -> str:
    """Replay one rule's ``changes`` on the text that rule received (positions index ``text``)."""
    out: list[str] = []
    at = 0
    for change in sorted(changes, key=lambda c: c.position):
        end = change.position + len(change.original)
        if change.position < at or text[change.position : end] != change.original:
            raise ValueError(f"change does not apply to this text: {change.describe()}")
        out.append(text[at : change.position])
        out.append(change.replacement)
        at = end
    out.append(text[at:])
    return "".join(out)


class StripIgnorable:
    """``strip-ignorable``: one removal per character, at its position."""

    name = "strip-ignorable"
    summary = (
        "Remove invisible characters: format characters (zero-width space, BOM, bidi marks, soft "
        "hyphen…), other default-ignorables (variation selectors, Hangul fillers…) and "
        "non-whitespace control characters."
    )

    def fast(self, text: str) -> str:
        return IGNORABLE_RE.sub("", text)

    def apply(self, text: str) -> tuple[str, list[Change]]:
        changes = [Change(self.name, m.start(), m.group(), "") for m in IGNORABLE_RE.finditer(text)]
        return (IGNORABLE_RE.sub("", text) if changes else text), changes


class _NfkcBoundaries:
    """Where NFKC may be applied piecewise: before a character whose decomposition starts with
    a starter that never composes with what precedes it. Built on first use (≈ 30 ms)."""

    def __init__(self) -> None:
        self._combines_back: frozenset[str] | None = None
        self._cache: dict[str, bool] = {}

    def _load(self) -> frozenset[str]:
        seconds = set(map(chr, range(0x1161, 0x1176)))  # Hangul vowel jamo (LV composition)
        seconds.update(map(chr, range(0x11A8, 0x11C3)))  # Hangul trailing jamo (LVT)
        decomposition = unicodedata2.decomposition
        for cp in range(0x20000):  # every canonical pair composition lives in planes 0-1
            d = decomposition(chr(cp))
            if d and not d.startswith("<"):
                parts = d.split()
                if len(parts) == 2:
                    seconds.add(chr(int(parts[1], 16)))
        return frozenset(seconds)

    def before(self, ch: str) -> bool:
        hit = self._cache.get(ch)
        if hit is None:
            if self._combines_back is None:
                self._combines_back = self._load()
            first = _normalize("NFKD", ch)[:1] or ch
            hit = (
                unicodedata2.combining(ch) == 0
                and unicodedata2.combining(first) == 0
                and ch not in self._combines_back
                and first not in self._combines_back
            )
            if len(self._cache) < 65536:
                self._cache[ch] = hit
        return hit


class Nfkc:
    """``nfkc``: one change per segment that NFKC rewrites (a character and the marks it takes)."""

    name = "nfkc"
    summary = (
        "Unicode NFKC: fullwidth and other compatibility forms become plain ones (ＡＣＭＥ１２ → "
        "ACME12), decomposed accents are composed (e + U+0301 → é), odd spaces become U+0020."
    )

    def __init__(self) -> None:
        self._boundaries = _NfkcBoundaries()

    def fast(self, text: str) -> str:
        return _normalize("NFKC", text)

    def apply(self, text: str) -> tuple[str, list[Change]]:
        out = _normalize("NFKC", text)
        if out == text:
            return text, []
        before = self._boundaries.before
        starts = [0] + [i for i in range(1, len(text)) if before(text[i])]
        changes: list[Change] = []
        pieces: list[str] = []
        for start, end in zip(starts, starts[1:] + [len(text)]):
            segment = text[start:end]
            done = _normalize("NFKC", segment)
            pieces.append(done)
            if done != segment:
                changes.append(Change(self.name, start, segment, done))
        if "".join(pieces) != out:  # cannot happen with correct boundaries; stay truthful anyway
            head = 0
            while head < min(len(text), len(out)) and text[head] == out[head]:
                head += 1
            tail = 0
            while tail < min(len(text), len(out)) - head and text[-1 - tail] == out[-1 - tail]:
                tail += 1
            changes = [Change(self.name, head, text[head : len(text) - tail], out[head : len(out) - tail])]
        return out, changes


_SPACE_RUN = re.compile(r"\s+")  # \s is exactly str.isspace for str patterns


class FoldSpace:
    """``fold-space``: one change per whitespace run that is not already a single inner space."""

    name = "fold-space"
    summary = (
        "Every whitespace character (tab, newline, NBSP, ideographic space…) becomes a plain "
        "space, runs collapse to one, leading and trailing spaces are removed."
    )

    def fast(self, text: str) -> str:
        return " ".join(text.split())

    def apply(self, text: str) -> tuple[str, list[Change]]:
        changes: list[Change] = []
        end_of_text = len(text)
        for m in _SPACE_RUN.finditer(text):
            start, end, run = m.start(), m.end(), m.group()
            if start == 0:
                changes.append(Change(self.name, 0, run, "", "leading"))
            elif end == end_of_text:
                changes.append(Change(self.name, start, run, "", "trailing"))
            elif run == " ":
                continue
            elif run[0] == " ":
                changes.append(Change(self.name, start + 1, run[1:], "", "extra"))
            else:
                changes.append(Change(self.name, start, run, " "))
        return (self.fast(text) if changes else text), changes


class Casefold:
    """``casefold``: one change per character whose case folding differs."""

    name = "casefold"
    summary = "Case-insensitive keys: str.casefold (Acme → acme, Straße → strasse). Off by default."

    def fast(self, text: str) -> str:
        return text.casefold()

    def apply(self, text: str) -> tuple[str, list[Change]]:
        if text.isascii() and not any(ch.isupper() for ch in text):
            return text, []
        changes = []
        for i, ch in enumerate(text):
            folded = ch.casefold()
            if folded != ch:
                changes.append(Change(self.name, i, ch, folded))
        return (text.casefold() if changes else text), changes


#: Every known rule by name.
RULES: dict[str, Rule] = {
    rule.name: rule for rule in (StripIgnorable(), Nfkc(), FoldSpace(), Casefold())
}


@dataclass(frozen=True, slots=True)
class Normalized:
    """A raw identifier, its canonical form, every change made and the flags for a human."""

    raw: str
    canonical: str
    changes: tuple[Change, ...]
    suspicious: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.raw != self.canonical

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; strings are escaped."""
        return {
            "raw": escape(self.raw),
            "canonical": escape(self.canonical),
            "changed": self.changed,
            "changes": [c.to_dict() for c in self.changes],
            "suspicious": list(self.suspicious),
        }


class Normalizer:
    """Applies a chain of named rules. Stateless and thread-safe once built."""

    def __init__(self, rules: Sequence[str] = DEFAULT_RULES) -> None:
        if isinstance(rules, str):
            rules = (rules,)
        rules = tuple(rules)
        for name in rules:
            if name not in RULES:
                raise ValueError(f"unknown normalization rule {name!r} (known: {', '.join(RULES)})")
        if len(set(rules)) != len(rules):
            raise ValueError(f"a normalization rule is listed twice: {', '.join(rules)}")
        self.rules: tuple[str, ...] = rules
        self._chain: tuple[Rule, ...] = tuple(RULES[name] for name in rules)
        # Any sub-chain of the default order without casefold reaches its fixed point in one pass:
        # NFKC never emits an ignorable, and every whitespace character left after NFKC is a
        # starter that composes with nothing, so folding it keeps the text NFKC-normal.
        self.single_pass: bool = "casefold" not in rules and rules == tuple(
            r for r in DEFAULT_RULES if r in rules
        )
        # The hot path is a closure specialised for this chain (no attribute lookups per call);
        # it shadows the documented method below on each instance.
        self.canonical = self._build_canonical()  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"Normalizer(rules={self.rules!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # picklable despite the per-instance closure
        return (Normalizer, (self.rules,))

    def canonical(self, raw: str) -> str:
        """The canonical form of ``raw``. The hot path: no change lists, ASCII short-cut.

        (Each instance replaces this method with an equivalent closure built for its chain.)
        """
        return self._build_canonical()(raw)

    def _build_canonical(self) -> Callable[[str], str]:
        steps = tuple(rule.fast for rule in self._chain)
        fold = "fold-space" in self.rules
        lower = "casefold" in self.rules

        if self.single_pass:
            if self.rules == DEFAULT_RULES:
                strip = IGNORABLE_RE.sub

                def slow(raw: str) -> str:
                    return " ".join(_normalize("NFKC", strip("", raw)).split())

            else:

                def slow(raw: str) -> str:
                    for step in steps:
                        raw = step(raw)
                    return raw

        else:

            def slow(raw: str) -> str:
                text = raw
                for _ in range(MAX_PASSES):
                    out = text
                    for step in steps:
                        out = step(out)
                    if out == text:
                        break
                    text = out
                return text

        # Printable ASCII has no ignorable and is NFKC-stable; U+0020 is its only whitespace.
        if not fold:
            if lower:

                def canonical(raw: str) -> str:
                    if raw.isascii() and raw.isprintable():
                        return raw.lower()
                    return slow(raw)

            else:

                def canonical(raw: str) -> str:
                    if raw.isascii() and raw.isprintable():
                        return raw
                    return slow(raw)

        elif lower:

            def canonical(raw: str) -> str:
                if (
                    raw.isascii()
                    and raw.isprintable()
                    and (" " not in raw or (raw[0] != " " and raw[-1] != " " and "  " not in raw))
                ):
                    return raw.lower()
                return slow(raw)

        else:

            def canonical(raw: str) -> str:
                if (
                    raw.isascii()
                    and raw.isprintable()
                    and (" " not in raw or (raw[0] != " " and raw[-1] != " " and "  " not in raw))
                ):
                    return raw
                return slow(raw)

        canonical.__doc__ = Normalizer.canonical.__doc__
        return canonical

    def explain(self, raw: str) -> Normalized:
        """Every rule's changes, pass by pass, plus the suspicious-text flags of the result."""
        changes: list[Change] = []
        text = raw
        for _ in range(MAX_PASSES):
            start = text
            made_in_pass: list[Change] = []
            for rule in self._chain:
                text, made = rule.apply(text)
                made_in_pass.extend(made)
            if text == start:
                break  # a pass that ends where it began changed nothing worth reporting
            changes.extend(made_in_pass)
            if self.single_pass:
                break
        return Normalized(raw, text, tuple(changes), suspicious(text))


_default = Normalizer()


def canonical(raw: str) -> str:
    """The canonical form under the default rules."""
    return _default.canonical(raw)
