"""Where the migration stands, computed from the workspace: each step done, running, blocked,
ready or not started, why, and the console action that moves it on.

The overview shows this instead of fixed text, so what it says changes as soon as the state does
(a decision, a keymap build, a run ending in another console or the CLI). :func:`read_facts` does
the I/O (a handful of cheap SQLite reads, no AWS); :func:`steps` is pure, so every state has a unit
test without a workspace. ``next`` names an action of the console's action table
(``keyshift.screens.actions``; a test checks every id exists there) and never a CLI flag: an
operator in the console is told what to press, not what to type in another shell.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .store import runs
from .store.workspace import Workspace
from .text.plural import count

__all__ = ["STATES", "Facts", "RunFacts", "StepStatus", "next_step", "read_facts", "read_status", "steps"]

#: Every state a step can be in.
STATES = ("done", "running", "blocked", "ready", "not-started")

# The console actions ``next`` may name (ids of keyshift.screens.actions.ACTIONS; core cannot import
# the screens, so the test suite holds the two lists together).
PLAN, QUEUE, KEYMAP, RESTORE, SYNC, VERIFY, CUTOVER = (
    "plan", "open_queue", "open_keymap", "open_restore", "open_stream_sync", "open_verify", "open_cutover")


@dataclass(frozen=True)
class StepStatus:
    """One step: ``key`` (plan, resolve, keymap, restore, stream-sync, verify, cutover), its state,
    one sentence saying why, and the console action to take next (None: nothing to press)."""

    key: str
    name: str
    state: str
    why: str
    next: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {"step": self.key, "name": self.name, "state": self.state, "why": self.why, "next": self.next}


@dataclass(frozen=True)
class RunFacts:
    """What the status needs of one run of the ledger."""

    state: str
    alive: bool = False
    keymap: str | None = None
    summary: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, run: runs.Run | None, now: float | None = None) -> RunFacts | None:
        """The facts of ``run`` (None stays None)."""
        if run is None:
            return None
        return cls(run.state, run.alive(now), run.keymap, dict(run.summary) if run.summary else None)

    @property
    def under_way(self) -> bool:
        """Running or paused, and its process still there."""
        return self.state in ("running", "paused") and self.alive

    @property
    def died(self) -> bool:
        """Says running, but nothing runs it any more (killed, machine lost)."""
        return self.state in ("running", "paused") and not self.alive


@dataclass(frozen=True)
class Facts:
    """Everything the steps are computed from (read by :func:`read_facts`)."""

    plan_state: str | None = None  # None: never planned
    plan_summary: Mapping[str, Any] = field(default_factory=dict)
    #: Cases by kind: how many there are and how many are still open (decided and moot ones are not).
    cases: Mapping[str, int] = field(default_factory=dict)
    open_cases: Mapping[str, int] = field(default_factory=dict)
    keymap_version: str | None = None  # the newest build
    keymap_summary: Mapping[str, Any] = field(default_factory=dict)
    keymap_stale: bool = False  # a decision or a plan is newer than the newest build
    restore: RunFacts | None = None
    stream_sync: RunFacts | None = None
    reverse_sync: RunFacts | None = None
    verify: RunFacts | None = None
    flag: str | None = None  # the flag's state as the workspace's audit log last recorded it

    @property
    def blocking_open(self) -> dict[str, int]:
        """Open cases that keep the keymap from being built (an open unmapped case holds only its
        stream records, so it blocks nothing)."""
        return {k: n for k, n in self.open_cases.items() if n and k != "unmapped"}


def _open_list(open_cases: Mapping[str, int]) -> str:
    """``3 ambiguous, 1 conflict, 2 suspicious`` (kinds in a fixed order, zeros left out)."""
    order = ("ambiguous", "orphaned", "invalid", "conflict", "suspicious", "unmapped")
    kinds = sorted((k for k, n in open_cases.items() if n), key=lambda k: (order.index(k) if k in order else 99, k))
    return ", ".join(f"{open_cases[k]:,} {k}" for k in kinds)


def _plan(f: Facts) -> StepStatus:
    name = "Plan"
    if f.plan_state is None:
        return StepStatus("plan", name, "not-started", "no plan yet: read a dump and classify its records", PLAN)
    if f.plan_state == "running":
        return StepStatus("plan", name, "running", "a plan is reading the dump")
    if f.plan_state != "complete":
        return StepStatus("plan", name, "blocked", f"the last plan {f.plan_state}: plan the dump again", PLAN)
    s = f.plan_summary
    return StepStatus("plan", name, "done", f"{count(int(s.get('records', 0)), 'record')} classified, "
                      f"{int(s.get('quarantined', 0)):,} quarantined")


def _resolve(f: Facts) -> StepStatus:
    name = "Resolve"
    if f.plan_state != "complete":
        return StepStatus("resolve", name, "not-started", "waits for a complete plan")
    total, still = sum(f.cases.values()), sum(f.open_cases.values())
    if total == 0:
        return StepStatus("resolve", name, "done", "nothing to decide: the rules settled every identifier")
    if still == 0:
        return StepStatus("resolve", name, "done", f"all {count(total, 'case')} decided")
    state = "running" if still < total else "ready"
    return StepStatus("resolve", name, state, f"{count(still, 'open case')} of {total:,}: {_open_list(f.open_cases)}",
                      QUEUE)


def _keymap(f: Facts) -> StepStatus:
    name = "Keymap"
    if f.plan_state != "complete":
        return StepStatus("keymap", name, "not-started", "waits for a complete plan")
    blocking = f.blocking_open
    if blocking:
        n = sum(blocking.values())
        # The kinds are the resolve step's to list; here the count says enough.
        return StepStatus("keymap", name, "blocked", f"{count(n, 'open case')} must be decided first", QUEUE)
    if f.keymap_version is None:
        return StepStatus("keymap", name, "ready", "nothing blocks it: build the keymap", KEYMAP)
    if f.keymap_stale:
        return StepStatus("keymap", name, "ready", f"decisions changed since version {f.keymap_version}: "
                          "build it again", KEYMAP)
    entries = int(f.keymap_summary.get("entries", 0))
    return StepStatus("keymap", name, "done", f"version {f.keymap_version}: {count(entries, 'entry')}")


def _restore(f: Facts) -> StepStatus:
    name, run = "Restore", f.restore
    if f.plan_state != "complete":
        return StepStatus("restore", name, "not-started", "waits for a complete plan")
    if run is not None and run.under_way:
        return StepStatus("restore", name, "running", "paused" if run.state == "paused" else "writing the new table",
                          RESTORE)
    if run is not None and run.died:
        return StepStatus("restore", name, "blocked", "the last restore stopped responding (killed?): resume it",
                          RESTORE)
    if run is not None and run.state == "complete":
        written = int((run.summary or {}).get("written", 0))
        # Only a fresh build says what the keymap is now (the same plan and decisions give the same
        # version); a stale one says nothing about the restore.
        if f.keymap_version is not None and not f.keymap_stale and run.keymap not in (None, f.keymap_version):
            return StepStatus("restore", name, "ready", f"written with keymap {run.keymap}; the keymap is now "
                              f"{f.keymap_version}: restore again", RESTORE)
        return StepStatus("restore", name, "done", f"{count(written, 'item')} written")
    if run is not None:  # cancelled or failed: its checkpoint is kept
        return StepStatus("restore", name, "ready", f"the last restore {run.state}: resume it from its checkpoint",
                          RESTORE)
    keymap = _keymap(f)
    if keymap.state == "blocked":
        return StepStatus("restore", name, "blocked", "open cases: decide them, or restore skipping their items",
                          QUEUE)
    if keymap.state != "done":
        return StepStatus("restore", name, "not-started", "build the keymap first (restore writes with it)", KEYMAP)
    return StepStatus("restore", name, "ready", f"write transform(dump) with keymap {f.keymap_version}", RESTORE)


def _stream_sync(f: Facts) -> StepStatus:
    name, run = "Stream-sync", f.stream_sync
    if run is not None and run.under_way:
        return StepStatus("stream-sync", name, "running", "replaying the old table's stream", SYNC)
    if run is not None and run.died:
        return StepStatus("stream-sync", name, "blocked", "the last stream sync stopped responding: start it again",
                          SYNC)
    if run is not None and run.state == "failed":
        return StepStatus("stream-sync", name, "blocked", "the last stream sync failed: see why and start it again",
                          SYNC)
    if run is not None and run.state in ("complete", "stopped"):
        return StepStatus("stream-sync", name, "done", "caught up" if run.state == "complete" else
                          "stopped after following the stream; start it again to keep the new table current", SYNC)
    if run is not None:
        return StepStatus("stream-sync", name, "ready", f"the last stream sync {run.state}: start it again", SYNC)
    if f.restore is None:
        return StepStatus("stream-sync", name, "not-started", "after the restore has started", None)
    return StepStatus("stream-sync", name, "ready", "replay what changed in the old table since the dump", SYNC)


def _verify(f: Facts) -> StepStatus:
    name, run = "Verify", f.verify
    if run is not None and run.under_way:
        return StepStatus("verify", name, "running", "comparing the tables", VERIFY)
    if run is not None and run.state == "complete":
        s = run.summary or {}
        if s.get("equal"):
            return StepStatus("verify", name, "done", "the new table equals transform(old table)")
        n = sum(int(s.get(k, 0)) for k in ("missing", "extra", "different"))
        return StepStatus("verify", name, "blocked", f"{count(n, 'difference')} found: look at them, sync, "
                          "and verify again", VERIFY)
    if run is not None:
        state = "not responding" if run.died else run.state
        return StepStatus("verify", name, "ready", f"the last verify {state}: resume it", VERIFY)
    restore = _restore(f)
    if restore.state not in ("done", "ready") or f.restore is None or f.restore.state != "complete":
        return StepStatus("verify", name, "not-started", "after a complete restore")
    return StepStatus("verify", name, "ready", "compare the new table with transform(old table)", VERIFY)


def _cutover(f: Facts) -> StepStatus:
    name = "Cut over"
    reverse = f.reverse_sync is not None and f.reverse_sync.under_way
    if f.flag == "new":
        why = "the flag says new" + ("; reverse sync keeps the old table current" if reverse else
                                     "; start reverse sync so a flip back loses nothing")
        return StepStatus("cutover", name, "done", why, CUTOVER if not reverse else None)
    verify = _verify(f)
    if verify.state != "done":
        return StepStatus("cutover", name, "not-started", "after verify says equal")
    if f.flag == "old" and reverse:
        return StepStatus("cutover", name, "ready", "flipped back to old; reverse sync still runs", CUTOVER)
    return StepStatus("cutover", name, "ready", "verify says equal: flip the flag to new", CUTOVER)


def steps(facts: Facts) -> list[StepStatus]:
    """Every step of the migration, in order, from ``facts``."""
    return [rule(facts) for rule in (_plan, _resolve, _keymap, _restore, _stream_sync, _verify, _cutover)]


def next_step(statuses: list[StepStatus]) -> StepStatus | None:
    """The first step that is not done and has something to press (None: nothing left to do)."""
    for status in statuses:
        if status.state != "done" and status.next is not None:
            return status
    return None


# -- reading the workspace -------------------------------------------------------------------------
def _cases(conn: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Cases by kind, and the open ones by kind (the decision in force is each case's newest; an
    ``undo`` reopens it; a moot case is closed)."""
    rows = conn.execute(
        "SELECT c.kind, count(*), coalesce(sum(c.moot IS NULL AND (d.action IS NULL OR d.action = 'undo')), 0)"
        " FROM cases c LEFT JOIN decisions d ON d.id = (SELECT max(id) FROM decisions WHERE case_id = c.id)"
        " GROUP BY c.kind").fetchall()
    return {r[0]: int(r[1]) for r in rows}, {r[0]: int(r[2]) for r in rows}


def _flag(conn: Any) -> str | None:
    """The flag's state as the newest flip (or approved flip) recorded in this workspace says."""
    row = conn.execute("SELECT action, details FROM audit WHERE action IN ('flag.flip', 'flag.approve', 'flag.init')"
                       " ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return None
    if row[0] == "flag.init":
        return "old"  # a new flag starts on the old table
    return json.loads(row[1] or "{}").get("to")


def read_facts(ws: Workspace, now: float | None = None) -> Facts:
    """Read what :func:`steps` needs from the workspace (SQLite only: no AWS call)."""
    from .plan.queries import latest_plan
    from .resolve.cases import progress

    now = time.time() if now is None else now
    conn = ws.connect()
    plan = latest_plan(ws)
    cases: dict[str, int] = {}
    open_cases: dict[str, int] = {}
    if plan is not None and plan.state == "complete":
        progress(ws)  # derives the cases of a plan made before they were stored
        cases, open_cases = _cases(conn)
    row = conn.execute("SELECT version, built_at, summary FROM keymaps ORDER BY built_at DESC, rowid DESC"
                       " LIMIT 1").fetchone()
    version, summary, stale = None, {}, False
    if row is not None:
        version, summary = row[0], json.loads(row[2] or "{}")
        newest = conn.execute("SELECT max(ts) FROM decisions").fetchone()[0]
        planned = plan.finished_at if plan is not None else None
        stale = any(t is not None and t > row[1] for t in (newest, planned))
    return Facts(
        plan_state=plan.state if plan is not None else None,
        plan_summary=(plan.summary or {}) if plan is not None else {},
        cases=cases, open_cases=open_cases,
        keymap_version=version, keymap_summary=summary, keymap_stale=stale,
        restore=RunFacts.of(runs.latest(ws, "restore"), now),
        stream_sync=RunFacts.of(runs.latest(ws, "stream-sync"), now),
        reverse_sync=RunFacts.of(runs.latest(ws, "reverse-sync"), now),
        verify=RunFacts.of(runs.latest(ws, "verify"), now),
        flag=_flag(conn),
    )


def read_status(ws: Workspace) -> list[StepStatus]:
    """:func:`steps` of the workspace as it is now."""
    return steps(read_facts(ws))
