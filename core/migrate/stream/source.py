"""The old table's stream: its ARN, its shards, and whether a replay from it can cover a dump.

Design (a) (docs/design.md) holds only when the stream was enabled before the dump's point in
time and that point is still inside the stream's 24-hour retention; :func:`replay_window_problems`
says when it is not, and :func:`keyshift.core.migrate.preflight.restore_preflight` says so before a
restore starts.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from ...errors import KeyshiftError
from ...store.workspace import Workspace

__all__ = ["RETENTION_S", "StreamSyncError", "epoch_seconds", "list_shards", "replay_window_problems", "stream_arn", "window_check"]

#: How long DynamoDB Streams keeps a record.
RETENTION_S = 24 * 3600.0


class StreamSyncError(KeyshiftError):
    """The stream cannot be replayed (no stream, trimmed past the checkpoint, writes that never land)."""

    title = "Stream sync failed"


def stream_arn(ddb: Any, table: str) -> str:
    """The ARN of ``table``'s current stream; :class:`StreamSyncError` when it has none."""
    try:
        desc = ddb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        raise StreamSyncError(f"cannot describe source table {table!r}: {exc}") from exc
    spec = desc.get("StreamSpecification") or {}
    arn = desc.get("LatestStreamArn")
    if not arn or spec.get("StreamEnabled") is False:
        raise StreamSyncError(
            f"source table {table!r} has no enabled stream: enable NEW_AND_OLD_IMAGES before the dump's"
            " point in time (docs/design.md), or the replay cannot catch the writes made since")
    if spec.get("StreamViewType") not in (None, "NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
        raise StreamSyncError(f"source table {table!r}'s stream has view type {spec.get('StreamViewType')}:"
                              " stream sync needs NEW_IMAGE or NEW_AND_OLD_IMAGES")
    return arn


def list_shards(streams: Any, arn: str) -> list[dict[str, Any]]:
    """Every shard of the stream (``DescribeStream`` paged by ``ExclusiveStartShardId``)."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamArn": arn}
    while True:
        desc = streams.describe_stream(**kwargs)["StreamDescription"]
        shards.extend(desc.get("Shards", []))
        last = desc.get("LastEvaluatedShardId")
        if not last:
            return shards
        kwargs["ExclusiveStartShardId"] = last


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def epoch_seconds(value: Any) -> float | None:
    """Epoch seconds of a datetime or ISO 8601 text (``Z`` allowed); None when unknown."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return value.timestamp()
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def replay_window_problems(stream_created: float | None, point_in_time: float | None, now: float) -> list[str]:
    """Why a replay from the trim horizon would miss writes made after the dump (empty: none known).

    Design (a) needs the stream enabled before the dump's point in time, and the dump's point in
    time still inside the stream's 24-hour retention: otherwise the writes in between are neither
    in the dump nor in the stream, and nothing would ever say so.
    """
    problems = []
    if point_in_time is None:
        return problems
    if stream_created is not None and stream_created > point_in_time:
        problems.append(f"the stream was enabled at {_iso(stream_created)}, after the dump's point in time"
                        f" {_iso(point_in_time)}: writes made in between are in neither")
    if now - point_in_time > RETENTION_S:
        problems.append(f"the dump's point in time {_iso(point_in_time)} is more than 24 hours ago: the stream"
                        " has trimmed records written since then")
    return problems


def window_check(ws: Workspace, streams: Any, arn: str) -> tuple[list[str], list[str]]:
    """(problems, warnings) of replaying ``arn`` from its trim horizon over the planned dump."""
    from ...plan.queries import latest_plan

    plan = latest_plan(ws)
    point_in_time = epoch_seconds(((plan.summary or {}) if plan is not None else {}).get("point_in_time"))
    if point_in_time is None:
        return [], ["the dump does not say its point in time (only an Export-to-S3 does): make sure the"
                    " stream was enabled before the dump was taken, and that was less than 24 hours ago"]
    desc = streams.describe_stream(StreamArn=arn, Limit=1)["StreamDescription"]
    created = epoch_seconds(desc.get("CreationRequestDateTime")) or epoch_seconds(desc.get("StreamLabel"))
    return replay_window_problems(created, point_in_time, time.time()), []
