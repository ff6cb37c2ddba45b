"""AWS Data Pipeline / EMR connector exports.

One item per line, no wrapper, lower-camel type keys (``s n b sS nS bS m l bOOL nULL nULLValue``),
gzip optional, files without extension (``ae10f955-..._000000``), plus an optional ``manifest``::

    {"name":"DynamoDB-export","version":3,"entries":[{"url":"s3://b/p/part","mandatory":true}]}

With a manifest, exactly its entries are read, in its order: an entry's S3 url is looked up at the
same key when the dump is read from that bucket, else by file name next to the manifest (a dump
copied elsewhere, or a local directory). A missing mandatory entry makes the dump unusable.
Without a manifest, every data file of the location is read.

The older Hive format writes ``name\\x03{"s":"v"}\\x02name2\\x03{"n":"1"}``: 0x03 between a name
and its value, 0x02 between attributes. Such lines are read too.
"""

from __future__ import annotations

import posixpath
from typing import Any

import orjson

from ..errors import DumpError
from .ddbjson import data_files
from .model import DumpInfo
from .reader import DataFile
from .source import FileRef, Location, S3Location, is_data_name
from .wire import LineError, is_wire, json_type, to_wire

__all__ = ["parse_datapipeline", "parse_hive", "plan_datapipeline", "find_manifests",
           "MANIFEST_NAME"]

MANIFEST_NAME = "manifest"


def parse_datapipeline(obj: Any) -> dict:
    """One parsed line -> wire-format item; raises :class:`LineError` saying why not."""
    if type(obj) is not dict:
        raise LineError(f"line is not a JSON object (got {json_type(obj)})")
    if is_wire(obj.values()):
        return obj
    return to_wire(obj)


def parse_hive(line: bytes) -> dict | None:
    """A Hive-format line (``name\\x03{json}\\x02...``) -> item; ``None`` if it is not one."""
    if b"\x03" not in line or line.lstrip()[:1] == b"{":
        return None
    item: dict[str, Any] = {}
    for part in line.rstrip(b"\r\n").split(b"\x02"):
        if not part:
            continue
        name, sep, value = part.partition(b"\x03")
        if not sep:
            raise LineError("malformed Hive line: an attribute has no 0x03 separator")
        try:
            key = name.decode("utf-8")
        except UnicodeDecodeError:
            raise LineError("malformed Hive line: attribute name is not valid UTF-8") from None
        try:
            item[key] = orjson.loads(value)
        except orjson.JSONDecodeError as e:
            raise LineError(f"malformed JSON in Hive attribute {key!r}: {e}") from None
    return to_wire(item)


def find_manifests(loc: Location) -> list[FileRef]:
    """Files named ``manifest`` under the location."""
    return [r for r in loc.list() if r.name == MANIFEST_NAME]


def load_manifest(loc: Location, ref: FileRef) -> dict | None:
    """The manifest's JSON when it is a Data Pipeline manifest (has an ``entries`` list)."""
    try:
        doc = orjson.loads(loc.read_small(ref))
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or type(doc.get("entries")) is not list:
        return None
    return doc


def plan_datapipeline(loc: Location, single: FileRef | None, info: DumpInfo) -> list[DataFile]:
    """The files to read: the manifest's entries when there is a manifest, else every data file."""
    if single is not None and single.name != MANIFEST_NAME:
        return [DataFile(single)]
    if single is not None:
        manifests = [single]
    else:
        manifests = find_manifests(loc)
    chosen: tuple[FileRef, dict] | None = None
    valid = []
    for ref in manifests:
        doc = load_manifest(loc, ref)
        if doc is None:
            if single is not None:
                raise DumpError(f"{ref.uri} is not a Data Pipeline manifest (no \"entries\" list)")
            info.warnings.append(f"ignored {ref.uri}: not a Data Pipeline manifest")
        else:
            valid.append((ref, doc))
    if len(valid) > 1:
        valid.sort(key=lambda rd: (rd[0].mtime or 0, rd[0].rel))
        chosen = valid[-1]
        info.warnings.append(
            f"{len(valid)} Data Pipeline manifests under {loc.uri}; reading the newest, "
            f"{chosen[0].rel} (others: {', '.join(r.rel for r, _ in valid[:-1])})")
    elif valid:
        chosen = valid[0]
    if chosen is None:
        files = data_files(loc, None)
        info.warnings.append(
            f"no Data Pipeline manifest: reading all {len(files)} data file"
            f"{'s' if len(files) != 1 else ''} found under {loc.uri}")
        return [DataFile(r) for r in files]
    return _from_manifest(loc, chosen[0], chosen[1], info)


def _from_manifest(loc: Location, mref: FileRef, doc: dict, info: DumpInfo) -> list[DataFile]:
    if doc.get("name") != "DynamoDB-export":
        info.warnings.append(f"{mref.uri}: manifest name is {doc.get('name')!r}, "
                             "not 'DynamoDB-export'")
    mdir = posixpath.dirname(mref.rel)
    by_rel = {r.rel: r for r in loc.list()}
    out: list[DataFile] = []
    seen: set[str] = set()
    for i, entry in enumerate(doc["entries"]):
        if type(entry) is not dict or type(entry.get("url")) is not str:
            raise DumpError(f"{mref.uri}: entry {i + 1} has no url")
        url = entry["url"]
        mandatory = entry.get("mandatory", True) is not False
        ref = _resolve_entry(url, loc, mdir, by_rel)
        if ref is None:
            if mandatory:
                raise DumpError(f"{mref.uri} lists {url} as mandatory, but it is missing from "
                                f"{loc.uri}", title="Missing dump file")
            info.warnings.append(f"{mref.uri} lists {url} (not mandatory), which is missing")
            continue
        if ref.rel in seen:
            info.warnings.append(f"{mref.uri} lists {url} twice; read once")
            continue
        seen.add(ref.rel)
        out.append(DataFile(ref))
    unlisted = [r for r in loc.list()
                if posixpath.dirname(r.rel) == mdir and is_data_name(r.rel) and r.rel not in seen]
    if unlisted:
        info.warnings.append(
            f"{len(unlisted)} file{'s' if len(unlisted) > 1 else ''} next to the manifest not "
            f"listed in it, ignored: " + ", ".join(r.rel for r in unlisted[:5])
            + ("…" if len(unlisted) > 5 else ""))
    if not out:
        raise DumpError(f"{mref.uri} lists no data file that exists")
    return out


def _resolve_entry(url: str, loc: Location, mdir: str, by_rel: dict[str, FileRef]) -> FileRef | None:
    if isinstance(loc, S3Location) and url.startswith("s3://"):
        bucket, _, key = url[5:].partition("/")
        pfx = f"{loc.root}/" if loc.root else ""
        if bucket == loc.bucket and key.startswith(pfx):
            ref = by_rel.get(key[len(pfx):])
            if ref is not None:
                return ref
    name = posixpath.basename(url.rstrip("/"))
    if not name:
        return None
    return by_rel.get(posixpath.join(mdir, name) if mdir else name)
