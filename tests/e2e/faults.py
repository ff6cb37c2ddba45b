"""Fault injection for BatchWriteItem through botocore event hooks, on a real client and server.

moto never throttles and never returns ``UnprocessedItems`` (brief section 6): these hooks make a
real client see both, as DynamoDB does. A ``before-parameter-build`` hook holds back the last
three requests of each batch and an ``after-call`` hook reports them as ``UnprocessedItems``
(HTTP 200); a ``before-send`` hook answers every fifth call with a throttling error, which
botocore retries.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.awsrequest import AWSResponse

__all__ = ["Raw", "batch_write_faults"]

_THROTTLED = (b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
              b'"message":"slow down"}')


class Raw:
    """Just enough of a urllib3 response for botocore to read a canned body."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any):
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def batch_write_faults(table: str) -> tuple[list[tuple[str, Any]], dict[str, int]]:
    """(hooks for ``AwsContext(hooks=...)``, counters ``held`` and ``throttled`` they update)."""
    held = threading.local()  # per thread: writers send batches in parallel
    calls = {"n": 0, "throttled": 0, "held": 0}
    lock = threading.Lock()

    def hold_back(params: dict[str, Any], **_: Any) -> None:
        requests = params["RequestItems"][table]
        if len(requests) > 3:
            held.items = requests[-3:]
            params["RequestItems"][table] = requests[:-3]
            with lock:
                calls["held"] += 3
        else:
            held.items = []

    def report_unprocessed(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if getattr(held, "items", None):
            parsed["UnprocessedItems"] = {table: held.items}
            held.items = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        with lock:
            calls["n"] += 1
            hit = "BatchWriteItem" in request.headers.get("X-Amz-Target", b"").decode() and calls["n"] % 5 == 0
            if hit:
                calls["throttled"] += 1
        if hit:
            return AWSResponse(request.url, 400, {"x-amzn-RequestId": "x"}, Raw(_THROTTLED))
        return None

    hooks = [("before-parameter-build.dynamodb.BatchWriteItem", hold_back),
             ("after-call.dynamodb.BatchWriteItem", report_unprocessed),
             ("before-send.dynamodb", throttle)]
    return hooks, calls
