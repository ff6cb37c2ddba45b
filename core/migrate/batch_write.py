"""One ``BatchWriteItem`` call, retried until DynamoDB has acknowledged every request in it.

``BatchWriteItem`` is not atomic: whatever DynamoDB could not take comes back in
``UnprocessedItems`` with HTTP 200 (brief section 5). Tools in the wild log and drop those; here
they are retried with exponential backoff and full jitter until a deadline, and past it the caller
gets an exception, never a silent loss. Throttling *errors* are botocore's to retry (the adaptive
retry mode of :mod:`keyshift.core.aws`); the response says how many attempts that took.

The restore (puts) and stream sync (puts and deletes) both write through :func:`write_batch`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BatchWriteTimeout", "MAX_BATCH", "backoff_delay", "write_batch"]

#: Requests per call: DynamoDB's limit (moto accepts 26; we keep AWS's).
MAX_BATCH = 25


class BatchWriteTimeout(Exception):
    """Requests were still unprocessed when the deadline passed. ``remaining`` says how many."""

    def __init__(self, remaining: int, attempts: int, deadline_s: float) -> None:
        super().__init__(f"{remaining} request(s) still unprocessed after {attempts} retries and {deadline_s:.0f} s")
        self.remaining = remaining
        self.attempts = attempts


def backoff_delay(attempt: int, *, base: float = 0.05, cap: float = 5.0) -> float:
    """Full jitter (AWS architecture blog): a uniform sleep in ``[0, min(cap, base·2^attempt)]``."""
    return random.uniform(0, min(cap, base * 2 ** attempt))


def write_batch(
    ddb: Any,
    table: str,
    requests: list[dict[str, Any]],
    *,
    deadline_s: float,
    acquire: Callable[[int], None] | None = None,
    on_response: Callable[[int, int, int], None] | None = None,
) -> None:
    """Send ``requests`` (``PutRequest``/``DeleteRequest`` dicts, at most :data:`MAX_BATCH`, no key
    twice) to ``table`` until every one is acknowledged.

    ``acquire(n)`` is called before each attempt with its request count (a rate limiter blocks
    there). ``on_response(acknowledged, unprocessed, botocore_retries)`` is called after each.
    Raises :class:`BatchWriteTimeout` when requests are still unprocessed after ``deadline_s``.
    """
    attempt = 0
    start = time.monotonic()
    while requests:
        if acquire is not None:
            acquire(len(requests))
        response = ddb.batch_write_item(RequestItems={table: requests})
        retried = response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        unprocessed = response.get("UnprocessedItems", {}).get(table, [])
        if on_response is not None:
            on_response(len(requests) - len(unprocessed), len(unprocessed), retried)
        if not unprocessed:
            return
        attempt += 1
        if time.monotonic() - start > deadline_s:
            raise BatchWriteTimeout(len(unprocessed), attempt, deadline_s)
        time.sleep(backoff_delay(attempt))
        requests = unprocessed
