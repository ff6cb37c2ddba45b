"""Read a DynamoDB table dump as a stream of items in wire format.

::

    dump = open_dump("s3://bucket/exports/", s3=client)   # or a local file or directory
    dump.info.format, dump.info.detection, dump.info.warnings
    for line in dump:                                     # DumpLine: item or error
        ...
    dump.bytes_read                                       # compressed bytes so far, for progress

Formats (see :data:`FORMATS`): ``datapipeline`` (Data Pipeline/EMR export, lower-camel type keys,
optional ``manifest``), ``export`` (native Export to S3, DYNAMODB_JSON, with manifest checks) and
``ddbjson`` (DynamoDB JSON lines, ``{"Item": ...}`` wrapper optional). ``auto`` detects the format
(:mod:`.detect`). Reading is streamed in constant memory; gzip is recognised by its magic bytes.
Bad lines become ``DumpLine`` errors; only an unusable dump (:class:`DumpError`) or a manifest
mismatch (:class:`ManifestError`, raised after the file's lines) stop a read.
"""

from __future__ import annotations

from typing import Any

from ..errors import DumpError, ManifestError
from .datapipeline import parse_datapipeline, parse_hive, plan_datapipeline
from .ddbjson import parse_ddbjson, plan_ddbjson
from .detect import detect
from .export import parse_export, plan_export
from .model import FORMATS, DumpInfo, DumpLine, DumpReader
from .reader import DataFile, Dump
from .source import Location, resolve
from .wire import WireError, convert_item, is_wire, to_wire

__all__ = ["open_dump", "DumpLine", "DumpInfo", "DumpReader", "FORMATS", "DumpError",
           "ManifestError", "WireError", "convert_item", "is_wire", "to_wire"]

_PLANS = {
    "datapipeline": (plan_datapipeline, parse_datapipeline, parse_hive),
    "export": (plan_export, parse_export, None),
    "ddbjson": (plan_ddbjson, parse_ddbjson, None),
}


def open_dump(uri: str, fmt: str = "auto", *, s3: Any = None,
              allow_manifest_mismatch: bool = False) -> DumpReader:
    """Open the dump at ``uri`` (local file or directory, or ``s3://bucket/prefix``).

    ``fmt`` is ``"auto"`` or one of :data:`FORMATS`. ``s3`` is a boto3 S3 client, needed for
    ``s3://`` locations. ``info`` is complete on return (format, detection evidence, files,
    warnings, sizes, manifest item count); nothing is read from the data files until iteration,
    except the first lines of one file when the format is detected.
    With ``allow_manifest_mismatch`` a count or checksum mismatch becomes a warning in
    ``info.warnings`` instead of a :class:`ManifestError`.
    Raises :class:`DumpError` for an unknown format, a missing location or no data files.
    """
    if fmt not in ("auto", *FORMATS):
        raise DumpError(f"unknown dump format {fmt!r}: use auto, " + ", ".join(FORMATS))
    loc, single = resolve(uri, s3)
    info = DumpInfo(uri=uri, format=fmt)
    if fmt == "auto":
        fmt, evidence, warnings = detect(loc, single)
        info.format = fmt
        info.detected = True
        info.detection = evidence
        info.warnings.extend(warnings)
    else:
        info.detection = f"{fmt}: format given"
    plan, parse, parse_raw = _PLANS[fmt]
    files = plan(loc, single, info)
    if not files:
        raise DumpError(f"no data files in {uri}")
    _check_readable(loc, files, info)
    info.files = [f.ref.uri for f in files]
    sizes = [f.ref.size for f in files]
    info.bytes_total = sum(sizes) if all(s is not None for s in sizes) else None  # type: ignore[misc]
    return Dump(loc, files, info, parse, parse_raw=parse_raw, wrapped=fmt == "export",
                allow_manifest_mismatch=allow_manifest_mismatch)


def _check_readable(loc: Location, files: list[DataFile], info: DumpInfo) -> None:
    """Refuse a dump whose data files cannot all be read; say what listing left out.

    A data file that cannot be read (a broken symlink, no read permission) would drop its items
    from the plan without a quarantined line to show for them, and the restore would miss them
    too: that is an unusable dump, not bad input. Unreadable files that are not read anyway
    (another export, a checksum) are only warnings.
    """
    bad = [f.ref for f in files if f.ref.problem is not None]
    if bad:
        shown = "; ".join(f"{r.uri}: {r.problem}" for r in bad[:5]) + ("; …" if len(bad) > 5 else "")
        raise DumpError(f"{len(bad)} data file{'s' if len(bad) > 1 else ''} of {info.uri} cannot "
                        f"be read ({shown}); their items would be missing from the plan: fix or "
                        "remove them", title="Unreadable dump")
    chosen = {f.ref.uri for f in files}
    others = [f"not read: {r.uri}: {r.problem}" for r in loc.unreadable
              if r.uri not in chosen and not _hidden(r.rel)]
    info.warnings.extend(dict.fromkeys([*loc.notes, *others]))  # a directory may be listed twice


def _hidden(rel: str) -> bool:
    """Whether a path is under a dot-directory or is a dot-file (never part of any dump)."""
    return any(part.startswith(".") for part in rel.split("/"))
