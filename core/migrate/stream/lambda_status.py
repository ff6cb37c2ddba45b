"""What the Lambda handlers on a migration's streams are doing, as far as keyshift can see.

Design (a) (docs/design.md) replays the stream from its trim horizon *after* the restore has
completed. The local replay restarts by itself when a restore completes; an event source mapping
cannot be told to, so the rule for the Lambda (docs/deploy.md) is: create the mapping with
``StartingPosition: TRIM_HORIZON`` after the restore completes (or create it disabled and enable
it then). :func:`lambda_status` checks that from ``ListEventSourceMappings`` on the stream: its
state, starting position, last processing result, the settings the handler relies on, and
whether it was last modified (created or enabled) after the last complete restore.

IteratorAge (how far behind the stream a mapping is) is a CloudWatch metric
(``AWS/Lambda IteratorAge``, per function), not part of the mapping: docs/deploy.md sets an
alarm on it; this module does not guess it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...aws import aws_error_text
from ...store import runs
from ...store.workspace import Workspace
from .source import epoch_seconds as _epoch

__all__ = ["lambda_status", "last_restore_finished", "mapping_status", "stream_arns"]


def last_restore_finished(ws: Workspace) -> float | None:
    """Epoch seconds when the newest complete restore finished (None: none has)."""
    run = runs.latest(ws, "restore", complete=True)
    return None if run is None else _epoch(run.finished_at)


def mapping_status(mapping: dict[str, Any], restore_finished: float | None) -> dict[str, Any]:
    """One event source mapping as ``stream-sync --status`` reports it, with its ``problems``."""
    modified = _epoch(mapping.get("LastModified"))
    destination = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    out = {
        "uuid": mapping.get("UUID"),
        "function": mapping.get("FunctionArn"),
        "state": mapping.get("State"),
        "starting_position": mapping.get("StartingPosition"),
        "last_processing_result": mapping.get("LastProcessingResult"),
        "last_modified": modified,
        "batch_size": mapping.get("BatchSize"),
        "report_batch_item_failures": "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []),
        "bisect_on_error": mapping.get("BisectBatchOnFunctionError"),
        "maximum_retry_attempts": mapping.get("MaximumRetryAttempts"),
        "maximum_record_age_seconds": mapping.get("MaximumRecordAgeInSeconds"),
        "parallelization_factor": mapping.get("ParallelizationFactor"),
        "on_failure": destination,
        "after_restore": None if restore_finished is None or modified is None else modified >= restore_finished,
    }
    problems = []
    if out["starting_position"] != "TRIM_HORIZON":
        problems.append(f"starts at {out['starting_position']}, not TRIM_HORIZON: writes made before it"
                        " started are in neither the restore nor the replay")
    if not out["report_batch_item_failures"]:
        problems.append("FunctionResponseTypes lacks ReportBatchItemFailures: a failed key fails and"
                        " retries the whole batch")
    if out["after_restore"] is False and out["state"] in ("Enabled", "Enabling", "Updating"):
        problems.append("created or last enabled before the last complete restore finished: records it"
                        " applied may have been overwritten by the restore's puts; delete it and create it"
                        " again with TRIM_HORIZON (docs/deploy.md)")
    if destination is None:
        problems.append("no on-failure destination: records past MaximumRetryAttempts or"
                        " MaximumRecordAgeInSeconds are dropped without a trace")
    out["problems"] = problems
    return out


def lambda_status(lam: Any, stream_arns: dict[str, str | None], restore_finished: float | None) -> dict[str, Any]:
    """``{direction: {"stream_arn", "mappings": [...], "error"}}`` for each stream given
    (``forward``: the old table's, ``reverse``: the new table's; None: that table has no stream).
    An AWS error is reported in ``error`` (one line), not raised: status must always answer."""
    out: dict[str, Any] = {}
    for direction, arn in stream_arns.items():
        entry: dict[str, Any] = {"stream_arn": arn, "mappings": [], "error": None}
        if arn is not None:
            try:
                pages = lam.get_paginator("list_event_source_mappings").paginate(EventSourceArn=arn)
                entry["mappings"] = [mapping_status(m, restore_finished)
                                     for page in pages for m in page.get("EventSourceMappings", [])]
            except (ClientError, BotoCoreError) as exc:
                entry["error"] = aws_error_text(exc)
        out[direction] = entry
    out["restore_finished_at"] = restore_finished
    out["iterator_age"] = "CloudWatch metric AWS/Lambda IteratorAge of each function (docs/deploy.md)"
    return out


def stream_arns(ddb: Any, source_table: str, target_table: str) -> dict[str, str | None]:
    """The current stream ARN of each direction's table (None: no table, or no stream on it)."""
    out: dict[str, str | None] = {}
    for direction, table in (("forward", source_table), ("reverse", target_table)):
        try:
            desc = ddb.describe_table(TableName=table)["Table"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                out[direction] = None
                continue
            raise
        enabled = (desc.get("StreamSpecification") or {}).get("StreamEnabled", False)
        out[direction] = desc.get("LatestStreamArn") if enabled else None
    return out
