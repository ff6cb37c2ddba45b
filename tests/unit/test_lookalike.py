"""Look-alike marks (core/text/lookalike.py): each kind of difference a terminal hides is named."""

from __future__ import annotations

import pytest

from keyshift.core.text.lookalike import Mark, badges, marks


def codes(raw: str) -> list[tuple[str, str]]:
    return [(m.code, m.label) for m in marks(raw)]


@pytest.mark.parametrize("raw", ["Acme", "Acme Corp", "Café", "ACME-1", "Москва", "東京タワー", "", "a-b_c.d"])
def test_ordinary_identifiers_have_no_marks(raw):
    assert marks(raw) == [] and badges(raw) == ""


def test_nfd_is_told_from_nfc():
    nfc, nfd = "Caf\u00e9", "Cafe\u0301"
    assert marks(nfc) == []
    (mark,) = marks(nfd)
    assert (mark.code, mark.label, mark.where) == ("nfd", "NFD", (4,))
    assert badges(nfd) == "[NFD]"


def test_a_cyrillic_letter_in_a_latin_name():
    (mark,) = marks("p\u0430ypal")
    assert (mark.code, mark.label, mark.where) == ("script", "Cyrl", (1,))
    assert "CYRILLIC SMALL LETTER A" in mark.detail
    assert codes("\u0440\u0430\u0443\u0440\u0430l") == [("script", "Cyrl")]  # раураl: one Latin l
    assert codes("\u0391lpha") == [("script", "Grek")]


def test_a_whole_script_look_alike_reads_as_latin():
    (mark,) = marks("\u0440\u0430\u0443")  # рау: all Cyrillic, reads "pay"
    assert (mark.code, mark.label) == ("confusable", "≈Latn") and "'pay'" in mark.detail


def test_spaces():
    assert codes("Acme  Corp") == [("double-space", "␣␣")]
    assert marks("Acme  Corp")[0].where == (5,)
    assert codes(" Acme") == [("edge-space", "␣|")] and codes("Acme ") == [("edge-space", "␣|")]
    assert codes("Acme\u00a0Corp") == [("nbsp", "NBSP")]  # not also NFKC: the space mark says it
    assert codes("Acme\u2009Corp") == [("space", "THSP")]


def test_invisible_characters_one_mark_per_distinct_character():
    found = marks("A\u200bc\u200bme\u200d")
    assert [(m.code, m.label, m.where) for m in found] == [("invisible", "ZWSP", (1, 3)), ("invisible", "ZWJ", (6,))]
    assert codes("Acme\ue000") == [("invisible", "U+E000")]


def test_compatibility_forms():
    assert codes("\uff21\uff23\uff2d\uff25") == [("compat", "NFKC")]  # fullwidth Latin is still Latin
    assert codes("\ufb01le") == [("compat", "NFKC")]


def test_several_marks_in_order_and_as_json():
    raw = "Cafe\u0301  \u0430"
    assert [m.label for m in marks(raw)] == ["NFD", "Cyrl", "␣␣"]
    assert badges(raw) == "[NFD Cyrl ␣␣]"
    doc = marks(raw)[0].to_dict()
    assert doc == {"code": "nfd", "label": "NFD", "where": [4], "detail": doc["detail"]} and doc["detail"]
    assert isinstance(marks(raw)[0], Mark)


def test_every_look_alike_pair_differs_in_its_marks():
    """What the queue relies on: of two spellings a terminal draws alike, the marks differ."""
    pairs = [("Caf\u00e9", "Cafe\u0301"), ("paypal", "p\u0430ypal"), ("Acme Corp", "Acme  Corp"),
             ("Acme Corp", "Acme\u00a0Corp"), ("Acme", "Acme\u200b"), ("pay", "\u0440\u0430\u0443")]
    for plain, odd in pairs:
        assert badges(plain) != badges(odd), (plain, odd)


def test_core_lookalike_does_not_import_textual():
    import subprocess
    import sys

    code = "import sys, keyshift.core.text.lookalike; print('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
