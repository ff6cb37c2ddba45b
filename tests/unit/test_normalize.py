"""Normalization rules, one brief case at a time (brief section 4)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import unicodedata2

from keyshift.core.text import normalize as nz
from keyshift.core.text.normalize import (
    DEFAULT_RULES,
    RULES,
    Change,
    Normalizer,
    apply_changes,
    canonical,
)
from keyshift.core.text.unicode_chars import (
    CONTROL_NAMES,
    IGNORABLE_RANGES,
    _derive_ignorable,
    is_ignorable,
)

DEFAULT = Normalizer()
FOLDED = Normalizer(DEFAULT_RULES + ("casefold",))


def run(rule: str, text: str) -> tuple[str, list[Change]]:
    out, changes = RULES[rule].apply(text)
    assert out == RULES[rule].fast(text)
    assert apply_changes(text, changes) == out
    return out, changes


# --- strip-ignorable --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "removed"),
    [
        ("Acme\u200b", "\u200b"),  # ZERO WIDTH SPACE
        ("\ufeffAcme", "\ufeff"),  # BOM
        ("co\u00adop", "\u00ad"),  # SOFT HYPHEN
        ("Acme\ufe0f", "\ufe0f"),  # VARIATION SELECTOR-16
        ("Acme\U000e0101", "\U000e0101"),  # VARIATION SELECTOR-18
        ("Ac\u034fme", "\u034f"),  # COMBINING GRAPHEME JOINER
        ("\u115fAcme", "\u115f"),  # HANGUL CHOSEONG FILLER
        ("\u1160Acme", "\u1160"),  # HANGUL JUNGSEONG FILLER
        ("\u3164Acme", "\u3164"),  # HANGUL FILLER
        ("\uffa0Acme", "\uffa0"),  # HALFWIDTH HANGUL FILLER
        ("Acme\u180b", "\u180b"),  # MONGOLIAN FREE VARIATION SELECTOR ONE
        ("Acme\u180f", "\u180f"),  # MONGOLIAN FREE VARIATION SELECTOR FOUR
        ("Acme\u180e", "\u180e"),  # MONGOLIAN VOWEL SEPARATOR (Cf)
        ("\u200c\u200dAcme", "\u200c\u200d"),  # ZWNJ, ZWJ
        ("\u200eAcme\u200f", "\u200e\u200f"),  # LRM, RLM
        ("\u202aAcme\u202c", "\u202a\u202c"),  # LRE … PDF
        ("\u2066Acme\u2069", "\u2066\u2069"),  # LRI … PDI
        ("Ac\u2060me", "\u2060"),  # WORD JOINER
        ("Acme\U000e0041\U000e007f", "\U000e0041\U000e007f"),  # tag characters
        ("\x00Acme\x7f", "\x00\x7f"),  # non-whitespace controls
        ("Acme\x1b[0m", "\x1b"),  # an ANSI escape loses its ESC
        ("Acme\x80\x9f", "\x80\x9f"),  # C1 controls other than NEL
    ],
)
def test_strip_ignorable_removes(raw: str, removed: str) -> None:
    out, changes = run("strip-ignorable", raw)
    assert "".join(c.original for c in changes) == removed
    assert all(c.replacement == "" and c.rule == "strip-ignorable" for c in changes)
    assert all(raw[c.position] == c.original for c in changes)
    assert not any(ch in out for ch in removed)


def test_strip_ignorable_keeps_whitespace_controls_for_fold_space() -> None:
    kept = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"
    assert all(ch.isspace() for ch in kept)
    out, changes = run("strip-ignorable", f"a{kept}b")
    assert out == f"a{kept}b" and changes == []


def test_strip_ignorable_position_counts_code_points() -> None:
    _, changes = run("strip-ignorable", "\U0001f600x\u200by\u200b")
    assert [c.position for c in changes] == [2, 4]


def test_ignorable_set_matches_a_full_scan_of_unicode() -> None:
    """The import-time scan skips planes 2-13 and 15-16; prove nothing there is ignorable."""
    assert _derive_ignorable([range(0x110000)]) == IGNORABLE_RANGES


def test_ignorable_set_has_no_whitespace_and_no_visible_letters() -> None:
    for lo, hi in IGNORABLE_RANGES:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            assert not ch.isspace(), hex(cp)
            assert is_ignorable(ch)
    assert not is_ignorable("a") and not is_ignorable(" ") and not is_ignorable("\t")


def test_control_names_are_the_formal_aliases() -> None:
    for cp, name in CONTROL_NAMES.items():
        assert unicodedata2.lookup(name) == chr(cp), name


# --- nfkc -------------------------------------------------------------------------------------


def test_nfkc_fullwidth_reports_each_character() -> None:
    out, changes = run("nfkc", "ＡＣＭＥ１２")
    assert out == "ACME12"
    assert [(c.position, c.original, c.replacement) for c in changes] == [
        (0, "Ａ", "A"), (1, "Ｃ", "C"), (2, "Ｍ", "M"), (3, "Ｅ", "E"), (4, "１", "1"), (5, "２", "2"),
    ]
    assert changes[0].describe() == (
        "U+FF21 FULLWIDTH LATIN CAPITAL LETTER A → U+0041 LATIN CAPITAL LETTER A at 0"
    )


def test_nfkc_composes_a_decomposed_accent() -> None:
    out, changes = run("nfkc", "Cafe\u0301 Zu\u0308rich")
    assert out == "Café Zürich"
    assert [(c.position, c.original, c.replacement) for c in changes] == [
        (3, "e\u0301", "é"), (7, "u\u0308", "ü"),
    ]
    assert changes[0].describe() == (
        "U+0065 LATIN SMALL LETTER E + U+0301 COMBINING ACUTE ACCENT"
        " → U+00E9 LATIN SMALL LETTER E WITH ACUTE at 3"
    )


def test_nfkc_nbsp_becomes_space() -> None:
    out, changes = run("nfkc", "Acme\u00a0Corp")
    assert out == "Acme Corp"
    assert changes[0].describe() == "U+00A0 NO-BREAK SPACE → U+0020 SPACE at 4"


@pytest.mark.parametrize(
    ("raw", "expected", "segments"),
    [
        ("\u1100\u1161\u11a8", "각", ["\u1100\u1161\u11a8"]),  # Hangul jamo compose across starters
        ("ﬁx", "fix", ["ﬁ"]),  # ligature
        ("x²", "x2", ["²"]),
        ("\u30ab\uff9e", "ガ", ["\u30ab\uff9e"]),  # halfwidth voiced mark joins the kana before it
        ("a\u0316\u0301b", "á\u0316b", ["a\u0316\u0301"]),  # acute composes past a lower mark
        ("a\u0301\u0316b", "á\u0316b", ["a\u0301\u0316"]),
        ("e\u0323\u0302x", "ệx", ["e\u0323\u0302"]),  # two marks, one precomposed letter
        ("Ab\u0327c", "Ab\u0327c", []),  # no precomposed b-cedilla: unchanged
        ("\u2126", "\u03a9", ["\u2126"]),  # OHM SIGN
    ],
)
def test_nfkc_segments(raw: str, expected: str, segments: list[str]) -> None:
    out, changes = run("nfkc", raw)
    assert out == expected == unicodedata2.normalize("NFKC", raw)
    assert [c.original for c in changes] == segments


def test_nfkc_never_emits_an_ignorable_and_folds_or_keeps_every_space() -> None:
    """The facts that make the default chain reach its fixed point in one pass."""
    for cp in range(0x110000):
        ch = chr(cp)
        if 0xD800 <= cp < 0xE000 or is_ignorable(ch):
            continue
        if ch.isspace():
            out = unicodedata2.normalize("NFKC", ch)
            assert out == " " or (out == ch and unicodedata2.combining(ch) == 0), hex(cp)
        elif unicodedata2.decomposition(ch):
            out = unicodedata2.normalize("NFKC", ch)
            assert not any(map(is_ignorable, out)), hex(cp)


# --- fold-space -------------------------------------------------------------------------------


def test_fold_space_trailing_blanks() -> None:
    out, changes = run("fold-space", "Acme  ")
    assert out == "Acme"
    assert changes == [Change("fold-space", 4, "  ", "", "trailing")]
    assert changes[0].describe() == "trailing U+0020 SPACE + U+0020 SPACE removed at 4"


def test_fold_space_leading_blank() -> None:
    out, changes = run("fold-space", " Acme")
    assert out == "Acme"
    assert changes[0].describe() == "leading U+0020 SPACE removed at 0"


def test_fold_space_tab_and_newline() -> None:
    out, changes = run("fold-space", "Acme\tCorp\nLtd")
    assert out == "Acme Corp Ltd"
    assert [c.describe() for c in changes] == [
        "U+0009 CHARACTER TABULATION → U+0020 SPACE at 4",
        "U+000A LINE FEED → U+0020 SPACE at 9",
    ]


def test_fold_space_collapses_runs() -> None:
    out, changes = run("fold-space", "a  b\t\tc \u3000d")
    assert out == "a b c d"
    assert [(c.position, c.original, c.replacement, c.context) for c in changes] == [
        (2, " ", "", "extra"), (4, "\t\t", " ", ""), (8, "\u3000", "", "extra"),
    ]


def test_fold_space_every_isspace_character() -> None:
    spaces = "".join(chr(cp) for cp in range(0x110000) if chr(cp).isspace())
    assert len(spaces) > 20
    out, _ = run("fold-space", f"x{spaces}y")
    assert out == "x y"


# --- casefold ---------------------------------------------------------------------------------


def test_casefold() -> None:
    out, changes = run("casefold", "Straße")
    assert out == "strasse"
    assert [(c.position, c.original, c.replacement) for c in changes] == [(0, "S", "s"), (4, "ß", "ss")]


def test_casefold_is_optional() -> None:
    assert "casefold" in RULES and "casefold" not in DEFAULT_RULES
    assert DEFAULT.canonical("Acme") == "Acme"
    assert FOLDED.canonical("ＡＣＭＥ\u200b") == FOLDED.canonical("acme") == "acme"


def test_casefold_then_nfkc_settles_in_a_second_pass() -> None:
    raw = "\u01f0"  # ǰ: casefolds to j + U+030C, which NFKC would compose again
    result = FOLDED.explain(raw)
    assert result.canonical == FOLDED.canonical(raw) == "j\u030c"
    assert FOLDED.canonical(result.canonical) == result.canonical
    assert [c.rule for c in result.changes] == ["casefold"]  # the undo-redo pass is not reported


# --- the chain --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Acme", "Acme"),
        ("Acme\u200b", "Acme"),
        ("\ufeffAcme", "Acme"),
        ("Acme\u00a0Corp", "Acme Corp"),
        ("Acme Corp  ", "Acme Corp"),
        ("ＡＣＭＥ１２", "ACME12"),
        ("Cafe\u0301", "Café"),
        ("co\u00adop", "coop"),
        ("Acme\ufe0f", "Acme"),
        ("\u3164Acme", "Acme"),
        ("Acme\tCorp\n", "Acme Corp"),
        ("\u200b \u00a0", ""),  # empty after trimming: the plan calls this invalid
        ("Globex\u2003Corporation", "Globex Corporation"),
        ("Acme\u200b\u00a0\u3000 Corp", "Acme Corp"),
        ("раураl", "раураl"),  # look-alikes are flagged, never changed
    ],
)
def test_default_chain(raw: str, expected: str) -> None:
    assert DEFAULT.canonical(raw) == expected
    assert canonical(raw) == expected
    result = DEFAULT.explain(raw)
    assert result.canonical == expected and result.raw == raw
    assert result.changed == (raw != expected) == bool(result.changes)


def test_explain_reports_each_rule_in_order() -> None:
    result = DEFAULT.explain("\u200b ＡＣＭＥ\u00a0")
    assert [c.describe() for c in result.changes] == [
        "U+200B ZERO WIDTH SPACE removed at 0",
        "U+FF21 FULLWIDTH LATIN CAPITAL LETTER A → U+0041 LATIN CAPITAL LETTER A at 1",
        "U+FF23 FULLWIDTH LATIN CAPITAL LETTER C → U+0043 LATIN CAPITAL LETTER C at 2",
        "U+FF2D FULLWIDTH LATIN CAPITAL LETTER M → U+004D LATIN CAPITAL LETTER M at 3",
        "U+FF25 FULLWIDTH LATIN CAPITAL LETTER E → U+0045 LATIN CAPITAL LETTER E at 4",
        "U+00A0 NO-BREAK SPACE → U+0020 SPACE at 5",
        "leading U+0020 SPACE removed at 0",
        "trailing U+0020 SPACE removed at 5",
    ]
    assert result.canonical == "ACME"


def test_change_to_dict_is_json_ready_and_escaped() -> None:
    change = DEFAULT.explain("Acme\u200b").changes[0]
    assert change.to_dict() == {
        "rule": "strip-ignorable",
        "position": 4,
        "original": "\\u200b",
        "replacement": "",
        "codepoints": ["U+200B"],
        "names": ["ZERO WIDTH SPACE"],
        "replacement_codepoints": [],
        "context": "",
        "description": "U+200B ZERO WIDTH SPACE removed at 4",
    }
    multi = Change("nfkc", 3, "e\u0301", "é").to_dict()
    assert multi["codepoints"] == ["U+0065", "U+0301"]
    assert multi["names"] == ["LATIN SMALL LETTER E", "COMBINING ACUTE ACCENT"]


def test_normalized_to_dict() -> None:
    d = DEFAULT.explain("раураl\u200b").to_dict()
    assert d["raw"] == "раураl\\u200b" and d["canonical"] == "раураl" and d["changed"]
    assert len(d["changes"]) == 1 and len(d["suspicious"]) == 2


def test_unknown_rule_is_named() -> None:
    with pytest.raises(ValueError, match="'upper'"):
        Normalizer(["nfkc", "upper"])
    with pytest.raises(ValueError, match="twice"):
        Normalizer(["nfkc", "nfkc"])


def test_rules_have_names_and_summaries() -> None:
    assert list(RULES) == ["strip-ignorable", "nfkc", "fold-space", "casefold"]
    for name, rule in RULES.items():
        assert rule.name == name and rule.summary and "\n" not in rule.summary
    assert Normalizer().rules == DEFAULT_RULES == ("strip-ignorable", "nfkc", "fold-space")
    assert Normalizer("nfkc").rules == ("nfkc",)


def test_normalizer_pickles_for_worker_processes() -> None:
    import pickle

    clone = pickle.loads(pickle.dumps(FOLDED))
    assert clone.rules == FOLDED.rules and clone.canonical("ＡＣＭＥ ") == "acme"


def test_default_rules_agree_with_the_spec() -> None:
    from keyshift.core.spec import DEFAULT_RULES as SPEC_DEFAULT, KNOWN_RULES

    assert SPEC_DEFAULT == DEFAULT_RULES and tuple(RULES) == KNOWN_RULES


@pytest.mark.parametrize(
    "rules",
    [DEFAULT_RULES, ("nfkc",), ("fold-space",), ("strip-ignorable",), ("casefold",),
     ("fold-space", "nfkc"), ("casefold", "nfkc"), DEFAULT_RULES + ("casefold",)],
)
@pytest.mark.parametrize(
    "raw", ["Acme", "acme corp", " Acme", "Acme ", "a  b", "A\tb", "\x00A", "", " ", "A\x7f", "~!@"]
)
def test_ascii_shortcut_agrees_with_the_rules(rules: tuple[str, ...], raw: str) -> None:
    norm = Normalizer(rules)
    assert norm.canonical(raw) == norm.explain(raw).canonical
    assert Normalizer.canonical(norm, raw) == norm.canonical(raw)


def test_no_stdlib_unicodedata_and_no_textual() -> None:
    core = pathlib.Path(nz.__file__).parent
    for name in ("normalize.py", "escape.py", "unicode_chars.py", "scripts.py"):
        source = (core / name).read_text(encoding="utf-8")
        assert "import unicodedata\n" not in source and "from unicodedata " not in source, name
        assert "textual" not in source.lower().replace("contextual", ""), name
    code = (
        "import sys, keyshift.core.text.normalize, keyshift.core.text.escape\n"
        "print(any(m.split('.')[0] == 'textual' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
