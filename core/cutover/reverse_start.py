"""Where a first reverse sync starts when the operator names no start: the flip to ``new``.

Reverse sync must replay every write made on the new table since services switched to it. The
flip itself recorded, in the flag's history, both tables' stream positions read no later than the
moment it committed (:func:`keyshift.core.cutover.flag.commit_flip`), so starting *after* the new
table's recorded positions misses nothing and replays nothing older than the flip. Starting "from
this second on" instead, as the console once did, silently loses every write made between the flip
and the moment someone started reverse sync: exactly the window a flip back needs.

Only the newest flip *to* ``new`` counts: a later flip back to ``old`` does not move the start
(writes made on the new table while it was the source of truth still have to go back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..migrate.stream.reverse import StartPosition
from .control_table import HistoryEntry, table_status
from .flag import flag_history

__all__ = ["FlipStart", "flip_start", "unnamed_start"]


@dataclass(frozen=True)
class FlipStart:
    """The start a flip recorded: the flip's history entry and the new table's positions."""

    entry: HistoryEntry
    start: StartPosition

    def describe(self) -> str:
        """One line for a confirmation or a CLI warning."""
        shards = len(self.start.positions)
        where = (f"after the positions recorded at the flip ({shards} shard{'s' if shards != 1 else ''})"
                 if shards else "from the trim horizon (the new table's stream had no record at the flip)")
        return (f"from flag version {self.entry.version}'s flip to new by {self.entry.operator or 'someone'}"
                f" at {self.entry.at}: {where}")


def flip_start(ddb: Any, spec: Any) -> FlipStart | None:
    """The newest flip to ``new`` in the spec's control table, as a reverse-sync start.

    None when there is no control table, no flag, or no flip to ``new`` yet (then the caller must
    ask for a start: there is nothing that says when writes went to the new table).
    """
    control = getattr(spec, "control", None)
    if control is None or not getattr(control, "flag", "") or table_status(ddb, control.table) is None:
        return None
    try:
        history = flag_history(ddb, control.table, control.flag)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    for entry in reversed(history):  # oldest first: the newest flip to new is the last one
        if entry.to_state == "new":
            recorded = entry.positions.get("new") if isinstance(entry.positions, dict) else None
            positions = {str(k): str(v) for k, v in (recorded or {}).items() if str(v).isdigit()}
            return FlipStart(entry, StartPosition("positions", positions=positions))
    return None


def unnamed_start(ws: Any, ddb: Any, spec: Any) -> tuple[str, FlipStart | None]:
    """Where a reverse run that names no start begins, for the CLI and the console alike.

    ``("checkpoint", None)``: the previous reverse run's checkpoint continues; ``("flip", found)``:
    a first run, after the positions the flip to new recorded; ``("none", None)``: a first run
    with no flip to new recorded (the caller picks a start or asks for one).
    """
    from ..migrate.stream.sync import latest_stream_sync

    previous = latest_stream_sync(ws, "reverse")
    if previous is not None and previous.units:
        return "checkpoint", None
    found = flip_start(ddb, spec)
    return ("flip", found) if found is not None else ("none", None)
