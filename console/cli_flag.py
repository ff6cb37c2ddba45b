"""``keyshift flag``: the cut-over flag in the control table (docs/cutover.md is the runbook).

Registered in :mod:`keyshift.console.cli` with ``cli.add_command(flag)``. Subcommands: ``init``,
``status``, ``history``, ``flip``, ``approve``, ``requests``, ``positions``; ``--json`` on each.
Exit 0 done, 1 a flip or approval that did not happen (a failed gate, a lost race, a refused or
cancelled approval: nothing changed), 2 unusable input (spec, table, endpoint).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from keyshift.core.errors import KeyshiftError

from .context import Context

__all__ = ["flag"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=True, default=str))


#: What fixes a failed gate, worded for a shell (the console words the same codes as keys).
GATE_REMEDIES = {
    "resolve-open": "keyshift resolve list --open",
    "resolve-unmapped": "keyshift resolve list --kind unmapped",
    "verify": "keyshift verify",
    "restore": "keyshift restore",
    "follow-forward": "keyshift stream-sync --follow",
    "follow-reverse": "keyshift stream-sync --reverse --follow (a first run starts at the flip's recorded"
                      " positions), or flip with --accept-loss --reason",
    "accept-loss": "flip with --accept-loss --reason",
}


def _print_gates(gates: list[dict[str, Any]], console: Console = err) -> None:
    for g in gates:
        mark = "[green]ok  [/]" if g["ok"] else "[bold red]FAIL[/]"
        remedy = GATE_REMEDIES.get(g.get("remedy") or "", "") if not g["ok"] else ""
        console.print(f"  {mark} {markup_escape(g['name'])}: {markup_escape(g['detail'])}"
                      + (f": {markup_escape(remedy)}" if remedy else ""))


def _confirm(table: str, what: str) -> None:
    """The operator types the target table's name; anything else cancels (exit 1)."""
    typed = click.prompt(f"{what}: type the target table's name ({table}) to confirm", default="",
                         show_default=False, err=True)
    if typed.strip() != table:
        from keyshift.core.cutover.flag import FlipRefused

        raise FlipRefused(f"cancelled: {typed.strip()!r} is not {table!r}; nothing changed",
                          {"outcome": "cancelled", "target_table": table})


def _fail_json(exc: KeyshiftError, as_json: bool) -> None:
    doc = getattr(exc, "doc", None)
    if as_json and doc:
        _emit_json({**doc, "message": exc.message})
    raise exc


@click.group("flag")
def flag() -> None:
    """The cut-over flag every service reads to pick a table: init, status, flip, history, approvals."""


@flag.command("init")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def flag_init(obj: Context, as_json: bool) -> None:
    """Create the control table (when missing) and the flag item: state old, version 0."""
    from keyshift.core.cutover.flag import init_flag

    obj.require_writable("flag init")
    result = init_flag(obj.workspace, obj.spec, obj.aws.client("dynamodb"), operator=obj.operator)
    state = result["flag"]
    if as_json:
        _emit_json({"table_created": result["table_created"], "flag_created": result["flag_created"],
                    **state.to_dict()})
        return
    table = obj.spec.control.table
    out.print(f"control table {table} {'created' if result['table_created'] else 'exists'}")
    if result["flag_created"]:
        out.print(f"flag {state.flag} created: state {state.state}, version {state.version}"
                  f" ({state.old_table} -> {state.new_table})")
    else:
        out.print(f"flag {state.flag} exists, left as it is: state {state.state}, version {state.version}"
                  f" (by {state.updated_by} at {state.updated_at})")


@flag.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_obj
def flag_status_cmd(obj: Context, as_json: bool) -> None:
    """The flag, the routers that reported (acknowledged or stragglers), shadow reads, requests."""
    from keyshift.core.cutover.flag import flag_status

    doc = flag_status(obj.aws.client("dynamodb"), obj.spec)
    if as_json:
        _emit_json(doc)
        return
    out.print(f"flag {doc['flag']}: [bold]{doc['state']}[/] (version {doc['version']}) — source of truth"
              f" {doc['new_table'] if doc['state'] == 'new' else doc['old_table']}")
    out.print(markup_escape(f"  by {doc['updated_by']} at {doc['updated_at']}: {doc['reason']}"
                            + (" [FORCED]" if doc["forced"] else "")))
    if doc["routers"]:
        table = Table("service", "instance", "version", "last seen", "acknowledged", "stale")
        for r in doc["routers"]:
            table.add_row(markup_escape(r["service"]), markup_escape(r["instance"]), str(r["version"]),
                          r["last_seen"], "yes" if r["acknowledged"] else "NO", "stale" if r["stale"] else "")
        out.print(table)
    else:
        out.print("  no router has reported")
    if doc["cut_over"]:
        out.print(f"cut over: every router seen in the last {doc['router_window_minutes']:g} min acts on version"
                  f" {doc['version']}")
    else:
        out.print("not cut over" + (f": stragglers {', '.join(doc['stragglers'])}" if doc["stragglers"] else
                                    f": no router seen in the last {doc['router_window_minutes']:g} min"))
    s = doc["shadow"]
    out.print(f"shadow (version {doc['version']}, sample {s['sample']:g}): {s['reads']} read(s),"
              f" {s['mismatches']} mismatch(es), {s['errors']} error(s)")
    for r in doc["requests"]:
        out.print(markup_escape(f"pending request {r['id']}: to {r['to']} by {r['requested_by']}, expires"
                                f" {r['expires_at']}: {r['reason']}"))


@flag.command("history")
@click.option("--json", "as_json", is_flag=True, help="Print every change as JSON.")
@click.pass_obj
def flag_history_cmd(obj: Context, as_json: bool) -> None:
    """Every flip: who, when, why, forced, the gates as they were."""
    from keyshift.core.cutover.flag import control_spec, flag_history

    control = control_spec(obj.spec)
    entries = flag_history(obj.aws.client("dynamodb"), control.table, control.flag)
    if as_json:
        _emit_json({"flag": control.flag, "history": [e.to_dict() for e in entries]})
        return
    if not entries:
        out.print(f"flag {control.flag}: no flip yet")
    for e in entries:
        failed = [g["name"] for g in e.gates if not g.get("ok")]
        out.print(markup_escape(
            f"v{e.version} {e.at} {e.from_state} -> {e.to_state} by {e.operator}"
            + (f" (requested by {e.requested_by})" if e.requested_by else "")
            + (" FORCED" if e.forced else "") + (" ACCEPT-LOSS" if e.accept_loss else "")
            + f": {e.reason}" + (f" [failed gates: {', '.join(failed)}]" if failed else "")))


@flag.command("flip")
@click.option("--to", "to_state", type=click.Choice(["new", "old", "shadow"]), required=True,
              help="The state to flip the flag to.")
@click.option("--reason", required=True, help="Why (recorded in the history and the audit log).")
@click.option("--yes", is_flag=True, help="Do not ask for the target table's name.")
@click.option("--force", is_flag=True, help="Flip even when a gate fails (marked in the history and the audit log).")
@click.option("--accept-loss", is_flag=True,
              help="Flip back although reverse sync has not caught up: writes made on the new table since the"
                   " flip may not reach the old one.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome (and the gates) as JSON.")
@click.pass_obj
def flag_flip(obj: Context, to_state: str, reason: str, yes: bool, force: bool, accept_loss: bool,
              as_json: bool) -> None:
    """Flip the flag (compare-and-set on its version), after checking and printing the gates."""
    from keyshift.core.cutover.approvals import file_request
    from keyshift.core.cutover.flag import FlipRefused, commit_flip, prepare_flip, refuse_failed_gates

    obj.require_writable("flag flip")
    if not reason.strip():
        raise click.UsageError("--reason must not be empty")
    spec, ws = obj.spec, obj.workspace
    ddb, streams = obj.aws.client("dynamodb"), obj.aws.client("dynamodbstreams")
    try:
        plan = prepare_flip(ws, spec, ddb, streams, to_state=to_state, accept_loss=accept_loss)
        doc = plan.to_dict()
        if not as_json:
            err.print(f"flag {plan.current.flag}: {plan.current.state} -> {to_state} (version"
                      f" {plan.current.version}); gates:")
            _print_gates(doc["gates"])
        if plan.failed and not force:
            refuse_failed_gates(ws, ddb, spec, plan, operator=obj.operator, reason=reason)
        if getattr(spec.control, "require_approval", False):
            request = file_request(ws, ddb, spec, plan.current, to_state=to_state, reason=reason, operator=obj.operator,
                                   force=force, accept_loss=accept_loss, gates=doc["gates"])
            if as_json:
                _emit_json({"outcome": "requested", "request": request.to_dict(), **doc})
                return
            out.print(f"approval request {request.id} filed (expires {request.expires_at}); nothing flipped."
                      f" Another operator runs: keyshift flag approve {request.id}")
            return
        if not yes:
            _confirm(plan.target_table, f"flip flag {plan.current.flag} to {to_state}")
        result = commit_flip(ws, ddb, streams, spec, plan, operator=obj.operator, reason=reason, force=force)
    except FlipRefused as exc:
        _fail_json(exc, as_json)
        return
    if as_json:
        _emit_json(result.to_dict())
        return
    out.print(f"flag {result.state.flag} flipped to [bold]{result.state.state}[/] (version {result.state.version})"
              + (" [FORCED]" if result.entry.forced else "") + "; stream positions recorded: "
              f"{len(result.state.positions.get('old', {}))} shard(s) old, "
              f"{len(result.state.positions.get('new', {}))} shard(s) new")


@flag.command("approve")
@click.argument("request_id")
@click.option("--yes", is_flag=True, help="Do not ask for the target table's name.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def flag_approve(obj: Context, request_id: str, yes: bool, as_json: bool) -> None:
    """Approve and run another operator's flip request (the gates are checked again)."""
    from keyshift.core.cutover.approvals import check_approvable, get_request
    from keyshift.core.cutover.flag import FlipRefused, commit_flip, control_spec, prepare_flip, read_flag

    obj.require_writable("flag approve")
    spec, ws = obj.spec, obj.workspace
    ddb, streams = obj.aws.client("dynamodb"), obj.aws.client("dynamodbstreams")
    control = control_spec(spec)
    try:
        request = get_request(ddb, spec, request_id)
        current = read_flag(ddb, control.table, control.flag)
        check_approvable(ws, ddb, spec, request, current, operator=obj.operator)
        plan = prepare_flip(ws, spec, ddb, streams, to_state=request.to_state, accept_loss=request.accept_loss)
        if not as_json:
            err.print(f"request {request.id} by {request.requested_by}: {plan.current.state} -> {request.to_state}"
                      f" ({request.reason}); gates now:")
            _print_gates(plan.to_dict()["gates"])
        if not yes and not (plan.failed and not request.force):
            _confirm(plan.target_table, f"approve request {request.id}: flip flag {plan.current.flag} to"
                                        f" {request.to_state}")
        result = commit_flip(ws, ddb, streams, spec, plan, operator=obj.operator, reason=request.reason,
                             force=request.force, request=request)
    except FlipRefused as exc:
        _fail_json(exc, as_json)
        return
    if as_json:
        _emit_json({**result.to_dict(), "request": request.id, "requested_by": request.requested_by})
        return
    out.print(f"request {request.id} approved by {obj.operator}: flag {result.state.flag} flipped to"
              f" [bold]{result.state.state}[/] (version {result.state.version})")


@flag.command("requests")
@click.option("--json", "as_json", is_flag=True, help="Print the requests as JSON.")
@click.pass_obj
def flag_requests(obj: Context, as_json: bool) -> None:
    """Approval requests (two-person rule), newest first, with their state."""
    from keyshift.core.cutover.approvals import list_requests

    now = time.time()
    items = [r.to_dict(now) for r in list_requests(obj.aws.client("dynamodb"), obj.spec)]
    if as_json:
        _emit_json({"requests": items})
        return
    if not items:
        out.print("no approval request")
    for r in items:
        out.print(markup_escape(f"{r['id']} {r['state']}: to {r['to']} by {r['requested_by']} at {r['requested_at']}"
                                f" (expires {r['expires_at']}){' force' if r['force'] else ''}: {r['reason']}"
                                + (f" — {r['state']} by {r['decided_by']}" if r["decided_by"] else "")))


@flag.command("positions")
@click.option("--table", "which", type=click.Choice(["old", "new"]), required=True,
              help="Whose stream: old (forward sync drains up to it) or new (reverse sync starts after it).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write {shard_id: sequence_number} here (for stream-sync --reverse --from-positions).")
@click.option("--live", is_flag=True, help="Read the stream's positions now instead of those recorded at the last flip.")
@click.option("--json", "as_json", is_flag=True, help="Print the positions as JSON.")
@click.pass_obj
def flag_positions(obj: Context, which: str, out_path: Path | None, live: bool, as_json: bool) -> None:
    """The stream positions recorded at the last flip (or now, with --live) of one table."""
    from keyshift.core.cutover.flag import control_spec, read_flag
    from keyshift.core.cutover.positions import stream_positions

    control = control_spec(obj.spec)
    ddb = obj.aws.client("dynamodb")
    state = read_flag(ddb, control.table, control.flag)
    table = state.old_table if which == "old" else state.new_table
    if live:
        positions = stream_positions(ddb, obj.aws.client("dynamodbstreams"), table).positions
    else:
        positions = dict((state.positions or {}).get(which) or {})
    if not positions:
        raise KeyshiftError(f"flag {control.flag}: no stream position of {table}"
                            + (" (its stream has no record)" if live else
                               f" recorded at version {state.version} (no flip yet, or its stream had no record)")
                            + f"; start reverse sync with --from {state.updated_at or 'latest'} instead")
    if out_path is not None:
        try:
            out_path.write_text(json.dumps(positions, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        except OSError as exc:
            raise KeyshiftError(f"cannot write {out_path}: {exc}") from None
    if as_json:
        _emit_json({"flag": control.flag, "table": table, "which": which, "version": state.version,
                    "live": live, "positions": positions, "out": str(out_path) if out_path else None})
        return
    for shard, seq in sorted(positions.items()):
        out.print(f"{shard} {seq}")
    if out_path is not None:
        err.print(f"written to {out_path}: keyshift stream-sync --reverse --from-positions {out_path}")
