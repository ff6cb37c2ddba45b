"""Stream records to writes: what one DynamoDB Streams record does to the new table.

The same decisions as the restore (:func:`~keyshift.core.kernel.transform.transform` for a new image,
:func:`~keyshift.core.kernel.transform.transform_key` for a REMOVE), and the reduction of a page of
records to the last write per new key, which is what lets a page's batches go out in parallel.
Shared by the local replay (:mod:`keyshift.core.migrate.stream.sync`) and the Lambda handler, so
it is kernel code: the standard library only.
"""

from __future__ import annotations

import json
from typing import Any

from .items import for_botocore
from .keymap import Keymap
from .transform import Delete, KeyNames, Put, Skip, transform, transform_key

__all__ = ["approx_time", "record_outcome", "reduce_outcomes", "write_request"]


def record_outcome(record: dict[str, Any], keymap: Keymap, names: KeyNames) -> Put | Delete | Skip:
    """What one stream record does to the new table: the same decision the restore makes."""
    event = record.get("eventName")
    body = record.get("dynamodb") or {}
    if event in ("INSERT", "MODIFY"):
        image = body.get("NewImage")
        if image is None:
            return Skip(f"{event} record without a new image: the stream's view type must be NEW_IMAGE"
                        " or NEW_AND_OLD_IMAGES", "no-image")
        return transform(image, keymap, names)
    if event == "REMOVE":
        keys = body.get("Keys")
        if not keys:
            return Skip("REMOVE record without keys", "bad-key")
        return transform_key(keys, keymap, names)
    return Skip(f"unknown stream event {event!r}", "unknown-event")


def _new_key(outcome: Put | Delete, names: KeyNames) -> tuple:
    source = outcome.item if type(outcome) is Put else outcome.key
    sk = source.get(names.source_sk) if names.source_sk else None
    return (source[names.target_pk]["S"], json.dumps(sk, sort_keys=True, default=repr) if sk else None)


def reduce_outcomes(outcomes: list[Put | Delete | Skip], names: KeyNames) -> list[Put | Delete]:
    """The writes of a run of outcomes in stream order: the last one per new key, in first-seen order.

    Applying only the last write of each key gives the same table as applying all of them in
    order (each is a whole-item put or a delete), and a ``BatchWriteItem`` must not name a key twice.
    """
    last: dict[tuple, Put | Delete] = {}
    for outcome in outcomes:
        if type(outcome) is not Skip:
            last[_new_key(outcome, names)] = outcome
    return list(last.values())


def write_request(outcome: Put | Delete) -> dict[str, Any]:
    """The ``BatchWriteItem`` request of a write (binary values as botocore wants them)."""
    if type(outcome) is Put:
        return {"PutRequest": {"Item": for_botocore(outcome.item)}}
    return {"DeleteRequest": {"Key": for_botocore(outcome.key)}}


def approx_time(record: dict[str, Any]) -> float | None:
    """A record's ``ApproximateCreationDateTime`` in epoch seconds (rounded to the second by AWS)."""
    when = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    if when is None:
        return None
    return when.timestamp() if hasattr(when, "timestamp") else float(when)
