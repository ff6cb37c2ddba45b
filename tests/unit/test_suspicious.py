"""Mixed scripts and Latin look-alikes are flagged for a human, never changed."""

from __future__ import annotations

import pytest
import unicodedata2
from hypothesis import given, settings
from hypothesis import strategies as st

from keyshift.core.text.normalize import DEFAULT_RULES, Normalizer
from keyshift.core.text.scripts import CONFUSABLES, letter_scripts, script_of, skeleton, suspicious

DEFAULT = Normalizer()


def test_paypal_in_cyrillic_gets_both_flags() -> None:
    result = DEFAULT.explain("раураl")
    assert result.canonical == "раураl" and not result.changed
    assert result.suspicious == (
        "mixed scripts: Latin, Cyrillic (U+0440 CYRILLIC SMALL LETTER ER at 0, "
        "U+0430 CYRILLIC SMALL LETTER A at 1, U+0443 CYRILLIC SMALL LETTER U at 2, …)",
        "confusable with Latin 'paypal'",
    )
    assert skeleton("раураl") == "paypal"


@pytest.mark.parametrize(
    "text",
    ["paypal", "Acme", "Acme Corp 12", "Москва", "ΑΒΓ", "Ελλάδα", "東京タワー", "ACME株式会社",
     "서울 Seoul", "台北 Taipei ㄅ", "Müller GmbH", "Ærøskøbing", "", "1234-56", "Straße"],
)
def test_not_flagged(text: str) -> None:
    assert suspicious(text) == ()
    assert DEFAULT.explain(text).suspicious == ()


@pytest.mark.parametrize(
    ("text", "mixed", "latin"),
    [
        ("Ѕtarlight", True, "Starlight"),  # Cyrillic DZE
        ("Acmе", True, "Acme"),  # Cyrillic ie at the end
        ("аррle", True, "apple"),
        ("Acmeж", True, None),  # mixed, but ж passes for nothing
        ("ΑΒΕ", False, "ABE"),  # whole-script look-alike
        ("рау", False, "pay"),
        ("pɑypal", False, "paypal"),  # Latin alpha is Latin, but not a plain a
        ("ᏟᎪᎡ", False, "CAR"),  # Cherokee
        ("ꓚꓔ", False, "CT"),  # Lisu
        ("Ꭺcme", True, "Acme"),
        ("օnline", True, "online"),  # Armenian oh
        ("Αcme 7", True, "Acme 7"),  # digits and spaces pass through the skeleton
        ("ωmega", True, None),
    ],
)
def test_flagged(text: str, mixed: bool, latin: str | None) -> None:
    flags = suspicious(text)
    assert any(f.startswith("mixed scripts: ") for f in flags) == mixed
    expected = f"confusable with Latin '{latin}'" if latin is not None else None
    assert (expected in flags) if expected else not any(f.startswith("confusable") for f in flags)
    assert skeleton(text) == latin


def test_mixed_flag_lists_at_most_three_characters() -> None:
    (flag,) = suspicious("Acme Москва")
    assert flag.startswith("mixed scripts: Latin, Cyrillic (U+041C CYRILLIC CAPITAL LETTER EM at 5, ")
    assert flag.endswith(", …)") and flag.count(" at ") == 3
    (flag,) = suspicious("Aж")
    assert flag == "mixed scripts: Latin, Cyrillic (U+0436 CYRILLIC SMALL LETTER ZHE at 1)"


def test_three_scripts_are_named_in_order() -> None:
    (flag,) = suspicious("жωb")
    assert flag.startswith("mixed scripts: Latin, Cyrillic, Greek (")


def test_flags_survive_casefold_and_fullwidth() -> None:
    folded = Normalizer(DEFAULT_RULES + ("casefold",))
    assert "confusable with Latin 'paypal'" in folded.explain("РАУРАL").suspicious
    assert DEFAULT.explain("ＰＡＹＰＡＬ").suspicious == ()  # fullwidth Latin is Latin after NFKC


@pytest.mark.parametrize(
    ("ch", "script"),
    [
        ("a", "Latin"), ("ɑ", "Latin"), ("р", "Cyrillic"), ("Ω", "Greek"), ("ա", "Armenian"),
        ("Ꭰ", "Cherokee"), ("ꮰ", "Cherokee"), ("ა", "Georgian"), ("א", "Hebrew"), ("ب", "Arabic"),
        ("東", "Han"), ("タ", "Katakana"), ("あ", "Hiragana"), ("가", "Hangul"), ("ㄅ", "Bopomofo"),
        ("Ａ", "Latin"), ("ｶ", "Katakana"), ("𝐀", "Latin"), ("ℓ", "Latin"), ("ᵃ", "Latin"),
        ("µ", "Greek"), ("𐌀", "Old Italic"), ("ᐁ", "Canadian Aboriginal"),
        ("1", None), ("-", None), (" ", None), ("\u0301", None), ("€", None), ("ʹ", None),
    ],
)
def test_script_of(ch: str, script: str | None) -> None:
    assert script_of(ch) == script


def test_script_of_every_letter_in_the_main_alphabets() -> None:
    for cp in range(0x20000):  # every letter of these scripts is in planes 0-1
        ch = chr(cp)
        name = unicodedata2.name(ch, "")
        if not unicodedata2.category(ch).startswith("L"):
            assert script_of(ch) is None
            continue
        for prefix, script in (("LATIN ", "Latin"), ("CYRILLIC ", "Cyrillic"), ("GREEK ", "Greek"),
                               ("ARMENIAN ", "Armenian"), ("CHEROKEE ", "Cherokee")):
            if name.startswith(prefix):
                assert script_of(ch) == script, name


def test_confusables_table_is_sound() -> None:
    for ch, latin in CONFUSABLES.items():
        assert len(ch) == 1 and unicodedata2.category(ch).startswith("L"), ch
        assert latin.isascii() and latin.isalpha(), ch
        assert script_of(ch) in {"Latin", "Cyrillic", "Greek", "Armenian", "Cherokee", "Lisu"}, ch
        assert script_of(ch) != "Latin" or not ch.isascii()
    # the brief's look-alikes are all there
    for ch, latin in zip("аеорсухіјѕԁԛԝɑοανρ", "aeopcyxijsdqwaoavp"):
        assert CONFUSABLES[ch] == latin


def test_letter_scripts_positions() -> None:
    assert letter_scripts("a1 бc") == {"Latin": [0, 4], "Cyrillic": [3]}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_suspicious_never_fails(text: str) -> None:
    flags = suspicious(text)
    assert isinstance(flags, tuple)
    if text.isascii():
        assert flags == ()
