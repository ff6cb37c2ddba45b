"""The managed bulk path: transformed items -> gzipped DynamoDB JSON in S3 -> ``ImportTable``.

``keyshift restore --via-import s3://bucket/prefix`` for tables of hundreds of GB: ImportTable
consumes no write capacity, but it only creates *new* tables and two lines with the same key
overwrite each other in random order without error. So, in one streamed pass over the planned dump
(constant memory):

1. every line is read again with :func:`~keyshift.core.dumps.open_dump` (unreadable lines were
   quarantined at plan time: counted here as skipped, kind ``unreadable``);
2. :func:`~keyshift.core.kernel.transform.transform` rewrites each item with the keymap; ``Skip`` outcomes
   are counted by kind (``dropped`` separately, as ``dropped_by_decision``);
3. the key checks ImportTable would otherwise fail on are repeated (sort key type and length, item
   size after the legacy attribute is added);
4. duplicates of the new *full* key are detected in an on-disk SQLite set of key hashes (the
   workspace directory; memory stays bounded whatever the table size) and skipped with kind
   ``duplicate-key``: the first line in dump order is written, the others are counted, so nothing
   is lost silently;
5. the Put items go to ``<prefix>/keyshift-<keymap version>/part-NNNNN.json.gz`` as
   ``{"Item": {...}}`` lines, at most ``items_per_object`` per object, each object streamed to S3
   with a multipart upload (memory bounded by :data:`PART_BYTES`, not by the object size);

then ``ImportTable`` is called, ``DescribeImport`` polled to a final status, and once the table is
ACTIVE its NEW_AND_OLD_IMAGES stream is enabled (ImportTable creates tables without one; stream
sync and reverse sync need it). The run is recorded in the workspace ``runs`` table (kind
``import``) and the audit log (``restore.import``).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from ..dumps import open_dump
from ..errors import KeyshiftError
from ..kernel.items import MAX_ITEM_BYTES, MAX_SORT_KEY_BYTES, item_size, key_problem, utf8_len
from .tables import (
    TableError,
    enable_stream,
    table_exists,
    target_key_schema,
    wait_active,
)
from ..kernel.keymap import Keymap, sort_key_json
from ..kernel.transform import KeyNames, Put, transform
from ..store import runs
from ..store.workspace import Workspace

__all__ = [
    "MAX_IMPORT_OBJECTS",
    "PART_BYTES",
    "ImportCancelled",
    "ImportFailed",
    "ImportResult",
    "import_via_s3",
    "object_prefix",
]

log = logging.getLogger(__name__)

#: Multipart part size: the compressed bytes buffered in memory per object being written.
#: S3 requires at least 5 MiB for every part but the last.
PART_BYTES = 8 * 1024 * 1024
#: ImportTable's quota of S3 objects per import.
MAX_IMPORT_OBJECTS = 50_000
#: Final ImportStatus values.
FINAL_STATUSES = ("COMPLETED", "FAILED", "CANCELLED")
#: gzip level: ImportTable bills uncompressed bytes, so favour throughput over ratio.
GZIP_LEVEL = 1
#: Lines between progress reports / cancel checks, and between commits of the key set.
REPORT_EVERY = 5000


class ImportCancelled(KeyshiftError):
    """The operator cancelled while the S3 objects were being written (no import was started)."""

    title = "Import cancelled"


class ImportFailed(KeyshiftError):
    """ImportTable could not be started, or did not finish in time."""

    title = "Import failed"


@dataclass
class ImportResult:
    """What one ``restore --via-import`` did (also the run's summary, via :meth:`to_dict`).

    ``written_objects``/``items_written``: what went to S3. ``skipped`` counts every dump line not
    written (``skip_reasons`` by kind, ``dropped`` included), ``dropped_by_decision`` those dropped
    by the keymap. ``imported``/``errored``/``processed``: DescribeImport's counts. ``status`` is
    the final ImportStatus (``IN_PROGRESS`` when the caller stopped waiting with ``cancel``).
    """

    written_objects: int
    items_written: int
    skipped: int
    dropped_by_decision: int
    skip_reasons: dict[str, int]
    import_arn: str | None
    status: str
    imported: int | None
    errored: int | None
    processed: int | None
    keymap: str
    seconds: float
    prefix: str
    lines: int = 0
    failure: str | None = None
    stream_enabled: bool = False
    table: str = ""
    run_id: int | None = None
    stale_objects_removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- S3 ------------------------------------------------------------------------------------------

def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise KeyshiftError(f"import prefix must be an s3:// location, got {uri!r}",
                            title="Invalid import prefix")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise KeyshiftError(f"import prefix {uri!r} names no bucket", title="Invalid import prefix")
    return bucket, key.strip("/")


def object_prefix(prefix_uri: str, keymap_version: str) -> tuple[str, str]:
    """(bucket, key prefix ending in ``/``) where the objects for this keymap go."""
    bucket, key = _split_s3(prefix_uri)
    sub = f"keyshift-{keymap_version}/"
    return bucket, f"{key}/{sub}" if key else sub


class _ObjectWriter:
    """One gzipped S3 object, streamed: compressed bytes are uploaded in parts of
    :data:`PART_BYTES`; an object that stays under one part is sent with a single PutObject."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.compressed = 0
        self.lines = 0
        self.gz = gzip.GzipFile(fileobj=self, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)

    # file-like sink for GzipFile
    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:  # GzipFile may call it
        pass

    def add(self, line: bytes) -> None:
        self.gz.write(line)
        self.lines += 1
        if len(self.buffer) >= PART_BYTES:
            self._upload_part()

    def _upload_part(self) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/json",
                ContentEncoding="gzip")["UploadId"]
        number = len(self.parts) + 1
        body = bytes(self.buffer)
        self.buffer.clear()
        etag = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                   PartNumber=number, Body=body)["ETag"]
        self.parts.append({"ETag": etag, "PartNumber": number})
        self.compressed += len(body)

    def close(self) -> int:
        """Finish the object; returns its compressed size."""
        self.gz.close()
        if self.upload_id is None:
            body = bytes(self.buffer)
            self.buffer.clear()
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body,
                               ContentType="application/json", ContentEncoding="gzip")
            self.compressed += len(body)
        else:
            if self.buffer:
                self._upload_part()
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": self.parts})
        return self.compressed

    def abort(self) -> None:
        """Drop the object: a started multipart upload is aborted (S3 would bill its parts)."""
        self.gz.close()
        self.buffer.clear()
        if self.upload_id is not None:
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            except (BotoCoreError, ClientError) as exc:  # pragma: no cover - best effort, say so
                log.warning("could not abort multipart upload %s of s3://%s/%s: %s",
                            self.upload_id, self.bucket, self.key, exc)


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", ()))
    return keys


# -- duplicate keys ----------------------------------------------------------------------------

class _KeySet:
    """An on-disk set of full-key hashes (BLAKE2b-128) in the workspace directory.

    ``add`` says whether the key is new. A private SQLite file rather than the workspace database,
    so the key set never holds the workspace's write lock; it is deleted when closed.
    """

    def __init__(self, directory: os.PathLike[str] | str) -> None:
        self.path = os.path.join(os.fspath(directory), f".import-keys-{uuid.uuid4().hex}.sqlite")
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache at most
        self.conn.execute("CREATE TABLE keys (h BLOB PRIMARY KEY) WITHOUT ROWID")
        self.conn.execute("BEGIN")
        self.pending = 0

    def add(self, new_id: str, sk_json: str | None) -> bool:
        text = new_id if sk_json is None else f"{new_id}\x00{sk_json}"
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        cur = self.conn.execute("INSERT OR IGNORE INTO keys(h) VALUES (?)", (digest,))
        self.pending += 1
        if self.pending >= 50_000:
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN")
            self.pending = 0
        return cur.rowcount == 1

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.remove(self.path + suffix)
                except FileNotFoundError:
                    pass


# -- runs --------------------------------------------------------------------------------------

def _start_run(ws: Workspace, operator: str, keymap: str, params: dict[str, Any]) -> int:
    with ws.transaction() as conn:
        run_id = runs.start(conn, "import", operator=operator, keymap=keymap, params=params)
        ws.audit(operator, "restore.import.start", {"run_id": run_id, "keymap": keymap, **params})
        return run_id


def _finish_run(ws: Workspace, run_id: int, state: str, result: ImportResult, operator: str) -> None:
    """Record how the import ended, and its audit entry, in one transaction."""
    with ws.transaction() as conn:
        runs.finish(conn, run_id, state, result.to_dict())
        ws.audit(operator, "restore.import", {"run_id": run_id, "state": state, **_audit_details(result)})


# -- the import --------------------------------------------------------------------------------

def import_via_s3(
    ws: Workspace,
    spec: Any,
    keymap: Keymap,
    *,
    dump_uri: str,
    fmt: str = "auto",
    s3: Any,
    ddb: Any,
    prefix_uri: str,
    sort_key_type: str | None = None,
    items_per_object: int = 100_000,
    progress: Callable[[dict], None] | None = None,
    cancel: threading.Event | None = None,
    poll_seconds: float = 2.0,
    timeout: float = 3600,
    operator: str = "unknown",
    allow_manifest_mismatch: bool = False,
) -> ImportResult:
    """Write the transformed dump to ``prefix_uri`` and ImportTable it into ``spec.target.table``.

    Raises :class:`TableError` when the target table exists already (ImportTable only creates
    tables), :class:`ImportCancelled` when ``cancel`` is set while objects are written,
    :class:`ImportFailed` when ImportTable cannot start or does not finish within ``timeout``.
    ``cancel`` set while the import runs stops the *waiting* (there is no API to cancel an
    import): the result then has status ``IN_PROGRESS`` and the run is recorded ``paused``.
    A FAILED or CANCELLED import is returned (``failure`` says why), not raised.
    """
    started = time.monotonic()
    if items_per_object < 1:
        raise KeyshiftError("items_per_object must be at least 1")
    table = spec.target.table
    if table_exists(ddb, table):
        raise TableError(f"target table {table!r} exists already: ImportTable only creates new tables"
                         " (delete it, or restore into it without --via-import)")
    schema = target_key_schema(spec, sort_key_type)
    names = KeyNames.from_spec(spec)
    sk_name, sk_type = schema.sk, schema.sk_type
    bucket, key_prefix = object_prefix(prefix_uri, keymap.version)
    prefix = f"s3://{bucket}/{key_prefix}"
    existing = set(_list_keys(s3, bucket, key_prefix))  # also fails early on a missing bucket
    foreign = sorted(k for k in existing if not _is_part_key(key_prefix, k))
    if foreign:
        raise KeyshiftError(
            f"{prefix} holds {len(foreign)} object(s) keyshift did not write (e.g. {foreign[0]!r});"
            " ImportTable would import them too: choose another prefix or remove them",
            title="Import prefix not empty")

    params = {"dump_uri": dump_uri, "format": fmt, "prefix": prefix, "table": table,
              "sort_key_type": sk_type, "items_per_object": items_per_object}
    run_id = _start_run(ws, operator, keymap.version, params)

    result = ImportResult(
        written_objects=0, items_written=0, skipped=0, dropped_by_decision=0, skip_reasons={},
        import_arn=None, status="WRITING", imported=None, errored=None, processed=None,
        keymap=keymap.version, seconds=0.0, prefix=prefix, table=table, run_id=run_id,
    )
    try:
        _write_objects(ws, result, keymap, names, dump_uri=dump_uri, fmt=fmt, s3=s3, bucket=bucket,
                       key_prefix=key_prefix, sk_name=sk_name, sk_type=sk_type,
                       items_per_object=items_per_object, progress=progress, cancel=cancel,
                       allow_manifest_mismatch=allow_manifest_mismatch)
        written = {_part_key(key_prefix, i) for i in range(result.written_objects)}
        stale = sorted(existing - written)
        for key in stale:  # parts of an earlier, larger run under this keymap's prefix
            s3.delete_object(Bucket=bucket, Key=key)
        result.stale_objects_removed = len(stale)
        if result.written_objects == 0:
            raise ImportFailed(f"nothing to import: all {result.lines} dump line(s) were skipped"
                               f" ({_reasons_text(result.skip_reasons)})")
        _run_import(result, ddb, schema, table=table, bucket=bucket, key_prefix=key_prefix,
                    progress=progress, cancel=cancel, poll_seconds=poll_seconds, timeout=timeout,
                    started=started)
    except BaseException as exc:
        result.seconds = round(time.monotonic() - started, 3)
        if result.failure is None:
            result.failure = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        state = "cancelled" if isinstance(exc, ImportCancelled) else "failed"
        _finish_run(ws, run_id, state, result, operator)
        raise
    result.seconds = round(time.monotonic() - started, 3)
    if result.status == "COMPLETED":
        state = "complete"
    elif result.status in FINAL_STATUSES:
        state = "cancelled" if result.status == "CANCELLED" else "failed"
    else:
        state = "paused"  # stopped waiting; the import goes on in DynamoDB
    _finish_run(ws, run_id, state, result, operator)  # "paused" stays unfinished: ImportTable still runs
    return result


def _audit_details(r: ImportResult) -> dict[str, Any]:
    return {"keymap": r.keymap, "table": r.table, "prefix": r.prefix, "import_arn": r.import_arn,
            "status": r.status, "objects": r.written_objects, "items_written": r.items_written,
            "skipped": r.skipped, "skip_reasons": r.skip_reasons, "imported": r.imported,
            "errored": r.errored, "failure": r.failure}


def _reasons_text(reasons: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(reasons.items())) or "none"


def _part_key(key_prefix: str, index: int) -> str:
    return f"{key_prefix}part-{index:05d}.json.gz"


def _is_part_key(key_prefix: str, key: str) -> bool:
    name = key[len(key_prefix):]
    return name.startswith("part-") and name.endswith(".json.gz") and "/" not in name


def _write_objects(ws: Workspace, result: ImportResult, keymap: Keymap, names: KeyNames, *,
                   dump_uri: str, fmt: str, s3: Any, bucket: str, key_prefix: str,
                   sk_name: str | None, sk_type: str | None, items_per_object: int,
                   progress: Callable[[dict], None] | None, cancel: threading.Event | None,
                   allow_manifest_mismatch: bool) -> None:
    reader = open_dump(dump_uri, fmt, s3=s3, allow_manifest_mismatch=allow_manifest_mismatch)
    bytes_total = reader.info.bytes_total
    reasons = result.skip_reasons
    target_pk = names.target_pk
    dumps = orjson.dumps
    # What transform can add to an item: the new key and the legacy attribute (each <= 2048 bytes).
    growth = len(target_pk) + len(names.legacy or "") + 2 * 2048 + 64
    keys = _KeySet(ws.path)
    writer: _ObjectWriter | None = None
    lines = 0

    def skip(kind: str) -> None:
        reasons[kind] = reasons.get(kind, 0) + 1

    def report() -> None:
        if progress is not None:
            progress({"phase": "write", "lines": lines, "items_written": result.items_written,
                      "objects": result.written_objects + (1 if writer is not None else 0),
                      "skipped": sum(reasons.values()), "bytes_read": reader.bytes_read,
                      "bytes_total": bytes_total})

    try:
        for entry in reader:
            lines += 1
            if lines % REPORT_EVERY == 0:
                if cancel is not None and cancel.is_set():
                    raise ImportCancelled(f"cancelled after {lines} dump line(s); no import was started"
                                          f" (objects under s3://{bucket}/{key_prefix} are incomplete)")
                report()
            item = entry.item
            if item is None:
                skip("unreadable")
                continue
            outcome = transform(item, keymap, names)
            if type(outcome) is not Put:
                skip(outcome.kind or "other")
                continue
            new = outcome.item
            sk_json = None
            if sk_name is not None:
                value = new.get(sk_name)
                problem = key_problem(new, sk_name, role="sort key")
                if problem is None:
                    ((kind, payload),) = value.items()
                    if kind != sk_type:
                        problem = f"sort key is {kind}, the new table's is {sk_type}"
                    elif kind == "S" and not 0 < utf8_len(payload) <= MAX_SORT_KEY_BYTES:
                        problem = "sort key is empty or too long"
                if problem is not None:
                    skip("bad-key")
                    continue
                sk_json = sort_key_json(value)
            # JSON text is never smaller than the item: only long lines can be over the limit.
            if (entry.raw_size == 0 or entry.raw_size + growth > MAX_ITEM_BYTES) and item_size(new) > MAX_ITEM_BYTES:
                skip("too-large")
                continue
            if not keys.add(new[target_pk]["S"], sk_json):
                skip("duplicate-key")
                continue
            if writer is None:
                if result.written_objects >= MAX_IMPORT_OBJECTS:
                    raise ImportFailed(
                        f"more than {MAX_IMPORT_OBJECTS} objects (ImportTable's quota per import):"
                        f" raise items_per_object above {items_per_object}")
                writer = _ObjectWriter(s3, bucket, _part_key(key_prefix, result.written_objects))
            writer.add(dumps({"Item": new}, option=orjson.OPT_APPEND_NEWLINE))
            result.items_written += 1
            if writer.lines >= items_per_object:
                writer.close()
                writer = None
                result.written_objects += 1
        if writer is not None:
            writer.close()
            writer = None
            result.written_objects += 1
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        keys.close()
        result.lines = lines
        result.skipped = sum(reasons.values())
        result.dropped_by_decision = reasons.get("dropped", 0)
    report()


def _run_import(result: ImportResult, ddb: Any, schema: Any, *, table: str, bucket: str,
                key_prefix: str, progress: Callable[[dict], None] | None,
                cancel: threading.Event | None, poll_seconds: float, timeout: float,
                started: float) -> None:
    try:
        desc = ddb.import_table(
            S3BucketSource={"S3Bucket": bucket, "S3KeyPrefix": key_prefix},
            InputFormat="DYNAMODB_JSON",
            InputCompressionType="GZIP",
            TableCreationParameters={"TableName": table, "BillingMode": "PAY_PER_REQUEST",
                                     **schema.definition()},
        )["ImportTableDescription"]
    except Exception as exc:
        raise ImportFailed(f"ImportTable refused s3://{bucket}/{key_prefix} -> {table!r}: {exc}") from exc
    result.import_arn = desc["ImportArn"]
    deadline = time.monotonic() + timeout
    while True:
        _take_counts(result, desc)
        if progress is not None:
            progress({"phase": "import", "status": result.status, "processed": result.processed,
                      "imported": result.imported, "errored": result.errored,
                      "items_written": result.items_written, "import_arn": result.import_arn})
        if result.status in FINAL_STATUSES:
            break
        if cancel is not None and cancel.is_set():
            result.failure = ("stopped waiting; the import goes on in DynamoDB"
                              f" (aws dynamodb describe-import --import-arn {result.import_arn})")
            return
        if time.monotonic() > deadline:
            result.failure = f"import not finished after {timeout:.0f} s"
            raise ImportFailed(f"import {result.import_arn} not finished after {timeout:.0f} s;"
                               " it goes on in DynamoDB: check it with describe-import")
        time.sleep(poll_seconds)
        desc = ddb.describe_import(ImportArn=result.import_arn)["ImportTableDescription"]
    if result.status != "COMPLETED":
        code, message = desc.get("FailureCode"), desc.get("FailureMessage")
        result.failure = f"{result.status}: {code or ''} {message or ''}".strip()
        return
    if progress is not None:
        progress({"phase": "stream", "status": result.status, "table": table})
    remaining = max(30.0, timeout - (time.monotonic() - started))
    wait_active(ddb, table, timeout=remaining)
    enable_stream(ddb, table)
    result.stream_enabled = True


def _take_counts(result: ImportResult, desc: dict[str, Any]) -> None:
    result.status = desc.get("ImportStatus", "UNKNOWN")
    result.imported = desc.get("ImportedItemCount")
    result.errored = desc.get("ErrorCount")
    result.processed = desc.get("ProcessedItemCount")
