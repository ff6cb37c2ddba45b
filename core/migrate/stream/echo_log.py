"""The workspace's write log: the :class:`~keyshift.core.kernel.echo.EchoLog` of the local replays.

Forward sync (``keyshift stream-sync``) and reverse sync (``stream-sync --reverse``) may run at the
same time, in two processes sharing one workspace. Each notes ``(table, key, digest)`` of every
write *before* it makes it (:meth:`WorkspaceEchoLog.note`); reading a record of its own source
table, each asks whether the record is the *other* direction's write
(:meth:`WorkspaceEchoLog.echoes`), which consumes the note. This module is the only writer of the
``echo_notes`` table (schema step 6). The race a service writing the same key creates, and why
no attribute is added to anyone's items, is in docs/design.md ("Reverse sync and echoes").

Notes are pruned after :data:`KEEP_S` (48 h: the stream keeps records 24 h, so an older note can
match nothing), and earlier by :meth:`WorkspaceEchoLog.expire`: once the reading direction has
read its stream to the tip past a note's time (plus :data:`SETTLE_S` for the record to appear), a
note it has not matched belongs to a write that made no stream record (the item was equal
already, or a delete of nothing) and would otherwise linger.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ...kernel.echo import DELETED, item_digest, key_json
from ...store.workspace import Workspace

__all__ = ["DIRECTIONS", "KEEP_S", "SETTLE_S", "WorkspaceEchoLog", "other_direction"]

#: The two directions of a replay.
DIRECTIONS = ("forward", "reverse")
#: How long a note is kept at most.
KEEP_S = 48 * 3600.0
#: How long after a write its stream record is surely readable (DynamoDB: well under a second).
SETTLE_S = 10.0
#: Prune old notes about once per this many seconds (a DELETE over the ``at`` index).
_PRUNE_EVERY_S = 60.0


def other_direction(direction: str) -> str:
    """``reverse`` for ``forward`` and the other way round."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    return "reverse" if direction == "forward" else "forward"


class WorkspaceEchoLog:
    """:class:`~keyshift.core.kernel.echo.EchoLog` on the workspace's SQLite (``echo_notes``)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._pruned = 0.0

    # -- the protocol ----------------------------------------------------------------------------
    def note(self, direction: str, table: str, writes: Iterable[tuple[str, str]]) -> None:
        """``direction`` is about to write ``writes`` (``(key_json, digest)``) into ``table``."""
        other_direction(direction)
        now = time.time()
        rows = [(direction, table, key, digest, now) for key, digest in writes]
        if not rows:
            return
        with self.ws.transaction() as conn:
            conn.executemany("INSERT INTO echo_notes(direction, tbl, key, digest, at) VALUES (?, ?, ?, ?, ?)", rows)
            if now - self._pruned > _PRUNE_EVERY_S:
                self._pruned = now
                conn.execute("DELETE FROM echo_notes WHERE at < ?", (now - KEEP_S,))

    def is_echo(self, direction: str, table: str, key: str, digest: str) -> bool:
        """Whether a record of ``table`` is the other direction's write (consumes the match)."""
        return self.echoes(direction, table, [(key, digest)])[0]

    # -- batched forms the local replay uses -----------------------------------------------------------
    def echoes(self, direction: str, table: str, records: list[tuple[str, str]]) -> list[bool]:
        """:meth:`is_echo` of many records of one page, in one transaction."""
        writer = other_direction(direction)
        out: list[bool] = []
        with self.ws.transaction() as conn:
            for key, digest in records:
                row = conn.execute("SELECT id FROM echo_notes WHERE tbl = ? AND key = ? AND digest = ? AND"
                                   " direction = ? ORDER BY id LIMIT 1", (table, key, digest, writer)).fetchone()
                if row is not None:
                    conn.execute("DELETE FROM echo_notes WHERE id = ?", (row[0],))
                out.append(row is not None)
        return out

    def expire(self, direction: str, table: str, before: float) -> int:
        """Drop the other direction's notes on ``table`` made before ``before`` (epoch seconds):
        ``direction`` has read ``table``'s stream to the tip past them, so they match no record."""
        writer = other_direction(direction)
        with self.ws.transaction() as conn:
            cur = conn.execute("DELETE FROM echo_notes WHERE tbl = ? AND direction = ? AND at < ?",
                               (table, writer, before - SETTLE_S))
        return cur.rowcount

    def pending(self, direction: str | None = None) -> int:
        """How many notes are waiting for their record (of one writer direction, or all)."""
        conn = self.ws.connect()
        if direction is None:
            return int(conn.execute("SELECT count(*) FROM echo_notes").fetchone()[0])
        return int(conn.execute("SELECT count(*) FROM echo_notes WHERE direction = ?", (direction,)).fetchone()[0])


def write_note(key: dict, item: dict | None) -> tuple[str, str]:
    """The note of one write: its key's :func:`key_json` and the item's digest (None: a delete)."""
    return key_json(key), item_digest(item) if item is not None else DELETED
