"""The one line a finished run posts as a notification: its kind, how it ended, and its counts.

An operator often is on another screen when a restore or a verify ends; the notification is how
they learn it, so it carries the numbers they would otherwise open the screen for
("restore finished: 2,000 written, 12 skipped"). A failed or refused run gets no line here: the
App's error modal says why. Pure: the App calls :func:`finished_note` on each :class:`RunFinished`.
"""

from __future__ import annotations

from typing import Any

from keyshift.core.text.plural import count

from .runs import PLAN, RESTORE, STREAM_SYNC, VERIFY

__all__ = ["finished_note"]

_NAMES = {PLAN: "plan", RESTORE: "restore", VERIFY: "verify", STREAM_SYNC: "stream sync"}


def finished_note(kind: str, outcome: str, summary: dict[str, Any] | None) -> str | None:
    """What to notify when a ``kind`` run ended with ``outcome`` (None: the error modal speaks)."""
    name = _NAMES.get(kind, kind)
    if outcome in ("failed", "refused"):
        return None
    if outcome == "declined":
        return "nothing started"
    if outcome == "cancelled":
        return f"{name} cancelled: its checkpoint is kept, resume it from its screen" if kind != PLAN \
            else "plan cancelled: plan again to get a complete plan"
    s = summary or {}
    if kind == PLAN:
        counts = [count(int(s.get("records", 0)), "record"), f"{int(s.get('quarantined', 0)):,} quarantined"]
    elif kind == RESTORE:
        counts = [f"{int(s.get('written', 0)):,} written", f"{int(s.get('skipped', 0)):,} skipped"]
        if s.get("dropped_by_decision"):
            counts.append(f"{int(s['dropped_by_decision']):,} dropped by decision")
        if s.get("unreadable"):
            counts.append(f"{int(s['unreadable']):,} unreadable")
    elif kind == VERIFY:
        differences = sum(int(s.get(k, 0)) for k in ("missing", "extra", "different"))
        counts = ["equal" if s.get("equal") else count(differences, "difference"),
                  f"{int(s.get('compared', 0)):,} compared"]
        if s.get("recorded") is False:
            counts.append("not recorded: read-only")
    elif kind == STREAM_SYNC:
        skipped = sum((s.get("skipped") or {}).values())
        counts = [count(int(s.get("puts", 0)), "put"), count(int(s.get("deletes", 0)), "delete"),
                  f"{skipped:,} skipped"]
        if s.get("held"):
            counts.append(f"{int(s['held']):,} held")
    else:
        counts = []
    how = "stopped" if outcome == "stopped" else "finished"
    return f"{name} {how}: {', '.join(counts)}" if counts else f"{name} {how}"
