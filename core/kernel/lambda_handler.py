"""The Lambda handler: a DynamoDB Streams event source mapping's batches, through the keymap.

Deployed as ``keyshift.core.lambda_handler.handler`` (a re-export of :func:`handler`; docs/deploy.md)
with ``ReportBatchItemFailures``. Configured only by the environment:

- ``KEYSHIFT_KEYMAP_URI`` (required): ``s3://bucket/key`` of the artifact ``keymap build --out``
  wrote. Its ``migration`` section names the tables, key names, hold and echo tables.
- ``KEYSHIFT_DIRECTION``: ``forward`` (default: the old table's stream into the new table) or
  ``reverse`` (the new table's stream back into the old one, through the inverse keymap).

The keymap is cached in module state across invocations; each invocation asks S3 for the
object's ETag (``HeadObject``) and reloads it when it changed. A document of a format this
keyshift does not know is refused: logged, then raised, so the batch fails whole and Lambda
retries it (until the mapping's MaximumRetryAttempts / MaximumRecordAgeInSeconds send it to the
on-failure destination) — never applied with a mapping it cannot read.

Per batch: records in ``SequenceNumber`` order (as integers); each becomes a write (the same
:func:`record_outcome` as the local replay; reverse: :func:`reverse_outcome`; a key several raw
identifiers share settled from the old table's state, :mod:`.merged`),
an echo of the other direction's write (skipped), a held record (raw identifier not in the
keymap, into the hold table) or a counted skip. Writes are reduced to the last one per key (whole
images and deletes: the same table), sent 25 a call with unprocessed items retried under a
deadline, and when a key's write fails, the batch reports the first record of that key, so
Lambda retries from there; the other keys' writes have been made, and making them again on the
retry changes nothing. Standard library and boto3 only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from .batch_writer import install_json_body, key_text, write_all
from .echo import item_digest, key_json
from .echo_dynamodb import DynamoDBEchoLog
from .errors import KeyshiftError
from .keymap import Keymap, KeymapFormatError, keymap_from_document, split_s3_uri
from .merged import is_shared, settle_shared_key
from .reverse_records import old_key, reverse_outcome
from .stream_records import record_outcome
from .transform import KeyNames, Put, Skip

__all__ = ["ENV_DIRECTION", "ENV_KEYMAP_URI", "Handler", "LambdaConfigError", "current", "handler", "hold_item", "reset"]

ENV_KEYMAP_URI = "KEYSHIFT_KEYMAP_URI"
ENV_DIRECTION = "KEYSHIFT_DIRECTION"
DIRECTIONS = ("forward", "reverse")
#: Seconds kept back from the invocation's remaining time when retrying unprocessed writes, so
#: the function returns its report before Lambda's timeout kills it.
RESERVE_S = 3.0
#: How many times a shared key is settled again when the old table changed under its write.
SETTLE_ROUNDS = 5
#: The write deadline when there is no Lambda context (tests, benchmarks).
DEFAULT_DEADLINE_S = 60.0

log = logging.getLogger("keyshift.lambda")
if log.level == logging.NOTSET:
    log.setLevel(logging.INFO)


class LambdaConfigError(KeyshiftError):
    """The function's environment or the keymap's migration section cannot drive a replay."""

    title = "Lambda handler misconfigured"


def _log(level: int, event: str, **fields: Any) -> None:
    """One line of JSON per record: CloudWatch Logs Insights can filter on its fields."""
    log.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False, default=str, sort_keys=True))


def _parse_uri(uri: str | None) -> tuple[str, str]:
    if not uri:
        raise LambdaConfigError(f"{ENV_KEYMAP_URI} is not set: give the s3://bucket/key that"
                                " `keyshift keymap build --out` wrote")
    location = split_s3_uri(uri)
    if location is None:
        raise LambdaConfigError(f"{ENV_KEYMAP_URI}={uri!r} is not s3://bucket/key")
    return location


@dataclass(frozen=True)
class Loaded:
    """One version of the keymap and what the handler derives from its migration section."""

    etag: str
    keymap: Keymap
    names: KeyNames
    source_table: str
    target_table: str
    hold_table: str | None
    echo_table: str | None
    new_identifiers: str
    has_shared: bool = False  # several raw identifiers map to one new id somewhere (kernel/merged)


def _loaded(etag: str, keymap: Keymap, uri: str) -> Loaded:
    migration = keymap.migration
    try:
        names = KeyNames.from_migration(migration)
    except ValueError as exc:
        raise LambdaConfigError(f"keymap {uri} (version {keymap.version}): {exc}") from None
    assert isinstance(migration, dict)
    tables = {k: migration.get(k) for k in ("source_table", "target_table")}
    missing = [k for k, v in tables.items() if not isinstance(v, str) or not v]
    if missing:
        raise LambdaConfigError(f"keymap {uri} (version {keymap.version}): its migration section has no"
                                f" {', '.join(missing)}: rebuild it with `keyshift keymap build --out`")
    return Loaded(etag, keymap, names, tables["source_table"], tables["target_table"],
                  migration.get("hold_table") or None, migration.get("echo_table") or None,
                  migration.get("new_identifiers") or "hold",
                  any(len(raws) > 1 for raws in keymap.reverse.values()))


@dataclass
class Step:
    """What one record does: ``kind`` write | echo | hold | skip."""

    seq: int
    record: dict[str, Any]
    kind: str
    key: str | None = None          # key_text of the key written (write, echo)
    request: dict[str, Any] | None = None
    written: dict[str, Any] | None = None  # the item put (None: a delete) -> the echo log's digest
    key_item: dict[str, Any] | None = None  # the key written, for the echo log's key_json
    raw: str | None = None          # held: the identifier the keymap does not know
    reason: str = ""
    skip_kind: str = ""
    settled: bool = False           # a shared key's write, taken from the old table's state


@dataclass
class Counts:
    """What one invocation did (logged as one line)."""

    records: int = 0
    puts: int = 0
    deletes: int = 0
    echoes: int = 0
    held: int = 0
    superseded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed_keys: int = 0


def hold_item(step: Step, direction: str) -> dict[str, Any]:
    """The hold table's item for a record whose identifier the keymap does not map (schema in
    docs/deploy.md: ``raw`` + ``seq`` key, so a retried record overwrites itself)."""
    record = step.record
    return {
        "raw": {"S": step.raw or ""},
        "seq": {"S": str(step.seq).zfill(40)},
        "direction": {"S": direction},
        "event": {"S": str(record.get("eventName"))},
        "record": {"S": json.dumps(record.get("dynamodb") or {}, ensure_ascii=False, separators=(",", ":"),
                                   default=str)},
        "source_arn": {"S": str(record.get("eventSourceARN") or "")},
        "held_at": {"S": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def _string(value: Any) -> str | None:
    inner = value.get("S") if type(value) is dict and len(value) == 1 else None
    return inner if type(inner) is str else None


def _table_of_arn(arn: str) -> str | None:
    # arn:aws:dynamodb:region:account:table/NAME/stream/LABEL
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("table/"):
        return None
    return parts[5].split("/")[1]


class Handler:
    """One function's configuration, clients and cached keymap (one per container)."""

    def __init__(self, uri: str | None, direction: str | None, *, session: Any = None) -> None:
        self.uri = uri or ""
        self.bucket, self.key = _parse_uri(uri)
        self.direction = direction or "forward"
        if self.direction not in DIRECTIONS:
            raise LambdaConfigError(f"{ENV_DIRECTION}={direction!r}: expected forward or reverse")
        import boto3
        from botocore.config import Config

        self.session = session or boto3.session.Session()
        # Throttling errors: botocore's adaptive mode backs off and rate-limits the client.
        retries = {"mode": "adaptive", "max_attempts": 10}
        self.s3 = self.session.client("s3", config=Config(retries=retries))
        # Stream images are already valid wire JSON; the client neither re-validates nor
        # re-serializes them (install_json_body).
        self.ddb = install_json_body(self.session.client(
            "dynamodb", config=Config(retries=retries, parameter_validation=False)))
        self.loaded: Loaded | None = None
        self._echo: DynamoDBEchoLog | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Handler:
        """The handler configured by ``KEYSHIFT_KEYMAP_URI`` and ``KEYSHIFT_DIRECTION``."""
        return cls(environ.get(ENV_KEYMAP_URI), environ.get(ENV_DIRECTION))

    # -- the keymap ------------------------------------------------------------------------------

    def load(self) -> Loaded:
        """The keymap in force: the cached one while the object's ETag is unchanged."""
        head = self.s3.head_object(Bucket=self.bucket, Key=self.key)
        etag = head.get("ETag", "")
        if self.loaded is not None and self.loaded.etag == etag:
            return self.loaded
        got = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        body = got["Body"].read()
        try:
            doc = json.loads(body)
            keymap = keymap_from_document(doc)
            loaded = _loaded(got.get("ETag", etag), keymap, self.uri)
        except (ValueError, KeymapFormatError, LambdaConfigError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            _log(logging.ERROR, "keymap-refused", uri=self.uri, etag=etag, error=message,
                 cached=self.loaded.keymap.version if self.loaded else None)
            if isinstance(exc, KeyshiftError):
                raise
            raise KeymapFormatError(f"keymap {self.uri} is not JSON: {exc}") from None
        _log(logging.INFO, "keymap-loaded", uri=self.uri, etag=loaded.etag, version=keymap.version,
             previous=self.loaded.keymap.version if self.loaded else None, direction=self.direction)
        self.loaded = loaded
        self._echo = DynamoDBEchoLog(self.ddb, loaded.echo_table) if loaded.echo_table else None
        return loaded

    # -- one batch -------------------------------------------------------------------------------

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        started = time.monotonic()
        loaded = self.load()
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list):
            raise LambdaConfigError("the event has no Records list: is this function on a DynamoDB stream?")
        deadline = self._deadline(context)
        counts = Counts(records=len(records))
        steps = self._steps(records, loaded, counts)
        failed_seq = self._apply(steps, loaded, counts, deadline)
        failures = [] if failed_seq is None else [{"itemIdentifier": failed_seq}]
        _log(logging.WARNING if failures else logging.INFO, "batch", direction=self.direction,
             keymap=loaded.keymap.version, records=counts.records, puts=counts.puts, deletes=counts.deletes,
             echoes=counts.echoes, held=counts.held, superseded=counts.superseded, skipped=counts.skipped,
             failed_keys=counts.failed_keys, retry_from=failed_seq,
             ms=round((time.monotonic() - started) * 1000, 1))
        return {"batchItemFailures": failures}

    @staticmethod
    def _deadline(context: Any) -> float:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        budget = DEFAULT_DEADLINE_S if remaining is None else max(0.5, remaining() / 1000 - RESERVE_S)
        return time.monotonic() + budget

    def _stream_table(self, loaded: Loaded) -> str:
        return loaded.source_table if self.direction == "forward" else loaded.target_table

    def _write_table(self, loaded: Loaded) -> str:
        return loaded.target_table if self.direction == "forward" else loaded.source_table

    def _steps(self, records: list[dict[str, Any]], loaded: Loaded, counts: Counts) -> list[Step]:
        """Every record's step, in ``SequenceNumber`` order (Lambda delivers a shard in order;
        sorted anyway, as integers: their text has no fixed width)."""
        expected = self._stream_table(loaded)
        ordered = []
        for record in records:
            body = record.get("dynamodb") or {}
            try:
                seq = int(body["SequenceNumber"])
            except (KeyError, TypeError, ValueError):
                raise LambdaConfigError(f"stream record {record.get('eventID')!r} has no numeric"
                                        " SequenceNumber") from None
            arn = record.get("eventSourceARN")
            if arn and _table_of_arn(arn) not in (None, expected):
                raise LambdaConfigError(
                    f"record from {arn}, but a {self.direction} handler reads the stream of {expected!r}"
                    " (keymap migration section): check the event source mapping")
            ordered.append((seq, record))
        ordered.sort(key=lambda pair: pair[0])
        if self.direction == "forward":
            return [self._forward_step(seq, record, loaded, counts) for seq, record in ordered]
        return [step for seq, record in ordered for step in self._reverse_step(seq, record, loaded, counts)]

    def _forward_step(self, seq: int, record: dict[str, Any], loaded: Loaded, counts: Counts) -> Step:
        names = loaded.names
        outcome = record_outcome(record, loaded.keymap, names)
        if type(outcome) is Skip:
            if outcome.kind == "unresolved":
                body = record.get("dynamodb") or {}
                raw = _string((body.get("NewImage") or body.get("Keys") or {}).get(names.source_pk))
                return Step(seq, record, "hold", raw=raw, reason=outcome.reason, skip_kind="unresolved")
            return Step(seq, record, "skip", reason=outcome.reason, skip_kind=outcome.kind)
        attrs = self._key_attrs(loaded)
        if type(outcome) is Put:
            item = outcome.item
            return Step(seq, record, "write", key_text(item, attrs), {"PutRequest": {"Item": item}}, item,
                        {a: item[a] for a in attrs})
        return Step(seq, record, "write", key_text(outcome.key, attrs), {"DeleteRequest": {"Key": outcome.key}},
                    None, outcome.key)

    def _reverse_step(self, seq: int, record: dict[str, Any], loaded: Loaded, counts: Counts) -> list[Step]:
        """The record's writes into the old table: the same :func:`reverse_outcome` as the local
        reverse replay (one spelling per new key: a put or delete under it, then deletes of the
        same key under the other merged spellings)."""
        names = loaded.names
        outcome = reverse_outcome(record, loaded.keymap, names)
        if type(outcome) is Skip:
            if outcome.kind == "no-raw":
                # An entity created on the new table after the flip has no old spelling: kept in the
                # hold table (under its new id) rather than lost, for an operator to decide.
                body = record.get("dynamodb") or {}
                image = body.get("NewImage") or body.get("Keys") or {}
                return [Step(seq, record, "hold", raw=_string(image.get(names.target_pk)), reason=outcome.reason,
                             skip_kind="no-raw")]
            return [Step(seq, record, "skip", reason=outcome.reason, skip_kind=outcome.kind)]
        attrs = self._key_attrs(loaded)
        steps = []
        for write in outcome:
            key = old_key(write, names)
            if type(write) is Put:
                steps.append(Step(seq, record, "write", key_text(write.item, attrs),
                                  {"PutRequest": {"Item": write.item}}, write.item, key))
            else:
                steps.append(Step(seq, record, "write", key_text(key, attrs), {"DeleteRequest": {"Key": key}},
                                  None, key))
        return steps

    def _apply(self, steps: list[Step], loaded: Loaded, counts: Counts, deadline: float) -> str | None:
        """Echo checks, holds and writes; the SequenceNumber Lambda must retry from (or None)."""
        echo = self._echo
        stream_table, write_table = self._stream_table(loaded), self._write_table(loaded)
        first_of: dict[str, int] = {}   # group (key) -> the first record's sequence number
        last: dict[str, Step] = {}      # key -> its last write or echo in this batch
        holds: list[Step] = []
        echo_of: dict[int, bool] = {}  # per record: a reverse record may make several writes
        for step in steps:
            if step.kind == "write":
                if echo is not None and step.seq not in echo_of:
                    echo_of[step.seq] = self._is_echo(echo, stream_table, step, loaded)
                if echo_of.get(step.seq):
                    step.kind = "echo"
                    counts.echoes += 1
                first_of.setdefault(step.key, step.seq)
                if step.key in last:
                    counts.superseded += 1
                last[step.key] = step
            elif step.kind == "hold":
                if loaded.hold_table:
                    holds.append(step)
                    first_of.setdefault("hold#" + (step.raw or ""), step.seq)
                else:
                    counts.skipped[step.skip_kind] = counts.skipped.get(step.skip_kind, 0) + 1
                    _log(logging.WARNING, "unmapped-not-held", seq=str(step.seq), raw=step.raw,
                         reason=step.reason, hint="set [stream] hold_table and rebuild the keymap")
            else:
                counts.skipped[step.skip_kind] = counts.skipped.get(step.skip_kind, 0) + 1
                _log(logging.INFO, "skip", seq=str(step.seq), kind=step.skip_kind, reason=step.reason)
        failed: set[str] = set()
        writes = [s for s in last.values() if s.kind == "write"]  # a key whose last record is an echo: nothing
        if self.direction == "forward" and loaded.has_shared:
            writes = [self._settle(s, loaded) for s in writes]
        if echo is not None and writes:
            failed |= self._note(echo, write_table, writes)
            writes = [s for s in writes if s.key not in failed]
        if writes:
            key_attrs = self._key_attrs(loaded)
            report = write_all(self.ddb, write_table, [(s.key, s.request) for s in writes], key_attrs,
                               deadline=deadline)
            for key, why in report.failed.items():
                _log(logging.ERROR, "write-failed", table=write_table, key=key, reason=why,
                     seq=str(first_of.get(key)))
            failed |= set(report.failed)
            for s in writes:
                if s.key not in report.failed:
                    if "PutRequest" in s.request:
                        counts.puts += 1
                    else:
                        counts.deletes += 1
            failed |= self._settle_again([s for s in writes if s.settled and s.key not in failed], loaded,
                                         write_table, deadline)
        if holds:
            failed |= self._hold(holds, loaded, deadline)
        counts.failed_keys = len(failed)
        if not failed:
            return None
        return str(min(first_of[k] for k in failed))

    def _read_old(self, loaded: Loaded, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.ddb.get_item(TableName=loaded.source_table, Key=key, ConsistentRead=True).get("Item")

    def _settle(self, step: Step, loaded: Loaded) -> Step:
        """A write to a key several raw identifiers share: what the old table's state says now
        (:func:`~keyshift.core.kernel.merged.settle_shared_key`), not what the record says."""
        key = step.key_item or {}
        value = key.get(loaded.names.target_pk)
        new_id = value.get("S") if type(value) is dict else None
        if type(new_id) is not str or not is_shared(loaded.keymap, new_id):
            return step
        out = settle_shared_key(lambda k: self._read_old(loaded, k), loaded.keymap, loaded.names, key)
        step.settled = True
        if type(out) is Put:
            step.request, step.written = {"PutRequest": {"Item": out.item}}, out.item
        else:
            step.request, step.written = {"DeleteRequest": {"Key": key}}, None
        return step

    def _settle_again(self, steps: list[Step], loaded: Loaded, write_table: str, deadline: float) -> set[str]:
        """Shared keys whose old items changed while they were written are written again.

        Handlers of other shards may settle the same key at the same moment; whichever writes last
        reads the old table again afterwards and, if it moved on, writes the newer state, so the
        new table ends at the old table's last state whatever the interleaving."""
        failed: set[str] = set()
        for _ in range(SETTLE_ROUNDS):
            changed = []
            for s in steps:
                before = item_digest(s.written)
                again = self._settle(s, loaded)
                if item_digest(again.written) != before:
                    changed.append(again)
            if not changed:
                return failed
            if self._echo is not None:
                failed |= self._note(self._echo, write_table, changed)
                changed = [s for s in changed if s.key not in failed]
            report = write_all(self.ddb, write_table, [(s.key, s.request) for s in changed], self._key_attrs(loaded),
                               deadline=deadline)
            failed |= set(report.failed)
            steps = [s for s in changed if s.key not in report.failed]
        return failed

    def _key_attrs(self, loaded: Loaded) -> tuple[str, ...]:
        names = loaded.names
        pk = names.target_pk if self.direction == "forward" else names.source_pk
        return (pk,) if names.source_sk is None else (pk, names.source_sk)

    def _is_echo(self, echo: DynamoDBEchoLog, stream_table: str, step: Step, loaded: Loaded) -> bool:
        body = step.record.get("dynamodb") or {}
        image = None if step.record.get("eventName") == "REMOVE" else body.get("NewImage")
        token = f"{step.seq}@{step.record.get('eventSourceARN', '')}"
        return echo.is_echo(self.direction, stream_table, key_json(body.get("Keys") or {}), item_digest(image),
                            token=token)

    def _note(self, echo: DynamoDBEchoLog, write_table: str, writes: list[Step]) -> set[str]:
        """Note each write before making it; a write whose note failed is not made (it fails)."""
        failed = set()
        for s in writes:
            try:
                echo.note(self.direction, write_table, [(key_json(s.key_item), item_digest(s.written))],
                          token=f"{s.seq}@{s.record.get('eventSourceARN', '')}")
            except Exception as exc:
                _log(logging.ERROR, "echo-note-failed", key=s.key, seq=str(s.seq), error=f"{type(exc).__name__}: {exc}")
                failed.add(s.key)
        return failed

    def _hold(self, holds: list[Step], loaded: Loaded, deadline: float) -> set[str]:
        """Write held records to the hold table; the groups (``hold#raw``) whose write failed."""
        requests = []
        group_of = {}
        for s in holds:
            item = hold_item(s, self.direction)
            k = key_text(item, ("raw", "seq"))
            group_of[k] = "hold#" + (s.raw or "")
            requests.append((k, {"PutRequest": {"Item": item}}))
            _log(logging.INFO, "held", seq=str(s.seq), raw=s.raw, reason=s.reason, table=loaded.hold_table)
        report = write_all(self.ddb, loaded.hold_table, requests, ("raw", "seq"), deadline=deadline)
        for key, why in report.failed.items():
            _log(logging.ERROR, "hold-failed", table=loaded.hold_table, key=key, reason=why)
        return {group_of[k] for k in report.failed}


# -- module state: one handler per container, rebuilt only when its configuration changes ---------

_current: Handler | None = None


def current() -> Handler:
    """This container's handler (built from the environment on first use, or when it changed)."""
    global _current
    uri, direction = os.environ.get(ENV_KEYMAP_URI), os.environ.get(ENV_DIRECTION)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    h = _current
    if h is None or (h.uri, h.direction, getattr(h, "_endpoint", None)) != (uri or "", direction or "forward", endpoint):
        try:
            h = Handler(uri, direction)
        except LambdaConfigError as exc:
            _log(logging.ERROR, "config-refused", error=exc.message)
            raise
        h._endpoint = endpoint  # type: ignore[attr-defined]
        _current = h
    return h


def reset() -> None:
    """Forget the cached handler and keymap (tests; a new container)."""
    global _current
    _current = None


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}``."""
    return current()(event, context)
