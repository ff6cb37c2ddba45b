"""Reverse sync's own pieces: where it starts, and what it must never replay.

``keyshift stream-sync --reverse`` is the same replay loop as forward sync
(:func:`~keyshift.core.migrate.stream.sync.run_stream_sync` with ``direction="reverse"``): it reads
the **new** table's stream and writes the **old** table through the inverse keymap
(:mod:`keyshift.core.kernel.reverse_records`). What differs is the start:

- forward starts at the trim horizon (design (a)); reverse starts where the flip happened:
  ``--from latest`` (records from this second on), ``--from <ISO timestamp>``, ``--from
  trim-horizon``, or a recorded ``{shard_id: sequence_number}`` map (:class:`StartPosition`
  ``positions``: ``AFTER_SEQUENCE_NUMBER`` on each named shard, the trim horizon on shards created
  since). A later run continues from the previous reverse run's checkpoints.
- ``ApproximateCreationDateTime`` is rounded **down** to the second, so a time start keeps every
  record of the start's whole second (it may replay up to one second of earlier writes: puts of
  the new table's state, harmless) rather than risk skipping one made just after it.
- it never replays the restore's own writes into the old table: records created before the last
  complete restore finished (its second included) are skipped as ``restore``
  (:func:`restore_floor`). Forward sync's writes are not replayed either: they are echoes
  (:mod:`.echo_log`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ...store import runs
from ...store.workspace import Workspace
from .source import StreamSyncError

__all__ = ["StartPosition", "parse_from", "positions_from_file", "restore_floor"]


@dataclass(frozen=True)
class StartPosition:
    """Where a reverse sync starts reading the new table's stream.

    ``mode``: ``trim-horizon``, ``latest``, ``timestamp`` (``at``: epoch seconds) or
    ``positions`` (``positions``: shard id -> the last sequence number *already applied*).
    """

    mode: str
    at: float | None = None
    positions: dict[str, str] = field(default_factory=dict)

    def skip_before(self, now: float | None = None) -> float | None:
        """Records whose creation second is before this are skipped (None: none are)."""
        if self.mode == "latest":
            return float(math.floor(time.time() if now is None else now))
        if self.mode == "timestamp" and self.at is not None:
            return float(math.floor(self.at))  # the stream's times are whole seconds, rounded down
        return None

    def describe(self) -> str:
        """For the run's ``origin`` and the audit log."""
        if self.mode == "timestamp":
            return f"from {datetime.fromtimestamp(self.at or 0, timezone.utc).isoformat(timespec='seconds')}"
        if self.mode == "positions":
            return f"from recorded positions ({len(self.positions)} shard(s))"
        return self.mode


def parse_from(value: str) -> StartPosition:
    """``latest``, ``trim-horizon`` or an ISO 8601 timestamp (``Z`` or an offset; naive is UTC)."""
    text = value.strip()
    if text in ("latest", "trim-horizon"):
        return StartPosition(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StreamSyncError(f"--from {value!r}: expected latest, trim-horizon or an ISO 8601 timestamp"
                              " such as 2026-05-01T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return StartPosition("timestamp", at=when.timestamp())


def positions_from_file(path: str | Path) -> StartPosition:
    """A recorded ``{shard_id: sequence_number}`` map (JSON) as a start; errors name the file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StreamSyncError(f"{path}: cannot read stream positions: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("positions"), dict):
        doc = doc["positions"]  # a document that carries them under "positions"
    if not isinstance(doc, dict) or not doc or not all(
            isinstance(k, str) and isinstance(v, str) and v.isdigit() for k, v in doc.items()):
        raise StreamSyncError(f"{path}: expected a JSON object of shard id -> sequence number (digits)")
    return StartPosition("positions", positions=dict(doc))


def restore_floor(ws: Workspace) -> float | None:
    """Epoch seconds before which the new table's stream may hold the restore's own writes: the
    second after the last complete restore finished (workspace times have one-second resolution).
    None when no restore completed (an ImportTable writes no stream records: its stream is enabled
    after the import)."""
    restore = runs.latest(ws, "restore", complete=True)
    if restore is None or not restore.finished_at:
        return None
    finished = datetime.fromisoformat(restore.finished_at)
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=timezone.utc)
    return math.floor(finished.timestamp()) + 1.0
