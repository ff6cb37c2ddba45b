"""boto3's parsed ``GetRecords`` output -> the event a DynamoDB Streams event source mapping sends.

boto3 hands back ``ApproximateCreationDateTime`` as a ``datetime`` and binary values as
``bytes``; Lambda's event is JSON: the time in epoch seconds and binary as base64 text, and each
record carries ``eventSourceARN``. The tests and the benchmark invoke the handler with real
stream records this way, and so can an operator replaying a stream through the handler by hand.
Standard library only.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable

__all__ = ["lambda_event", "lambda_record"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "timestamp"):  # datetime: Lambda sends epoch seconds
        return value.timestamp()
    return value


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """One ``GetRecords`` record (as boto3 parsed it) in the Lambda event's JSON shape."""
    out = _jsonable({k: v for k, v in record.items() if k != "userIdentity"})
    out.setdefault("eventSource", "aws:dynamodb")
    out["eventSourceARN"] = stream_arn
    if "userIdentity" in record:
        out["userIdentity"] = _jsonable(record["userIdentity"])
    # Round-trip through JSON: exactly what the function receives (no tuples, no shared objects).
    return json.loads(json.dumps(out))


def lambda_event(records: Iterable[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """A Lambda event (``{"Records": [...]}``) of ``records``."""
    return {"Records": [lambda_record(r, stream_arn) for r in records]}
