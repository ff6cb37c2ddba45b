"""Planning: read a dump, normalize every identifier, classify it, and store it all in the workspace.

The plan is SQLite-centric so memory stays flat whatever the dump size: records stream into the
``records`` table in batches, and everything that needs the whole dump (grouping raw identifiers
by canonical form, reference matches, conflicts) is a SQL aggregate afterwards. Only a bounded
cache of recently normalized identifiers lives in memory.

:func:`run_plan` is a generator of :class:`PlanProgress`; whoever drives it (the CLI, a console
thread worker) decides how to show progress and may stop early by setting ``cancel``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import orjson

from .dumps import open_dump
from .dumps.model import DumpInfo
from .escape import escape
from .items import MAX_ITEM_BYTES, MAX_PARTITION_KEY_BYTES, item_size, key_problem, utf8_len
from .normalize import Normalizer
from .reference import read_reference
from .spec import Spec
from .workspace import IDENTIFIER_INDEXES, RECORD_INDEXES, Workspace, utcnow

__all__ = ["PlanProgress", "PlanResult", "PlanCancelled", "STATUSES", "run_plan", "plan_to_completion"]

log = logging.getLogger(__name__)

#: Every identifier status, in the precedence order the classification applies them.
STATUSES = ("invalid", "ambiguous", "orphaned", "fixed", "unchanged")

_BATCH = 5000
_CACHE_SIZE = 200_000  # recently normalized identifiers kept in memory (bounded: flat RSS)


class PlanCancelled(Exception):
    """The operator cancelled the plan; the workspace holds a plan in state ``cancelled``."""


@dataclass
class PlanProgress:
    """Where a running plan is. ``phase`` is ``reference``, ``reading`` or ``classifying``."""

    phase: str
    lines: int = 0
    records: int = 0
    quarantined: int = 0
    bytes_read: int = 0
    bytes_total: int | None = None
    elapsed: float = 0.0

    @property
    def fraction(self) -> float | None:
        """Share of the dump read (0..1), when its size is known."""
        if not self.bytes_total:
            return None
        return min(1.0, self.bytes_read / self.bytes_total)

    @property
    def rate(self) -> float:
        """Lines per second so far."""
        return self.lines / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left for reading, estimated from bytes read so far."""
        frac = self.fraction
        if not frac or frac <= 0 or self.elapsed <= 0:
            return None
        return self.elapsed * (1 - frac) / frac


@dataclass
class PlanResult:
    """The finished plan: the ``plan --json`` document plus the plan's id and the dump info."""

    plan_id: int
    summary: dict[str, Any]
    info: DumpInfo = field(repr=False, default=None)  # type: ignore[assignment]


def plan_to_completion(ws: Workspace, spec: Spec, dump_uri: str, **kwargs: Any) -> PlanResult:
    """Run :func:`run_plan` to the end, ignoring progress; returns the result."""
    gen = run_plan(ws, spec, dump_uri, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def run_plan(
    ws: Workspace,
    spec: Spec,
    dump_uri: str,
    *,
    fmt: str = "auto",
    s3: Any = None,
    operator: str = "unknown",
    allow_manifest_mismatch: bool = False,
    cancel: threading.Event | None = None,
) -> Iterator[PlanProgress]:
    """Plan ``dump_uri`` into ``ws``; yields progress, returns a :class:`PlanResult`.

    Re-planning replaces the previous plan's data, so planning the same dump twice gives the same
    workspace. Raises :class:`~keyshift.core.errors.DumpError` (or ``ManifestError``) on unusable
    input and :class:`PlanCancelled` when ``cancel`` is set.
    """
    started = time.perf_counter()
    normalizer = Normalizer(spec.normalize.rules)
    reader = open_dump(dump_uri, fmt, s3=s3, allow_manifest_mismatch=allow_manifest_mismatch)
    info = reader.info
    conn = ws.connect()
    with ws.transaction():
        plan_id = _start(conn, spec, dump_uri, info, operator)
    ws.audit(operator, "plan.start", {"plan_id": plan_id, "dump": dump_uri, "format": info.format})
    progress = PlanProgress("reference", bytes_total=info.bytes_total)
    try:
        ref_problems: list[dict[str, Any]] = []
        if spec.reference:
            _load_reference(ws, spec, normalizer, s3, ref_problems, cancel)
        progress.phase = "reading"
        yield from _read(ws, spec, normalizer, reader, progress, started, cancel)
        progress.phase = "classifying"
        progress.elapsed = time.perf_counter() - started
        yield progress
        summary = _classify(ws, spec, normalizer, info, progress, cancel)
    except PlanCancelled:
        _finish(ws, plan_id, "cancelled", None)
        ws.audit(operator, "plan.cancel", {"plan_id": plan_id, "lines": progress.lines})
        raise
    except BaseException as exc:
        _finish(ws, plan_id, "failed", {"error": str(exc)})
        ws.audit(operator, "plan.fail", {"plan_id": plan_id, "error": str(exc)})
        raise
    summary["reference_problems"] = ref_problems[:100]
    summary["reference_problem_count"] = len(ref_problems)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    _finish(ws, plan_id, "complete", summary)
    ws.audit(operator, "plan.complete", {"plan_id": plan_id, **_audit_summary(summary)})
    return PlanResult(plan_id, summary, info)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise PlanCancelled("plan cancelled by the operator")


def _start(conn: Any, spec: Spec, dump_uri: str, info: DumpInfo, operator: str) -> int:
    # One plan is active per workspace: a new plan replaces the previous plan's data.
    for table in ("records", "quarantine", "identifiers", "samples", "reference", "conflicts", "files"):
        conn.execute(f"DELETE FROM {table}")
    for name in (*RECORD_INDEXES, *IDENTIFIER_INDEXES):
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.executemany("INSERT INTO files(id, uri) VALUES (?, ?)", list(enumerate(info.files, 1)))
    cur = conn.execute(
        "INSERT INTO plans(dump_uri, format, rules, spec, operator, started_at, state)"
        " VALUES (?, ?, ?, ?, ?, ?, 'running')",
        (dump_uri, info.format, json.dumps(list(spec.normalize.rules)), json.dumps(spec.to_dict()),
         operator, utcnow()),
    )
    return int(cur.lastrowid)


def _finish(ws: Workspace, plan_id: int, state: str, summary: dict | None) -> None:
    ws.connect().execute(
        "UPDATE plans SET state = ?, finished_at = ?, summary = ? WHERE id = ?",
        (state, utcnow(), json.dumps(summary) if summary is not None else None, plan_id),
    )


def _load_reference(ws, spec, normalizer, s3, problems, cancel) -> None:
    reader = read_reference(spec.reference, s3)
    with ws.transaction() as conn:
        batch: list[tuple[str, str, str]] = []
        for row in reader:
            batch.append((normalizer.canonical(row.name), row.id, row.name))
            if len(batch) >= _BATCH:
                conn.executemany("INSERT INTO reference(canonical, id, name) VALUES (?, ?, ?)", batch)
                batch.clear()
                _check_cancel(cancel)
        conn.executemany("INSERT INTO reference(canonical, id, name) VALUES (?, ?, ?)", batch)
    problems.extend(asdict(p) for p in reader.problems)


def _read(ws, spec, normalizer, reader, progress, started, cancel) -> Iterator[PlanProgress]:
    """Stream every dump line into ``records`` or ``quarantine``; yields progress per batch."""
    pk, sk = spec.source.partition_key, spec.source.sort_key
    file_ids = {uri: i for i, uri in enumerate(reader.info.files, 1)}
    seen: OrderedDict[str, None] = OrderedDict()  # bounded: which raws already have a sample
    records: list[tuple] = []
    quarantine: list[tuple] = []
    samples: list[tuple[str, str]] = []
    seq = 0
    conn = ws.connect()

    def flush() -> None:
        with ws.transaction():
            conn.executemany(
                "INSERT INTO records(seq, file_id, line, raw, sort_key, size) VALUES (?, ?, ?, ?, ?, ?)",
                records,
            )
            conn.executemany(
                "INSERT INTO quarantine(seq, file_id, line, reason, excerpt, raw) VALUES (?, ?, ?, ?, ?, ?)",
                quarantine,
            )
            conn.executemany("INSERT OR IGNORE INTO samples(raw, item) VALUES (?, ?)", samples)
        records.clear()
        quarantine.clear()
        samples.clear()

    for entry in reader:
        seq += 1
        file_id = file_ids.get(entry.file)
        if file_id is None:  # a reader may discover files late (manifest entries): register them
            file_id = file_ids[entry.file] = len(file_ids) + 1
            conn.execute("INSERT OR IGNORE INTO files(id, uri) VALUES (?, ?)", (file_id, entry.file))
        item = entry.item
        if item is None:
            quarantine.append((seq, file_id, entry.line, entry.error or "unreadable", entry.excerpt, None))
            progress.quarantined += 1
            continue
        problem = key_problem(item, pk, role="identifier")
        raw = item[pk]["S"] if problem is None else None
        if problem is None and sk:
            problem = key_problem(item, sk, role="sort key")
        if problem is None:
            size = entry.raw_size
            if size > MAX_ITEM_BYTES:  # JSON is never smaller than the item: only then count exactly
                size = item_size(item)
                if size > MAX_ITEM_BYTES:
                    problem = f"item is {size} bytes, over DynamoDB's {MAX_ITEM_BYTES}-byte limit"
        if problem is not None:
            quarantine.append((seq, file_id, entry.line, problem, entry.excerpt or _excerpt(item), raw))
            progress.quarantined += 1
            continue
        sort_key = orjson.dumps(item[sk]).decode() if sk else None
        records.append((seq, file_id, entry.line, raw, sort_key, size))
        progress.records += 1
        if raw not in seen:
            seen[raw] = None
            if len(seen) > _CACHE_SIZE:
                seen.popitem(last=False)
            samples.append((raw, orjson.dumps(item).decode()))
        if len(records) + len(quarantine) >= _BATCH:
            flush()
            _check_cancel(cancel)
            progress.lines, progress.bytes_read = seq, reader.bytes_read
            progress.elapsed = time.perf_counter() - started
            yield progress
    flush()
    progress.lines, progress.bytes_read = seq, reader.bytes_read
    progress.elapsed = time.perf_counter() - started


def _excerpt(item: dict[str, Any]) -> str:
    return orjson.dumps(item).decode()[:200]


def _classify(ws, spec, normalizer, info, progress, cancel) -> dict[str, Any]:
    """Everything that needs the whole dump: identifiers, statuses, conflicts, the summary."""
    conn = ws.connect()
    with ws.transaction():
        for sql in RECORD_INDEXES.values():
            if "status" not in sql:
                conn.execute(sql)
        # One row per distinct raw identifier, with its canonical form and what changed.
        cur = conn.execute("SELECT raw, count(*) FROM records GROUP BY raw")
        while rows := cur.fetchmany(_BATCH):
            out = []
            for raw, count in rows:
                norm = normalizer.explain(raw)
                out.append((
                    raw, escape(raw), norm.canonical, count,
                    json.dumps([c.to_dict() for c in norm.changes]),
                    json.dumps(list(norm.suspicious)),
                ))
            conn.executemany(
                "INSERT INTO identifiers(raw, escaped, canonical, items, changes, suspicious, status)"
                " VALUES (?, ?, ?, ?, ?, ?, '')",
                out,
            )
        _check_cancel(cancel)
        for sql in IDENTIFIER_INDEXES.values():
            conn.execute(sql)
        has_reference = spec.reference is not None
        if has_reference:
            conn.execute(
                "UPDATE identifiers SET ref_ids = (SELECT json_group_array(id) FROM"
                " (SELECT DISTINCT id FROM reference r WHERE r.canonical = identifiers.canonical ORDER BY id))"
            )
        _assign_statuses(conn, has_reference)
        _check_cancel(cancel)
        conn.execute(
            "UPDATE records SET status = (SELECT status FROM identifiers i WHERE i.raw = records.raw)"
        )
        conn.execute(RECORD_INDEXES["records_status"])
        conn.execute(
            "INSERT INTO conflicts(canonical, sort_key, records, raws)"
            " SELECT i.canonical, r.sort_key, count(*), json_group_array(DISTINCT r.raw)"
            " FROM records r JOIN identifiers i ON i.raw = r.raw"
            " GROUP BY i.canonical, r.sort_key HAVING count(*) > 1"
        )
    return _summary(conn, info, progress)


def _assign_statuses(conn: Any, has_reference: bool) -> None:
    """Give every identifier exactly one status: the first of :data:`STATUSES` that applies."""
    conn.execute("UPDATE identifiers SET status = '', reason = '', new_id = NULL")
    # invalid: DynamoDB cannot store the canonical form as a partition key.
    conn.create_function("utf8_len", 1, lambda s: utf8_len(s) if s is not None else 0, deterministic=True)
    conn.execute(
        "UPDATE identifiers SET status = 'invalid', reason = CASE WHEN canonical = '' THEN"
        " 'canonical form is empty' ELSE 'canonical form is ' || utf8_len(canonical) ||"
        f" ' UTF-8 bytes, over the {MAX_PARTITION_KEY_BYTES}-byte partition key limit' END"
        f" WHERE canonical = '' OR utf8_len(canonical) > {MAX_PARTITION_KEY_BYTES}"
    )
    # ambiguous: several raw forms share one canonical form, or reference data offers several ids.
    conn.execute(
        "UPDATE identifiers SET status = 'ambiguous', reason = 'shares its canonical form with '"
        " || (SELECT count(*) - 1 FROM identifiers o WHERE o.canonical = identifiers.canonical)"
        " || ' other raw identifier(s)'"
        " WHERE status = '' AND canonical IN"
        " (SELECT canonical FROM identifiers GROUP BY canonical HAVING count(*) > 1)"
    )
    if has_reference:
        conn.execute(
            "UPDATE identifiers SET status = 'ambiguous', reason = 'reference data offers '"
            " || json_array_length(ref_ids) || ' ids' WHERE status = '' AND json_array_length(ref_ids) > 1"
        )
        conn.execute(
            "UPDATE identifiers SET status = 'orphaned', reason = 'no match in the reference data'"
            " WHERE status = '' AND json_array_length(ref_ids) = 0"
        )
        conn.execute("UPDATE identifiers SET new_id = json_extract(ref_ids, '$[0]') WHERE status = ''")
    else:
        conn.execute("UPDATE identifiers SET new_id = canonical WHERE status = ''")
    conn.execute(
        "UPDATE identifiers SET status = CASE WHEN new_id = raw THEN 'unchanged' ELSE 'fixed' END,"
        " reason = CASE WHEN new_id = raw THEN '' WHEN canonical = raw THEN 'new id from reference data'"
        " ELSE 'normalized' END WHERE status = ''"
    )


def _summary(conn: Any, info: DumpInfo, progress: PlanProgress) -> dict[str, Any]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in conn.execute("SELECT status, count(*) FROM identifiers GROUP BY status"):
        counts[status] = n
    records = conn.execute("SELECT count(*) FROM records").fetchone()[0]
    quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    record_counts = dict.fromkeys(STATUSES, 0)
    for status, n in conn.execute("SELECT status, count(*) FROM records GROUP BY status"):
        record_counts[status] = n
    progress.records, progress.quarantined = records, quarantined
    return {
        "format": info.format,
        "detected": info.detected,
        "detection": info.detection,
        "dump": info.uri,
        "files": len(info.files),
        "lines": progress.lines,
        "records": records,
        "quarantined": quarantined,
        "reconciled": progress.lines == records + quarantined,
        "identifiers": {"total": sum(counts.values()), **counts},
        "records_by_status": record_counts,
        "conflicts": conn.execute("SELECT count(*) FROM conflicts").fetchone()[0],
        "suspicious": conn.execute("SELECT count(*) FROM identifiers WHERE suspicious != '[]'").fetchone()[0],
        "expected_items": info.expected_items,
        "warnings": list(info.warnings),
        "seconds": 0.0,
    }


def _audit_summary(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("format", "files", "lines", "records", "quarantined", "conflicts", "suspicious")
    return {k: summary[k] for k in keys} | {"identifiers": summary["identifiers"]}
