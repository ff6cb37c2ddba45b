"""Facts about single items in DynamoDB wire format: key values and sizes.

Items stay in wire format (``{"S": "x"}``) end to end; these helpers read them without converting
to Python types, because boto3's deserializer would cost four times the parse itself.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_PARTITION_KEY_BYTES",
    "MAX_SORT_KEY_BYTES",
    "for_botocore",
    "item_size",
    "key_problem",
    "key_size_problem",
    "utf8_len",
]

#: DynamoDB's limits (brief section 5).
MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024


def for_botocore(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` as botocore must be handed it: binary values (``B``, ``BS``) as ``bytes``.

    Dumps carry binary as base64 text, and keyshift keeps it that way end to end. botocore
    base64-encodes whatever it is given for a blob, text included, so passing the dump's text
    would store the base64 *characters* as the value (``AQID`` instead of bytes 01 02 03): silent
    corruption. Items without binary (nearly all) are returned as they are, after one cheap
    check; the rest are copied with every binary value decoded, at any depth.
    """
    if not _has_binary(item.values()):
        return item
    return {name: _decode_binary(value) for name, value in item.items()}


def _has_binary(values: Any) -> bool:
    for d in values:
        if "B" in d or "BS" in d:
            return True
        if "M" in d:
            if _has_binary(d["M"].values()):
                return True
        elif "L" in d and _has_binary(d["L"]):
            return True
    return False


def _decode_binary(value: dict[str, Any]) -> dict[str, Any]:
    if "B" in value:
        v = value["B"]
        return {"B": base64.b64decode(v) if isinstance(v, str) else v}
    if "BS" in value:
        return {"BS": [base64.b64decode(v) if isinstance(v, str) else v for v in value["BS"]]}
    if "M" in value:
        return {"M": {k: _decode_binary(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_decode_binary(v) for v in value["L"]]}
    return value


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes: what DynamoDB's key limits count."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def item_size(item: dict[str, Any]) -> int:
    """The item's size as DynamoDB counts it: attribute names plus values, in bytes.

    Numbers are approximated as DynamoDB documents them (about one byte per two significant
    digits, plus one); container overheads are 3 bytes plus 1 per element.
    """
    return sum(utf8_len(name) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, payload),) = value.items()
    if kind == "S":
        return utf8_len(payload)
    if kind == "N":
        return _number_size(payload)
    if kind == "B":
        return _binary_size(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(utf8_len(s) for s in payload)
    if kind == "NS":
        return sum(_number_size(n) for n in payload)
    if kind == "BS":
        return sum(_binary_size(b) for b in payload)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in payload)
    if kind == "M":
        return 3 + sum(1 + utf8_len(k) + _value_size(v) for k, v in payload.items())
    raise ValueError(f"unknown type key {kind!r}")


def _number_size(text: str) -> int:
    digits = sum(ch.isdigit() for ch in text.lstrip("-0").replace(".", "")) or 1
    return (digits + 1) // 2 + 1


def _binary_size(b64: str) -> int:
    try:
        return len(base64.b64decode(b64, validate=True))
    except (binascii.Error, ValueError):
        return len(b64)


def key_problem(item: dict[str, Any], name: str, *, role: str) -> str | None:
    """Why ``item[name]`` cannot serve as a string key, or ``None`` when it can.

    ``role`` ("identifier", "sort key") only words the message.
    """
    value = item.get(name)
    if value is None:
        return f"missing {role} attribute {name!r}"
    kind = next(iter(value), None) if isinstance(value, dict) else None
    if role == "identifier" and kind != "S":
        return f"{role} attribute {name!r} is {kind or type(value).__name__}, not a string (S)"
    if kind not in ("S", "N", "B"):
        return f"{role} attribute {name!r} is {kind}, not a scalar key type (S, N or B)"
    return None


def key_size_problem(value: Any, *, role: str) -> str | None:
    """Why a key value (wire format) cannot be stored by DynamoDB at all, or ``None`` when it can.

    A partition key is 1 to 2,048 bytes, a sort key 1 to 1,024 (UTF-8 for strings, the decoded
    bytes for binary; numbers have no such limit). An item whose key breaks this cannot be in any
    table: a dump line holding one is not an item of the old table. ``role`` is ``"identifier"``
    (partition key) or ``"sort key"``.
    """
    if type(value) is not dict or len(value) != 1:
        return None  # a type problem, which key_problem words
    ((kind, payload),) = value.items()
    if kind == "S" and type(payload) is str:
        size = utf8_len(payload)
    elif kind == "B" and type(payload) is str:
        size = _binary_size(payload)
    else:
        return None
    limit = MAX_PARTITION_KEY_BYTES if role == "identifier" else MAX_SORT_KEY_BYTES
    if size == 0:
        return f"{role} is empty: DynamoDB keys cannot be empty, so no table holds this item"
    if size > limit:
        return (f"{role} is {size:,} bytes, over DynamoDB's {limit:,}-byte limit: no table can hold this"
                " item, so it is not an item of the old table")
    return None
