"""What must hold before restore, stream sync or verify starts: one check per step, for every front end.

Each function reads the workspace and AWS, changes nothing, and returns a :class:`Preflight`:
*blockers* (the step must not start; each with a stable ``code`` a front end can act on, e.g.
offer to create a missing table) and *warnings* (it may start, but the operator should know),
plus what was learnt on the way (the plan, the keymap build, whether the target exists and is
empty) so the step need not ask twice. The CLI prints the messages and adds its own flags as
hints; the console turns blockers into questions or actions. Messages name no CLI flag and no
console key: they say what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import KeyshiftError
from ..plan.queries import PlanRow, latest_plan
from ..resolve.keymap_build import KeymapBuild, build_keymap
from ..store import runs
from ..store.workspace import Workspace
from .stream.source import StreamSyncError, stream_arn, window_check
from .tables import describe, is_empty

__all__ = ["Blocker", "Preflight", "PreflightError", "restore_preflight", "stream_sync_preflight",
           "verify_preflight"]


class PreflightError(KeyshiftError):
    """A step was asked to start while a blocker holds; the message lists every blocker."""

    title = "Cannot start"

    def __init__(self, message: str, blockers: list[Blocker]) -> None:
        super().__init__(message)
        self.blockers = blockers


@dataclass(frozen=True)
class Blocker:
    """Why a step must not start: ``code`` for programs, ``message`` for people."""

    code: str
    message: str


@dataclass
class Preflight:
    """The outcome of a step's checks, and what they found out."""

    step: str
    blockers: list[Blocker] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: PlanRow | None = None
    build: KeymapBuild | None = None
    target_exists: bool | None = None
    target_empty: bool | None = None
    resume_run: runs.Run | None = None

    @property
    def ok(self) -> bool:
        """Nothing blocks the step."""
        return not self.blockers

    def blocked(self, code: str) -> Blocker | None:
        """The blocker with ``code``, if it holds."""
        return next((b for b in self.blockers if b.code == code), None)

    def raise_if_blocked(self, hints: dict[str, str] | None = None) -> None:
        """:class:`PreflightError` listing every blocker (each with its front end's hint)."""
        if self.blockers:
            hints = hints or {}
            text = "; ".join(b.message + (f" ({hints[b.code]})" if b.code in hints else "") for b in self.blockers)
            raise PreflightError(f"{self.step} cannot start: {text}", self.blockers)

    def to_dict(self) -> dict[str, Any]:
        """For ``--json`` output and the audit log."""
        return {"step": self.step, "ok": self.ok, "warnings": list(self.warnings),
                "blockers": [{"code": b.code, "message": b.message} for b in self.blockers]}


def _keymap(ws: Workspace, pre: Preflight, allow_unresolved: bool, what: str) -> None:
    """Build the keymap into ``pre``: open cases block, unless allowed (then they are a warning)."""
    build = build_keymap(ws, allow_unresolved=True)
    pre.build = build
    if build.open_cases:
        message = (f"{len(build.open_cases):,} case(s) are still open: {what}")
        if allow_unresolved:
            pre.warnings.append(message)
        else:
            pre.blockers.append(Blocker("open-cases", message))


def _resume(ws: Workspace, pre: Preflight, kind: str, keymap: str) -> None:
    """The run a resume would continue, or the blocker that says why none can be."""
    pre.resume_run, problem = runs.resumable(ws, kind, keymap)
    if problem is not None:
        code = ("nothing-to-resume" if pre.resume_run is None else
                "keymap-changed" if pre.resume_run.keymap != keymap else "already-running")
        pre.blockers.append(Blocker(code, problem))


def _plan(ws: Workspace, pre: Preflight) -> bool:
    pre.plan = latest_plan(ws)
    if pre.plan is None or pre.plan.state != "complete":
        state = "no plan" if pre.plan is None else f"the latest plan is {pre.plan.state}"
        pre.blockers.append(Blocker("no-plan", f"{state}: plan a dump first"))
        return False
    return True


def _stream_warnings(ws: Workspace, spec: Any, ddb: Any, streams: Any) -> list[str]:
    """What would keep stream sync from completing a restore: said before hours of restore."""
    try:
        arn = stream_arn(ddb, spec.source.table)
        problems, _ = window_check(ws, streams, arn)
    except StreamSyncError as exc:
        return [exc.message]
    except (ClientError, BotoCoreError) as exc:
        return [f"cannot check the source table's stream: {exc}"]
    return [f"stream sync will refuse to replay: {p}" for p in problems]


def restore_preflight(ws: Workspace, spec: Any, ddb: Any, streams: Any, *, resume: bool = False,
                      allow_unresolved: bool = False, allow_non_empty: bool = False,
                      create_table: bool = False, via_import: bool = False) -> Preflight:
    """Checks before a restore (or an ImportTable with ``via_import``).

    Blocker codes: ``no-plan``, ``open-cases``, ``nothing-to-resume``, ``keymap-changed``,
    ``no-table`` (unless ``create_table``), ``table-exists`` (ImportTable, or ``create_table``,
    with a table already there), ``not-empty`` (unless ``resume`` or ``allow_non_empty``).
    """
    pre = Preflight("import" if via_import else "restore")
    if not _plan(ws, pre):
        return pre
    _keymap(ws, pre, allow_unresolved, "their items will not be written")
    table = spec.target.table
    if resume and pre.build is not None:
        _resume(ws, pre, "restore", pre.build.keymap.version)
    desc = describe(ddb, table)
    pre.target_exists = desc is not None
    if via_import:
        if pre.target_exists:
            pre.blockers.append(Blocker("table-exists", f"target table {table!r} exists already: ImportTable"
                                        " only creates new tables"))
    elif not pre.target_exists:
        if resume:
            pre.blockers.append(Blocker("no-table", f"target table {table!r} does not exist: there is nothing"
                                        " to resume into; start a new restore"))
        elif not create_table:
            pre.blockers.append(Blocker("no-table", f"target table {table!r} does not exist"))
    else:
        if create_table:
            pre.blockers.append(Blocker("table-exists", f"target table {table!r} exists already"))
        pre.target_empty = is_empty(ddb, table)
        if not pre.target_empty and not resume and not allow_non_empty:
            pre.blockers.append(Blocker("not-empty", f"target table {table!r} already holds items: a restore"
                                        " writes over items with the same key and leaves the others"))
    pre.warnings += _stream_warnings(ws, spec, ddb, streams)
    return pre


def stream_sync_preflight(ws: Workspace, spec: Any, ddb: Any, *, allow_unresolved: bool = False,
                          direction: str = "forward") -> Preflight:
    """Checks before a stream sync. Blocker codes: ``no-plan``, ``open-cases``, ``no-stream``,
    ``already-running``. Starting before any restore has completed is a warning: the replay then
    only writes what changed since the stream began. ``direction="reverse"`` checks the new
    table's stream and the reverse runs instead (one replay at a time *per direction*)."""
    reverse = direction == "reverse"
    pre = Preflight("reverse-sync" if reverse else "stream-sync")
    if not _plan(ws, pre):
        return pre
    _keymap(ws, pre, allow_unresolved, "the stream records of their items will be skipped, as the restore"
            " skipped their items")
    try:
        stream_arn(ddb, spec.target.table if reverse else spec.source.table)
    except StreamSyncError as exc:
        pre.blockers.append(Blocker("no-stream", exc.message))
    running = runs.latest(ws, "reverse-sync" if reverse else "stream-sync")
    if running is not None and running.state == "running" and running.alive():
        pre.blockers.append(Blocker("already-running", f"{running.kind} run {running.id} is still following the"
                                    " stream (its heartbeat is fresh): one replay at a time"))
    if reverse:
        return pre  # the forward-only restore checks below do not apply to the way back
    restore = runs.latest(ws, "restore", complete=True)
    if restore is None:
        pre.warnings.append("no restore has completed in this workspace: the replay writes only the items the"
                            " stream holds records for, not the rest of the table")
    elif pre.build is not None and restore.keymap != pre.build.keymap.version:
        pre.warnings.append(f"the last complete restore (run {restore.id}) used keymap {restore.keymap}, the"
                            f" workspace now builds {pre.build.keymap.version}: items it wrote follow the old mapping")
    return pre


def verify_preflight(ws: Workspace, spec: Any, ddb: Any, *, resume: bool = False) -> Preflight:
    """Checks before a verify. Blocker codes: ``no-plan``, ``no-table``, ``nothing-to-resume``.
    Open cases are a warning (their items are expected absent from the new table)."""
    pre = Preflight("verify")
    if not _plan(ws, pre):
        return pre
    _keymap(ws, pre, True, "their items are expected to be absent from the new table")
    for role, table in (("source", spec.source.table), ("target", spec.target.table)):
        try:
            found = describe(ddb, table)
        except (ClientError, BotoCoreError) as exc:
            raise KeyshiftError(f"cannot describe table {table!r}: {exc}", title="Verify failed") from exc
        if found is None:
            pre.blockers.append(Blocker("no-table", f"{role} table {table!r} does not exist"))
        elif role == "target":
            pre.target_exists = True
    if resume and pre.build is not None:
        _resume(ws, pre, "verify", pre.build.keymap.version)
    return pre
