"""Cheap marks of what other consoles changed, for a console to poll every second.

Each mark is one small query whose answer changes exactly when something worth re-reading did:
comparing it with the previous answer is how a console notices another console's (or the CLI's)
work without re-reading the state itself. Decisions have their own mark
(:func:`keyshift.core.resolve.decisions.latest_decision_id`).
"""

from __future__ import annotations

from typing import Any

from .workspace import Workspace

__all__ = ["PROGRESS_BUCKET_S", "flag_mark", "runs_mark"]

#: Another process's run progressing changes the runs mark at most this often (seconds): its
#: heartbeat moves with every checkpoint, and re-reading the screens on each would be wasteful.
PROGRESS_BUCKET_S = 2.0


def runs_mark(ws: Workspace) -> tuple[Any, ...]:
    """Changes when a run starts, changes state, finishes, or progresses (at most every
    :data:`PROGRESS_BUCKET_S`), whichever process runs it. Not only other processes': two consoles
    may share one (the Pilot tests do), and a console's own runs make it re-read what is current
    anyway. The ledger holds tens of rows: one scan of it."""
    row = ws.connect().execute(
        "SELECT max(id), total(CASE WHEN state IN ('running', 'paused') THEN id END),"
        " count(finished_at), max(finished_at), CAST(max(heartbeat) / ? AS INTEGER) FROM runs",
        (PROGRESS_BUCKET_S,)).fetchone()
    return tuple(row)


def flag_mark(ws: Workspace) -> int:
    """The newest ``flag.*`` audit entry's id (0: none): every flip, init, approval or refusal made
    through keyshift, console or CLI, writes one. Read from the ``audit_action`` index."""
    row = ws.connect().execute(
        "SELECT max(id) FROM audit WHERE action >= 'flag.' AND action < 'flag/'").fetchone()
    return int(row[0] or 0)
