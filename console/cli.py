"""The ``keyshift`` command: one subcommand per step, ``--json`` on every one for scripts.

Exit codes: 0 success, 1 a check found differences (later: verify), 2 unusable input, spec or
workspace (a :class:`~keyshift.core.errors.KeyshiftError`), 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Column, Table

from botocore.exceptions import BotoCoreError, ClientError
from keyshift.core.aws import AwsContext, aws_error_text
from keyshift.core.errors import KeyshiftError
from keyshift.core.text.escape import escape, unescape
from keyshift.core.text.lookalike import badges, marks

from .context import Context, default_operator
from .progress import drive

__all__ = ["main", "cli"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _emit_json(doc: Any) -> None:
    # ensure_ascii: a raw invisible character never reaches a terminal or a log unescaped.
    click.echo(json.dumps(doc, indent=2, ensure_ascii=True, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--spec", "spec_path", type=click.Path(path_type=Path), default="keyshift.toml",
              show_default=True, envvar="KEYSHIFT_SPEC", help="The migration spec.")
@click.option("--workspace", "workspace_path", type=click.Path(path_type=Path), default=".keyshift",
              show_default=True, envvar="KEYSHIFT_WORKSPACE", help="The workspace directory.")
@click.option("--endpoint-url", default=None, help="AWS endpoint (else AWS_ENDPOINT_URL / config).")
@click.option("--region", default=None, help="AWS region (else AWS_REGION / profile).")
@click.option("--profile", default=None, help="AWS profile (else AWS_PROFILE).")
@click.option("--operator", default=None, help="Who is acting, for the audit log [default: login name].")
@click.option("--read-only", is_flag=True, default=False, envvar="KEYSHIFT_READ_ONLY",
              help="Audit mode: see everything, change nothing.")
@click.version_option(package_name="keyshift")
@click.pass_context
def cli(ctx: click.Context, spec_path: Path, workspace_path: Path, endpoint_url: str | None,
        region: str | None, profile: str | None, operator: str | None, read_only: bool) -> None:
    """Change the primary key of a live DynamoDB table, step by step, with a person in the loop."""
    global _current
    ctx.obj = _current = Context(
        spec_path=spec_path,
        workspace_path=workspace_path,
        read_only=read_only,
        operator=operator or default_operator(),
        aws=AwsContext(endpoint_url=endpoint_url, region=region, profile=profile, read_only=read_only),
    )


#: The invocation's context, for error messages that name the endpoint or the workspace.
_current: Context | None = None


def main() -> None:
    """Entry point: run the CLI; every failure an operator can meet ends in one line on stderr.

    Operator-facing errors (a :class:`KeyshiftError`, an AWS error) exit 2 with their message;
    anything else is a keyshift bug: its traceback goes to a crash file named in the one line,
    never to the terminal.
    """
    try:
        cli.main(standalone_mode=False)
    except KeyshiftError as exc:
        _fail(exc.message, exc.exit_code)
    except (BotoCoreError, ClientError) as exc:
        _fail(aws_error_text(exc, _current.aws.endpoint_label if _current is not None else None), 2)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 1 else exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - a bug: say so in one line, keep the traceback in a file
        path = _crash_file(exc)
        _fail(f"internal error: {type(exc).__name__}: {exc} (traceback in {path}; please report it)", 2)


def _fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {markup_escape(' '.join(message.split()))}")
    sys.exit(code)


def _crash_file(exc: BaseException) -> str:
    import tempfile
    import traceback
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    directory = _current.workspace_path if _current is not None and _current.workspace_path.is_dir() else \
        Path(tempfile.gettempdir())
    path = directory / f"keyshift-crash-{stamp}.txt"
    try:
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return "(could not be written)"
    return str(path.resolve())


# -- plan ----------------------------------------------------------------------------------------
@cli.command()
@click.option("--dump", "dump_uri", required=True, help="Local file/directory or s3://bucket/prefix.")
@click.option("--format", "fmt", type=click.Choice(["auto", "datapipeline", "export", "ddbjson"]),
              default="auto", show_default=True)
@click.option("--allow-manifest-mismatch", is_flag=True,
              help="Plan even when a manifest's count or checksum disagrees (recorded as a warning).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Processes that parse the dump beside the one writing the workspace; 0 parses"
                   " in-process [default: 2 for dumps of 4 MiB or more, else 0].")
@click.option("--json", "as_json", is_flag=True, help="Print the plan summary as JSON.")
@click.pass_obj
def plan(obj: Context, dump_uri: str, fmt: str, allow_manifest_mismatch: bool, workers: int | None,
         as_json: bool) -> None:
    """Read a dump, normalize every identifier and classify every record."""
    from keyshift.core.plan.planner import run_plan

    obj.require_writable("plan")
    spec = obj.spec  # a missing spec is said before any workspace is created
    ws = obj.create_workspace()
    s3 = obj.s3() if dump_uri.startswith("s3://") or (spec.reference and spec.reference.uri.startswith("s3://")) else None
    gen = run_plan(ws, spec, dump_uri, fmt=fmt, s3=s3, operator=obj.operator,
                   allow_manifest_mismatch=allow_manifest_mismatch,
                   parallel=None if workers is None else workers > 0, workers=workers or None)
    show = not as_json and err.is_terminal
    result = drive(gen, show=show, console=err, describe=_plan_bar)
    summary = result.summary
    if as_json:
        _emit_json(summary)
        return
    _print_plan_summary(summary)


def _plan_bar(p: Any) -> tuple[str, float | None, float, str]:
    return p.phase, p.bytes_total, p.bytes_read, f"{p.lines:,} lines  {p.rate:,.0f}/s"


def _print_plan_summary(s: dict[str, Any]) -> None:
    out.print(f"dump      {markup_escape(s['dump'])}")
    how = f"detected: {s['detection']}" if s.get("detected") else "as requested"
    out.print(f"format    {s['format']} ({markup_escape(how)})")
    out.print(f"files     {s['files']}")
    recon = "reconciled" if s["reconciled"] else "[bold red]DOES NOT RECONCILE[/]"
    out.print(f"lines     {s['lines']:,} = {s['records']:,} records + {s['quarantined']:,} quarantined ({recon})")
    table = Table("status", "identifiers", "records", title="identifiers by status")
    for status in ("unchanged", "fixed", "ambiguous", "orphaned", "invalid"):
        table.add_row(status, f"{s['identifiers'][status]:,}", f"{s['records_by_status'][status]:,}")
    table.add_row("total", f"{s['identifiers']['total']:,}", f"{s['records']:,}")
    if s["identifiers"].get("remapped"):
        table.add_row("(remapped)", f"{s['identifiers']['remapped']:,}", f"{s.get('remapped_records', 0):,}")
    out.print(table)
    out.print(f"conflicts {s['conflicts']:,} (distinct canonical form + sort key shared by 2+ records)")
    out.print(f"suspicious {s['suspicious']:,} (mixed scripts or confusables: flagged, never changed)")
    for w in s.get("warnings", []):
        out.print(f"[yellow]warning:[/] {markup_escape(w)}")
    if s.get("reference_problem_count"):
        out.print(f"[yellow]warning:[/] {s['reference_problem_count']} unusable reference rows")
    out.print(f"seconds   {s['seconds']}")


# -- records -------------------------------------------------------------------------------------
@cli.command()
@click.option("--status", type=click.Choice(["unchanged", "fixed", "ambiguous", "orphaned", "invalid", "quarantined",
                                            "remapped"]),
              help="One status; remapped: unchanged or fixed records whose new id comes from reference data.")
@click.option("--identifier", "identifier", default=None,
              help="Only this raw identifier (escapes such as Acme\\u200b accepted).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--after", "after_seq", type=int, default=0, help="Continue after this record number.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def records(obj: Context, status: str | None, identifier: str | None, limit: int, after_seq: int,
            as_json: bool) -> None:
    """List planned records: raw and canonical identifier, new id, status, changes."""
    from keyshift.core.plan.queries import records_page

    raw = None
    if identifier is not None:
        try:
            raw = unescape(identifier)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--identifier") from None
    rows = records_page(obj.workspace, status=status, identifier=raw, after_seq=after_seq, limit=limit)
    if as_json:
        _emit_json([r.to_dict() for r in rows])
        return
    table = Table("seq", "file:line", "raw", "canonical", "new id", "status", "changes")
    for r in rows:
        changes = "; ".join(c["description"] for c in r.changes) or r.reason
        table.add_row(
            str(r.seq), markup_escape(f"{Path(r.file).name}:{r.line}"), markup_escape(r.escaped),
            markup_escape(escape(r.canonical)) if r.canonical is not None else "",
            markup_escape(escape(r.new_id)) if r.new_id else "", r.status, markup_escape(changes),
        )
    out.print(table)


# -- resolve -------------------------------------------------------------------------------------
def _unescaped(value: str, option: str) -> str:
    try:
        return unescape(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@cli.group()
def resolve() -> None:
    """Decide what the rules cannot: ambiguous, orphaned, invalid, conflicting, suspicious keys."""


@resolve.command("list")
@click.option("--kind", type=click.Choice(["ambiguous", "orphaned", "invalid", "conflict", "suspicious", "unmapped"]))
@click.option("--open", "open_only", is_flag=True, help="Only cases without a decision.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def resolve_list(obj: Context, kind: str | None, open_only: bool, as_json: bool) -> None:
    """List cases with a stable id, kind, status, members and candidate ids."""
    from keyshift.core.resolve.cases import list_cases

    ws = obj.workspace  # first: outside a migration, that is the error to give
    if not obj.read_only and obj.spec_path.exists() and getattr(obj.spec.stream, "hold_table", None):
        # What the Lambda handler held becomes unmapped cases here too, not only at the next stream-sync.
        from keyshift.core.migrate.stream.held import collect_held

        collect_held(ws, obj.spec, obj.aws.client("dynamodb"), operator=obj.operator)
    cases = list_cases(ws, kind=kind, open_only=open_only, samples=as_json)
    if as_json:
        _emit_json([_with_marks(c) for c in cases])
        return
    decided = sum(c.status == "decided" for c in cases)
    moot = sum(c.status == "moot" for c in cases)
    out.print(f"{decided} of {len(cases)} decided" + (f", {moot} moot (decisions took them away)" if moot else ""))
    table = Table("kind", "status", "members (escaped)", "items", "candidates", "decision")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=16))  # an id is never cut
    for c in cases:
        d = c.decision
        table.add_row(
            c.id, c.kind, c.status,
            markup_escape(" | ".join(_marked(m.raw) for m in c.members)),
            str(sum(m.items for m in c.members)),
            markup_escape(", ".join(_marked(x) for x in c.candidates)),
            markup_escape(c.moot) if c.moot else
            markup_escape(f"{d['action']} by {d['operator']}: {d['reason']}") if d else "",
        )
    out.print(table)


def _marked(raw: str) -> str:
    """The escaped form, then the look-alike badges: ``Café`` and ``Cafe\\u0301 [NFD]`` differ."""
    label = badges(raw)
    return f"{escape(raw)} {label}" if label else escape(raw)


def _with_marks(case: Any) -> dict[str, Any]:
    """A case's JSON with every member's and candidate's look-alike marks (``marks``)."""
    doc = case.to_dict()
    for member, raw in zip(doc["members"], (m.raw for m in case.members)):
        member["marks"] = [m.to_dict() for m in marks(raw)]
    doc["candidate_marks"] = [[m.to_dict() for m in marks(x)] for x in case.candidates]
    return doc


@resolve.command("decide")
@click.argument("case_id")
@click.argument("action", type=click.Choice(["same", "split", "drop", "map", "keep", "accept"]))
@click.option("--id", "new_id", help="The new id (same, map).")
@click.option("--map", "maps", multiple=True, metavar="RAW=NEW_ID", help="split: one per raw identifier.")
@click.option("--raw", "raws", multiple=True,
              help="drop: raw identifiers to drop; keep (conflict): the survivor; same (unmapped): the existing"
                   " identifier whose new id it gets.")
@click.option("--primary", metavar="RAW",
              help="same: the raw spelling writes go back to on a flip-back (reverse sync); default: the"
                   " member with the most items.")
@click.option("--reason", required=True, help="Why (recorded with who and when).")
@click.option("--allow-suspicious", is_flag=True,
              help="Accept a new id flagged suspicious (mixed scripts, look-alikes); recorded in the decision.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def resolve_decide(obj: Context, case_id: str, action: str, new_id: str | None, maps: tuple[str, ...],
                   raws: tuple[str, ...], primary: str | None, reason: str, allow_suspicious: bool,
                   as_json: bool) -> None:
    """Record a decision on one case. RAW values accept escapes such as Acme\\u200b."""
    from keyshift.core.resolve.cases import get_case
    from keyshift.core.resolve.decisions import decide

    obj.require_writable("resolve decide")
    mapping: dict[str, str] = {}
    for item in maps:
        raw, sep, target = item.rpartition("=")
        if not sep or not raw:
            raise click.BadParameter(f"{item!r} is not RAW=NEW_ID", param_hint="--map")
        mapping[_unescaped(raw, "--map")] = _unescaped(target, "--map")
    case = get_case(obj.workspace, case_id)
    decision = decide(
        obj.workspace, case, action, reason=reason, operator=obj.operator,
        new_id=_unescaped(new_id, "--id") if new_id is not None else None,
        mapping=mapping or None, raws=[_unescaped(r, "--raw") for r in raws] or None,
        primary=_unescaped(primary, "--primary") if primary is not None else None,
        allow_suspicious=allow_suspicious,
    )
    if as_json:
        _emit_json(decision.to_dict())
        return
    out.print(f"decision {decision.id}: {case.id} {action} ({markup_escape(reason)})")


@resolve.command("undo")
@click.argument("case_id")
@click.option("--reason", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def resolve_undo(obj: Context, case_id: str, reason: str, as_json: bool) -> None:
    """Reopen a case (recorded as a decision; the history is kept)."""
    from keyshift.core.resolve.cases import get_case
    from keyshift.core.resolve.decisions import undo

    obj.require_writable("resolve undo")
    decision = undo(obj.workspace, get_case(obj.workspace, case_id), reason=reason, operator=obj.operator)
    if as_json:
        _emit_json(decision.to_dict())
        return
    out.print(f"decision {decision.id}: {case_id} reopened ({markup_escape(reason)})")


@resolve.command("bulk")
@click.option("--kind", required=True, type=click.Choice(["ambiguous", "orphaned", "invalid", "suspicious"]))
@click.option("--where", "condition", default="single-candidate", show_default=True,
              type=click.Choice(["single-candidate", "any"]), help="Which open cases of the kind.")
@click.option("--action", required=True, type=click.Choice(["same", "keep", "drop", "accept"]))
@click.option("--reason", default=None, help="Shared reason (required with --apply).")
@click.option("--apply", "do_apply", is_flag=True, help="Record the decisions (without it: preview only).")
@click.option("--sample", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def resolve_bulk(obj: Context, kind: str, condition: str, action: str, reason: str | None, do_apply: bool,
                 sample: int, as_json: bool) -> None:
    """Preview (default) or apply one decision per matching open case, with a shared reason."""
    from keyshift.core.resolve.bulk import apply_bulk, preview_bulk

    preview = preview_bulk(obj.workspace, kind=kind, condition=condition, action=action)
    doc: dict[str, Any] = {"kind": kind, "condition": condition, "action": action, "count": preview.count,
                           "sample": [c.to_dict() for c in preview.sample(sample)], "applied": 0,
                           "refused": []}
    if do_apply:
        obj.require_writable("resolve bulk --apply")
        if not reason or not reason.strip():
            raise click.UsageError("--apply needs --reason")
        result = apply_bulk(obj.workspace, preview, reason=reason, operator=obj.operator)
        doc.update(applied=result.applied, refused=[{"case_id": c, "reason": r} for c, r in result.refused])
    if as_json:
        _emit_json(doc)
        return
    out.print(f"{preview.count} open {kind} case(s) match {condition!r} for {action!r}")
    for c in preview.sample(sample):
        out.print(f"  {c.id}  {markup_escape(' | '.join(m.escaped for m in c.members))}"
                  f"  -> {markup_escape(', '.join(escape(x) for x in c.candidates))}")
    if do_apply:
        out.print(f"applied {doc['applied']}, refused {len(doc['refused'])}")
    else:
        out.print("preview only: add --apply --reason TEXT to record these decisions")


@resolve.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def resolve_export(obj: Context, file: Path) -> None:
    """Write every decision in force to FILE (JSON, keyshift-decisions/1)."""
    from keyshift.core.resolve.decision_files import export_decisions

    doc = export_decisions(obj.workspace)
    file.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    out.print(f"{len(doc['decisions'])} decision(s) -> {markup_escape(str(file))}")


@resolve.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def resolve_import(obj: Context, file: Path, as_json: bool) -> None:
    """Apply a decisions file; idempotent; conflicts and refusals are reported, not forced."""
    from keyshift.core.resolve.decision_files import import_decisions

    obj.require_writable("resolve import")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    report = import_decisions(obj.workspace, doc, operator=obj.operator)
    if as_json:
        _emit_json(report)
        return
    out.print(f"applied {report['applied']}, already in force {report['already']}, "
              f"conflicts {len(report['conflicts'])}, refused {len(report['refused'])}")
    for c in report["conflicts"]:
        out.print(f"[yellow]conflict:[/] {c['case_id']}: here {c['here']} by {markup_escape(c['here_by'])},"
                  f" file {c['file']}")
    for r in report["refused"]:
        out.print(f"[red]refused:[/] {r['case_id']}: {markup_escape(r['reason'])}")


# -- keymap --------------------------------------------------------------------------------------
@cli.group()
def keymap() -> None:
    """The compiled raw identifier -> new id mapping everything downstream uses."""


@keymap.command("build")
@click.option("--out", "out_path", default=None, help="Write the artifact here (a path or s3://bucket/key).")
@click.option("--allow-unresolved", is_flag=True, help="Build with cases open: their items are skipped.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def keymap_build(obj: Context, out_path: str | None, allow_unresolved: bool, as_json: bool) -> None:
    """Compile rules plus decisions into one versioned keymap."""
    from keyshift.core.resolve.keymap_build import build_keymap, keymap_document, record_build

    obj.require_writable("keymap build")
    build = build_keymap(obj.workspace, allow_unresolved=allow_unresolved)
    if out_path:
        data = json.dumps(keymap_document(build, operator=obj.operator, spec=obj.spec), ensure_ascii=True, indent=1).encode()
        if out_path.startswith("s3://"):
            bucket, _, key = out_path[5:].partition("/")
            obj.s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json")
        else:
            Path(out_path).write_bytes(data)
    record_build(obj.workspace, build, operator=obj.operator, location=out_path)
    doc = {**build.summary, "out": out_path, "skipped_cases": build.open_cases}
    if as_json:
        _emit_json(doc)
        return
    out.print(f"keymap {build.keymap.version}: {build.summary['mapped']:,} mapped, "
              f"{build.summary['dropped']:,} dropped, {build.summary['unresolved']:,} unresolved"
              + (f" -> {markup_escape(out_path)}" if out_path else ""))
    for cid in build.open_cases[:20]:
        out.print(f"[yellow]skipped (open case):[/] {cid}")


# -- restore -------------------------------------------------------------------------------------
@cli.command()
@click.option("--create-table", is_flag=True, help="Create the target table (on-demand, with a stream).")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--rate", type=click.FloatRange(min=1), default=None, help="Items per second at most.")
@click.option("--resume", is_flag=True, help="Continue the interrupted restore from its checkpoint.")
@click.option("--allow-non-empty", is_flag=True, help="Restore into a table that already holds items.")
@click.option("--allow-unresolved", is_flag=True, help="Skip the items of open cases (listed).")
@click.option("--deadline", "deadline_s", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Seconds a batch may keep retrying unprocessed items before the run stops.")
@click.option("--via-import", "via_import", default=None, metavar="s3://bucket/prefix",
              help="Write gzipped DynamoDB JSON there and create the table with ImportTable.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def restore(obj: Context, create_table: bool, workers: int, rate: float | None, resume: bool,
            allow_non_empty: bool, allow_unresolved: bool, deadline_s: float, via_import: str | None,
            as_json: bool) -> None:
    """Write transform(dump) into the new table: batched, parallel, throttled, resumable."""
    from keyshift.core.migrate.preflight import restore_preflight
    from keyshift.core.migrate.restore import plan_to_restore_args, run_restore
    from keyshift.core.migrate.tables import create_target_table, new_table_schema

    obj.require_writable("restore")
    ws, spec = obj.workspace, obj.spec
    ddb = obj.aws.client("dynamodb")
    pre = restore_preflight(ws, spec, ddb, obj.aws.client("dynamodbstreams"), resume=resume,
                            allow_unresolved=allow_unresolved, allow_non_empty=allow_non_empty,
                            create_table=create_table, via_import=bool(via_import))
    pre.raise_if_blocked(_RESTORE_HINTS)
    plan_row, build = pre.plan, pre.build
    assert plan_row is not None and build is not None  # the preflight passed
    # Said before the restore starts: what would keep stream sync from completing it later.
    for warning in pre.warnings:
        err.print(f"[yellow]warning:[/] {markup_escape(warning)}")
    s3 = obj.s3() if plan_row.dump_uri.startswith("s3://") or (via_import or "").startswith("s3://") else None
    if via_import:
        from keyshift.core.migrate.import_table import import_via_s3

        result = import_via_s3(ws, spec, build.keymap, dump_uri=plan_row.dump_uri, fmt=plan_row.format or "auto",
                               s3=s3, ddb=ddb, prefix_uri=via_import,
                               sort_key_type=new_table_schema(ddb, spec).sk_type,
                               operator=obj.operator)
        doc = {**result.to_dict(), "written": result.items_written, "retries": 0,
               "skipped": result.skipped, "skipped_cases": build.open_cases, "warnings": pre.warnings}
        if as_json:
            _emit_json(doc)
            return
        out.print(f"ImportTable {result.status}: {result.items_written:,} items written to {markup_escape(via_import)},"
                  f" {result.imported} imported, {result.errored} errored; keymap {result.keymap}")
        return
    if create_table:
        create_target_table(ddb, spec, new_table_schema(ddb, spec))
    gen = run_restore(ws, spec, build.keymap, ddb=obj.aws.writer_client(), s3=s3, **plan_to_restore_args(plan_row),
                      operator=obj.operator, workers=workers, rate=rate, resume=resume, deadline_s=deadline_s)
    summary = drive(gen, show=not as_json and err.is_terminal, console=err, describe=_restore_bar)
    summary["skipped_cases"] = build.open_cases
    summary["warnings"] = pre.warnings
    if as_json:
        _emit_json(summary)
        return
    reasons = ", ".join(f"{n:,} {k}" for k, n in summary.get("skip_reasons", {}).items())
    out.print(f"restored {summary['written']:,} items into {spec.target.table} with keymap {summary['keymap']}"
              f" in {summary['seconds']} s: {summary['skipped']:,} skipped{f' ({reasons})' if reasons else ''},"
              f" {summary['dropped_by_decision']:,} dropped by decision, {summary['retries']:,} retries,"
              f" {summary['throttles']:,} throttles")


#: What the CLI adds to a restore blocker: the flag or command that resolves it.
_RESTORE_HINTS = {
    "no-plan": "keyshift plan --dump …",
    "open-cases": "decide them: keyshift resolve list --open; or pass --allow-unresolved to skip their items",
    "no-table": "pass --create-table",
    "not-empty": "pass --allow-non-empty, or --resume to continue an interrupted restore",
    "nothing-to-resume": "run without --resume",
    "table-exists": "delete it, or restore into it without --create-table / --via-import",
}


def _restore_bar(p: Any) -> tuple[str, float | None, float, str]:
    return ("PAUSED" if p.paused else "restoring", p.total_lines, p.lines,
            f"{p.written:,} written  {p.rate:,.0f}/s  retries {p.retries:,}  throttles {p.throttles:,}"
            f"  workers {p.workers}")


@cli.command("restore-control")
@click.option("--pause", "action", flag_value="pause", help="Pause a running restore.")
@click.option("--resume", "action", flag_value="resume", help="Resume a paused restore.")
@click.option("--rate", type=click.FloatRange(min=0), default=None, help="Items per second at most (0: no limit).")
@click.option("--workers", type=click.IntRange(1, 64), default=None)
@click.pass_obj
def restore_control(obj: Context, action: str | None, rate: float | None, workers: int | None) -> None:
    """Steer a running restore (it polls this workspace's control file every second)."""
    from keyshift.core.migrate.restore_control import RestoreControl, read_control, write_control

    obj.require_writable("restore-control")
    current = read_control(obj.workspace) or RestoreControl()
    if action is not None:
        current.paused = action == "pause"
    if rate is not None:
        current.rate = rate or None
    if workers is not None:
        current.workers = workers
    path = write_control(obj.workspace, current)
    obj.workspace.audit(obj.operator, "restore.control", {"paused": current.paused, "rate": current.rate,
                                                           "workers": current.workers})
    out.print(f"{markup_escape(str(path))}: paused={current.paused} rate={current.rate} workers={current.workers}")


# -- audit ---------------------------------------------------------------------------------------
@cli.command()
@click.option("--verify", "do_verify", is_flag=True,
              help="Recompute the hash chain; name the first broken entry (exit 1 when broken).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--operator", "by_operator", default=None, help="Only this operator's entries.")
@click.option("--action", "action", default=None,
              help="Only this action, or actions under it (restore: restore.start, restore.complete…).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--console", "open_console", is_flag=True,
              help="Open the console read-only on the audit screen instead (for reviewers).")
@click.pass_obj
def audit(obj: Context, do_verify: bool, limit: int, by_operator: str | None, action: str | None,
          as_json: bool, open_console: bool) -> None:
    """Show the audit log, newest first; --verify checks its hash chain. Works read-only."""
    if open_console:
        if do_verify or as_json:
            raise click.UsageError("--console opens the audit screen (its v verifies the chain): "
                                   "it takes neither --verify nor --json")
        from .app import make_app

        reviewer = read_only_context(obj)
        reviewer.workspace  # noqa: B018 - a missing workspace is the one-line error, before any screen
        make_app(reviewer, start_on="audit").run()
        return
    if do_verify:
        report = obj.workspace.verify_audit()
        if as_json:
            _emit_json(report.to_dict())
        elif report.chain_ok:
            head = f"; head {report.head_id} {report.head_hash}" if report.head_id is not None else ""
            out.print(f"audit chain whole: {report.entries:,} entries verified{head}")
        else:
            out.print(f"[bold red]audit chain BROKEN[/] at entry {report.first_broken}:"
                      f" {markup_escape(report.reason or '')} ({report.verified:,} of {report.entries:,}"
                      " entries verified before it)")
        if not report.chain_ok:
            sys.exit(1)
        return
    entries = obj.workspace.audit_log(limit, action, operator=by_operator)
    if as_json:
        _emit_json([e.to_dict() for e in entries])
        return
    table = Table("id", "time", "operator", "action", "details")
    for e in entries:
        table.add_row(str(e.id), e.ts, markup_escape(e.operator), markup_escape(e.action),
                      markup_escape(json.dumps(e.details, ensure_ascii=True)))
    out.print(table)


def read_only_context(obj: Context) -> Context:
    """``obj`` as ``--read-only`` would have made it: the workspace opened read-only and every AWS
    client refusing writes, whatever the command line said (``audit --console`` is for reviewers)."""
    if obj.read_only:
        return obj
    return dataclasses.replace(obj, read_only=True, aws=dataclasses.replace(obj.aws, read_only=True))


# -- console and demo ----------------------------------------------------------------------------
@cli.command()
@click.option("--serve", is_flag=True, help="Serve the console to a browser (pairing), behind a fresh token.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="With --serve: the address to listen on; anything but loopback is warned about.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="With --serve: the port to listen on.")
@click.option("--ask-operator", is_flag=True,
              help="Ask the operator's name first (what each browser session of --serve runs).")
@click.pass_obj
@click.pass_context
def console(ctx: click.Context, obj: Context, serve: bool, host: str, port: int, ask_operator: bool) -> None:
    """Open the console on the workspace (or, with --serve, serve it to a browser)."""
    given = [f"--{name}" for name in ("host", "port")
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if given and not serve:
        raise click.UsageError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} only used with --serve")
    if serve:
        from .serve import serve_console

        serve_console(obj, host=host, port=port)
        return
    from .app import make_app

    make_app(obj, ask_operator=ask_operator).run()


@cli.command()
@click.option("--records", "n_records", type=click.IntRange(min=50), default=2000, show_default=True,
              help="How many items the demo table gets.")
@click.option("--no-console", is_flag=True, help="Print how to use the demo, then serve until Ctrl-C.")
@click.option("--port", type=int, default=0, help="Port for the local server [default: a free one].")
@click.option("--dir", "demo_dir", type=click.Path(path_type=Path), default=None,
              help="Where the demo spec and workspace go [default: a new temp directory].")
@click.option("--writes-per-second", type=click.FloatRange(min=0, max=100), default=3.0, show_default=True,
              help="How fast the live writer changes the old table after the dump (0: no writer).")
@click.option("--max-writes", type=click.IntRange(min=1), default=5000, show_default=True,
              help="The live writer stops after this many writes.")
@click.pass_obj
def demo(obj: Context, n_records: int, no_console: bool, port: int, demo_dir: Path | None,
         writes_per_second: float, max_writes: int) -> None:
    """Start a local DynamoDB/S3 (moto) with a dirty table, plan it, and open the console.

    A live writer keeps changing the old table and three services (checkout, billing, support)
    read and write through the router, so sync and the cut-over have real work to show."""
    from .demo import run_demo

    run_demo(obj, n_records=n_records, open_console=not no_console, port=port, demo_dir=demo_dir,
             writes_per_second=writes_per_second, max_writes=max_writes)


from .cli_stream import stream_sync  # noqa: E402
from .cli_verify import verify  # noqa: E402
from .cli_flag import flag  # noqa: E402

cli.add_command(verify)
cli.add_command(stream_sync)
cli.add_command(flag)


if __name__ == "__main__":  # pragma: no cover
    main()
