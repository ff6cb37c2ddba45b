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
import os
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import orjson

from ..resolve.cases import materialize_cases
from ..dumps.model import DumpInfo
from ..text.escape import escape
from ..kernel.items import MAX_PARTITION_KEY_BYTES, utf8_len
from ..text.normalize import Normalizer
from ..text.scripts import suspicious
from .extract import SAMPLE_CACHE, extract_batches, extract_in_child
from .queries import REMAPPED
from ..progress import run_to_completion
from .reference import read_reference
from ..spec import Spec
from ..store.workspace import IDENTIFIER_INDEXES, RECORD_INDEXES, Workspace, utcnow

__all__ = ["PlanProgress", "PlanResult", "PlanCancelled", "STATUSES", "run_plan", "plan_to_completion"]

log = logging.getLogger(__name__)

#: Every identifier status, in the precedence order the classification applies them.
STATUSES = ("invalid", "ambiguous", "orphaned", "fixed", "unchanged")

_BATCH = 5000
_CACHE_SIZE = SAMPLE_CACHE  # identifiers kept in memory (bounded: flat RSS)
#: Dumps at least this large are extracted in a child process (its start-up costs about 0.3 s,
#: which a 4 MiB dump, about 80,000 items, already repays).
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
#: At most this many extraction processes (one per group of files); the parent writes SQLite.
PARALLEL_WORKERS = 2


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
    return run_to_completion(run_plan(ws, spec, dump_uri, **kwargs))


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
    parallel: bool | None = None,
    workers: int | None = None,
) -> Iterator[PlanProgress]:
    """Plan ``dump_uri`` into ``ws``; yields progress, returns a :class:`PlanResult`.

    Re-planning replaces the previous plan's data, so planning the same dump twice gives the same
    workspace. Raises :class:`~keyshift.core.errors.DumpError` (or ``ManifestError``) on unusable
    input and :class:`PlanCancelled` when ``cancel`` is set. ``parallel`` runs the extraction
    stage in child processes (default: for dumps of :data:`PARALLEL_MIN_BYTES` or more, or of
    unknown size), ``workers`` of them at most (default :data:`PARALLEL_WORKERS`, capped by the
    CPU count and the number of files); the result is the same either way.
    """
    started = time.perf_counter()
    normalizer = Normalizer(spec.normalize.rules)
    pk, sk = spec.source.partition_key, spec.source.sort_key
    source: Any = extract_batches(dump_uri, fmt, s3=s3, allow_manifest_mismatch=allow_manifest_mismatch,
                                  partition_key=pk, sort_key=sk)
    info = source.info
    if parallel is None:
        parallel = info.bytes_total is None or info.bytes_total >= PARALLEL_MIN_BYTES
    if parallel:
        # The same extraction, in a child process, so parsing and SQLite writes use two cores.
        source = extract_in_child(
            dump_uri, fmt, s3=s3, allow_manifest_mismatch=allow_manifest_mismatch,
            partition_key=pk, sort_key=sk, n_files=len(info.files),
            workers=workers or min(PARALLEL_WORKERS, os.cpu_count() or 1),
        )
        info = source.info
    try:
        result = yield from _plan(ws, spec, dump_uri, normalizer, source, info, s3, operator, cancel, started)
    finally:
        if hasattr(source, "close"):
            source.close()  # the child process, when one runs
    return result


def _plan(ws, spec, dump_uri, normalizer, source, info, s3, operator, cancel, started):
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
        yield from _read(ws, normalizer, source, progress, started, cancel)
        progress.phase = "classifying"
        progress.elapsed = time.perf_counter() - started
        yield progress
        summary = _classify(ws, spec, normalizer, info, progress, cancel)
    except (PlanCancelled, GeneratorExit, KeyboardInterrupt):
        # GeneratorExit: whoever drove the plan stopped listening; that is a cancel too.
        _finish(ws, plan_id, "cancelled", None,
                (operator, "plan.cancel", {"plan_id": plan_id, "lines": progress.lines}))
        raise
    except BaseException as exc:
        _finish(ws, plan_id, "failed", {"error": str(exc)},
                (operator, "plan.fail", {"plan_id": plan_id, "error": str(exc)}))
        raise
    summary["reference_problems"] = ref_problems[:100]
    summary["reference_problem_count"] = len(ref_problems)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    _finish(ws, plan_id, "complete", summary,
            (operator, "plan.complete", {"plan_id": plan_id, **_audit_summary(summary)}))
    return PlanResult(plan_id, summary, info)


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise PlanCancelled("plan cancelled by the operator")


def _start(conn: Any, spec: Spec, dump_uri: str, info: DumpInfo, operator: str) -> int:
    # One plan is active per workspace: a new plan replaces the previous plan's data.
    for table in ("records", "quarantine", "identifiers", "samples", "reference", "conflicts", "files",
                  "cases", "case_members"):
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


def _finish(ws: Workspace, plan_id: int, state: str, summary: dict | None,
            audit: tuple[str, str, dict] | None = None) -> None:
    """The plan's end and its audit entry, in one transaction."""
    with ws.transaction() as conn:
        conn.execute(
            "UPDATE plans SET state = ?, finished_at = ?, summary = ? WHERE id = ?",
            (state, utcnow(), json.dumps(summary) if summary is not None else None, plan_id),
        )
        if audit is not None:
            ws.audit(*audit)


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


def _local_status(canonical: str, raw: str) -> str:
    """The verdict an identifier earns on its own: ``invalid``, ``fixed`` or ``unchanged``.

    What needs the whole dump (collisions, reference data) is applied later, in SQL.
    """
    if not canonical or utf8_len(canonical) > MAX_PARTITION_KEY_BYTES:
        return "invalid"
    return "unchanged" if canonical == raw else "fixed"


def _identifier_row(ident: int, normalizer: Normalizer, raw: str) -> tuple:
    """An ``identifiers`` row: id, raw, escaped, canonical, new id, status, reason, changes,
    suspicious."""
    if (normalizer.single_pass or raw.isascii()) and normalizer.canonical(raw) == raw \
            and _local_status(raw, raw) == "unchanged":
        # A clean identifier needs no explanation: a pass that ends where it began records no
        # change (Normalizer.explain), and with a one-pass chain (or ASCII text, which no rule
        # turns around) canonical == raw means the first pass did. Only the flags are left.
        # Non-ASCII names (São Paulo, Zürich) are as common as ASCII ones in real data.
        if raw.isascii():  # cannot mix scripts or look like another script's letters
            return (ident, raw, escape(raw), raw, raw, "unchanged", "", "[]", "[]")
        return (ident, raw, escape(raw), raw, raw, "unchanged", "", "[]",
                orjson.dumps(list(suspicious(raw))).decode())
    norm = normalizer.explain(raw)
    canonical = norm.canonical
    status = _local_status(canonical, raw)
    if status == "invalid":
        new_id = None
        reason = ("canonical form is empty" if not canonical else
                  f"canonical form is {utf8_len(canonical)} UTF-8 bytes, over the"
                  f" {MAX_PARTITION_KEY_BYTES}-byte partition key limit")
    else:
        new_id = canonical
        reason = "normalized" if status == "fixed" else ""
    return (
        ident, raw, escape(raw), canonical, new_id, status, reason,
        orjson.dumps([c.to_dict() for c in norm.changes]).decode(),
        orjson.dumps(list(norm.suspicious)).decode(),
    )


class _Loader:
    """Writes each batch to the ``records``, ``quarantine``, ``identifiers`` and ``samples`` tables.

    Each distinct raw identifier is explained and stored once, the first time it is met, and
    records refer to it by id. ``known`` caches raw -> id for the hot loop; it is
    bounded (flushed and cleared when full) so memory stays flat however many identifiers there
    are, and after a clear a miss is looked up in the database instead of assumed new.
    """

    def __init__(self, ws: Workspace, normalizer: Normalizer) -> None:
        self.ws, self.conn, self.normalizer = ws, ws.connect(), normalizer
        self.known: dict[str, int] = {}  # same bound as the extractor's sample cache
        self.counts: Counter[int] = Counter()
        self.identifiers: list[tuple] = []
        self.samples: list[tuple[int, int, str]] = []
        self.next_id = 1
        self.cleared = False

    def identifier(self, raw: str) -> int:
        """The id of ``raw``, registering it when new."""
        if len(self.known) >= _CACHE_SIZE:
            self.flush()
            self.known.clear()
            self.cleared = True
        if self.cleared:
            row = self.conn.execute("SELECT id FROM identifiers WHERE raw = ?", (raw,)).fetchone()
            if row is not None:
                self.known[raw] = row[0]
                return row[0]
        ident = self.next_id
        self.next_id += 1
        self.identifiers.append(_identifier_row(ident, self.normalizer, raw))
        self.known[raw] = ident
        return ident

    def add(self, batch: Any) -> None:
        """Store one extracted batch, in one transaction."""
        raws = batch.raws
        get = self.known.get
        # Whole columns at once: C loops for the lookups and the counts, Python only for the
        # identifiers this batch meets first.
        idents = [*map(get, raws)]
        if None in idents:
            identifier = self.identifier
            for i, ident in enumerate(idents):
                if ident is None:
                    raw = raws[i]
                    idents[i] = get(raw) or identifier(raw)
        self.counts.update(idents)
        seqs = batch.seqs
        self.samples.extend((idents[i], seqs[i], item) for i, item in batch.samples)
        self.flush(zip(seqs, batch.file_ids, batch.line_nos, idents, batch.sort_keys, batch.sizes),
                   batch.quarantine)

    def flush(self, records: Any = (), quarantine: Any = ()) -> None:
        """Write every pending identifier and sample, plus ``records`` and ``quarantine`` rows,
        in one transaction."""
        conn = self.conn
        with self.ws.transaction():
            conn.executemany(
                "INSERT INTO identifiers(id, raw, escaped, canonical, new_id, status, reason,"
                " changes, suspicious, items) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                self.identifiers,
            )
            # Extractors send an item the first time *they* meet an identifier; with several of
            # them (or after a cache clear) keep the earliest in dump order, whoever sent it.
            conn.executemany(
                "INSERT INTO samples(ident, seq, item) VALUES (?, ?, ?) ON CONFLICT(ident) DO UPDATE"
                " SET seq = excluded.seq, item = excluded.item WHERE excluded.seq < samples.seq",
                self.samples,
            )
            conn.executemany(
                "INSERT INTO records(seq, file_id, line, ident, sort_key, size) VALUES (?, ?, ?, ?, ?, ?)",
                records,
            )
            conn.executemany(
                "INSERT INTO quarantine(seq, file_id, line, reason, excerpt, raw) VALUES (?, ?, ?, ?, ?, ?)",
                quarantine,
            )
            if len(self.counts) >= _CACHE_SIZE:
                self.flush_counts()
        self.identifiers.clear()
        self.samples.clear()

    def flush_counts(self) -> None:
        """Add the per-identifier record counts gathered so far to ``identifiers.items``."""
        self.conn.executemany(
            "UPDATE identifiers SET items = items + ? WHERE id = ?",
            [(n, ident) for ident, n in self.counts.items()],
        )
        self.counts.clear()


def _read(ws, normalizer, source, progress, started, cancel) -> Iterator[PlanProgress]:
    """Store every extracted batch in ``records`` and ``quarantine``; yields progress per batch."""
    loader = _Loader(ws, normalizer)
    for batch in source:
        _check_cancel(cancel)
        loader.add(batch)
        progress.records += batch.records
        progress.quarantined += len(batch.quarantine)
        progress.lines, progress.bytes_read = batch.lines, batch.bytes_read
        progress.elapsed = time.perf_counter() - started
        yield progress
    _check_cancel(cancel)
    with ws.transaction():
        loader.flush_counts()


def _classify(ws, spec, normalizer, info, progress, cancel) -> dict[str, Any]:
    """Everything that needs the whole dump: statuses, corrections, conflicts, the summary."""
    conn = ws.connect()
    with ws.transaction():
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
        # A record's status is its identifier's (joined when read), so a later decision on an
        # identifier never rewrites records.
        conn.execute(RECORD_INDEXES["records_ident"])
        _find_conflicts(conn)
        materialize_cases(conn)
    return _summary(conn, info, progress)


def _find_conflicts(conn: Any) -> None:
    """Distinct (canonical form, sort key) pairs that two or more records share.

    Two records can only share one when their raw identifiers share a canonical form (a small
    set: the collision groups) or when one raw identifier repeats a sort key (a duplicated dump
    line), which the ``(ident, sort_key)`` index finds without sorting a million rows.
    """
    conn.execute("DROP TABLE IF EXISTS temp.grouped")
    conn.execute(
        "CREATE TEMP TABLE grouped AS SELECT id, raw, canonical FROM identifiers WHERE canonical IN"
        " (SELECT canonical FROM identifiers GROUP BY canonical HAVING count(*) > 1)"
    )
    conn.execute(
        "INSERT INTO conflicts(canonical, sort_key, records, raws)"
        " SELECT g.canonical, r.sort_key, count(*), json_group_array(DISTINCT g.raw)"
        " FROM temp.grouped g JOIN records r ON r.ident = g.id"
        " GROUP BY g.canonical, r.sort_key HAVING count(*) > 1"
    )
    conn.execute(
        "INSERT INTO conflicts(canonical, sort_key, records, raws)"
        " SELECT i.canonical, d.sort_key, d.n, json_array(i.raw) FROM"
        " (SELECT ident, sort_key, count(*) AS n FROM records GROUP BY ident, sort_key HAVING count(*) > 1) d"
        " JOIN identifiers i ON i.id = d.ident WHERE d.ident NOT IN (SELECT id FROM temp.grouped)"
    )
    conn.execute("DROP TABLE temp.grouped")


def _assign_statuses(conn: Any, has_reference: bool) -> None:
    """Give every identifier exactly one status: the first of :data:`STATUSES` that applies.

    Identifiers arrive with their local verdict (``invalid``, ``fixed`` or ``unchanged``, from
    their own canonical form). What needs the whole dump is applied here, in precedence order,
    each step only touching identifiers no earlier step claimed. ``unchanged`` and ``fixed`` say
    what the *rules* did to the raw spelling, whatever id reference data then gives it.
    """
    # ambiguous: several raw forms share one canonical form.
    conn.execute("DROP TABLE IF EXISTS temp.shared")
    conn.execute(
        "CREATE TEMP TABLE shared AS SELECT canonical, count(*) AS n FROM identifiers"
        " GROUP BY canonical HAVING count(*) > 1"
    )
    conn.execute(
        "UPDATE identifiers SET status = 'ambiguous', new_id = NULL,"
        " reason = 'shares its canonical form with ' || (s.n - 1) || ' other raw identifier(s)'"
        " FROM temp.shared s WHERE s.canonical = identifiers.canonical AND identifiers.status != 'invalid'"
    )
    conn.execute("DROP TABLE temp.shared")
    if not has_reference:
        return
    open_ = "status IN ('fixed', 'unchanged')"
    # ambiguous: reference data offers several ids for the canonical form.
    conn.execute(
        "UPDATE identifiers SET status = 'ambiguous', new_id = NULL, reason = 'reference data offers '"
        f" || json_array_length(ref_ids) || ' ids' WHERE {open_} AND json_array_length(ref_ids) > 1"
    )
    conn.execute(
        "UPDATE identifiers SET status = 'orphaned', new_id = NULL,"
        f" reason = 'no match in the reference data' WHERE {open_} AND json_array_length(ref_ids) = 0"
    )
    # ambiguous: one reference id given to several canonical forms would merge different raw
    # identifiers onto one new id without anyone deciding it.
    conn.execute(
        "UPDATE identifiers SET status = 'ambiguous', new_id = NULL,"
        " reason = 'reference id ' || json_extract(ref_ids, '$[0]') || ' is also given to another"
        " canonical form' WHERE {open_} AND json_extract(ref_ids, '$[0]') IN"
        " (SELECT json_extract(ref_ids, '$[0]') FROM identifiers WHERE {open_}"
        " GROUP BY 1 HAVING count(DISTINCT canonical) > 1)".format(open_=open_)
    )
    # The status stays what the rules did (unchanged / fixed); where the new id comes from upstream
    # and differs from the canonical form, the reason says so and the summary counts it "remapped".
    conn.execute(
        "UPDATE identifiers SET new_id = json_extract(ref_ids, '$[0]'),"
        " reason = CASE WHEN json_extract(ref_ids, '$[0]') = canonical"
        " THEN CASE WHEN canonical = raw THEN '' ELSE 'normalized' END"
        " WHEN canonical = raw THEN 'new id from reference data'"
        " ELSE 'normalized; new id from reference data' END"
        f" WHERE {open_}"
    )


def _summary(conn: Any, info: DumpInfo, progress: PlanProgress) -> dict[str, Any]:
    counts = dict.fromkeys(STATUSES, 0)
    record_counts = dict.fromkeys(STATUSES, 0)
    # Per-identifier item counts add up to the records: no scan of the records table needed.
    for status, n, items in conn.execute(
        "SELECT status, count(*), sum(items) FROM identifiers GROUP BY status"
    ):
        counts[status], record_counts[status] = n, items
    records = sum(record_counts.values())
    # Not a status: unchanged or fixed identifiers whose new id upstream data gives, other than
    # their canonical form (identifiers, records).
    remapped = conn.execute(f"SELECT count(*), coalesce(sum(items), 0) FROM identifiers WHERE {REMAPPED}").fetchone()
    quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
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
        "identifiers": {"total": sum(counts.values()), **counts, "remapped": remapped[0]},
        "records_by_status": record_counts,
        "remapped_records": remapped[1],
        "conflicts": conn.execute("SELECT count(*) FROM conflicts").fetchone()[0],
        "suspicious": conn.execute("SELECT count(*) FROM identifiers WHERE suspicious != '[]'").fetchone()[0],
        "expected_items": info.expected_items,
        "point_in_time": info.point_in_time,
        "warnings": list(info.warnings),
        "seconds": 0.0,
    }


def _audit_summary(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("format", "files", "lines", "records", "quarantined", "conflicts", "suspicious")
    return {k: summary[k] for k in keys} | {"identifiers": summary["identifiers"]}
