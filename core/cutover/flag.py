"""The flag: init, read, the compare-and-set flip, its history, and status (routers, shadow reads).

A flip is one ``TransactWriteItems`` (moto supports it, with ``ReturnValuesOnConditionCheckFailure``):

1. a Put of the new state with ``ConditionExpression "version = :v"`` (the version the operator
   read) and ``ReturnValuesOnConditionCheckFailure = ALL_OLD``, so a loser learns who won;
2. a Put of ``history#<version:010d>`` with ``attribute_not_exists(pk)``;
3. a Put of the copy of the workspace audit entry (``audit#…``) with ``attribute_not_exists(pk)``;
4. for an approved request, an Update of ``request#<id>`` to ``approved`` on condition ``pending``.

All or nothing: the history can never disagree with the flag, and two operators flipping at once
cannot both win. The workspace audit entry is appended inside a SQLite transaction that is
committed only once the DynamoDB transaction succeeded; a lost race or a failed gate is audited in
its own transaction (``flag.flip.lost``, ``flag.flip.refused``) and never reaches the history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..errors import KeyshiftError
from ..store.audit import AuditEntry, append_audit, read_entry
from .control_table import (
    STATES,
    ApprovalRequest,
    ControlError,
    FlagState,
    HistoryEntry,
    RouterReport,
    ShadowCounts,
    audit_sk,
    encode,
    ensure_table,
    flag_pk,
    iso,
    parse_iso,
    query_prefix,
    table_status,
)
from .gates import Gate
from .positions import TablePositions

__all__ = ["FlipPlan", "FlipRefused", "FlipResult", "commit_flip", "control_spec", "copy_audit", "flag_history",
           "flag_status", "prepare_flip", "refuse_failed_gates",
           "init_flag", "read_flag", "record_refusal", "execute_flip"]


class FlipRefused(KeyshiftError):
    """A flip (or an approval) that did not happen: a lost race, a failed gate, a refused approval.

    Exit 1 (the issue's contract); ``doc`` is the ``--json`` document to print."""

    title = "Flip refused"
    exit_code = 1

    def __init__(self, message: str, doc: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.doc = doc or {}


def control_spec(spec: Any) -> Any:
    """The spec's ``[control]`` section, or :class:`ControlError` saying how to add it."""
    control = getattr(spec, "control", None)
    if control is None or not getattr(control, "flag", ""):
        where = getattr(spec, "path", None) or "the spec"
        raise ControlError(f"{where} has no [control] section: add [control] with flag = \"<name>\""
                           " (and table, default keyshift-control)")
    return control


def _audit_item(flag: str, entry: AuditEntry) -> dict[str, Any]:
    """The control table's copy of a workspace audit entry, keyed by its id and chain hash: a
    console reading the control table sees the same entry, and can check it against the chain."""
    return {"pk": {"S": flag_pk(flag)}, "sk": {"S": audit_sk(entry.id, entry.hash)},
            **encode({"entry_id": entry.id, "operator": entry.operator, "action": entry.action, "at": entry.ts,
                      "details": entry.details, "hash": entry.hash, "prev_hash": entry.prev_hash})}


def _entry(conn: Any, entry_id: int) -> AuditEntry:
    entry = read_entry(conn, entry_id)
    assert entry is not None  # appended on this connection a moment ago
    return entry


def copy_audit(ddb: Any, table: str, flag: str, entry: AuditEntry) -> None:
    """Append the copy of a workspace audit entry to the control table (append-only); an entry
    already copied stays as it is."""
    try:
        ddb.put_item(TableName=table, Item=_audit_item(flag, entry),
                     ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


def audit_both(ws: Any, ddb: Any, table: str, flag: str, operator: str, action: str,
               details: dict[str, Any]) -> int:
    """A flag audit entry in the workspace (its own transaction), then its copy in the control table."""
    with ws.transaction() as conn:
        entry = append_audit(conn, operator, action, details)
        copied = _entry(conn, entry)
    try:
        copy_audit(ddb, table, flag, copied)
    except ClientError:
        pass  # the control table is unreachable or missing: the workspace entry is the record
    return entry


# -- read ------------------------------------------------------------------------------------------------
def read_flag(ddb: Any, table: str, flag: str) -> FlagState:
    """The flag item (a consistent read); :class:`ControlError` naming table and flag when missing."""
    try:
        item = ddb.get_item(TableName=table, Key={"pk": {"S": flag_pk(flag)}, "sk": {"S": "state"}},
                            ConsistentRead=True).get("Item")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise ControlError(f"control table {table} does not exist: keyshift flag init") from None
        raise
    if item is None:
        raise ControlError(f"flag {flag} is not in control table {table}: keyshift flag init")
    return FlagState.from_item(flag, item)


def init_flag(ws: Any, spec: Any, ddb: Any, *, operator: str) -> dict[str, Any]:
    """Create the control table when missing and the flag item (state ``old``, version 0) when
    missing; an existing flag is left as it is. Returns ``{"table_created", "flag_created", "flag"}``."""
    control = control_spec(spec)
    created_table = ensure_table(ddb, control.table)
    state = FlagState(flag=control.flag, state="old", version=0, old_table=spec.source.table,
                      new_table=spec.target.table, updated_by=operator, updated_at=iso(), reason="flag init",
                      shadow_sample=float(getattr(control, "shadow_sample", 0.01)))
    details = {"flag": control.flag, "table": control.table, "table_created": created_table,
               "old_table": state.old_table, "new_table": state.new_table}
    created_flag = True
    try:
        with ws.transaction() as conn:
            entry = append_audit(conn, operator, "flag.init", details)
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": control.table, "Item": state.item(),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": control.table,
                         "Item": _audit_item(control.flag, _entry(conn, entry)),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        created_flag = False  # the flag exists: left as it is, and nothing audited (nothing changed)
    flag_state = read_flag(ddb, control.table, control.flag)
    return {"table_created": created_table, "flag_created": created_flag, "flag": flag_state}


def flag_history(ddb: Any, table: str, flag: str) -> list[HistoryEntry]:
    """Every flip, oldest first."""
    return [HistoryEntry.from_item(i) for i in query_prefix(ddb, table, flag, "history#")]


def routers(ddb: Any, table: str, flag: str) -> list[RouterReport]:
    """Every router that has reported on ``flag``."""
    return [RouterReport.from_item(i) for i in query_prefix(ddb, table, flag, "router#")]


def shadow_counts(ddb: Any, table: str, flag: str, version: int) -> ShadowCounts:
    """The shadow read counters of ``version`` (zeros when none were counted)."""
    item = ddb.get_item(TableName=table, Key={"pk": {"S": flag_pk(flag)}, "sk": {"S": f"shadow#{version}"}},
                        ConsistentRead=True).get("Item")
    return ShadowCounts.from_item(item)


def requests(ddb: Any, table: str, flag: str) -> list[ApprovalRequest]:
    """Every approval request, newest first (by request time)."""
    out = [ApprovalRequest.from_item(i) for i in query_prefix(ddb, table, flag, "request#")]
    return sorted(out, key=lambda r: r.requested_at, reverse=True)


def flag_status(ddb: Any, spec: Any, *, now: float | None = None) -> dict[str, Any]:
    """The ``flag status --json`` document: the flag, its routers (acknowledged, stale), whether
    the cut-over is done (every router seen within ``router_window_minutes`` acts on the current
    version; False while none has reported), the stragglers by name, the current version's shadow
    counts and the pending approval requests."""
    control = control_spec(spec)
    now = time.time() if now is None else now
    state = read_flag(ddb, control.table, control.flag)
    window = float(getattr(control, "router_window_minutes", 5.0)) * 60.0
    rows = []
    for r in sorted(routers(ddb, control.table, control.flag), key=lambda r: (r.service, r.instance)):
        seen = parse_iso(r.last_seen)
        stale = seen is None or now - seen > window
        rows.append({"service": r.service, "instance": r.instance, "version": r.version, "state": r.state,
                     "last_seen": r.last_seen, "acked_at": r.acked_at, "host": r.host, "pid": r.pid,
                     "acknowledged": r.version == state.version, "stale": stale})
    recent = [r for r in rows if not r["stale"]]
    stragglers = [f"{r['service']}/{r['instance']}" for r in recent if not r["acknowledged"]]
    shadow = shadow_counts(ddb, control.table, control.flag, state.version)
    pending = [r.to_dict(now) for r in requests(ddb, control.table, control.flag) if r.effective_state(now) == "pending"]
    return {**state.to_dict(), "control_table": control.table, "routers": rows,
            "cut_over": bool(recent) and not stragglers, "stragglers": stragglers,
            "router_window_minutes": window / 60.0,
            "shadow": {"reads": shadow.reads, "mismatches": shadow.mismatches, "errors": shadow.errors,
                       "sample": state.shadow_sample, "last_mismatch": shadow.last_mismatch,
                       "version": state.version},
            "requests": pending}


# -- flip ------------------------------------------------------------------------------------------------
@dataclass
class FlipResult:
    """A flip that happened: the new state, its history entry, the gates as they were."""

    state: FlagState
    entry: HistoryEntry
    gates: list[Gate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": "flipped", **self.state.to_dict(), "from": self.entry.from_state, "to": self.entry.to_state,
                "gates": [g.to_dict() for g in self.gates], "history": self.entry.to_dict()}


def positions_doc(old: TablePositions, new: TablePositions) -> dict[str, Any]:
    """The flag's ``positions``: ``{"old": {shard: seq}, "new": {shard: seq}}``."""
    return {"old": dict(old.positions), "new": dict(new.positions)}


def record_refusal(ws: Any, ddb: Any, spec: Any, *, operator: str, action: str, details: dict[str, Any]) -> int:
    """Audit a flip that did not happen (never in the history)."""
    control = control_spec(spec)
    return audit_both(ws, ddb, control.table, control.flag, operator, action, details)


def _winner_text(flag: str, old_item: dict[str, Any] | None, expected: int) -> tuple[str, dict[str, Any]]:
    if not old_item:
        return f"flag {flag} was removed or never existed: nothing changed", {}
    winner = FlagState.from_item(flag, old_item)
    return (f"flag {flag} moved to version {winner.version} by {winner.updated_by or 'someone'} at"
            f" {winner.updated_at or '?'} (state {winner.state}; you flipped from version {expected}): nothing changed",
            winner.to_dict())


def execute_flip(ws: Any, ddb: Any, spec: Any, current: FlagState, *, to_state: str, operator: str, reason: str,
                 gates: list[Gate], forced: bool, accept_loss: bool, positions: dict[str, Any],
                 request: ApprovalRequest | None = None) -> FlipResult:
    """Flip ``current`` to ``to_state`` with a compare-and-set on its version (see the module doc).

    :class:`FlipRefused` (exit 1) when another flip got there first: the message names the
    winner's operator, version and time; the refusal is audited (``flag.flip.lost``)."""
    if to_state not in STATES:
        raise KeyshiftError(f"unknown flag state {to_state!r} (known: {', '.join(STATES)})")
    control = control_spec(spec)
    now = iso()
    version = current.version + 1
    new_state = FlagState(flag=current.flag, state=to_state, version=version, old_table=current.old_table,
                          new_table=current.new_table, updated_by=operator, updated_at=now, reason=reason,
                          forced=forced, shadow_sample=float(getattr(control, "shadow_sample", current.shadow_sample)),
                          positions=positions, keymap_uri=current.keymap_uri, keymap_version=current.keymap_version)
    gate_docs = [g.to_dict() for g in gates]
    entry = HistoryEntry(version=version, from_state=current.state, to_state=to_state, operator=operator, at=now,
                         reason=reason, forced=forced, gates=gate_docs, positions=positions,
                         requested_by=request.requested_by if request else None, accept_loss=accept_loss)
    details = {"flag": current.flag, "from": current.state, "to": to_state, "version": version, "reason": reason,
               "forced": forced, "accept_loss": accept_loss, "gates": gate_docs, "positions": positions,
               "request": request.id if request else None,
               "failed_gates": [g.name for g in gates if not g.ok]}
    action = "flag.approve" if request else "flag.flip"
    table = control.table
    try:
        with ws.transaction() as conn:
            entry_id = append_audit(conn, operator, action, details)
            if forced:
                append_audit(conn, operator, "flag.flip.forced", {"flag": current.flag, "version": version,
                                                                  "failed_gates": details["failed_gates"],
                                                                  "reason": reason})
            items: list[dict[str, Any]] = [
                {"Put": {"TableName": table, "Item": new_state.item(), "ConditionExpression": "version = :v",
                         "ExpressionAttributeValues": {":v": {"N": str(current.version)}},
                         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                {"Put": {"TableName": table, "Item": entry.item(current.flag),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": table, "Item": _audit_item(current.flag, _entry(conn, entry_id)),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ]
            if request is not None:
                items.append({"Update": {
                    "TableName": table, "Key": {"pk": {"S": flag_pk(current.flag)}, "sk": {"S": f"request#{request.id}"}},
                    "UpdateExpression": "SET #s = :approved, decided_by = :by, decided_at = :at",
                    "ConditionExpression": "#s = :pending", "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": {":approved": {"S": "approved"}, ":pending": {"S": "pending"},
                                                  ":by": {"S": operator}, ":at": {"S": now}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}})
            ddb.transact_write_items(TransactItems=items)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = exc.response.get("CancellationReasons") or []
        codes = [r.get("Code") for r in reasons]
        if codes and codes[0] == "ConditionalCheckFailed":
            message, winner = _winner_text(current.flag, reasons[0].get("Item"), current.version)
        elif len(codes) > 3 and codes[3] == "ConditionalCheckFailed":
            got = (reasons[3].get("Item") or {}).get("state", {}).get("S", "gone")
            message, winner = f"request {request.id if request else '?'} is {got}, no longer pending: nothing changed", {}
        else:
            try:
                message, winner = _winner_text(current.flag, ddb.get_item(
                    TableName=table, Key={"pk": {"S": flag_pk(current.flag)}, "sk": {"S": "state"}},
                    ConsistentRead=True).get("Item"), current.version)
            except ClientError:
                message, winner = f"flag {current.flag}: the flip was cancelled ({', '.join(map(str, codes))})", {}
        record_refusal(ws, ddb, spec, operator=operator, action="flag.flip.lost",
                       details={**details, "winner": winner, "message": message})
        raise FlipRefused(message, {"outcome": "lost", "flag": current.flag, "from": current.state, "to": to_state,
                                    "expected_version": current.version, "winner": winner, "gates": gate_docs,
                                    "message": message}) from None
    return FlipResult(new_state, entry, list(gates))


def control_table_exists(ddb: Any, spec: Any) -> bool:
    """Whether the spec's control table exists."""
    return table_status(ddb, control_spec(spec).table) is not None


# -- the whole flip: prepare (state, positions, gates), then commit ------------------------------------
@dataclass
class FlipPlan:
    """What a flip would do, before it is confirmed: the flag as read, the gates, both positions."""

    current: FlagState
    to_state: str
    gates: list[Gate]
    old: TablePositions
    new: TablePositions
    accept_loss: bool = False

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.ok]

    @property
    def target_table(self) -> str:
        """The table the operator types to confirm: the one that becomes the source of truth, or
        the new table for ``shadow`` (the table routers start reading)."""
        return self.current.old_table if self.to_state == "old" else self.current.new_table

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.current.flag, "from": self.current.state, "to": self.to_state,
                "version": self.current.version, "gates": [g.to_dict() for g in self.gates],
                "gates_ok": not self.failed, "positions": positions_doc(self.old, self.new),
                "target_table": self.target_table}


def _hints(ws: Any, direction: str) -> dict[str, str]:
    from ..migrate.stream.sync import sync_lag

    try:
        shards = sync_lag(ws, direction)["shards"]
    except KeyshiftError:
        return {}
    return {s["shard_id"]: str(s["sequence"]) for s in shards if s.get("sequence")}


def _positions(ddb: Any, streams: Any, table: str, hints: dict[str, str]) -> TablePositions:
    from .positions import stream_positions

    try:
        return stream_positions(ddb, streams, table, hints=hints)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return TablePositions(table, None)
        raise


def prepare_flip(ws: Any, spec: Any, ddb: Any, streams: Any, *, to_state: str, accept_loss: bool = False) -> FlipPlan:
    """Read the flag, both tables' stream positions and the gates of flipping it to ``to_state``.

    :class:`FlipRefused` when the flag is in that state already."""
    from .gates import gates_for

    if to_state not in STATES:
        raise KeyshiftError(f"unknown flag state {to_state!r} (known: {', '.join(STATES)})")
    control = control_spec(spec)
    current = read_flag(ddb, control.table, control.flag)
    if current.state == to_state:
        raise FlipRefused(f"flag {current.flag} is already {to_state} (version {current.version}, by"
                          f" {current.updated_by} at {current.updated_at}): nothing changed",
                          {"outcome": "unchanged", **current.to_dict()})
    old = _positions(ddb, streams, current.old_table, _hints(ws, "forward"))
    new = _positions(ddb, streams, current.new_table, _hints(ws, "reverse"))
    gates = gates_for(ws, spec, ddb, from_state=current.state, to_state=to_state, accept_loss=accept_loss,
                      new_positions=new)
    return FlipPlan(current, to_state, gates, old, new, accept_loss)


def refuse_failed_gates(ws: Any, ddb: Any, spec: Any, plan: FlipPlan, *, operator: str, reason: str) -> None:
    """Audit (``flag.flip.refused``) and raise :class:`FlipRefused` for a plan whose gates failed."""
    names = ", ".join(g.name for g in plan.failed)
    message = (f"flag {plan.current.flag}: {len(plan.failed)} gate(s) failed ({names}); nothing changed"
               " (pass --force with --reason to flip anyway: it is marked in the history)")
    record_refusal(ws, ddb, spec, operator=operator, action="flag.flip.refused",
                   details={**plan.to_dict(), "reason": reason, "message": message})
    raise FlipRefused(message, {"outcome": "refused", **plan.to_dict(), "message": message})


def commit_flip(ws: Any, ddb: Any, streams: Any, spec: Any, plan: FlipPlan, *, operator: str, reason: str,
                force: bool, request: ApprovalRequest | None = None) -> FlipResult:
    """Flip as planned: refuse failed gates unless ``force``, read the positions again (from the
    planned ones: positions recorded no later than the flip, so reverse sync misses nothing), then
    the compare-and-set."""
    if plan.failed and not force:
        refuse_failed_gates(ws, ddb, spec, plan, operator=operator, reason=reason)
    old = _positions(ddb, streams, plan.current.old_table, dict(plan.old.positions))
    new = _positions(ddb, streams, plan.current.new_table, dict(plan.new.positions))
    return execute_flip(ws, ddb, spec, plan.current, to_state=plan.to_state, operator=operator, reason=reason,
                        gates=plan.gates, forced=bool(plan.failed) and force, accept_loss=plan.accept_loss,
                        positions=positions_doc(old, new), request=request)
