"""DynamoDB wire format: validate an item and bring its type keys to canonical uppercase.

Dumps spell type keys in several ways: the Data Pipeline/EMR export writes the Java SDK v1 field
names (``s n b sS nS bS m l bOOL nULL nULLValue``), exports and ``scan`` scripts write the wire
names (``S N B SS NS BS M L BOOL NULL``). Every casing of every type key is accepted; the result is
always the wire format with uppercase keys, recursively inside ``M`` and ``L``.

Two entry points, used together on the hot path::

    if not is_wire(item.values()):   # fast check, no allocation, no details
        item = to_wire(item)         # full conversion; raises WireError naming the attribute

(or :func:`convert_item`, which does both). :func:`is_wire` accepts only items that are already
canonical and valid, so a valid export line costs one pass over its attributes and is never
copied. Anything else (lower-camel keys, errors)
goes through :func:`to_wire`, which rebuilds only what it must and explains what is wrong.

Binary values stay base64 strings (as in DynamoDB JSON); they are checked to be valid base64.
Numbers stay strings; they are checked to look like numbers (range and precision are not checked).
"""

from __future__ import annotations

import binascii
from typing import Any, Iterable

import orjson

__all__ = ["LineError", "WireError", "is_wire", "wire_check", "to_wire", "convert_item",
           "canonical_type_key", "json_type", "is_number", "is_base64", "TYPE_KEYS"]

#: The canonical (wire) type keys.
TYPE_KEYS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "BOOL", "NULL")

# Lower-cased spelling -> canonical key. ``nullvalue`` is the older Java SDK v1 field name.
_BY_LOWER = {k.lower(): k for k in TYPE_KEYS}
_BY_LOWER["nullvalue"] = "NULL"
_CANONICAL = frozenset(TYPE_KEYS)

_NUM_CHARS = "0123456789.-+eE"
_a2b = binascii.a2b_base64
_B64Error = binascii.Error
_join = "".join


class LineError(ValueError):
    """A dump line cannot be read; the message is the reason shown in the quarantine report."""


class WireError(LineError):
    """An item cannot be expressed in wire format; the message names the attribute and reason."""


def canonical_type_key(key: str) -> str | None:
    """The canonical type key for any casing of ``key`` (``"sS"`` -> ``"SS"``), else ``None``."""
    if key in _CANONICAL:
        return key
    if type(key) is str and key.isascii():
        return _BY_LOWER.get(key.lower())
    return None


def is_number(v: str) -> bool:
    """Whether the string ``v`` is a decimal number as DynamoDB writes them (``-12.5E+3``)."""
    if v.isdigit():
        return v.isascii()
    if not v or v.strip(_NUM_CHARS):
        return False
    try:
        float(v)  # the character check above rules out inf, nan, underscores and blanks
    except ValueError:
        return False
    return True


def is_base64(v: str) -> bool:
    """Whether the string ``v`` is valid standard base64 with correct padding."""
    try:
        _a2b(v, strict_mode=True)
    except (_B64Error, ValueError):
        return False
    return True


# --------------------------------------------------------------------------------------------
# Fast path: is this already canonical, valid wire format?


def is_wire(descriptors: Iterable[Any]) -> bool:
    """True when every descriptor is a valid, canonical one (``{"S": "x"}``, ``{"M": {...}}``...).

    Pass ``item.values()`` for an item, a list for an ``L`` value. Allocates nothing and gives no
    reason: a ``False`` means "call :func:`to_wire`", which either converts or explains.
    """
    try:
        return wire_check(descriptors)
    except (TypeError, AttributeError, RecursionError):
        return False  # a descriptor or value of the wrong JSON type


def wire_check(descriptors: Iterable[Any]) -> bool:
    """:func:`is_wire` without its ``try``: may raise ``TypeError`` or ``AttributeError`` when a
    descriptor or a value has the wrong JSON type.

    For hot loops that already sit in a ``try`` (the dump reader): any exception means "not
    canonical wire format, ask :func:`to_wire`".
    """
    # One pass, cheapest checks first, most frequent type keys first. Type checks are left out
    # where a wrong type raises anyway: a descriptor that is not an object either fails every
    # ``in`` test (-> False) or raises TypeError on ``d[key]`` (a 1-character string, a 1-element
    # list); a non-string N has no ``isascii``, a non-object M no ``values``.
    for d in descriptors:
        if len(d) == 1:
            if "S" in d:
                if type(d["S"]) is str:
                    continue
            elif "N" in d:
                v = d["N"]
                # isascii: AttributeError when not a string, and str.isdigit alone would take
                # other scripts' digits. Integers, then plain decimals, then the general rule.
                if v.isascii() and (v.isdigit() or v.replace(".", "", 1).isdigit() or is_number(v)):
                    continue
            elif "L" in d:
                v = d["L"]
                if type(v) is list and _list_check(v):
                    continue
            elif "BOOL" in d:
                if type(d["BOOL"]) is bool:
                    continue
            elif "M" in d:
                if wire_check(d["M"].values()):  # AttributeError unless an object
                    continue
            elif "SS" in d:
                v = d["SS"]
                if type(v) is list and v:
                    try:
                        _join(v)  # fails fast on any non-string
                    except TypeError:
                        return False
                    if len(v) == 1 or len(set(v)) == len(v):
                        continue
            elif "NULL" in d:
                if d["NULL"] is True:
                    continue
            elif type(d) is dict and _is_wire_rare(d):
                continue
        return False
    return True


def _list_check(values: list) -> bool:
    """:func:`wire_check` of an ``L`` value, with maps checked without one more call per element
    (lists of maps are the common nesting: order lines, addresses)."""
    for e in values:
        if len(e) == 1 and "M" in e:
            if wire_check(e["M"].values()):
                continue
        elif wire_check((e,)):
            continue
        return False
    return True


def _is_wire_rare(d: dict) -> bool:
    """The least common descriptors: binary and number/binary sets (``d`` has exactly one key)."""
    if "B" in d:
        v = d["B"]
        return type(v) is str and is_base64(v)
    if "NS" in d:
        v = d["NS"]
        return type(v) is list and _is_str_set(v) and all(map(is_number, v))
    if "BS" in d:
        v = d["BS"]
        return type(v) is list and _is_str_set(v) and all(map(is_base64, v))
    return False


def _is_str_set(v: list) -> bool:
    """Non-empty list of distinct strings (``"".join`` fails fast on any non-string)."""
    if not v:
        return False
    try:
        _join(v)
    except TypeError:
        return False
    return len(set(v)) == len(v)


# --------------------------------------------------------------------------------------------
# Slow path: convert any casing, or say exactly what is wrong.

_JSON_TYPE = {dict: "object", list: "array", str: "string", int: "number", float: "number",
              bool: "boolean", type(None): "null"}


def json_type(v: Any) -> str:
    """The JSON name of a parsed value's type (``object``, ``array``, ``string``...)."""
    return _JSON_TYPE.get(type(v), type(v).__name__)


def _q(s: str) -> str:
    """Quote a name for a message: ``'a.b'``."""
    return repr(s)


# Every spelling met so far -> canonical key (only valid spellings are added, so it stays small).
_KEYS: dict[str, str] = {k: k for k in TYPE_KEYS}
_KEYS.update({"s": "S", "n": "N", "b": "B", "sS": "SS", "nS": "NS", "bS": "BS", "m": "M", "l": "L",
              "bOOL": "BOOL", "nULL": "NULL", "nULLValue": "NULL"})

# Paths are built only for messages: a path is ``(parent_path, key)``, ``None`` at the top, with
# ``key`` an attribute name (str) or a list index (int).
_Path = tuple | None


def _path_str(parent: _Path, key: str | int) -> str:
    parts: list[str] = []
    while True:
        parts.append(f"[{key}]" if type(key) is int else f".{key}")
        if parent is None:
            break
        parent, key = parent
    parts.reverse()
    return "".join(parts)[1:]


def to_wire(item: dict) -> dict:
    """Return ``item`` in canonical wire format (a new dict), or raise :class:`WireError`.

    The message names the attribute by its path (``a.b`` inside maps, ``a[2]`` inside lists):
    ``unknown type key 'X' in attribute 'a.b'``.
    """
    if type(item) is not dict:
        raise WireError(f"item must be a JSON object, got {json_type(item)}")
    return _conv_map(item, None)


def _conv_map(m: dict, parent: _Path) -> dict:
    """An item or an M value, converted. Scalars inline; the rest (and every error) in _conv."""
    out = {}
    for name, d in m.items():
        if type(d) is dict and len(d) == 1:
            for k, v in d.items():
                pass
            c = _KEYS.get(k)
            if c == "S":
                if type(v) is str:
                    out[name] = d if k == "S" else {"S": v}
                    continue
            elif c == "N":
                if type(v) is str and is_number(v):
                    out[name] = d if k == "N" else {"N": v}
                    continue
            elif c == "BOOL":
                if type(v) is bool:
                    out[name] = d if k == "BOOL" else {"BOOL": v}
                    continue
            elif c == "M":
                if type(v) is dict:
                    out[name] = {"M": _conv_map(v, (parent, name))}
                    continue
            elif c == "L":
                if type(v) is list:
                    here = (parent, name)
                    out[name] = {"L": [_conv(x, here, i) for i, x in enumerate(v)]}
                    continue
            elif c == "NULL":
                if v is True:
                    out[name] = d if k == "NULL" else {"NULL": True}
                    continue
        out[name] = _conv(d, parent, name)
    return out


def convert_item(item: dict) -> dict:
    """``item`` itself when already canonical, else :func:`to_wire` of it."""
    if type(item) is dict and is_wire(item.values()):
        return item
    return to_wire(item)


def _fail(reason: str, parent: _Path, key: str | int) -> WireError:
    return WireError(f"{reason} in attribute {_q(_path_str(parent, key))}")


def _conv(d: Any, parent: _Path, key: str | int) -> dict:
    """One descriptor in canonical form (the same object when nothing changes)."""
    if type(d) is not dict:
        raise _fail(f"type descriptor must be an object with one key, got {json_type(d)}",
                    parent, key)
    if len(d) != 1:
        what = "an empty object" if not d else f"{len(d)} keys ({', '.join(map(repr, d))})"
        raise _fail(f"type descriptor must have exactly one key, got {what}", parent, key)
    ((k, v),) = d.items()  # the one (type key, value) pair
    c = _KEYS.get(k)
    if c is None:
        c = canonical_type_key(k)
        if c is None:
            raise _fail(f"unknown type key {_q(k)}", parent, key)
        _KEYS[k] = c
    tv = type(v)
    if c == "S":
        if tv is not str:
            raise _fail(f"{k} value must be a string, got {json_type(v)}", parent, key)
    elif c == "N":
        if tv is not str:
            raise _fail(f"{k} value must be a string, got {json_type(v)}", parent, key)
        if not is_number(v):
            raise _fail(f"invalid number {_short(v)}", parent, key)
    elif c == "M":
        if tv is not dict:
            raise _fail(f"{k} value must be an object, got {json_type(v)}", parent, key)
        return {"M": _conv_map(v, (parent, key))}
    elif c == "L":
        if tv is not list:
            raise _fail(f"{k} value must be an array, got {json_type(v)}", parent, key)
        here = (parent, key)
        return {"L": [_conv(sub, here, i) for i, sub in enumerate(v)]}
    elif c == "BOOL":
        if tv is not bool:
            raise _fail(f"{k} value must be true or false, got {json_type(v)}", parent, key)
    elif c == "NULL":
        if v is not True:
            raise _fail(f"{k} value must be true, got {_short(v)}", parent, key)
    elif c == "B":
        if tv is not str:
            raise _fail(f"{k} value must be a base64 string, got {json_type(v)}", parent, key)
        if not is_base64(v):
            raise _fail("invalid base64", parent, key)
    else:  # SS NS BS
        _check_set(c, k, v, parent, key)
    if k == c:
        return d
    return {c: v}


def _check_set(c: str, k: str, v: Any, parent: _Path, key: str | int) -> None:
    if type(v) is not list:
        raise _fail(f"{k} value must be an array of strings, got {json_type(v)}", parent, key)
    if not v:
        raise _fail(f"empty {k} set", parent, key)
    try:
        _join(v)
    except TypeError:
        bad = next(x for x in v if type(x) is not str)
        raise _fail(f"{k} value must be an array of strings, found {json_type(bad)}",
                    parent, key) from None
    if c == "NS":
        for x in v:
            if not is_number(x):
                raise _fail(f"invalid number {_short(x)} in {k} set", parent, key)
    elif c == "BS":
        if not all(map(is_base64, v)):
            raise _fail(f"invalid base64 in {k} set", parent, key)
    if len(v) > 1 and len(set(v)) != len(v):
        raise _fail(f"duplicate values in {k} set", parent, key)


def _short(v: Any, limit: int = 40) -> str:
    """A value as JSON (strings quoted), cut to ``limit`` characters, for messages."""
    try:
        s = orjson.dumps(v).decode()
    except TypeError:
        s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."
