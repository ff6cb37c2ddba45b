"""Telling a sync's own writes apart from everyone else's, without touching anyone's items.

Forward sync writes the old table's changes into the new table; reverse sync writes the new
table's changes into the old one. Run both at once (services that have not switched yet still
write the old table after a flip) and each would read the other's writes back off its stream and
replay them: at best a wasted write, at worst an older version overwriting a newer one. Marking
the items is not allowed (services read them and verify compares them exactly), so each
direction keeps a **write log** instead: before it writes, it records ``(table, key, digest)``
of every put or delete it is about to make. The other direction, reading a stream record of that
table, computes the same ``(key, digest)`` from the record (the new image, or ``REMOVE``); a
match is an echo: it is consumed and skipped.

Two implementations share the :class:`EchoLog` protocol: the workspace's (SQLite, for the local
replays, :mod:`keyshift.core.migrate.stream.echo_log`) and a DynamoDB table named in the keymap
artifact (``migration.echo_table``) for the Lambda handlers. :class:`MemoryEchoLog` is the
reference semantics, used by tests. The standard library only: the Lambda imports this.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Iterable, Protocol

__all__ = ["DELETED", "EchoLog", "MemoryEchoLog", "NoEchoLog", "item_digest", "key_json"]

#: The digest of a delete (no image).
DELETED = "REMOVE"


def _canon(value: Any) -> Any:
    """A wire value with every set's members sorted (maps and lists walked): sets have no order,
    and the stream may give members in another order than the request had them."""
    if type(value) is not dict or len(value) != 1:
        return value
    (kind, inner), = value.items()
    if kind == "M" and type(inner) is dict:
        return {"M": {k: _canon(v) for k, v in inner.items()}}
    if kind == "L" and type(inner) is list:
        return {"L": [_canon(v) for v in inner]}
    if kind in ("SS", "NS", "BS") and type(inner) is list:
        return {kind: sorted(_text(v) for v in inner)}
    if kind == "B":
        return {"B": _text(inner)}
    return value


def _text(value: Any) -> Any:
    # Binary arrives as base64 text in Lambda events and dumps, as bytes from boto3: one form.
    if isinstance(value, (bytes, bytearray, memoryview)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def key_json(key: dict[str, Any]) -> str:
    """The canonical text of a table key (attribute name -> wire value), for logs and lookups."""
    return json.dumps({k: _canon(v) for k, v in key.items()}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def item_digest(item: dict[str, Any] | None) -> str:
    """The digest of a whole item as written or as a stream's new image shows it (None: a delete)."""
    if item is None:
        return DELETED
    text = json.dumps({k: _canon(v) for k, v in item.items()}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EchoLog(Protocol):
    """Where one direction notes its writes and the other checks records against them."""

    def note(self, direction: str, table: str, writes: Iterable[tuple[str, str]]) -> None:
        """``direction`` (``forward`` or ``reverse``) is about to write ``writes``
        (``(key_json, item_digest)`` pairs) into ``table``. Called *before* the write, so a crash
        between the two leaves a note that matches nothing, never a write without its note."""

    def is_echo(self, direction: str, table: str, key: str, digest: str) -> bool:
        """Whether a record of ``table`` with ``key`` and ``digest`` is a write that the
        *other* direction than ``direction`` made; a match is consumed (it echoes once)."""


class MemoryEchoLog:
    """The reference semantics, in memory (tests, and one process running both directions)."""

    def __init__(self) -> None:
        self._notes: dict[tuple[str, str, str, str], int] = {}
        self._lock = threading.Lock()

    def note(self, direction: str, table: str, writes: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            for key, digest in writes:
                k = (direction, table, key, digest)
                self._notes[k] = self._notes.get(k, 0) + 1

    def is_echo(self, direction: str, table: str, key: str, digest: str) -> bool:
        other = "reverse" if direction == "forward" else "forward"
        k = (other, table, key, digest)
        with self._lock:
            n = self._notes.get(k, 0)
            if not n:
                return False
            if n == 1:
                del self._notes[k]
            else:
                self._notes[k] = n - 1
            return True


class NoEchoLog:
    """One direction alone: nothing is ever an echo, nothing needs noting."""

    def note(self, direction: str, table: str, writes: Iterable[tuple[str, str]]) -> None:
        return None

    def is_echo(self, direction: str, table: str, key: str, digest: str) -> bool:
        return False
