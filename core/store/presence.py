"""Presence: which consoles are attached to the workspace now, and what each did last.

Pairing operators (a terminal and a browser of ``console --serve``, or two terminals) share one
workspace database, so that is where they see each other: each console has a row in ``consoles``
(schema step 9) that it registers once the workspace is open, beats about every second (one
``UPDATE`` by primary key) and deletes when it exits. A console killed without a word stops
beating: a row whose beat is older than :data:`STALE_S`, or whose process is gone on this host, is
not listed, and the next registration sweeps it away. Nothing here is a lock or a lease: presence
informs operators, it never refuses anything.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from .runs import process_exists
from .schema import utcnow
from .workspace import Workspace

__all__ = ["KINDS", "STALE_S", "SWEEP_S", "ConsolePresence", "attached", "beat", "register", "unregister"]

#: How a console is attached: a terminal, or a browser session of ``keyshift console --serve``.
KINDS = ("terminal", "browser")
#: A console whose last beat is older than this (seconds) is gone: five missed one-second beats.
STALE_S = 5.0
#: Rows older than this (seconds) are deleted when a console registers (only hidden before).
SWEEP_S = 3600.0


@dataclass(frozen=True)
class ConsolePresence:
    """One attached console, as the ``consoles`` table holds it (times in epoch seconds)."""

    id: int
    operator: str
    kind: str
    pid: int
    host: str
    started_at: str
    heartbeat_at: float
    last_action: str | None
    last_action_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return dict(self.__dict__)


def _gone(pid: int, host: str) -> bool:
    """Whether the process ``pid`` is known to be gone (only decidable on this host)."""
    return host == socket.gethostname() and not process_exists(pid)


def register(ws: Workspace, operator: str, kind: str, *, now: float | None = None) -> int:
    """Add this process's console (``kind`` one of :data:`KINDS`); returns its id for :func:`beat`.

    Rows nobody has beaten for :data:`SWEEP_S` are deleted on the way (consoles that were killed).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    now = time.time() if now is None else now
    with ws.transaction() as conn:
        conn.execute("DELETE FROM consoles WHERE heartbeat_at < ?", (now - SWEEP_S,))
        cursor = conn.execute(
            "INSERT INTO consoles(operator, kind, pid, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)",
            (operator, kind, os.getpid(), socket.gethostname(), utcnow(), now))
    return int(cursor.lastrowid)


def beat(ws: Workspace, console_id: int, operator: str, *, action: str | None = None,
         action_at: float | None = None, now: float | None = None) -> bool:
    """Beat ``console_id`` (one ``UPDATE``; the operator may have been named since, a browser's is
    asked after start), recording ``action`` as its last one when given. False: the row is gone
    (swept after a long suspension), and the caller registers again."""
    now = time.time() if now is None else now
    if action is None:
        cursor = ws.connect().execute("UPDATE consoles SET heartbeat_at = ?, operator = ? WHERE id = ?",
                                      (now, operator, console_id))
    else:
        cursor = ws.connect().execute(
            "UPDATE consoles SET heartbeat_at = ?, operator = ?, last_action = ?, last_action_at = ? WHERE id = ?",
            (now, operator, action, now if action_at is None else action_at, console_id))
    return cursor.rowcount == 1


def unregister(ws: Workspace, console_id: int) -> None:
    """This console leaves (on exit)."""
    ws.connect().execute("DELETE FROM consoles WHERE id = ?", (console_id,))


def attached(ws: Workspace, *, exclude: int | None = None, now: float | None = None) -> list[ConsolePresence]:
    """The consoles attached now, oldest first, without ``exclude`` (the asking console itself).

    A workspace not yet upgraded to the presence step (a read-only console on an older one) has
    nobody to show: an empty list, not an error.
    """
    now = time.time() if now is None else now
    try:
        rows = ws.connect().execute(
            "SELECT id, operator, kind, pid, host, started_at, heartbeat_at, last_action, last_action_at"
            " FROM consoles WHERE heartbeat_at >= ? ORDER BY id", (now - STALE_S,)).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    found = [ConsolePresence(*row) for row in rows]
    return [c for c in found if c.id != exclude and not _gone(c.pid, c.host)]
