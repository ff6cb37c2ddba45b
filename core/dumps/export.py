"""Native DynamoDB Export to S3, ``DYNAMODB_JSON`` output.

Layout under the export prefix::

    AWSDynamoDB/<ExportId>/manifest-summary.json    itemCount, exportTime, manifestFilesS3Key...
    AWSDynamoDB/<ExportId>/manifest-files.json      JSON lines, one per data file:
        {"itemCount":8,"md5Checksum":"<base64 MD5>","etag":"...","dataFileS3Key":"AWSDynamoDB/<id>/data/x.json.gz"}
    AWSDynamoDB/<ExportId>/data/<random>.json.gz    lines {"Item": {...}}
    (+ *.checksum files and an empty _started)

The uri may name the prefix above ``AWSDynamoDB``, ``AWSDynamoDB`` itself, ``AWSDynamoDB/<id>/``
or the ``manifest-summary.json``. With several exports under the prefix the newest is read (by
``exportTime``, else by file dates) and a warning says so. ``dataFileS3Key`` is bucket-relative;
it is resolved from its ``AWSDynamoDB/<id>/`` part, so a dump copied to another prefix, bucket or
local directory still resolves.

Each data file is checked after it is read: its line count against ``itemCount`` and the MD5 of its
compressed bytes against ``md5Checksum``. Exports without manifest files (moto writes none) are
read with a warning.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from ..errors import DumpError
from .model import DumpInfo
from .reader import DataFile
from .source import FileRef, Location, is_data_name
from .wire import LineError, is_wire, json_type, to_wire

__all__ = ["parse_export", "plan_export", "find_exports", "export_root", "choose_export",
           "ExportDir", "SUMMARY", "FILES_MANIFEST"]

SUMMARY = "manifest-summary.json"
FILES_MANIFEST = "manifest-files.json"

# An export file, by its full path: <dir>/AWSDynamoDB/<id>/{manifest-summary.json,...,data/...}
_IN_EXPORT = re.compile(r"^(?P<dir>(?:.*/)?AWSDynamoDB/[^/]+)/(?P<rest>manifest-summary\.json|"
                        r"manifest-files\.json|data/.+)$")
_EXPORT_ROOT = re.compile(r"^(?P<dir>(?:.*/)?AWSDynamoDB/[^/]+)(?:/|$)")


def parse_export(obj: Any) -> dict:
    """One parsed line ``{"Item": {...}}`` -> wire-format item; raises :class:`LineError`."""
    if type(obj) is dict:
        item = obj.get("Item")
        if type(item) is dict and len(obj) == 1:
            if is_wire(item.values()):
                return item
            return to_wire(item)
        if "Item" not in obj:
            if "NewImage" in obj or "Keys" in obj:
                raise LineError("incremental export line (Keys/NewImage): not supported, "
                                "use a full export")
            keys = ", ".join(repr(k) for k in list(obj)[:5])
            raise LineError(f"expected {{\"Item\": {{...}}}}, got an object with keys {keys or 'none'}")
        if type(item) is not dict:
            raise LineError(f"'Item' must be an object, got {json_type(item)}")
        extra = ", ".join(repr(k) for k in obj if k != "Item")
        raise LineError(f"unexpected keys next to 'Item': {extra}")
    raise LineError(f"line is not a JSON object (got {json_type(obj)})")


@dataclass
class ExportDir:
    """One ``AWSDynamoDB/<id>`` directory found under a location."""

    path: str  # full posix path (local) or key prefix (S3)
    rel: str  # relative to the location root ("" when the location is the export dir)
    summary: FileRef | None = None
    files_manifest: FileRef | None = None
    data: list[FileRef] = field(default_factory=list)

    @property
    def export_id(self) -> str:
        return posixpath.basename(self.path)

    def rel_of(self, name: str) -> str:
        return f"{self.rel}/{name}" if self.rel else name

    def latest_mtime(self) -> float:
        refs = [r for r in (self.summary, self.files_manifest, *self.data) if r is not None]
        return max((r.mtime or 0.0 for r in refs), default=0.0)


def _full(loc: Location, rel: str) -> str:
    return f"{loc.root}/{rel}" if loc.root else rel


def find_exports(loc: Location) -> list[ExportDir]:
    """Every export directory under (or around) the location, with its manifests and data files.

    An export directory is ``.../AWSDynamoDB/<id>`` holding a manifest or a ``data/`` folder, or
    any directory holding a ``manifest-summary.json`` (an export copied without its layout).
    """
    dirs: dict[str, ExportDir] = {}
    root_prefix = f"{loc.root}/" if loc.root else ""
    for r in loc.list():
        full = _full(loc, r.rel)
        m = _IN_EXPORT.match(full)
        if m is not None:
            dpath, rest = m.group("dir"), m.group("rest")
        elif r.name == SUMMARY:
            dpath, rest = posixpath.dirname(full), SUMMARY
        else:
            continue
        ed = dirs.get(dpath)
        if ed is None:
            rel = dpath[len(root_prefix):] if dpath.startswith(root_prefix) else ""
            ed = dirs[dpath] = ExportDir(dpath, rel)
        if rest == SUMMARY:
            ed.summary = r
        elif rest == FILES_MANIFEST:
            ed.files_manifest = r
        elif rest.startswith("data/") and is_data_name(rest):
            ed.data.append(r)
    return [d for d in dirs.values() if d.summary or d.files_manifest or d.data]


def export_root(loc: Location) -> Location:
    """The export directory when the location is inside one (``.../AWSDynamoDB/<id>/data``)."""
    m = _EXPORT_ROOT.match(f"{loc.root}/")
    if m is not None and m.group("dir") != loc.root:
        return loc.at(m.group("dir"))
    return loc


def _load_json(loc: Location, ref: FileRef) -> dict:
    try:
        doc = orjson.loads(loc.read_small(ref))
    except orjson.JSONDecodeError as e:
        raise DumpError(f"{ref.uri} is not valid JSON: {e}") from None
    if type(doc) is not dict:
        raise DumpError(f"{ref.uri} is not a JSON object")
    return doc


def _export_time(loc: Location, ed: ExportDir) -> tuple[float, str]:
    """(sort key, label) of an export: its exportTime when known, else its newest file's date."""
    if ed.summary is not None:
        try:
            t = _load_json(loc, ed.summary).get("exportTime")
        except DumpError:
            t = None
        if isinstance(t, str):
            try:
                return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp(), t
            except ValueError:
                pass
    mt = ed.latest_mtime()
    return mt, (datetime.fromtimestamp(mt).isoformat(timespec="seconds") + " (file date)"
                if mt else "unknown")


def choose_export(loc: Location, exports: list[ExportDir], info: DumpInfo | None) -> ExportDir:
    """The newest export (warns in ``info`` when there were several)."""
    if len(exports) == 1:
        return exports[0]
    timed = sorted(((_export_time(loc, ed), ed) for ed in exports), key=lambda t: (t[0][0], t[1].path))
    (_, label), newest = timed[-1]
    if info is not None:
        others = ", ".join(ed.export_id for _, ed in timed[:-1])
        info.warnings.append(f"{len(exports)} exports under {loc.uri}; reading the newest, "
                             f"{newest.export_id} (exportTime {label}); ignored: {others}")
    return newest


def _rel_in_export(key: str, ed: ExportDir) -> list[str]:
    """Candidate paths, relative to the export dir, for a bucket-relative key from a manifest."""
    out = []
    marker = f"AWSDynamoDB/{ed.export_id}/"
    i = key.rfind(marker)
    if i >= 0:
        out.append(key[i + len(marker):])
    j = key.rfind("AWSDynamoDB/")
    if j >= 0:
        tail = key[j + len("AWSDynamoDB/"):]
        if "/" in tail:
            out.append(tail.split("/", 1)[1])
    out.append(key)
    out.append("data/" + posixpath.basename(key))
    return out


def plan_export(loc: Location, single: FileRef | None, info: DumpInfo) -> list[DataFile]:
    """The data files of the (newest) export, with what manifest-files.json expects of each."""
    if single is not None and single.name not in (SUMMARY, FILES_MANIFEST):
        info.warnings.append(f"reading the single data file {single.uri}: no manifest, item count "
                             "and checksum not verified")
        return [DataFile(single)]
    loc = export_root(loc)
    exports = find_exports(loc)
    if single is not None:
        # The uri named a manifest: its directory is the export.
        exports = [ed for ed in exports if posixpath.dirname(single.rel) == ed.rel] or exports
    if not exports:
        raise DumpError(f"no DynamoDB export under {loc.uri}: expected "
                        f"AWSDynamoDB/<ExportId>/{SUMMARY} or AWSDynamoDB/<ExportId>/data/")
    ed = choose_export(loc, exports, info)
    by_rel = {r.rel: r for r in loc.list()}

    summary: dict[str, Any] = {}
    if ed.summary is not None:
        summary = _load_json(loc, ed.summary)
        fmt = summary.get("outputFormat")
        if fmt not in (None, "DYNAMODB_JSON"):
            raise DumpError(f"export {ed.export_id} is in {fmt} format; keyshift reads "
                            "DYNAMODB_JSON exports (re-export with ExportFormat=DYNAMODB_JSON)")
        if summary.get("exportType") == "INCREMENTAL_EXPORT":
            raise DumpError(f"export {ed.export_id} is an incremental export; keyshift needs a "
                            "full export")
        count = summary.get("itemCount")
        if type(count) is int:
            info.expected_items = count
        if isinstance(summary.get("exportTime"), str):
            info.point_in_time = summary["exportTime"]

    mf = ed.files_manifest
    key = summary.get("manifestFilesS3Key")
    if isinstance(key, str):
        for cand in _rel_in_export(key, ed):
            ref = by_rel.get(ed.rel_of(cand))
            if ref is not None:
                mf = ref
                break

    if mf is None:
        data = sorted(ed.data, key=lambda r: r.rel)
        if not data:
            raise DumpError(f"no data files in {_full(loc, ed.rel) or loc.uri}")
        if ed.summary is None:
            info.warnings.append(f"export {ed.export_id} has no {SUMMARY} or {FILES_MANIFEST}: "
                                 "item counts and checksums cannot be verified")
        else:
            info.warnings.append(f"export {ed.export_id} has no {FILES_MANIFEST}: per-file item "
                                 "counts and checksums cannot be verified")
        return [DataFile(r) for r in data]

    out: list[DataFile] = []
    seen: set[str] = set()
    total = 0
    raw = loc.read_small(mf)
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise DumpError(f"{mf.uri} line {lineno} is not valid JSON: {e}") from None
        dkey = entry.get("dataFileS3Key") if type(entry) is dict else None
        if not isinstance(dkey, str):
            raise DumpError(f"{mf.uri} line {lineno} has no dataFileS3Key")
        ref = None
        for cand in _rel_in_export(dkey, ed):
            ref = by_rel.get(ed.rel_of(cand))
            if ref is not None:
                break
        if ref is None:
            raise DumpError(f"{mf.uri} lists {dkey}, which is missing from {loc.uri}",
                            title="Missing dump file")
        if ref.rel in seen:
            raise DumpError(f"{mf.uri} lists {dkey} twice")
        seen.add(ref.rel)
        count = entry.get("itemCount")
        md5 = entry.get("md5Checksum")
        count = count if type(count) is int else None
        if count is not None:
            total += count
        out.append(DataFile(ref, count, md5 if isinstance(md5, str) and md5 else None))
    if not out:
        raise DumpError(f"{mf.uri} lists no data files")
    unlisted = [r for r in ed.data if r.rel not in seen]
    if unlisted:
        info.warnings.append(
            f"{len(unlisted)} file{'s' if len(unlisted) > 1 else ''} in data/ not listed in "
            f"{FILES_MANIFEST}, ignored: " + ", ".join(posixpath.basename(r.rel) for r in unlisted[:5])
            + ("…" if len(unlisted) > 5 else ""))
    if info.expected_items is not None and all(d.expected_items is not None for d in out) \
            and total != info.expected_items:
        info.warnings.append(f"{SUMMARY} says itemCount {info.expected_items} but "
                             f"{FILES_MANIFEST} adds up to {total}")
    return out
