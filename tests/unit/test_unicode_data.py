"""The shipped Unicode data (core/text/data/): its version, and that it agrees with unicodedata2.

These tests are what makes a version skew loud: a new unicodedata2 (or a data file regenerated
from other sources) fails here until ``core/text/data/regenerate.py`` is run again and its result checked.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import warnings

import pytest
import unicodedata2

from keyshift.core.text import confusables, script_property, unicode_data
from keyshift.core.text.confusables import ascii_letters_for, prototype, skeleton
from keyshift.core.text.script_property import script, script_extensions
from keyshift.core.text.unicode_chars import UNICODE_VERSION

DATA_FILES = ("scripts.txt", "confusables.txt")
DATA_DIR = pathlib.Path(unicode_data.__file__).parent / "data"


# -- versions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATA_FILES)
def test_data_is_of_unicodedata2s_version(name: str) -> None:
    data = unicode_data.read_data_file(name)
    assert data.version == UNICODE_VERSION == unicodedata2.unidata_version
    assert unicode_data.version_skew(data) is None
    assert data.sources and all(f"Version {data.version}" in s for s in data.sources)


def test_tables_report_their_version() -> None:
    assert script_property.data_version() == confusables.data_version() == UNICODE_VERSION


def test_newest_unicode_there_is() -> None:
    """The data is at least Unicode 18.0 (unicodedata2 18.0.0 when this was written)."""
    major, minor, _ = (int(x) for x in UNICODE_VERSION.split("."))
    assert (major, minor) >= (18, 0)


def test_a_skew_is_reported() -> None:
    data = unicode_data.read_data_file("scripts.txt")
    message = unicode_data.version_skew(data, "99.0.0")
    assert message is not None and data.version in message and "99.0.0" in message
    assert "core/text/data/regenerate.py" in message
    with pytest.warns(unicode_data.UnicodeVersionSkew, match="unicodedata2 is Unicode 99.0.0"):
        unicode_data.load("scripts.txt", unicode_version="99.0.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unicode_data.load("scripts.txt")  # no skew, no warning


def test_a_skew_is_reported_when_the_tables_load() -> None:
    """End to end: with another unicodedata2 version the first lookup warns, and says why."""
    code = (
        "import unicodedata2; unicodedata2.unidata_version = '99.0.0'\n"
        "import warnings; warnings.simplefilter('error')\n"
        "from keyshift.core.text.scripts import suspicious\n"
        "suspicious('раураl')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARNINGS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "UnicodeVersionSkew" in out.stderr and "99.0.0" in out.stderr


def test_a_file_without_a_version_is_refused() -> None:
    with pytest.raises(ValueError, match="does not say its Unicode version"):
        unicode_data.read_data_file("x.txt", "# no version here\n0041;005A;Latin\n")


# -- the files themselves -------------------------------------------------------------------------
@pytest.mark.parametrize("name", DATA_FILES)
def test_headers_name_sources_version_and_license(name: str) -> None:
    text = (DATA_DIR / name).read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any(line.startswith("# Unicode-Version: ") for line in header)
    assert any(line.startswith("# Source: ") for line in header)
    joined = "\n".join(header)
    assert "UNICODE LICENSE V3" in joined and "Unicode, Inc." in joined
    assert "Permission is hereby granted" in joined
    assert "core/text/data/regenerate.py" in joined
    assert len(text.encode()) < 300_000  # ranges, not one line per code point


def test_data_files_are_package_data() -> None:
    # The repository declares them, and the installed package (editable or not) carries them.
    pyproject = (pathlib.Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"keyshift.core.text" = ["data/*.txt"]' in pyproject
    from importlib.resources import files

    shipped = files("keyshift.core.text") / "data"
    assert (shipped / "scripts.txt").is_file() and (shipped / "confusables.txt").is_file()


# -- Script and Script_Extensions agree with unicodedata2 -----------------------------------------
def test_every_code_point_with_a_script_is_assigned_and_the_reverse() -> None:
    assigned = bytearray(0x110000)
    for first, last, _, _ in script_property.ranges():
        assigned[first:last + 1] = b"\x01" * (last - first + 1)
    category = unicodedata2.category
    unassigned_with_script = []
    assigned_without_script = []
    for cp in range(0x110000):
        cat = category(chr(cp))
        if assigned[cp] and cat == "Cn":
            unassigned_with_script.append(cp)
        elif not assigned[cp] and cat not in ("Cn", "Co", "Cs"):
            assigned_without_script.append(cp)
    assert not unassigned_with_script, [hex(cp) for cp in unassigned_with_script[:10]]
    assert not assigned_without_script, [hex(cp) for cp in assigned_without_script[:10]]


@pytest.mark.parametrize(
    ("ch", "sc"),
    [
        ("a", "Latin"), ("ɑ", "Latin"), ("ᵃ", "Latin"), ("Ａ", "Latin"), ("р", "Cyrillic"),
        ("ο", "Greek"), ("Ω", "Greek"), ("ա", "Armenian"), ("Ꭰ", "Cherokee"), ("ꮰ", "Cherokee"),
        ("ა", "Georgian"), ("א", "Hebrew"), ("ب", "Arabic"), ("東", "Han"), ("\U00020000", "Han"),
        ("タ", "Katakana"), ("ｶ", "Katakana"), ("あ", "Hiragana"), ("가", "Hangul"),
        ("ㄅ", "Bopomofo"), ("ꓐ", "Lisu"), ("𐌀", "Old Italic"), ("ᐁ", "Canadian Aboriginal"),
        ("\u0301", "Inherited"), ("\u0308", "Inherited"), ("\u200d", "Inherited"),
        ("1", "Common"), ("٣", "Arabic"), ("-", "Common"), (" ", "Common"), ("€", "Common"),
        ("ʹ", "Common"), ("µ", "Common"), ("𝐀", "Common"), ("ℓ", "Common"), ("ー", "Common"),
        ("\u0378", "Unknown"), ("\U000E0080", "Unknown"), ("\U0010FFFF", "Unknown"),
    ],
)
def test_script(ch: str, sc: str) -> None:
    assert script(ch) == sc


@pytest.mark.parametrize(
    ("ch", "scx"),
    [
        ("р", {"Cyrillic"}),
        ("1", {"Common"}),
        ("ー", {"Hiragana", "Katakana"}),  # KATAKANA-HIRAGANA PROLONGED SOUND MARK
        ("\u3001", {"Bopomofo", "Han", "Hangul", "Hiragana", "Katakana", "Mongolian", "Yi"}),
        ("\u0483", {"Cyrillic", "Old Permic"}),  # COMBINING CYRILLIC TITLO
        ("٣", {"Arabic", "Thaana", "Yezidi"}),  # ARABIC-INDIC DIGIT THREE
    ],
)
def test_script_extensions(ch: str, scx: set[str]) -> None:
    assert script_extensions(ch) == scx


def test_combining_marks_are_inherited_but_used_with_their_scripts() -> None:
    # Unicode 16+ gives common combining marks Script_Extensions (UTS #39 then ignores no mark
    # that has them); U+0301 is used with Latin, Greek and Cyrillic, among others.
    assert script("\u0301") == "Inherited"
    assert {"Latin", "Greek", "Cyrillic"} <= script_extensions("\u0301")


def test_letters_named_for_a_script_have_that_script() -> None:
    """A cross-check of the Script data with unicodedata2's names, for the main alphabets."""
    prefixes = {"LATIN ": "Latin", "CYRILLIC ": "Cyrillic", "GREEK ": "Greek",
                "ARMENIAN ": "Armenian", "CHEROKEE ": "Cherokee", "HIRAGANA ": "Hiragana",
                "HANGUL SYLLABLE ": "Hangul", "CJK UNIFIED IDEOGRAPH-": "Han"}
    exceptions = {0x0374}  # GREEK NUMERAL SIGN: a Common letter (Lm), used beyond Greek
    checked = 0
    for cp in range(0x40000):
        ch = chr(cp)
        if not unicodedata2.category(ch).startswith("L") or cp in exceptions:
            continue
        name = unicodedata2.name(ch, "")
        for prefix, sc in prefixes.items():
            if name.startswith(prefix):
                assert script(ch) == sc, name
                checked += 1
    assert checked > 100_000


def test_script_extensions_contain_the_script_or_list_real_scripts() -> None:
    for first, _, sc, scx in script_property.ranges():
        assert scx, hex(first)
        if scx != {sc}:
            # Common and Inherited characters used by some scripts list those scripts instead
            assert sc in scx or sc in ("Common", "Inherited"), hex(first)
            assert not scx & {"Common", "Inherited", "Unknown"}, hex(first)


# -- confusables agree with unicodedata2 ----------------------------------------------------------
def test_confusables_use_assigned_characters_and_prototypes_are_fixed_points() -> None:
    _, table = confusables._table()
    assert len(table) > 6_000
    for source, target in table.items():
        assert unicodedata2.category(source) != "Cn", hex(ord(source))
        assert unicodedata2.normalize("NFD", source) == source, hex(ord(source))
        assert source != target
        for cp in target:
            assert unicodedata2.category(cp) != "Cn", hex(ord(cp))
            assert prototype(cp) == cp, (source, target)  # a prototype maps to itself


@pytest.mark.parametrize(
    ("ch", "proto"),
    [("р", "p"), ("о", "o"), ("ο", "o"), ("а", "a"), ("Ѕ", "S"), ("ɑ", "a"), ("Ꮯ", "C"),
     ("I", "l"), ("1", "l"), ("m", "rn"), ("0", "O"), ("к", "ĸ"), ("a", "a")],
)
def test_prototypes(ch: str, proto: str) -> None:
    assert prototype(ch) == proto


def test_skeleton_is_uts39s() -> None:
    assert skeleton("paypal") == skeleton("раураl") == "paypal"
    assert skeleton("Acme") == "Acrne"  # a key to compare with, not a text to show
    assert skeleton("Ⅻ") == skeleton("XII")  # NFD does not fold compatibility forms; the map does
    assert skeleton("e\u0301") == skeleton("é")


def test_ascii_letters_for_a_prototype() -> None:
    assert ascii_letters_for("l", upper=True) == "I"
    assert ascii_letters_for("l", upper=False) == "l"
    assert ascii_letters_for("rn", upper=False) == "m"
    assert ascii_letters_for("p", upper=False) == "p"
    assert ascii_letters_for("6", upper=False) is None
    assert ascii_letters_for("ĸ", upper=False) is None


# -- hygiene ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("module", ["unicode_data", "script_property", "confusables", "scripts"])
def test_no_stdlib_unicodedata_and_no_textual(module: str) -> None:
    source = (DATA_DIR.parent / f"{module}.py").read_text(encoding="utf-8")
    assert "import unicodedata\n" not in source and "from unicodedata " not in source
    assert "textual" not in source.lower()
