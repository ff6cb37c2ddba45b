"""Guess a dump's format from its layout, and failing that from its first readable line.

In order:

1. ``manifest-summary.json`` / ``AWSDynamoDB/<id>/`` layout -> ``export``;
2. a ``manifest`` file naming ``DynamoDB-export`` -> ``datapipeline``;
3. the first line of the first data files that parses as an item: lower-camel type keys (``sS``,
   ``nULLValue``) or a Hive line (``name\x03{json}\x02...``) -> ``datapipeline``; uppercase wire
   type keys, with or without an ``{"Item": ...}`` wrapper -> ``ddbjson``.

A line only counts when it *is* an item of that format: a JSON object whose every value is a type
descriptor of a valid item, or a Hive line whose every attribute is one. When some sampled line is
not blank but none parses, the location is not a dump: :class:`DumpError` names the files tried
(random bytes, a CSV, the wrong directory). Data files that are all empty (or blank) are an empty
table: they are read as DynamoDB JSON lines, with a warning, since nothing says otherwise.

The evidence is returned as text for :attr:`DumpInfo.detection`, e.g.
``export: found AWSDynamoDB/0163.../manifest-summary.json``.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import DumpError
from .datapipeline import MANIFEST_NAME, find_manifests, parse_hive
from .export import FILES_MANIFEST, SUMMARY, choose_export, export_root, find_exports
from .lines import MAX_LINE, BlockReader, ReadFault
from .source import FileRef, Location, is_data_name
from .wire import LineError, WireError, canonical_type_key, to_wire

__all__ = ["detect", "sniff_line", "EXPECTED"]

#: How much of the first data files sniffing may read.
SNIFF_FILES = 5
SNIFF_LINES = 50
SNIFF_BYTES = 4 << 20


def detect(loc: Location, single: FileRef | None) -> tuple[str, str, list[str]]:
    """``(format, evidence, warnings)`` for the location (or the single file in it)."""
    warnings: list[str] = []
    if single is not None:
        if single.name in (SUMMARY, FILES_MANIFEST):
            return "export", f"export: {single.name} named", warnings
        if single.name == MANIFEST_NAME and _is_dp_manifest(loc, single):
            return "datapipeline", "datapipeline: manifest named (DynamoDB-export)", warnings
        return _sniff(loc, [single], warnings)

    eloc = export_root(loc)
    exports = find_exports(eloc)
    if exports:
        ed = choose_export(eloc, exports, None)
        if ed.summary is not None:
            what = ed.rel_of(SUMMARY)
        elif ed.files_manifest is not None:
            what = ed.rel_of(FILES_MANIFEST)
        else:
            what = ed.rel_of("data/") + " (no manifest files)"
        if eloc is not loc:
            what = f"{eloc.uri}/{what}"
        return "export", f"export: found {what}", warnings

    for ref in find_manifests(loc):
        if _is_dp_manifest(loc, ref):
            return "datapipeline", f"datapipeline: found {ref.rel} (DynamoDB-export)", warnings

    data = [r for r in loc.list() if is_data_name(r.rel)]
    if not data:
        raise DumpError(f"no data files in {loc.uri}")
    return _sniff(loc, data, warnings)


def _is_dp_manifest(loc: Location, ref: FileRef) -> bool:
    try:
        head = loc.read_small(ref)
    except DumpError:
        return False
    return b"DynamoDB-export" in head


def sniff_line(line: bytes) -> tuple[str, str] | None:
    """``(format, reason)`` when the line parses as an item of a format, else ``None``."""
    stripped = line.strip()
    if not stripped:
        return None
    if not stripped.startswith(b"{") and b"\x03" in stripped:
        # A 0x03 byte alone proves nothing (random bytes have them): the line must read as Hive.
        try:
            item = parse_hive(stripped)
        except (LineError, RecursionError):
            return None
        if item:
            return "datapipeline", "Hive control-character separators (0x02/0x03)"
        return None
    try:
        obj = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or not obj:
        return None
    wrapped = False
    if len(obj) == 1 and type(obj.get("Item")) is dict:
        inner = obj["Item"]
        # {"Item": {"s": "x"}} is an attribute named Item, not a wrapper.
        if not (len(inner) == 1 and _descriptor_key(inner) is not None
                and type(next(iter(inner.values()))) is not dict):
            obj, wrapped = inner, True
    if not obj or not _is_item(obj):
        return None
    keys = {_descriptor_key(d) for d in obj.values()}
    lower = sorted(k for k in keys if k is not None and canonical_type_key(k) != k)
    if wrapped:
        return "ddbjson", "items wrapped in {\"Item\": ...}"
    if lower:
        return "datapipeline", f"lower-camel type keys ({', '.join(lower[:4])})"
    return "ddbjson", f"uppercase type keys ({', '.join(sorted(k for k in keys if k)[:4])})"


def _is_item(obj: dict) -> bool:
    """Whether every value of ``obj`` is a valid type descriptor (any casing of the type keys)."""
    try:
        to_wire(obj)
    except (WireError, RecursionError):
        return False
    return True


def _descriptor_key(d: Any) -> str | None:
    if type(d) is dict and len(d) == 1:
        k = next(iter(d))
        if canonical_type_key(k) is not None:
            return k
    return None


#: What a dump line looks like, for the message refusing a location where none was found.
EXPECTED = ('expected one item per line, e.g. {"Item": {"id": {"S": "a1"}}}; with --format it is '
            "read anyway and every line quarantined")


def _sniff(loc: Location, refs: list[FileRef], warnings: list[str]) -> tuple[str, str, list[str]]:
    tried: list[tuple[FileRef, str]] = []  # (file, what was seen in it)
    unreadable = [r for r in refs if r.problem is not None]
    for ref in refs:
        if ref.size == 0 or ref.problem is not None:
            continue
        if len(tried) >= SNIFF_FILES:
            break
        found, seen = _sniff_file(loc, ref)
        if found is not None:
            fmt, reason, n = found
            for other, what in tried:
                warnings.append(f"{other.uri}: {what}; it was read anyway (its lines are quarantined)")
            return fmt, f"{fmt}: {reason} in line {n} of {ref.rel or ref.uri}", warnings
        tried.append((ref, seen))
    if not tried and unreadable:
        # Nothing readable to look at: say why (open_dump would refuse these files anyway).
        shown = "; ".join(f"{r.uri}: {r.problem}" for r in unreadable[:5])
        raise DumpError(f"cannot detect the format of {loc.uri}: its data files cannot be read "
                        f"({shown})", title="Unreadable dump")
    if all(what.startswith("only blank") for _, what in tried):
        empty = sum(1 for r in refs if r.size == 0) + len(tried)
        warnings.append(f"every data file is empty ({empty} file{'s' if empty != 1 else ''}): an "
                        "empty table; read as DynamoDB JSON lines (pass --format to say otherwise)")
        return "ddbjson", "ddbjson: every data file is empty (nothing to detect)", warnings
    files = ", ".join(f"{r.uri} ({what})" for r, what in tried)
    raise DumpError(f"no line of {files} parses as DynamoDB JSON, Data Pipeline JSON or Hive: "
                    f"{EXPECTED}", title="Not a DynamoDB dump")


def _sniff_file(loc: Location, ref: FileRef) -> tuple[tuple[str, str, int] | None, str]:
    """The first line of ``ref`` that parses as an item, and else a description of what was seen."""
    stream = loc.open(ref)
    n = blank = 0
    try:
        br = BlockReader(stream, read_size=64 * 1024)
        for block in br.blocks():
            if isinstance(block, ReadFault):
                kind = {"truncated": "a truncated gzip stream", "corrupt": "a corrupt gzip stream",
                        "too-long": f"a line over {MAX_LINE} bytes"}.get(block.kind, block.kind)
                return None, f"{_seen(n, blank, True)}, then {kind}" if n else f"{kind}"
            for line in block:
                n += 1
                found = sniff_line(line)
                if found is not None:
                    return (found[0], found[1], n), ""
                if not line.strip():
                    blank += 1
                if n >= SNIFF_LINES:
                    return None, _seen(n, blank, False)
            if br.bytes_read > SNIFF_BYTES:
                return None, _seen(n, blank, False)
        return None, _seen(n, blank, True)
    finally:
        stream.close()


def _seen(n: int, blank: int, whole: bool) -> str:
    """What a file without an item line held: ``whole`` when all of it was read."""
    if n == blank:
        return "only blank lines"
    if whole:
        return "its only line is not an item" if n == 1 else f"none of its {n} lines is an item"
    return f"none of its first {n} lines is an item"
