"""Plain DynamoDB JSON lines: one item per line in wire format, ``{"Item": ...}`` wrapper optional.

What scripts around ``scan`` write. The wrapper is decided line by line. Lower-case and lower-camel
type keys are accepted too (they are converted to wire format).
"""

from __future__ import annotations

from typing import Any

from ..errors import DumpError
from .model import DumpInfo
from .reader import DataFile
from .source import FileRef, Location, is_data_name
from .wire import LineError, WireError, canonical_type_key, is_wire, json_type, to_wire

__all__ = ["parse_ddbjson", "plan_ddbjson", "data_files"]


def parse_ddbjson(obj: Any) -> dict:
    """One parsed line -> wire-format item; raises :class:`LineError` saying why not."""
    if type(obj) is not dict:
        raise LineError(f"line is not a JSON object (got {json_type(obj)})")
    if len(obj) == 1 and "Item" in obj:
        inner = obj["Item"]
        if type(inner) is not dict:
            raise LineError(f"'Item' wrapper must hold an object, got {json_type(inner)}")
        if len(inner) == 1 and canonical_type_key(next(iter(inner))) is not None:
            return _ambiguous(obj, inner)
        obj = inner
    if is_wire(obj.values()):
        return obj
    return to_wire(obj)


def _ambiguous(obj: dict, inner: dict) -> dict:
    # Prefer the wrapper reading; fall back to "an attribute named Item" when only that is valid.
    try:
        return inner if is_wire(inner.values()) else to_wire(inner)
    except WireError as first:
        try:
            return obj if is_wire(obj.values()) else to_wire(obj)
        except WireError:
            raise first from None


def data_files(loc: Location, single: FileRef | None) -> list[FileRef]:
    """The data files of a directory or prefix (manifests, markers, checksums left out)."""
    if single is not None:
        return [single]
    files = [r for r in loc.list() if is_data_name(r.rel)]
    if not files:
        raise DumpError(f"no data files in {loc.uri}")
    return files


def plan_ddbjson(loc: Location, single: FileRef | None, info: DumpInfo) -> list[DataFile]:
    """Every data file of the location, in lexicographic order."""
    files = data_files(loc, single)
    empty = [r for r in files if r.size == 0]
    if empty:
        info.warnings.append(f"{len(empty)} empty data file{'s' if len(empty) > 1 else ''}: "
                             + ", ".join(r.rel for r in empty[:5]) + ("…" if len(empty) > 5 else ""))
    return [DataFile(r) for r in files]
