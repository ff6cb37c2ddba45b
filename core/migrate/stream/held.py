"""Held stream records: records whose raw identifier the keymap does not know, kept until decided.

A customer name typed with a new invisible character after the plan reaches the stream with a
raw identifier no keymap entry names. Skipping it would lose the write; guessing would break the
one-keymap rule. So the record is *held*: stored durably in the workspace (``held_records``, this
module is its only writer) with everything needed to apply it later, and the replay's checkpoint
moves on (the record is safe here, not on a 24-hour stream). An operator decides the identifier
(an ``unmapped`` case, :mod:`keyshift.core.resolve.unmapped`); the next keymap maps it; the next
stream-sync run applies its held records in ``SequenceNumber`` order before reading on.

* A held record is identified by (direction, stream ARN, sequence number): a page replayed after a
  crash, or a record held both locally and by the Lambda handler, is held once.
* Its ``state`` is ``held`` (waiting), ``applied`` or ``dropped`` (the identifier was dropped).
* Records held by the Lambda handler land in the DynamoDB table ``[stream] hold_table`` (partition
  key ``raw``, sort key ``seq``: the sequence number zero-padded to 40 digits); :func:`collect_held`
  imports them and deletes them from that table once the import has committed.
* Which keymaps a replay applied is kept too (``applied_keymaps``), so a later keymap can be
  checked to only *add* identifiers (:func:`keymap_change_problem`) rather than forcing a restore.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...errors import KeyshiftError
from ...kernel.keymap import Keymap
from ...kernel.stream_records import approx_time
from ...store.schema import utcnow
from ...store.workspace import Workspace
from ..batch_write import MAX_BATCH, BatchWriteTimeout, write_batch

__all__ = [
    "SEQ_DIGITS",
    "HeldRecord",
    "HoldTableError",
    "collect_held",
    "counts",
    "hold",
    "held_records",
    "keymap_change_problem",
    "pad_seq",
    "record_raw",
    "remember_keymap",
    "settle",
    "waiting_raws",
    "wire_json",
]

#: Sequence numbers are decimal strings of up to 40 digits; zero-padded they sort as numbers.
SEQ_DIGITS = 40


class HoldTableError(KeyshiftError):
    """The hold table cannot be read or emptied."""

    title = "Hold table"


@dataclass(frozen=True)
class HeldRecord:
    """One held stream record, as the workspace keeps it."""

    id: int
    raw: str
    direction: str
    source_arn: str
    shard: str
    seq: str  # zero-padded
    event: str
    body: dict[str, Any]  # the record's ``dynamodb`` part, wire format (binary as base64 text)
    created_at: float | None
    held_at: str
    origin: str
    state: str

    def stream_record(self) -> dict[str, Any]:
        """The record as :func:`~keyshift.core.kernel.stream_records.record_outcome` takes it."""
        return {"eventName": self.event, "dynamodb": self.body}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (``resolve list --json``'s held records, the audit log)."""
        return {"raw": self.raw, "direction": self.direction, "shard": self.shard,
                "sequence": self.seq.lstrip("0") or "0", "event": self.event, "created_at": self.created_at,
                "held_at": self.held_at, "origin": self.origin, "state": self.state}


def pad_seq(seq: str) -> str:
    """A sequence number zero-padded to :data:`SEQ_DIGITS` digits (text order = numeric order)."""
    return str(seq).zfill(SEQ_DIGITS)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        # boto3 gives binary as bytes; wire format (dumps, Lambda events) has base64 text.
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "timestamp"):
        return value.timestamp()  # ApproximateCreationDateTime
    raise TypeError(f"cannot keep {type(value).__name__} in a held record")


def wire_json(body: dict[str, Any]) -> str:
    """A record's ``dynamodb`` part as JSON in wire format (binary base64, times epoch seconds)."""
    return json.dumps(body, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def record_raw(record: dict[str, Any], source_pk: str) -> str | None:
    """The raw identifier a stream record is about (its key's partition key), None when unreadable."""
    body = record.get("dynamodb") or {}
    for part in ("Keys", "NewImage", "OldImage"):
        value = (body.get(part) or {}).get(source_pk)
        if isinstance(value, dict) and isinstance(value.get("S"), str):
            return value["S"]
    return None


# -- writes (inside the caller's transaction) ------------------------------------------------------
def hold(conn: Any, rows: Iterable[tuple[str, dict[str, Any]]], *, direction: str, source_arn: str,
         shard: str, origin: str) -> int:
    """Keep ``(raw, stream record)`` rows; returns how many were not held already (idempotent)."""
    now = utcnow()
    values = [(raw, direction, source_arn, shard, pad_seq(rec["dynamodb"]["SequenceNumber"]),
               rec.get("eventName") or "", wire_json(rec.get("dynamodb") or {}), approx_time(rec), now, origin)
              for raw, rec in rows]
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO held_records(raw, direction, source_arn, shard, seq, event, record, created_at,"
        " held_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    return conn.total_changes - before


def settle(conn: Any, ids: Iterable[int], state: str) -> None:
    """Mark held records ``applied`` or ``dropped``."""
    if state not in ("applied", "dropped"):
        raise ValueError(f"a held record is settled as applied or dropped, not {state!r}")
    now = utcnow()
    conn.executemany("UPDATE held_records SET state = ?, settled_at = ? WHERE id = ? AND state = 'held'",
                     [(state, now, i) for i in ids])


# -- reads -----------------------------------------------------------------------------------------
_COLUMNS = "id, raw, direction, source_arn, shard, seq, event, record, created_at, held_at, origin, state"


def _row(r: Any) -> HeldRecord:
    return HeldRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8], r[9], r[10], r[11])


def held_records(conn: Any, *, raws: Iterable[str] | None = None, state: str | None = "held",
                 direction: str = "forward") -> list[HeldRecord]:
    """Held records (of ``raws``; in ``state``, None: any), by raw then sequence number."""
    where, args = ["direction = ?"], [direction]
    if state is not None:
        where.append("state = ?")
        args.append(state)
    out: list[HeldRecord] = []
    if raws is None:
        return [_row(r) for r in conn.execute(
            f"SELECT {_COLUMNS} FROM held_records WHERE {' AND '.join(where)} ORDER BY raw, seq", args)]
    wanted = sorted(set(raws))
    for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
        chunk = wanted[start:start + 500]
        out += [_row(r) for r in conn.execute(
            f"SELECT {_COLUMNS} FROM held_records WHERE {' AND '.join(where)} AND raw IN"
            f" ({','.join('?' * len(chunk))}) ORDER BY raw, seq", [*args, *chunk])]
    return out


def waiting_raws(conn: Any, direction: str = "forward") -> dict[str, int]:
    """raw -> how many of its records are held (waiting for a decision)."""
    return dict(conn.execute("SELECT raw, count(*) FROM held_records WHERE state = 'held' AND direction = ?"
                             " GROUP BY raw", (direction,)).fetchall())


def counts(ws: Workspace | Any) -> dict[str, int]:
    """How many held records are ``held`` (waiting), ``applied`` and ``dropped``."""
    conn = ws.connect() if isinstance(ws, Workspace) else ws
    out = {"held": 0, "applied": 0, "dropped": 0}
    out.update(dict(conn.execute("SELECT state, count(*) FROM held_records GROUP BY state").fetchall()))
    return out


# -- the Lambda handler's hold table -----------------------------------------------------------------
def _from_hold_item(item: dict[str, Any]) -> tuple[str, dict[str, Any], str, str] | None:
    """(raw, stream record, direction, source ARN) of one hold-table item; None when malformed."""
    try:
        raw, seq = item["raw"]["S"], item["seq"]["S"]
        body = json.loads(item["record"]["S"])
        event = item["event"]["S"]
        direction = item.get("direction", {}).get("S", "forward")
        arn = item.get("source_arn", {}).get("S", "")
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(body, dict) or not seq.isdigit() or direction not in ("forward", "reverse"):
        return None
    body = {**body, "SequenceNumber": seq.lstrip("0") or "0"}
    return raw, {"eventName": event, "dynamodb": body}, direction, arn


def collect_held(ws: Workspace, spec: Any, ddb: Any, *, operator: str = "unknown",
                 deadline_s: float = 60.0) -> dict[str, Any]:
    """Import the records the Lambda handler held in ``[stream] hold_table`` into the workspace.

    Idempotent: a record already in the workspace is not held twice. Items are deleted from the
    table only after the import has committed, so a crash in between leaves them to the next
    collect. A malformed item is counted (``unreadable``) and left in the table for a person.
    Returns ``{"table", "collected", "new", "deleted", "unreadable"}`` (``table`` None: none configured).
    """
    table = getattr(getattr(spec, "stream", None), "hold_table", None)
    out: dict[str, Any] = {"table": table, "collected": 0, "new": 0, "deleted": 0, "unreadable": 0}
    if not table:
        return out
    items: list[dict[str, Any]] = []
    try:
        for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            items.extend(page.get("Items", []))
    except (ClientError, BotoCoreError) as exc:
        raise HoldTableError(f"cannot read the hold table {table!r}: {exc}") from exc
    parsed: list[tuple[dict[str, Any], tuple[str, dict[str, Any], str, str]]] = []
    for item in items:
        found = _from_hold_item(item)
        if found is None:
            out["unreadable"] += 1
        else:
            parsed.append((item, found))
    if not parsed:
        return out
    from ...resolve.unmapped import derive_unmapped

    with ws.transaction() as conn:
        for _, (raw, rec, direction, arn) in parsed:
            out["new"] += hold(conn, [(raw, rec)], direction=direction, source_arn=arn, shard="",
                               origin=f"hold table {table}")
        derive_unmapped(conn, {raw for _, (raw, _, _, _) in parsed})
        out["collected"] = len(parsed)
        ws.audit(operator, "stream.collect-held", {k: v for k, v in out.items()})
    keys = [{"raw": item["raw"], "seq": item["seq"]} for item, _ in parsed]
    try:
        for start in range(0, len(keys), MAX_BATCH):
            batch = [{"DeleteRequest": {"Key": k}} for k in keys[start:start + MAX_BATCH]]
            write_batch(ddb, table, batch, deadline_s=deadline_s)
            out["deleted"] += len(batch)
    except (ClientError, BotoCoreError, BatchWriteTimeout) as exc:
        raise HoldTableError(f"held records imported, but deleting them from {table!r} failed: {exc}"
                             " (the next collect imports nothing twice)") from exc
    return out


# -- keymaps a replay applied ------------------------------------------------------------------------
def _winners_hash(keymap: Keymap) -> str:
    rows = sorted([k[0], k[1] or "", v] for k, v in keymap.winners.items())
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def remember_keymap(conn: Any, keymap: Keymap) -> None:
    """Keep what ``keymap`` maps (once per version), so a later keymap can be compared with it."""
    if conn.execute("SELECT 1 FROM applied_keymaps WHERE version = ?", (keymap.version,)).fetchone():
        return
    conn.execute("INSERT INTO applied_keymaps(version, winners, entries, saved_at) VALUES (?, ?, ?, ?)",
                 (keymap.version, _winners_hash(keymap), len(keymap.entries), utcnow()))
    conn.executemany("INSERT OR IGNORE INTO applied_keymap_entries(version, raw, new_id) VALUES (?, ?, ?)",
                     [(keymap.version, raw, e.new_id) for raw, e in keymap.entries.items()])


def keymap_change_problem(conn: Any, applied: str, extra: dict[str, str | None], keymap: Keymap) -> str | None:
    """Why ``keymap`` cannot continue a replay that applied keymap ``applied`` (plus the ``extra``
    entries it decided automatically); None when it only adds identifiers first seen on the stream.

    Every entry applied must map to the same new id (or stay dropped), conflict winners must be
    the same, and no added identifier may have items in the dump: the restore skipped those, so
    mapping them now would leave their dump items out of the new table.
    """
    row = conn.execute("SELECT winners FROM applied_keymaps WHERE version = ?", (applied,)).fetchone()
    if row is None:
        return f"what keymap {applied} mapped was not recorded"
    if row[0] != _winners_hash(keymap):
        return "its conflict winners differ"
    old: dict[str, str | None] = dict(conn.execute(
        "SELECT raw, new_id FROM applied_keymap_entries WHERE version = ?", (applied,)).fetchall())
    old.update(extra)
    for raw, new_id in old.items():
        entry = keymap.entries.get(raw)
        if entry is None or entry.new_id != new_id:
            now = "no entry" if entry is None else "dropped" if entry.new_id is None else repr(entry.new_id)
            was = "dropped" if new_id is None else repr(new_id)
            return f"identifier {json.dumps(raw)} was applied as {was}, now {now}"
    from ...plan.queries import identifier_rows

    added = [raw for raw in keymap.entries if raw not in old]
    planned = identifier_rows(conn, added)
    if planned:
        return (f"identifier {json.dumps(planned[0][0])} is newly mapped but has items in the dump that the"
                " restore skipped")
    return None
