"""BatchWriteItem for service-side code: every request acknowledged, or named as failed.

The same semantics as the local replay's :mod:`keyshift.core.migrate.batch_write` (not kernel
code): at most 25 requests a call, ``UnprocessedItems`` (HTTP 200) retried with exponential backoff
and full jitter until a deadline, throttling errors left to botocore's adaptive retries (the
client's config). The difference is what a caller learns: the Lambda handler must know *which*
keys did not land, so instead of raising it returns them, and a call that fails outright (an
error after botocore's retries) fails just the keys of that call.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import base64

__all__ = ["MAX_BATCH", "WriteReport", "backoff_delay", "install_json_body", "key_text", "write_all"]

#: Requests per call: DynamoDB's limit (moto accepts 26; we keep AWS's).
MAX_BATCH = 25


def backoff_delay(attempt: int, *, base: float = 0.05, cap: float = 5.0) -> float:
    """Full jitter: a uniform sleep in ``[0, min(cap, base·2^attempt)]``."""
    return random.uniform(0, min(cap, base * 2 ** attempt))


@dataclass
class WriteReport:
    """What became of a :func:`write_all`: ``failed`` maps a key (``key_json``) to why."""

    calls: int = 0
    unprocessed_retries: int = 0
    botocore_retries: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def key_text(item: dict[str, Any], key_attrs: tuple[str, ...]) -> str:
    """A cheap canonical text of ``item``'s key (``S``/``N``/``B`` values; binary as base64
    whether given as text, as in events, or as ``bytes``, as ``UnprocessedItems`` returns it)."""
    parts = []
    for name in key_attrs:
        value = item.get(name)
        if type(value) is not dict or len(value) != 1:
            parts.append(f"{name}=?{value!r}")
            continue
        (kind, inner), = value.items()
        if isinstance(inner, (bytes, bytearray, memoryview)):
            inner = base64.b64encode(bytes(inner)).decode("ascii")
        parts.append(f"{name}={kind}:{inner}")
    return "\x1f".join(parts)


def _request_key(request: dict[str, Any], key_attrs: tuple[str, ...]) -> str:
    """The :func:`key_text` of a put's or delete's key, as sent or as ``UnprocessedItems`` returns it."""
    if "PutRequest" in request:
        return key_text(request["PutRequest"]["Item"], key_attrs)
    return key_text(request["DeleteRequest"]["Key"], key_attrs)


def write_all(
    ddb: Any,
    table: str,
    requests: list[tuple[str, dict[str, Any]]],
    key_attrs: tuple[str, ...],
    *,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WriteReport:
    """Write ``requests`` (``(key_text, request)``, no key twice) to ``table`` in calls of 25.

    ``deadline`` is a ``clock()`` value: past it, requests still unprocessed fail (named in the
    report) rather than being retried on. ``key_attrs`` are the table's key attribute names, to
    tell which requests came back unprocessed.
    """
    report = WriteReport()
    for start in range(0, len(requests), MAX_BATCH):
        chunk = requests[start:start + MAX_BATCH]
        pending = [r for _, r in chunk]
        attempt = 0
        while pending:
            if clock() > deadline:
                for r in pending:
                    report.failed[_request_key(r, key_attrs)] = "deadline passed with the write unprocessed"
                break
            try:
                response = ddb.batch_write_item(RequestItems={table: pending})
            except Exception as exc:  # botocore already retried what it could: these keys failed
                why = f"BatchWriteItem failed: {type(exc).__name__}: {exc}"
                for r in pending:
                    report.failed[_request_key(r, key_attrs)] = why
                break
            report.calls += 1
            report.botocore_retries += response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if pending:
                attempt += 1
                report.unprocessed_retries += 1
                sleep(min(backoff_delay(attempt), max(0.0, deadline - clock())))
    return report


# --- BatchWriteItem bodies written by the standard library's json -------------------------------
#
# botocore's serializer walks every attribute of every item (and decodes/re-encodes binary); the
# stream records are already DynamoDB wire JSON, binary as base64 text, which is exactly the body
# DynamoDB's JSON protocol wants. The same trick as keyshift.core.aws.install_wire_json (orjson,
# not available here), with json.

_BODY = "keyshift_kernel_body"


def _b64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):  # UnprocessedItems come back as bytes
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"cannot send a {type(value).__name__} in a DynamoDB request")


def _encode_body(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    import json

    if model.name != "BatchWriteItem" or type(params.get("RequestItems")) is not dict:
        return
    try:
        context[_BODY] = json.dumps(params, default=_b64, ensure_ascii=False,
                                    separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        # Never fall back to botocore's serializer: it would base64-encode base64 text again.
        raise TypeError(f"BatchWriteItem body is not wire JSON: {exc}") from None
    params["RequestItems"] = {table: [] for table in params["RequestItems"]}


def _use_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    body = context.pop(_BODY, None)
    if body is not None:
        params["body"] = body


def install_json_body(client: Any) -> Any:
    """Make ``client`` send ``BatchWriteItem`` bodies as the wire JSON they are (binary values as
    base64 text, as in Lambda events); hooks registered by others run first, on the real
    parameters. Returns the client."""
    client.meta.events.register_last("before-parameter-build", _encode_body,
                                      unique_id="keyshift-kernel-json-encode")
    client.meta.events.register_last("before-call", _use_body, unique_id="keyshift-kernel-json-body")
    return client
