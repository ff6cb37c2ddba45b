"""Mixed scripts and Latin look-alikes are flagged for a human, never changed."""

from __future__ import annotations

import pytest
import unicodedata2
from hypothesis import given, settings
from hypothesis import strategies as st

from keyshift.core.text.confusables import skeleton
from keyshift.core.text.normalize import DEFAULT_RULES, Normalizer
from keyshift.core.text.scripts import is_mixed, latin_reading, letter_scripts, suspicious

DEFAULT = Normalizer()


def test_paypal_in_cyrillic_gets_both_flags() -> None:
    result = DEFAULT.explain("раураl")
    assert result.canonical == "раураl" and not result.changed
    assert result.suspicious == (
        "mixed scripts: Latin, Cyrillic (U+0440 CYRILLIC SMALL LETTER ER at 0, "
        "U+0430 CYRILLIC SMALL LETTER A at 1, U+0443 CYRILLIC SMALL LETTER U at 2, …)",
        "confusable with Latin 'paypal'",
    )
    assert latin_reading("раураl") == "paypal"
    assert skeleton("раураl") == skeleton("paypal")  # UTS #39: confusable


@pytest.mark.parametrize(
    "text",
    ["paypal", "Acme", "Acme Corp 12", "Москва", "ΑΒΓ", "Ελλάδα", "東京タワー", "ACME株式会社",
     "서울 Seoul", "台北 Taipei ㄅ", "Müller GmbH", "Ærøskøbing", "", "1234-56", "Straße",
     "ООО Ромашка", "Привет Мир 2029", "Sony ソニー", "サクラ Trading", "Işık", "Nguyễn Văn An",
     "Ελλα\u0301δα", "Москва\u0301", "ACME・株式会社", "Ǧ Łódź"],
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
        ("сор", False, "cop"),  # a real Russian word, and it does read as Latin 'cop'
        ("pɑypal", False, "paypal"),  # Latin alpha is Latin, but not a plain a
        ("ᏟᎪᎡ", False, "CAR"),  # Cherokee
        ("ꓚꓔ", False, "CT"),  # Lisu
        ("Ꭺcme", True, "Acme"),
        ("օnline", True, "online"),  # Armenian oh
        ("Αcme 7", True, "Acme 7"),  # digits and spaces pass through the reading
        ("ωmega", True, None),
        ("ІBM", True, "IBM"),  # Cyrillic І: prototype 'l', read as upper-case I
        ("Ӏnc", True, "Inc"),  # Cyrillic palochka, upper case
        ("ѕӏow", True, "slow"),  # small palochka reads as l
        ("Мüller", True, "Müller"),  # Latin ü passes as itself; NFD/NFC round trip
        ("Ѕtraße", True, "Straße"),
        ("ёlka", True, "ëlka"),  # ё is е + U+0308: the е passes for e
        ("Işıɡ", False, "Işıg"),  # ı is a Turkish letter (below U+0180); script g is a look-alike
    ],
)
def test_flagged(text: str, mixed: bool, latin: str | None) -> None:
    flags = suspicious(text)
    assert any(f.startswith("mixed scripts: ") for f in flags) == mixed
    assert is_mixed(text) == mixed
    expected = f"confusable with Latin '{latin}'" if latin is not None else None
    assert (expected in flags) if expected else not any(f.startswith("confusable") for f in flags)
    assert latin_reading(text) == latin


def test_mixed_flag_lists_at_most_three_characters() -> None:
    (flag,) = suspicious("Acme Москва")
    assert flag.startswith("mixed scripts: Latin, Cyrillic (U+041C CYRILLIC CAPITAL LETTER EM at 5, ")
    assert flag.endswith(", …)") and flag.count(" at ") == 3
    (flag,) = suspicious("Aж")
    assert flag == "mixed scripts: Latin, Cyrillic (U+0436 CYRILLIC SMALL LETTER ZHE at 1)"


def test_three_scripts_are_named_in_order() -> None:
    (flag,) = suspicious("жωb")
    assert flag.startswith("mixed scripts: Latin, Cyrillic, Greek (")


def test_script_names_are_unicode_long_names() -> None:
    (flag,) = suspicious("a\U00010300")  # OLD ITALIC LETTER A
    assert flag == "mixed scripts: Latin, Old Italic (U+10300 OLD ITALIC LETTER A at 1)"
    (flag,) = suspicious("aᐁ")
    assert flag.startswith("mixed scripts: Latin, Canadian Aboriginal (")
    (flag,) = suspicious("a\u1992")
    assert flag.startswith("mixed scripts: Latin, New Tai Lue (")


@pytest.mark.parametrize(
    ("text", "mixed"),
    [
        ("東京タワー", False),  # ー is Hiragana or Katakana (Script_Extensions), Common by Script
        ("ACME・株式会社", False),
        ("서울 Seoul 東京", False),  # Korean: Latin + Han + Hangul
        ("台北 ㄅ Taipei", False),  # Chinese: Latin + Han + Bopomofo
        ("서울あ", True),  # Hangul and Hiragana are in no cover together
        ("ㄅあ", True),  # Bopomofo and Hiragana either
        ("Ελλα\u0301δα", False),  # U+0301 is Inherited, used with Greek
        ("a\u0483", True),  # COMBINING CYRILLIC TITLO is a Cyrillic mark, not Inherited
        ("Acme 2029", False),
        ("Acme ٣", False),  # ARABIC-INDIC DIGIT THREE: digits never count
        ("Acme ،", False),  # ARABIC COMMA: punctuation never counts
        ("a\u02bc", False),  # MODIFIER LETTER APOSTROPHE: Common, used with Latin
    ],
)
def test_script_extensions_decide_mixing(text: str, mixed: bool) -> None:
    assert is_mixed(text) == mixed
    assert any(f.startswith("mixed scripts") for f in suspicious(text)) == mixed


def test_a_character_of_several_scripts_counts_for_one_of_the_text() -> None:
    # U+0483's Script_Extensions is {Cyrillic, Old Permic}: with a Cyrillic letter it is Cyrillic.
    assert letter_scripts("aж\u0483") == {"Latin": [0], "Cyrillic": [1, 2]}
    assert letter_scripts("a\u0483") == {"Latin": [0], "Cyrillic": [1]}
    # U+0301 is used with Latin (among others): here it is Latin.
    assert letter_scripts("жe\u0301") == {"Cyrillic": [0], "Latin": [1, 2]}


def test_flags_survive_casefold_and_fullwidth() -> None:
    folded = Normalizer(DEFAULT_RULES + ("casefold",))
    assert "confusable with Latin 'paypal'" in folded.explain("РАУРАL").suspicious
    assert DEFAULT.explain("ＰＡＹＰＡＬ").suspicious == ()  # fullwidth Latin is Latin after NFKC
    # without NFKC, fullwidth letters are look-alikes of ASCII ones
    assert suspicious("ＰＡＹＰＡＬ") == ("confusable with Latin 'PAYPAL'",)


def test_the_brief_look_alikes_read_as_latin() -> None:
    for ch, latin in zip("аеорсухіјѕԁԛԝɑοανρ", "aeopcyxijsdqwaoavp"):
        assert latin_reading(ch) == latin, ch


def test_letter_scripts_positions() -> None:
    assert letter_scripts("a1 бc") == {"Latin": [0, 4], "Cyrillic": [3]}


def test_long_text_names_the_first_characters_only() -> None:
    text = DEFAULT.canonical("\ufdfa" * 70 + " Imports")  # NFKC makes ~1,300 Arabic letters
    (flag,) = suspicious(text)
    assert flag.startswith("mixed scripts: Latin, Arabic (U+0635 ARABIC LETTER SAD at 0, ")
    assert flag.endswith(", …)") and flag.count(" at ") == 3


def test_the_fast_path_is_exact() -> None:
    """Below U+0180 neither rule can fire, which is what lets ``suspicious`` skip the walk."""
    below = [chr(cp) for cp in range(0x180)]
    assert not is_mixed("".join(below))
    for ch in below:
        assert latin_reading(ch) is None, hex(ord(ch))
        assert not is_mixed(ch + "a"), hex(ord(ch))
    # and just above it, both can
    assert latin_reading("\u0251") == "a"  # LATIN SMALL LETTER ALPHA
    assert is_mixed("a\u0370")  # GREEK CAPITAL LETTER HETA


LOOKALIKE_ALPHABET = "аеорсухіјѕԁԛԝɑοανρΑΒΕΗΙΚΜΝΟΡΤΧᏟᎪᎡꓚꓔօіӏӀɡ" + "acemnoprstuxyIBM 1-" + "жλ東üø\u0301"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=LOOKALIKE_ALPHABET, min_size=1, max_size=12))
def test_the_reading_is_confusable_with_the_text(text: str) -> None:
    """Whatever the reading shows, UTS #39 agrees the two texts are confusable."""
    latin = latin_reading(text)
    if latin is not None:
        assert skeleton(latin) == skeleton(text)
        letters = [c for c in unicodedata2.normalize("NFD", latin) if unicodedata2.category(c)[0] == "L"]
        assert all(c.isascii() or c == "ø" for c in letters), latin  # ø: Latin, passes as itself


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_suspicious_never_fails(text: str) -> None:
    flags = suspicious(text)
    assert isinstance(flags, tuple)
    if text.isascii():
        assert flags == ()
