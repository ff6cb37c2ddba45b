"""Operators never see a raw invisible character: escape, unescape, visible, char_label."""

from __future__ import annotations

import json
import re

import pytest
import unicodedata2
from hypothesis import given, settings
from hypothesis import strategies as st

from keyshift.core.text.escape import EscapeError, char_label, escape, unescape, visible
from keyshift.core.text.unicode_chars import is_invisible

every_char = st.characters(exclude_categories=())  # includes lone surrogates
any_text = st.text(st.one_of(every_char, st.sampled_from("\\ \u200b\u00a0\u0301\t\ufeffuUx0a")))
FAST = settings(max_examples=400, deadline=None)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("Acme", "Acme"),
        ("Acme Corp", "Acme Corp"),
        ("Acme\u200b", "Acme\\u200b"),
        ("\ufeffAcme", "\\ufeffAcme"),
        ("Acme\u00a0Corp", "Acme\\u00a0Corp"),
        ("Globex\u2003Corporation", "Globex\\u2003Corporation"),
        ("a\\b", "a\\\\b"),
        ("\\u200b", "\\\\u200b"),  # a literal backslash-u stays literal
        ("tab\there\n", "tab\\u0009here\\u000a"),
        ("\x00\x7f\x85", "\\u0000\\u007f\\u0085"),
        ("Acme\U000e0101", "Acme\\U000e0101"),
        ("\u3164\u115f\uffa0", "\\u3164\\u115f\\uffa0"),  # Hangul fillers are letters, but blank
        ("\u034f\ufe0f", "\\u034f\\ufe0f"),
        ("\u2028\u2029\u3000", "\\u2028\\u2029\\u3000"),
        ("\ue000\U000f0000", "\\ue000\\U000f0000"),  # private use
        ("\u0378\U0010fffe", "\\u0378\\U0010fffe"),  # unassigned, noncharacter
        ("\ud800", "\\ud800"),  # lone surrogate
        ("\u2800", "\\u2800"),  # BRAILLE PATTERN BLANK
        ("\u0301e", "\\u0301e"),  # combining mark with nothing to sit on
        (" \u0301", "\\u0020\\u0301"),  # a leading space is spelled out too
        ("Acme Corp ", "Acme Corp\\u0020"),  # spaces nobody can count are spelled out
        ("Acme  Corp", "Acme \\u0020Corp"),
        ("\u200b\u0301", "\\u200b\\u0301"),
        ("e\u0301\u0316", "e\u0301\u0316"),  # marks on a letter stay as typed
        ("Москва 東京 Ωmega Müller 😀 €", "Москва 東京 Ωmega Müller 😀 €"),
        ("раураl", "раураl"),  # look-alikes are visible: escape is not the place to flag them
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert unescape(escaped) == raw


@pytest.mark.parametrize(
    ("typed", "raw"),
    [
        ("\\x41\\u0042\\U00000043", "ABC"),
        ("Acme\\u200B", "Acme\u200b"),
        ("\\\\", "\\"),
        ("\\U0001F600", "😀"),
        ("\\ud83d\\ude00", "\ud83d\ude00"),  # surrogates are never paired: round trips stay exact
        ("plain", "plain"),
    ],
)
def test_unescape(typed: str, raw: str) -> None:
    assert unescape(typed) == raw


@pytest.mark.parametrize(
    ("typed", "position", "message"),
    [
        ("abc\\q", 3, "invalid escape"),
        ("abc\\", 3, "dangling"),
        ("\\u12", 0, "4 hex digits"),
        ("x\\u12G4", 1, "4 hex digits"),
        ("\\u0_41", 0, "4 hex digits"),  # int() would accept the underscore; we do not
        ("\\x 4", 0, "2 hex digits"),
        ("\\U00110000", 0, "beyond U+10FFFF"),
        ("\\n", 0, "invalid escape"),
    ],
)
def test_unescape_rejects_with_position(typed: str, position: int, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        unescape(typed)
    assert isinstance(info.value, EscapeError) and info.value.position == position
    assert f"position {position}" in str(info.value)


@FAST
@given(any_text)
def test_round_trip(s: str) -> None:
    assert unescape(escape(s)) == s


@FAST
@given(any_text)
def test_escape_shows_nothing_invisible(s: str) -> None:
    out = escape(s)
    assert not any(is_invisible(ch) for ch in out)
    assert not unicodedata2.combining(out[:1] or "a")
    json.dumps(out)  # and it is always valid text


@FAST
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_ascii_is_untouched_except_backslash_and_uncountable_spaces(s: str) -> None:
    if s.startswith(" ") or s.endswith(" ") or "  " in s:
        assert escape(s).replace("\\u0020", " ") == s.replace("\\", "\\\\")
    else:
        assert escape(s) == s.replace("\\", "\\\\")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Acme\u200b", "Acme⟨ZWSP⟩"),
        ("\u00a0", "⟨NBSP⟩"),
        ("x\U000e0101", "x⟨U+E0101⟩"),
        ("\ufeffA\u00adB", "⟨BOM⟩A⟨SHY⟩B"),
        ("a\tb\nc\rd", "a⟨TAB⟩b⟨LF⟩c⟨CR⟩d"),
        ("\u200c\u200d\u200e\u200f\u2060", "⟨ZWNJ⟩⟨ZWJ⟩⟨LRM⟩⟨RLM⟩⟨WJ⟩"),
        ("\u202f\u034f\ufe00\ufe0f", "⟨NNBSP⟩⟨CGJ⟩⟨VS1⟩⟨VS16⟩"),
        ("\u3164x", "⟨HF⟩x"),
        ("\x01", "⟨U+0001⟩"),
        ("a\\b", "a\\b"),
        ("Müller", "Müller"),
    ],
)
def test_visible(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_visible_edge_spaces_on_request() -> None:
    assert visible("Acme  ") == "Acme  "
    assert visible("Acme  ", edge_spaces=True) == "Acme⟨SP⟩⟨SP⟩"
    assert visible(" a b\u200b ", edge_spaces=True) == "⟨SP⟩a b⟨ZWSP⟩⟨SP⟩"
    assert visible("  ", edge_spaces=True) == "⟨SP⟩⟨SP⟩"
    assert visible("", edge_spaces=True) == ""


@FAST
@given(any_text)
def test_visible_shows_nothing_invisible(s: str) -> None:
    assert not any(is_invisible(ch) for ch in visible(s))


@pytest.mark.parametrize(
    ("ch", "label"),
    [
        ("\u200b", "U+200B ZERO WIDTH SPACE"),
        ("A", "U+0041 LATIN CAPITAL LETTER A"),
        ("\t", "U+0009 CHARACTER TABULATION"),
        ("\x85", "U+0085 NEXT LINE"),
        ("\x9f", "U+009F APPLICATION PROGRAM COMMAND"),
        ("\ue000", "U+E000 <private-use>"),
        ("\ud800", "U+D800 <surrogate>"),
        ("\uffff", "U+FFFF <noncharacter>"),
        ("\ufdd0", "U+FDD0 <noncharacter>"),
        ("\u0378", "U+0378 <unassigned>"),
        ("\U000e0101", "U+E0101 VARIATION SELECTOR-18"),
        ("가", "U+AC00 HANGUL SYLLABLE GA"),
        ("\U0001f600", "U+1F600 GRINNING FACE"),
    ],
)
def test_char_label(ch: str, label: str) -> None:
    assert char_label(ch) == label
