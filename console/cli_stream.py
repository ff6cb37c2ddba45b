"""``keyshift stream-sync``: replay the old table's stream into the new table (design (a)).

Registered in :mod:`keyshift.console.cli` with ``cli.add_command(stream_sync)``. Without
``--follow`` it stops once it has caught up with every shard (exit 0); with it, it keeps
following until SIGINT or SIGTERM, which stop it cleanly with its checkpoint saved.
"""

from __future__ import annotations

import json
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import click
from rich.console import Console
from rich.markup import escape as markup_escape

from .context import Context
from .progress import drive

__all__ = ["stream_sync"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _stop_on_signals(cancel: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``cancel``: the replay finishes its page, checkpoints and returns."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(signum: int, frame: Any) -> None:
        cancel.set()

    for sig in previous:
        signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command("stream-sync")
@click.option("--follow", is_flag=True, help="Keep following the stream until SIGINT/SIGTERM.")
@click.option("--restart", is_flag=True, help="Replay from the trim horizon, not from the last checkpoint.")
@click.option("--allow-unresolved", is_flag=True,
              help="Run while cases are open (their items' records are skipped, as the restore skips them).")
@click.option("--accept-gap", is_flag=True,
              help="Replay from the trim horizon even when the stream began after the dump's point in time or"
                   " that is over 24 hours ago (writes in between are lost: the reasons are printed).")
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Threads writing one page's batches in parallel (pages stay in stream order).")
@click.option("--reverse", is_flag=True,
              help="Replay the NEW table's stream into the OLD table through the inverse keymap (flip back"
                   " without losing a write). A first run starts after the positions the flip to new recorded;"
                   " before any flip it needs --from (or --from-positions).")
@click.option("--from", "from_", metavar="latest|trim-horizon|ISO-TIME",
              help="--reverse: where to start: latest (records from this second on), trim-horizon, or an"
                   " ISO 8601 time (its whole second included: the stream's times are rounded down). Records"
                   " older than the last complete restore are never replayed.")
@click.option("--from-positions", type=click.Path(dir_okay=False), metavar="FILE.json",
              help="--reverse: start after recorded positions, a JSON object of shard id -> sequence number.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
@click.option("--status", is_flag=True,
              help="Replay nothing: show the Lambda event source mappings on both tables' streams (docs/deploy.md).")
@click.pass_obj
def stream_sync(obj: Context, follow: bool, restart: bool, allow_unresolved: bool, accept_gap: bool,
                workers: int, reverse: bool, from_: str | None, from_positions: str | None, as_json: bool,
                status: bool) -> None:
    """Replay the source table's stream through the keymap into the new table.

    Continues from the last run's checkpoint; replays from the trim horizon on the first run, with
    --restart, and whenever a restore has completed since the last replay started.

    With --reverse, replays the new table's stream into the old table (writes made after the cut-over
    go back under their old spelling; merged identifiers under their primary). Forward and reverse
    may run at the same time: neither replays the other's writes (echoes, counted).
    """
    from keyshift.core.migrate.preflight import stream_sync_preflight
    from keyshift.core.migrate.stream.held import collect_held
    from keyshift.core.migrate.stream.reverse import parse_from, positions_from_file
    from keyshift.core.migrate.stream.sync import run_stream_sync

    if status:
        _lambda_status(obj, as_json)
        return
    if not reverse and (from_ or from_positions):
        raise click.UsageError("--from and --from-positions go with --reverse (forward starts at the trim"
                               " horizon or its checkpoint)")
    if from_ and from_positions:
        raise click.UsageError("give --from or --from-positions, not both")
    start = parse_from(from_) if from_ else positions_from_file(from_positions) if from_positions else None
    direction = "reverse" if reverse else "forward"
    obj.require_writable("stream-sync")
    ddb = obj.aws.client("dynamodb")
    start_note = ""
    if reverse and start is None and not restart:
        start, start_note = _start_from_flip(obj, ddb)
    # Records the Lambda handler held come into the workspace first: their cases, and their apply.
    collected = collect_held(obj.workspace, obj.spec, ddb, operator=obj.operator)
    pre = stream_sync_preflight(obj.workspace, obj.spec, ddb, allow_unresolved=allow_unresolved,
                                direction=direction)
    pre.raise_if_blocked(_HINTS)
    for warning in pre.warnings:
        err.print(f"[yellow]warning:[/] {markup_escape(warning)}")
    if start_note and not as_json:
        err.print(f"reverse sync starts {markup_escape(start_note)}")
    build = pre.build
    assert build is not None  # the preflight passed
    cancel = threading.Event()
    gen = run_stream_sync(obj.workspace, obj.spec, build.keymap, ddb=ddb,
                          streams=obj.aws.client("dynamodbstreams"), follow=follow, restart=restart,
                          accept_gap=accept_gap, workers=workers, operator=obj.operator, cancel=cancel,
                          direction=direction, start=start)
    with _stop_on_signals(cancel):
        summary = drive(gen, show=not as_json and err.is_terminal, console=err, describe=_sync_bar)
    summary["warnings"] = pre.warnings + summary["warnings"]
    summary["collected"] = collected
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=True, default=str))
        return
    for warning in summary["warnings"][len(pre.warnings):]:
        err.print(f"[yellow]warning:[/] {markup_escape(warning)}")
    skipped = sum(summary["skipped"].values())
    out.print(f"{'reverse-sync' if reverse else 'stream-sync'} run {summary['run_id']} {summary['state']}"
              f" ({summary['origin']}): {summary['records']:,} records, {summary['puts']:,} puts,"
              f" {summary['deletes']:,} deletes, {summary['echoes']:,} echoes, "
              f"{skipped:,} skipped, {summary['held']:,} held, {summary['held_applied']:,} held applied, "
              f"{summary['restarts']} restart(s); "
              f"{'caught up' if summary['caught_up'] else 'NOT caught up'} with "
              f"{summary['shard_count']} shard(s) in {summary['seconds']:.1f} s; keymap {summary['keymap']}")
    if summary["unmapped"]:
        out.print(f"{summary['unmapped']:,} record(s) held for identifiers first seen on the stream: "
                  "keyshift resolve list --kind unmapped")


def _start_from_flip(obj: Context, ddb: Any) -> tuple[Any, str]:
    """A first reverse run with no --from starts after the positions the flip to ``new`` recorded.

    Returns ``(None, "")`` when a previous reverse run has a checkpoint to continue from, or when
    no flip to new is recorded (then the sync itself asks for --from).
    """
    from keyshift.core.cutover.reverse_start import unnamed_start

    _, found = unnamed_start(obj.workspace, ddb, obj.spec)
    return (found.start, found.describe()) if found is not None else (None, "")


def _lambda_status(obj: Context, as_json: bool) -> None:
    """``--status``: the event source mappings (Lambda handlers) on the old and new tables' streams."""
    from keyshift.core.migrate.stream.lambda_status import lambda_status, last_restore_finished, stream_arns

    spec = obj.spec
    arns = stream_arns(obj.aws.client("dynamodb"), spec.source.table, spec.target.table)
    doc = lambda_status(obj.aws.client("lambda"), arns, last_restore_finished(obj.workspace))
    if as_json:
        click.echo(json.dumps({"lambda": doc}, indent=2, ensure_ascii=True, default=str))
        return
    for direction in ("forward", "reverse"):
        entry = doc[direction]
        mappings = entry["mappings"]
        head = f"{direction}: {entry['stream_arn'] or 'no stream'}"
        out.print(markup_escape(head + (f" ({entry['error']})" if entry["error"] else
                                        f", {len(mappings)} event source mapping(s)")))
        for m in mappings:
            out.print(markup_escape(f"  {m['uuid']} {m['state']} from {m['starting_position']}, last result"
                                    f" {m['last_processing_result']}, after the last restore: {m['after_restore']}"))
            for problem in m["problems"]:
                err.print(f"[yellow]warning:[/] {markup_escape(problem)}")


#: What the CLI adds to a stream-sync blocker.
_HINTS = {
    "no-plan": "keyshift plan --dump …",
    "open-cases": "decide them: keyshift resolve list --open; or pass --allow-unresolved to skip their records",
    "already-running": "stop it first with SIGINT/SIGTERM, or Escape in the console",
}


def _sync_bar(p: Any) -> tuple[str, float | None, float, str]:
    lag = "catching up" if p.lag_seconds is None else f"lag {p.lag_seconds:.0f} s"
    return ("stream sync", None, p.records,
            f"{p.records:,} records  {p.puts:,} puts  {p.deletes:,} deletes  {p.held:,} held  {lag}  "
            f"shards {p.shards_done}/{p.shards} closed  restarts {p.restarts}")
