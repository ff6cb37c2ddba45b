"""Guess a dump's format from its layout, and failing that from its first readable line.

In order:

1. ``manifest-summary.json`` / ``AWSDynamoDB/<id>/`` layout -> ``export``;
2. a ``manifest`` file naming ``DynamoDB-export`` -> ``datapipeline``;
3. the first readable line of the first data files: lower-camel type keys (``sS``, ``nULLValue``)
   or Hive control characters -> ``datapipeline``; uppercase wire type keys, with or without an
   ``{"Item": ...}`` wrapper -> ``ddbjson``.

The evidence is returned as text for :attr:`DumpInfo.detection`, e.g.
``export: found AWSDynamoDB/0163.../manifest-summary.json``.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import DumpError
from .datapipeline import MANIFEST_NAME, find_manifests
from .export import FILES_MANIFEST, SUMMARY, choose_export, export_root, find_exports
from .lines import BlockReader, ReadFault
from .source import FileRef, Location, is_data_name
from .wire import canonical_type_key

__all__ = ["detect", "sniff_line"]

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
    """``(format, reason)`` from one line, or ``None`` when the line says nothing either way."""
    stripped = line.strip()
    if not stripped:
        return None
    if not stripped.startswith(b"{") and b"\x03" in stripped:
        return "datapipeline", "Hive control-character separators (0x02/0x03)"
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
    keys = {k for d in obj.values() if (k := _descriptor_key(d)) is not None}
    if not keys:
        return None
    lower = sorted(k for k in keys if canonical_type_key(k) != k)
    if wrapped:
        return "ddbjson", "items wrapped in {\"Item\": ...}"
    if lower:
        return "datapipeline", f"lower-camel type keys ({', '.join(lower[:4])})"
    return "ddbjson", f"uppercase type keys ({', '.join(sorted(keys)[:4])})"


def _descriptor_key(d: Any) -> str | None:
    if type(d) is dict and len(d) == 1:
        k = next(iter(d))
        if canonical_type_key(k) is not None:
            return k
    return None


def _sniff(loc: Location, refs: list[FileRef], warnings: list[str]) -> tuple[str, str, list[str]]:
    tried = 0
    for ref in refs:
        if ref.size == 0:
            continue
        tried += 1
        if tried > SNIFF_FILES:
            break
        found = _sniff_file(loc, ref)
        if found is not None:
            fmt, reason, n = found
            return fmt, f"{fmt}: {reason} in line {n} of {ref.rel or ref.uri}", warnings
    warnings.append("could not recognise the format from the first data lines; "
                    "reading as DynamoDB JSON lines")
    return "ddbjson", "ddbjson: default (no readable line in the first data files)", warnings


def _sniff_file(loc: Location, ref: FileRef) -> tuple[str, str, int] | None:
    stream = loc.open(ref)
    try:
        br = BlockReader(stream, read_size=64 * 1024)
        n = 0
        for block in br.blocks():
            if isinstance(block, ReadFault):
                return None
            for line in block:
                n += 1
                found = sniff_line(line)
                if found is not None:
                    return found[0], found[1], n
                if n >= SNIFF_LINES:
                    return None
            if br.bytes_read > SNIFF_BYTES:
                return None
        return None
    finally:
        stream.close()
