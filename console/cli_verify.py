"""``keyshift verify``: diff the new table against transform(old table), item by item.

Exit 0 when they are equal, 1 when they are not, 2 on unusable input (a KeyshiftError). Registered
in :mod:`keyshift.console.cli` with ``cli.add_command(verify)``. This module does not import
``cli`` (which imports it), so it has its own consoles and JSON printer.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click
from rich.console import Console
from rich.markup import escape as markup_escape

from .context import Context
from .progress import drive

__all__ = ["verify"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=True, default=str))


def _key_text(key: Any) -> str:
    # ensure_ascii: invisible characters in keys are printed escaped, never raw.
    return markup_escape(json.dumps(key, ensure_ascii=True, sort_keys=True))


@click.command()
@click.option("--segments", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Parallel scan segments (threads) per table.")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Check only this many old items and their new items (no extra-item pass).")
@click.option("--resume", is_flag=True, help="Continue the last interrupted verify run.")
@click.option("--page-size", type=click.IntRange(1, 10_000), default=1000, hidden=True,
              help="Items per Scan page (one checkpoint each).")
@click.option("--live/--not-live", default=None,
              help="Whether the source takes writes that stream sync follows: then a mismatch is re-checked"
                   " after the sync has caught up past it. [default: live when a stream-sync run is following]")
@click.option("--settle-timeout", type=click.FloatRange(0), default=120.0, show_default=True,
              help="Seconds to wait for stream sync to catch up past a mismatch before reporting it as unsettled.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def verify(obj: Context, segments: int, sample: int | None, resume: bool, page_size: int,
           live: bool | None, settle_timeout: float, as_json: bool) -> None:
    """Compare the new table with transform(old table) through the keymap; exit 1 on differences."""
    from keyshift.core.migrate.preflight import verify_preflight
    from keyshift.core.migrate.verify.run import VerifyCancelled, run_verify

    # Read-only mode runs it too (it only reads AWS, and the client refuses anything else), but
    # records nothing: the run's bookkeeping lives in a temporary directory (record=False).
    record = not obj.read_only
    if resume and not record:
        raise click.UsageError("--resume continues a recorded run; a read-only verify records none")
    ddb = obj.aws.client("dynamodb")
    pre = verify_preflight(obj.workspace, obj.spec, ddb, resume=resume)
    pre.raise_if_blocked({"no-plan": "keyshift plan --dump …", "nothing-to-resume": "run without --resume"})
    if not as_json:
        for warning in pre.warnings:
            err.print(f"[yellow]warning:[/] {markup_escape(warning)}")
    cancel = threading.Event()
    gen = run_verify(obj.workspace, obj.spec, ddb, segments=segments,
                     sample=sample, resume=resume, operator=obj.operator, page_size=page_size,
                     cancel=cancel, live=live, settle_timeout=settle_timeout,
                     keymap=pre.build.keymap if pre.build is not None else None, record=record)
    try:
        result = drive(gen, show=not as_json and err.is_terminal, console=err, describe=_verify_bar)
    except VerifyCancelled as exc:
        if not record:
            err.print("verify cancelled (read-only: nothing was recorded)")
        else:
            err.print(f"verify run {exc.run_id} cancelled; `keyshift verify --resume` continues it")
        sys.exit(130)
    s = result.summary
    if as_json:
        _emit_json(s)
    else:
        _print_report(s)
    if not record:
        err.print("read-only: this report is not recorded")
    if not result.equal:
        sys.exit(1)


def _verify_bar(p: Any) -> tuple[str, float | None, float, str]:
    return (f"scanning {p.phase}", p.total, p.done,
            f"{p.done:,} items  {p.rate:,.0f}/s  missing {p.missing}  extra {p.extra}  different {p.different}")


def _print_report(s: dict[str, Any]) -> None:
    verdict = "[green]equal[/]" if s["equal"] else "[bold red]NOT equal[/]"
    scope = f"sample of {s['sample']:,}" if s["sample"] else "full"
    run = f"verify run {s['run_id']}" if s.get("run_id") is not None else "verify (not recorded)"
    out.print(f"{run} ({scope}, keymap {s['keymap']}, {s['segments']} segments,"
              f" {s['seconds']:.1f} s): {verdict}")
    skipped = sum(s["skipped"].values())
    out.print(f"  compared {s['compared']:,}  missing {s['missing']:,}  extra "
              + (f"{s['extra']:,}" if s["extra_checked"] else "not checked (sample)")
              + f"  different {s['different']:,}  not expected (skipped) {skipped:,}")
    if s.get("live"):
        out.print(f"  live source: {s['cleared_by_sync']:,} mismatch(es) cleared once stream sync caught up,"
                  f" {s['unsettled']:,} reported without it catching up (unsettled)")
    off = s["offenders"]
    for key in off["missing"]:
        out.print(f"  [red]missing[/]   {_key_text(key)}")
    for key in off["extra"]:
        out.print(f"  [red]extra[/]     {_key_text(key)}")
    for d in off["different"]:
        out.print(f"  [red]different[/] {_key_text(d['key'])}: {markup_escape(', '.join(d['attributes']))}")
