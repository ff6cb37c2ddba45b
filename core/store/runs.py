"""The run ledger: every restore, import, stream sync and verify, how far it got, how it ended.

One module owns the ``runs`` and ``checkpoints`` tables; every step writes its runs through it and
every reader (the CLI, the console, the cut-over gates) reads them back as a typed :class:`Run`.

* A run has a ``kind`` (:data:`KINDS`), a ``state`` (:data:`STATES`), the keymap version it
  applies, its parameters, a heartbeat (epoch seconds of its last write: a run that says
  ``running`` with a stale heartbeat has died without saying so) and, once finished, its summary
  (the command's ``--json`` document).
* A run's progress is a set of *units* (a dump file, a scan segment, a stream shard, or a named
  bookkeeping unit such as ``_counters``), each with a JSON ``position``, a ``done`` flag and JSON
  ``counters``. A step saves the units it advanced together with whatever else must commit with
  them, in one transaction of its own (the write functions take the transaction's connection).

Writes take a connection inside the caller's ``with ws.transaction() as conn:`` block; reads take
the workspace.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .schema import utcnow
from .workspace import Workspace

__all__ = [
    "FINAL_STATES",
    "KINDS",
    "STALE_S",
    "STATES",
    "Run",
    "Unit",
    "checkpoint",
    "completed_ids",
    "drop_units",
    "finish",
    "get",
    "latest",
    "reopen",
    "resumable",
    "set_params",
    "set_state",
    "start",
]

#: Every kind of run.
KINDS = ("restore", "import", "stream-sync", "verify", "reverse-sync")  # reverse-sync: stream-sync --reverse
#: Every state: ``running`` and ``paused`` are under way; the others say how a run ended.
#: ``stopped`` is a clean stop by its driver (stream sync's follow mode); ``failed`` and
#: ``cancelled`` runs of restore and verify can be resumed.
STATES = ("running", "paused", "complete", "failed", "cancelled", "stopped")
#: States a run ends in.
FINAL_STATES = ("complete", "failed", "cancelled", "stopped")
#: A running run whose heartbeat is older than this is presumed dead (killed, machine lost).
STALE_S = 30.0

_KEEP: Any = object()  # "leave this column as it is"


@dataclass(frozen=True)
class Unit:
    """How far one unit of a run got: ``position`` (JSON: lines done, LastEvaluatedKey, a sequence
    number…), ``done`` once it is finished, and its ``counters``."""

    name: str
    position: Any = None
    done: bool = False
    counters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """One run of one step, as the ledger holds it."""

    id: int
    kind: str
    state: str
    operator: str
    keymap: str | None
    params: Mapping[str, Any]
    summary: Mapping[str, Any] | None
    started_at: str
    finished_at: str | None
    heartbeat: float | None
    units: Mapping[str, Unit] = field(default_factory=dict)
    owner: Mapping[str, Any] | None = None  # {"host", "pid"} of the process that runs it

    @property
    def finished(self) -> bool:
        """Whether the run has ended (in any way)."""
        return self.state in FINAL_STATES

    def alive(self, now: float | None = None) -> bool:
        """Running (or paused), and its process still there.

        On the machine that runs it, the process itself is asked (a SIGKILLed run is known dead at
        once, so it can be resumed at once); elsewhere, a heartbeat fresher than :data:`STALE_S`.
        """
        if self.state not in ("running", "paused"):
            return False
        owner = self.owner or {}
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            return process_exists(owner["pid"])
        now = time.time() if now is None else now
        return self.heartbeat is not None and now - self.heartbeat < STALE_S

    def unit(self, name: str) -> Unit | None:
        """One unit, or None when the run has none by that name."""
        return self.units.get(name)

    @property
    def counters(self) -> Mapping[str, Any]:
        """The run's own ``_counters`` unit (what it has done so far), empty when it has none."""
        unit = self.units.get("_counters")
        return unit.counters if unit is not None else {}

    @property
    def totals(self) -> Mapping[str, Any]:
        """What the run did: its summary once finished, else its last saved counters."""
        return self.summary or self.counters

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for ``--json`` output and the audit log."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "operator": self.operator,
                "keymap": self.keymap, "params": dict(self.params),
                "summary": dict(self.summary) if self.summary is not None else None,
                "started_at": self.started_at, "finished_at": self.finished_at, "heartbeat": self.heartbeat,
                "owner": dict(self.owner) if self.owner else None,
                "units": {n: {"position": u.position, "done": u.done, "counters": dict(u.counters)}
                          for n, u in self.units.items()}}


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (ours always does; another user's does too)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def _owner() -> str:
    """This process, as a run's owner."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid()})


# -- writes (inside the caller's transaction) -------------------------------------------------------
def start(conn: Any, kind: str, *, operator: str, keymap: str | None, params: Mapping[str, Any],
          units: Iterable[str] = ()) -> int:
    """Open a new run in state ``running`` (with empty ``units``); returns its id."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    cur = conn.execute(
        "INSERT INTO runs(kind, state, operator, keymap, params, started_at, heartbeat, owner)"
        " VALUES (?, 'running', ?, ?, ?, ?, ?, ?)",
        (kind, operator, keymap, json.dumps(dict(params), default=str), utcnow(), time.time(), _owner()))
    run_id = int(cur.lastrowid)
    conn.executemany("INSERT INTO checkpoints(run_id, unit) VALUES (?, ?)", [(run_id, u) for u in units])
    return run_id


def reopen(conn: Any, run_id: int) -> None:
    """Mark an interrupted run ``running`` again (a resume continues it under its own id)."""
    conn.execute("UPDATE runs SET state = 'running', finished_at = NULL, heartbeat = ?, owner = ? WHERE id = ?",
                 (time.time(), _owner(), run_id))


def checkpoint(conn: Any, run_id: int, unit: str, *, position: Any = _KEEP, done: Any = _KEEP,
               counters: Any = _KEEP) -> None:
    """Save how far ``unit`` got (only the fields given), and beat the run's heartbeat."""
    conn.execute("INSERT INTO checkpoints(run_id, unit) VALUES (?, ?) ON CONFLICT(run_id, unit) DO NOTHING",
                 (run_id, unit))
    sets, args = [], []
    if position is not _KEEP:
        sets.append("position = ?")
        args.append(json.dumps(position, default=str))
    if done is not _KEEP:
        sets.append("done = ?")
        args.append(int(bool(done)))
    if counters is not _KEEP:
        sets.append("counters = ?")
        args.append(json.dumps(dict(counters), default=str))
    if sets:
        conn.execute(f"UPDATE checkpoints SET {', '.join(sets)} WHERE run_id = ? AND unit = ?",
                     (*args, run_id, unit))
    conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))


def drop_units(conn: Any, run_id: int, prefix: str) -> None:
    """Forget every unit whose name starts with ``prefix`` (a replay starting over)."""
    conn.execute("DELETE FROM checkpoints WHERE run_id = ? AND substr(unit, 1, ?) = ?",
                 (run_id, len(prefix), prefix))


def set_state(conn: Any, run_id: int, state: str) -> None:
    """Change a run's state (a final state also sets ``finished_at``); beats the heartbeat."""
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}")
    finished = utcnow() if state in FINAL_STATES else None
    conn.execute("UPDATE runs SET state = ?, finished_at = ?, heartbeat = ? WHERE id = ?",
                 (state, finished, time.time(), run_id))


def set_params(conn: Any, run_id: int, params: Mapping[str, Any]) -> None:
    """Replace a run's parameters (what it was started with, and what it has learnt since)."""
    conn.execute("UPDATE runs SET params = ? WHERE id = ?", (json.dumps(dict(params), default=str), run_id))


def finish(conn: Any, run_id: int, state: str, summary: Mapping[str, Any]) -> None:
    """End a run in ``state`` with its summary (the command's ``--json`` document). A state that
    is not final (``paused``: an import DynamoDB goes on with) records the summary so far."""
    set_state(conn, run_id, state)
    conn.execute("UPDATE runs SET summary = ? WHERE id = ?",
                 (json.dumps(dict(summary), ensure_ascii=True, default=str), run_id))


# -- reads -----------------------------------------------------------------------------------------
_COLUMNS = "id, kind, state, operator, keymap, params, summary, started_at, finished_at, heartbeat, owner"


def _run(conn: Any, row: Any) -> Run:
    units = {
        name: Unit(name, json.loads(position) if position else None, bool(done), json.loads(counters or "{}"))
        for name, position, done, counters in conn.execute(
            "SELECT unit, position, done, counters FROM checkpoints WHERE run_id = ? ORDER BY unit", (row[0],))
    }
    return Run(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"),
               json.loads(row[6]) if row[6] else None, row[7], row[8], row[9], units,
               json.loads(row[10]) if row[10] else None)


def latest(ws: Workspace | Any, kind: str, *, unfinished: bool = False, complete: bool = False) -> Run | None:
    """The newest run of ``kind`` (None: never run). ``unfinished``: the newest that has not
    completed (what a resume continues); ``complete``: the newest that has."""
    conn = ws.connect() if isinstance(ws, Workspace) else ws
    where = "kind = ?"
    if unfinished:
        where += " AND state != 'complete'"
    if complete:
        where += " AND state = 'complete'"
    row = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE {where} ORDER BY id DESC LIMIT 1", (kind,)).fetchone()
    return _run(conn, row) if row is not None else None


def resumable(ws: Workspace | Any, kind: str, keymap: str) -> tuple[Run | None, str | None]:
    """The newest unfinished run of ``kind`` and why it cannot be resumed under ``keymap`` (None:
    it can). Restore and verify resume only with the keymap they started with, and never a run
    whose process is still alive."""
    run = latest(ws, kind, unfinished=True)
    if run is None:
        return None, f"there is no interrupted {kind} to resume"
    if run.keymap != keymap:
        return run, (f"the interrupted {kind} (run {run.id}) used keymap {run.keymap}, the workspace now"
                     f" builds {keymap}: resuming would mix two mappings; start a new {kind} instead")
    if run.alive():
        return run, f"{kind} run {run.id} is still running (its process is alive)"
    return run, None


def get(ws: Workspace | Any, run_id: int) -> Run | None:
    """One run by id."""
    conn = ws.connect() if isinstance(ws, Workspace) else ws
    row = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return _run(conn, row) if row is not None else None


def completed_ids(ws: Workspace | Any, kind: str) -> set[int]:
    """Ids of the runs of ``kind`` that completed (compared by id, not time: workspace timestamps
    have one-second resolution)."""
    conn = ws.connect() if isinstance(ws, Workspace) else ws
    return {r[0] for r in conn.execute("SELECT id FROM runs WHERE kind = ? AND state = 'complete'", (kind,))}
