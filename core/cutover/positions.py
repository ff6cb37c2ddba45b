"""Both tables' stream positions at a moment: for each shard, the last sequence number written.

DynamoDB Streams has no call that says where an open shard ends: ``DescribeStream`` gives an
``EndingSequenceNumber`` only for closed shards (moto's gives none at all), and an iterator of type
``LATEST`` points *after* the last record, so ``GetRecords`` on it returns nothing to read a number
from. So each shard is read to its tip: from a known position when the caller has one (the
sync's checkpoint on that stream: ``AFTER_SEQUENCE_NUMBER``, usually a page or two behind the
tip), else from ``TRIM_HORIZON``, ``GetRecords`` (1,000 a call) until a call returns no record (or
a closed shard ends). The last record seen is the shard's position; a shard with no record at all
has none (reverse sync reads such a shard from its trim horizon, which then holds only records
made after the flip). A closed shard's ``EndingSequenceNumber`` is used as given when there is one.

The result, ``{shard_id: sequence_number}``, is exactly what ``keyshift stream-sync --reverse
--from-positions FILE.json`` reads (:func:`keyshift.core.migrate.stream.reverse.positions_from_file`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from botocore.exceptions import ClientError

from ..migrate.stream.source import list_shards

__all__ = ["TablePositions", "stream_positions"]

#: Records per GetRecords call (the service's maximum).
_PAGE = 1000
#: At most this many calls per shard (a guard against a stream that never stops growing).
_MAX_CALLS = 10_000


@dataclass(frozen=True)
class TablePositions:
    """One table's stream at a moment: its ARN (None: no stream), shard -> last sequence number,
    and the creation time (epoch seconds) of the newest record seen (None: none)."""

    table: str
    stream_arn: str | None
    positions: dict[str, str] = field(default_factory=dict)
    newest_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "stream_arn": self.stream_arn, "positions": dict(self.positions),
                "newest_at": self.newest_at}


def _iterator(streams: Any, arn: str, shard_id: str, after: str | None) -> str | None:
    if after is not None:
        try:
            return streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              SequenceNumber=after)["ShardIterator"]
        except ClientError:
            pass  # trimmed or not of this shard: read it from its trim horizon
    return streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id,
                                      ShardIteratorType="TRIM_HORIZON")["ShardIterator"]


def stream_positions(ddb: Any, streams: Any, table: str, *, hints: Mapping[str, str] | None = None) -> TablePositions:
    """The last sequence number of every shard of ``table``'s latest stream (see the module doc).

    ``hints``: shard id -> a sequence number known to be on the shard (a sync's checkpoint), to
    start reading from instead of the trim horizon."""
    desc = ddb.describe_table(TableName=table)["Table"]
    arn = desc.get("LatestStreamArn")
    enabled = (desc.get("StreamSpecification") or {}).get("StreamEnabled", bool(arn))
    if not arn or not enabled:
        return TablePositions(table, None)
    hints = dict(hints or {})
    positions: dict[str, str] = {}
    newest: float | None = None
    for shard in list_shards(streams, arn):
        shard_id = shard["ShardId"]
        ending = (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
        last = hints.get(shard_id)
        iterator = _iterator(streams, arn, shard_id, last)
        from_hint = last is not None
        for _ in range(_MAX_CALLS):
            if iterator is None:
                break
            try:
                page = streams.get_records(ShardIterator=iterator, Limit=_PAGE)
            except ClientError:
                if not from_hint:
                    raise
                # The hint was not a position of this shard after all: read it from its trim horizon.
                from_hint, last = False, None
                iterator = _iterator(streams, arn, shard_id, None)
                continue
            from_hint = False
            records = page.get("Records", [])
            if records:
                last = records[-1]["dynamodb"]["SequenceNumber"]
                created = records[-1]["dynamodb"].get("ApproximateCreationDateTime")
                stamp = created.timestamp() if hasattr(created, "timestamp") else \
                    float(created) if isinstance(created, (int, float)) else None
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            iterator = page.get("NextShardIterator")
            if not records:
                break  # at the tip (an open shard) or the end (a closed one)
        if ending and not last:
            last = ending
        if last:
            positions[shard_id] = str(last)
    return TablePositions(table, arn, positions, newest)
